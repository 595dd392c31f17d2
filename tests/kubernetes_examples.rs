//! The Kubernetes examples (`examples/kubernetes/`, a kustomize base and its overlays): `kubectl
//! kustomize` renders each overlay, every rendered object validates offline against the Kubernetes
//! schemas (`kubernetes-validate --strict`, pinned in `examples/kubernetes/requirements.txt`,
//! installed into `target/k8s-venv` by `.ci/run`), the workload mounts the generated ConfigMap,
//! and the config inside it passes `ticketd check-config`. Reported as ignored where kubectl or the
//! venv is missing, required under `CI`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/kubernetes");

/// The overlays, with the kind of the workload each adds to the base's ConfigMap and Secret.
const OVERLAYS: [(&str, &str); 2] = [("sidecar", "Pod"), ("init-container", "Job")];

/// The venv holding the pinned `kubernetes-validate` (`.ci/run` makes it from PyPI; the test never
/// reaches the network itself); its program.
fn validator() -> PathBuf {
    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/k8s-venv/bin/kubernetes-validate");
    let version = Command::new(&program).arg("--version").output();
    assert!(
        version.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("1.37.0")),
        "{} is not kubernetes-validate 1.37.0: make it with\n  python3 -m venv target/k8s-venv && \
         target/k8s-venv/bin/pip install -r examples/kubernetes/requirements.txt",
        program.display()
    );
    program
}

fn kustomize(overlay: &str) -> String {
    let dir = Path::new(EXAMPLES).join("overlays").join(overlay);
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("kubectl cannot run ({e})"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl kustomize {}: {stderr}", dir.display());
    // kustomize warns on stderr about deprecated fields; the examples use none.
    assert!(stderr.trim().is_empty(), "kubectl kustomize {} warned: {stderr}", dir.display());
    String::from_utf8(out.stdout).unwrap()
}

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| serde_json::Value::deserialize(doc).expect("kustomize renders YAML"))
        .collect()
}

/// `ticketd check-config -c FILE` with the keys its credential set reads: (success, output).
fn check_config(file: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["check-config", "-c"])
        .arg(file)
        .env_clear()
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIexample")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "example")
        .stdin(Stdio::null())
        .output()
        .expect("ticketd runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
#[cfg_attr(
    not(all(have_kubectl, have_kubernetes_validate)),
    ignore = "needs kubectl and target/k8s-venv (python3 -m venv target/k8s-venv && target/k8s-venv/bin/pip install -r examples/kubernetes/requirements.txt; touch build.rs)"
)]
fn every_overlay_renders_validates_and_carries_a_config_that_checks() {
    let validate = validator();
    let dir = tempfile::tempdir().unwrap();
    let base_config = std::fs::read_to_string(Path::new(EXAMPLES).join("base/ticketd.toml")).unwrap();
    for (overlay, workload) in OVERLAYS {
        let rendered = kustomize(overlay);
        let docs = documents(&rendered);
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds.len(), 3, "{overlay}: {kinds:?}");
        for kind in ["ConfigMap", "Secret", workload] {
            assert!(kinds.contains(&kind), "{overlay}: no {kind} in {kinds:?}");
        }

        // Every object validates, strictly (no unknown field), against the bundled schemas.
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &rendered).unwrap();
        let out = Command::new(&validate).arg("--strict").arg(&file).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{overlay}: kubernetes-validate --strict:\n{said}");
        assert_eq!(said.matches(" passed for resource ").count(), 3, "{overlay}: {said}");

        // The generated ConfigMap (its name hashed) is the one the workload mounts.
        let map = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        let name = map["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("ticketd-config-"), "{overlay}: {name}");
        let pod = docs.iter().find(|d| d["kind"] == workload).unwrap();
        let spec = if workload == "Job" { &pod["spec"]["template"]["spec"] } else { &pod["spec"] };
        let volumes = spec["volumes"].as_array().unwrap();
        assert!(volumes.iter().any(|v| v["configMap"]["name"] == name), "{overlay}: {volumes:?} lack {name}");

        // The config inside passes check-config, and is the base's file.
        let config = map["data"]["ticketd.toml"].as_str().unwrap();
        assert_eq!(config, base_config, "{overlay}");
        let path = dir.path().join(format!("{overlay}.toml"));
        std::fs::write(&path, config).unwrap();
        let (ok, said) = check_config(&path);
        assert!(ok && said.contains(": ok (1 ticket"), "{overlay}: check-config:\n{said}");
    }
}

/// The check the test above relies on can fail: a config with an unknown key does not check.
#[test]
fn check_config_refuses_a_broken_kubernetes_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticketd.toml");
    let base = std::fs::read_to_string(Path::new(EXAMPLES).join("base/ticketd.toml")).unwrap();
    std::fs::write(&path, format!("{base}\ncolour = \"blue\"\n")).unwrap();
    let (ok, said) = check_config(&path);
    assert!(!ok && said.contains("colour"), "{said}");
}

/// The fleet overlay (issue #19): three replicas of a StatefulSet behind a headless Service, each
/// pod's ticketd a fleet node; its config is the base's plus `[cluster]`, the key and etcd TLS
/// files mounted from Secrets where the config names them, with a mode ticketd accepts for them.
#[test]
#[cfg_attr(
    not(all(have_kubectl, have_kubernetes_validate)),
    ignore = "needs kubectl and target/k8s-venv (python3 -m venv target/k8s-venv && target/k8s-venv/bin/pip install -r examples/kubernetes/requirements.txt; touch build.rs)"
)]
fn the_fleet_overlay_renders_three_replicas_whose_config_runs_one_fleet() {
    let validate = validator();
    let dir = tempfile::tempdir().unwrap();
    let rendered = kustomize("fleet");
    let docs = documents(&rendered);
    let mut kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["ConfigMap", "PodDisruptionBudget", "Secret", "Secret", "Secret", "Service", "StatefulSet"]);
    let file = dir.path().join("fleet.yaml");
    std::fs::write(&file, &rendered).unwrap();
    let out = Command::new(&validate).arg("--strict").arg(&file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "fleet: kubernetes-validate --strict:\n{said}");
    assert_eq!(said.matches(" passed for resource ").count(), 7, "fleet: {said}");

    let set = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
    assert_eq!(set["spec"]["replicas"], 3);
    assert_eq!(set["spec"]["serviceName"], service["metadata"]["name"]);
    assert_eq!(service["spec"]["clusterIP"], "None", "a headless Service: stable pod names");
    let pod = &set["spec"]["template"]["spec"];
    let map = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let name = map["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("ticketd-config-"), "{name}");
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["configMap"]["name"] == name), "{volumes:?} lack {name}");

    // The config: [cluster] on top of the base's tickets; each file it names is in a mounted
    // Secret (0400) at that path.
    let config = map["data"]["ticketd.toml"].as_str().unwrap();
    let on_disk = std::fs::read_to_string(Path::new(EXAMPLES).join("overlays/fleet/ticketd.toml")).unwrap();
    assert_eq!(config, on_disk);
    let base = std::fs::read_to_string(Path::new(EXAMPLES).join("base/ticketd.toml")).unwrap();
    let tickets = |text: &str| text[text.find("[credentials.prod]").unwrap()..].to_string();
    assert_eq!(tickets(config), tickets(&base), "the fleet runs the base's tickets");
    let parsed: toml::Table = config.parse().unwrap();
    let cluster = parsed["cluster"].as_table().expect("[cluster]");
    assert!(cluster.get("node").is_none(), "node defaults to the host name: the pod's name");
    let ticketd = pod["containers"].as_array().unwrap().iter().find(|c| c["name"] == "ticketd").unwrap();
    let mounts = ticketd["volumeMounts"].as_array().unwrap();
    for key in ["encryption_key_file", "ca_file", "cert_file", "key_file"] {
        let path = Path::new(cluster[key].as_str().unwrap());
        let mount = mounts
            .iter()
            .find(|m| Path::new(path.parent().unwrap()) == Path::new(m["mountPath"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("{key} = {path:?}: no volume mounted at its directory"));
        let volume = volumes.iter().find(|v| v["name"] == mount["name"]).unwrap();
        let secret = &volume["secret"];
        assert_eq!(secret["defaultMode"], 0o400, "{key}: {volume}");
        let data = docs
            .iter()
            .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == secret["secretName"])
            .unwrap_or_else(|| panic!("{key}: no Secret {}", secret["secretName"]));
        let file_name = path.file_name().unwrap().to_str().unwrap();
        assert!(data["stringData"].get(file_name).is_some(), "{key}: the Secret has no {file_name}");
    }

    // check-config: a build without the fleet backend refuses [cluster] at its line (and only
    // that); a build with it checks the rest.
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, config).unwrap();
    let (ok, said) = check_config(&path);
    let line = 1 + config.lines().position(|l| l == "[cluster]").unwrap();
    if cfg!(feature = "etcd") {
        assert!(!ok, "the files it names are not on this machine:\n{said}");
        assert!(said.contains("/etc/ticketd-fleet/"), "{said}");
    } else {
        let want = format!("{}:{line}:2: cluster: built without the `etcd` feature", path.display());
        assert!(!ok && said.contains(&want) && said.matches(": cluster").count() == 1, "{said}");
    }
}
