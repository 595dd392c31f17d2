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
