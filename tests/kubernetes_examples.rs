//! The Kubernetes examples (`examples/kubernetes/`, a kustomize base and its overlays): `kubectl
//! kustomize` renders each overlay, every rendered object validates offline against the Kubernetes
//! schemas (`kubernetes-validate --strict`, pinned in `examples/kubernetes/requirements.txt`,
//! installed into `target/k8s-venv` by `.ci/run`), the workload mounts the generated ConfigMap,
//! and the config inside it passes `ticketd check-config`. Reported as ignored where kubectl or the
//! venv is missing, required under `CI`. With `--features etcd`, the fleet overlay's init container
//! command runs on Secret volumes laid out as the kubelet lays them out, and `check-config` accepts
//! the copies it makes where it refuses the Secret's own files (review G3).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

/// Only `needs_etcd_feature!`: the G3 test below runs `check-config` on `[cluster]`, which a build
/// without the `etcd` feature refuses whole.
mod common {
    pub mod feature;
}

needs_etcd_feature!();

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
    check_config_as(file, None)
}

/// [`check_config`] as `user` (uid, gid) when given (the test runs as root).
fn check_config_as(file: &Path, user: Option<(u32, u32)>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticketd"));
    command
        .args(["check-config", "-c"])
        .arg(file)
        .env_clear()
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIexample")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "example")
        .stdin(Stdio::null());
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    let out = command.output().expect("ticketd runs");
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
/// pod's ticketd a fleet node; its config is the base's plus `[cluster]`, whose key and etcd TLS
/// files an init container copies from the Secrets, mode 0400, onto the memory `emptyDir` where the
/// config names them (review G3: ticketd mounts no Secret, whose files are symlinks).
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

    // The config: [cluster] on top of the base's tickets.
    let config = map["data"]["ticketd.toml"].as_str().unwrap();
    let on_disk = std::fs::read_to_string(Path::new(EXAMPLES).join("overlays/fleet/ticketd.toml")).unwrap();
    assert_eq!(config, on_disk);
    let base = std::fs::read_to_string(Path::new(EXAMPLES).join("base/ticketd.toml")).unwrap();
    let tickets = |text: &str| text[text.find("[credentials.prod]").unwrap()..].to_string();
    assert_eq!(tickets(config), tickets(&base), "the fleet runs the base's tickets");
    let parsed: toml::Table = config.parse().unwrap();
    let cluster = parsed["cluster"].as_table().expect("[cluster]");
    assert!(cluster.get("node").is_none(), "node defaults to the host name: the pod's name");
    assert!(cluster.get("password_env").is_none() && cluster.get("username").is_none(), "no etcd password");

    // Review G3: ticketd mounts no Secret volume (its files are symlinks, and 0440 with the
    // fsGroup: ticketd refuses both for a key file); each file [cluster] names is a copy on the
    // memory emptyDir that the init container fills, made by its command with mode 0400, from a
    // Secret that has the file.
    let fleet = FleetPod::of(pod);
    let claims = set["spec"]["volumeClaimTemplates"].as_array().unwrap();
    for mount in fleet.ticketd["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        match fleet.volumes.iter().find(|v| v["name"] == name) {
            Some(volume) => assert!(
                volume.get("secret").is_none(),
                "ticketd mounts the Secret volume {volume} at {}",
                mount["mountPath"]
            ),
            None => assert!(claims.iter().any(|c| c["metadata"]["name"] == name), "no volume {name}"),
        }
    }
    let copy = fleet.copy();
    assert_eq!(
        copy.dest_volume["emptyDir"]["medium"], "Memory",
        "the copies stay off the node's disk: {}",
        copy.dest_volume
    );
    let user =
        |c: &serde_json::Value| (c["securityContext"]["runAsUser"].clone(), c["securityContext"]["runAsGroup"].clone());
    assert_eq!(user(fleet.init), user(fleet.ticketd), "the copies are owned by the user ticketd runs as");
    assert_eq!(
        pod["securityContext"]["fsGroup"], fleet.init["securityContext"]["runAsGroup"],
        "the init container reads the Secrets through the fsGroup"
    );
    for key in CLUSTER_FILES {
        let path = Path::new(cluster[key].as_str().unwrap());
        let mount = fleet
            .mount_at(fleet.ticketd, path.parent().unwrap())
            .unwrap_or_else(|| panic!("{key} = {path:?}: ticketd mounts no volume at its directory"));
        assert_eq!(
            mount["name"], copy.dest_volume["name"],
            "{key} = {path:?} is not on the volume the init container fills"
        );
        assert_eq!(mount["readOnly"], true, "{key}: {mount}");
        let file_name = path.file_name().unwrap().to_str().unwrap();
        let source =
            copy.sources.iter().find(|s| s.file_name().unwrap() == file_name).unwrap_or_else(|| {
                panic!("{key}: the init container's command copies no {file_name}: {:?}", copy.sources)
            });
        let secret = fleet
            .mount_at(fleet.init, source.parent().unwrap())
            .map(|m| &fleet.volume(m["name"].as_str().unwrap())["secret"])
            .filter(|s| s.is_object())
            .unwrap_or_else(|| panic!("{key}: {source:?} is on no Secret volume of the init container"));
        assert!(secret.get("items").is_none(), "{key}: items would rename the Secret's files: {secret}");
        let data = docs
            .iter()
            .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == secret["secretName"])
            .unwrap_or_else(|| panic!("{key}: no Secret {}", secret["secretName"]));
        assert!(
            data["stringData"].get(file_name).is_some(),
            "{key}: the Secret {} has no {file_name}",
            secret["secretName"]
        );
    }
    assert_eq!(
        copy.sources.len(),
        CLUSTER_FILES.len(),
        "the init container copies only what [cluster] names: {:?}",
        copy.sources
    );

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

/// The files `[cluster]` names that ticketd reads from disk (the fleet overlay sets every one).
const CLUSTER_FILES: [&str; 4] = ["encryption_key_file", "ca_file", "cert_file", "key_file"];

/// The fleet StatefulSet's pod template: its volumes, the ticketd container and the init container
/// that copies the Secrets' files (`fleet-secrets`).
struct FleetPod<'a> {
    volumes: &'a [Value],
    ticketd: &'a Value,
    init: &'a Value,
}

/// The init container's command, `install -m 0400 SOURCE... DIR/` (each source read through its
/// symlinks, written into DIR under its own name, then set to mode 0400), and DIR's volume.
struct SecretCopy<'a> {
    #[cfg_attr(not(feature = "etcd"), expect(dead_code, reason = "run by the G3 test, which needs the etcd feature"))]
    command: Vec<String>,
    sources: Vec<PathBuf>,
    #[cfg_attr(not(feature = "etcd"), expect(dead_code, reason = "run by the G3 test, which needs the etcd feature"))]
    dest: PathBuf,
    dest_volume: &'a Value,
}

impl<'a> FleetPod<'a> {
    fn of(pod: &'a Value) -> FleetPod<'a> {
        let named = |list: &str, name: &str| {
            pod[list]
                .as_array()
                .unwrap_or_else(|| panic!("the pod has no {list}"))
                .iter()
                .find(|c| c["name"] == name)
                .unwrap_or_else(|| panic!("the pod's {list} have no {name}"))
        };
        FleetPod {
            volumes: pod["volumes"].as_array().unwrap(),
            ticketd: named("containers", "ticketd"),
            init: named("initContainers", "fleet-secrets"),
        }
    }

    fn volume(&self, name: &str) -> &'a Value {
        self.volumes.iter().find(|v| v["name"] == name).unwrap_or_else(|| panic!("no volume {name}"))
    }

    /// `container`'s mount at exactly `dir`.
    fn mount_at(&self, container: &'a Value, dir: &Path) -> Option<&'a Value> {
        container["volumeMounts"].as_array()?.iter().find(|m| Path::new(m["mountPath"].as_str().unwrap()) == dir)
    }

    /// The init container's command, checked to be the copy (exec form, no shell: the busybox
    /// image's `install`).
    fn copy(&self) -> SecretCopy<'a> {
        assert!(self.init.get("args").is_none(), "the command is whole in `command`: {}", self.init);
        let command: Vec<String> = self.init["command"]
            .as_array()
            .expect("the init container has a command")
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let [program, flag, mode, files @ .., dest] = command.as_slice() else { panic!("{command:?}") };
        assert_eq!([program, flag, mode], ["install", "-m", "0400"], "the init container's command: {command:?}");
        assert!(!files.is_empty() && dest.ends_with('/'), "install -m 0400 FILE... DIR/: {command:?}");
        let dest = PathBuf::from(dest);
        let mount = self
            .mount_at(self.init, &dest)
            .unwrap_or_else(|| panic!("the init container mounts no volume at {dest:?}"));
        assert_ne!(mount["readOnly"], true, "the init container writes {dest:?}");
        SecretCopy {
            sources: files.iter().map(PathBuf::from).collect(),
            dest,
            dest_volume: self.volume(mount["name"].as_str().unwrap()),
            command,
        }
    }
}

#[cfg(feature = "etcd")]
/// A key as secrets.yaml says to make one (`head -c 32 /dev/urandom | base64`): 32 bytes.
const CLUSTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";

#[cfg(feature = "etcd")]
/// The kubelet's directory for an `emptyDir` (mode 0777) with what the fsGroup adds (setgid and,
/// as root, group `fs_group`).
fn empty_dir(dir: &Path, fs_group: Option<u32>) {
    std::fs::create_dir(dir).unwrap();
    if let Some(gid) = fs_group {
        std::os::unix::fs::chown(dir, Some(0), Some(gid)).unwrap();
    }
    set_mode(dir, 0o2777);
}

#[cfg(feature = "etcd")]
/// A Secret volume at `dir` as the kubelet's AtomicWriter writes it: the files in a timestamped
/// directory, `..data` a symlink to it, each name a symlink to `..data/NAME`; then what the
/// fsGroup adds to a read-only volume (SetVolumeOwnership): the group read bit on each file
/// (`defaultMode` 0400 becomes 0440), setgid on the directories and, as root, group `fs_group`.
fn secret_volume(dir: &Path, files: &[(String, String)], default_mode: u32, fs_group: Option<u32>) {
    let stamped = "..2026_12_02_14_37_28.1518384810";
    std::fs::create_dir_all(dir.join(stamped)).unwrap();
    std::os::unix::fs::symlink(stamped, dir.join("..data")).unwrap();
    let mut owned = vec![dir.to_path_buf(), dir.join(stamped), dir.join("..data")];
    for (name, text) in files {
        let file = dir.join(stamped).join(name);
        std::fs::write(&file, text).unwrap();
        set_mode(&file, default_mode | 0o440);
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        owned.extend([file, dir.join(name)]);
    }
    if let Some(gid) = fs_group {
        for path in &owned {
            std::os::unix::fs::lchown(path, Some(0), Some(gid)).unwrap();
        }
    }
    for path in [dir.to_path_buf(), dir.join(stamped)] {
        set_mode(&path, 0o2755);
    }
}

#[cfg(feature = "etcd")]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Review G3, for real on this machine: each volume of the init container made here as the
/// kubelet makes it (Secret files as symlinks into `..data/`, 0440 with the fsGroup), the init
/// container's command taken from the rendered StatefulSet and run on them (as the pod's user when
/// the test runs as root), then `ticketd check-config` on the overlay's config with its paths
/// moved here, as that user: the Secret's own files are refused (a symlink; behind `..data/`,
/// readable by the group), the copies pass every key-file check and the config checks.
#[cfg(feature = "etcd")]
#[test]
#[cfg_attr(not(have_kubectl), ignore = "needs kubectl (kubectl kustomize renders the overlay)")]
fn issue_19_g3_the_init_container_copies_the_secrets_into_files_ticketd_accepts() {
    use std::os::unix::fs::MetadataExt;

    let docs = documents(&kustomize("fleet"));
    let set = docs.iter().find(|d| d["kind"] == "StatefulSet").unwrap();
    let pod = &set["spec"]["template"]["spec"];
    let fleet = FleetPod::of(pod);
    let copy = fleet.copy();
    let map = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let config = map["data"]["ticketd.toml"].as_str().unwrap();
    let parsed: toml::Table = config.parse().unwrap();
    let cluster = parsed["cluster"].as_table().unwrap();
    let named = |key: &str| PathBuf::from(cluster[key].as_str().unwrap());
    let key_name = named("encryption_key_file").file_name().unwrap().to_str().unwrap().to_string();

    // As root, the init container and ticketd run as the pod runs them: uid and gid from their
    // securityContext, the volumes' group the fsGroup.
    let id = |c: &Value, key: &str| u32::try_from(c["securityContext"][key].as_u64().unwrap()).unwrap();
    let as_root = rustix::process::geteuid().is_root();
    let init_user = as_root.then(|| (id(fleet.init, "runAsUser"), id(fleet.init, "runAsGroup")));
    let ticketd_user = as_root.then(|| (id(fleet.ticketd, "runAsUser"), id(fleet.ticketd, "runAsGroup")));
    let fs_group = as_root.then(|| u32::try_from(pod["securityContext"]["fsGroup"].as_u64().unwrap()).unwrap());

    let root = tempfile::tempdir().unwrap();
    set_mode(root.path(), 0o755);
    // Each volume the init container mounts, made here: (its mount path there, its directory here).
    let mut volumes: Vec<(PathBuf, PathBuf)> = Vec::new();
    for mount in fleet.init["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        let volume = fleet.volume(name);
        let dir = root.path().join(name);
        if volume["secret"].is_object() {
            let secret = &volume["secret"];
            let data = docs
                .iter()
                .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == secret["secretName"])
                .unwrap()["stringData"]
                .as_object()
                .unwrap();
            // The placeholder key replaced by a real one, as secrets.yaml says to.
            let files: Vec<(String, String)> = data
                .iter()
                .map(|(name, text)| {
                    let text = if *name == key_name { CLUSTER_KEY } else { text.as_str().unwrap() };
                    (name.clone(), text.to_string())
                })
                .collect();
            let mode = u32::try_from(secret["defaultMode"].as_u64().unwrap()).unwrap();
            secret_volume(&dir, &files, mode, fs_group);
        } else {
            assert!(volume["emptyDir"].is_object(), "{volume}");
            empty_dir(&dir, fs_group);
        }
        volumes.push((PathBuf::from(mount["mountPath"].as_str().unwrap()), dir));
    }
    let here = |path: &Path| {
        volumes
            .iter()
            .find_map(|(at, dir)| path.strip_prefix(at).ok().map(|rest| dir.join(rest)))
            .unwrap_or_else(|| panic!("{path:?} is on no volume of the init container"))
    };

    // The init container's command, its paths moved here; twice (a pod's init containers run
    // again over the last run's copies when its sandbox is remade).
    let program = &copy.command[0];
    let args: Vec<String> = copy.command[1..]
        .iter()
        .map(|arg| match arg.strip_suffix('/').unwrap_or(arg) {
            path if path.starts_with('/') => {
                format!("{}{}", here(Path::new(path)).display(), if arg.ends_with('/') { "/" } else { "" })
            }
            _ => arg.clone(),
        })
        .collect();
    for run in ["first", "second"] {
        let mut command = Command::new(program);
        command.args(&args).stdin(Stdio::null());
        if let Some((uid, gid)) = init_user {
            command.uid(uid).gid(gid);
        }
        let out = command.output().unwrap_or_else(|e| panic!("{program} cannot run ({e})"));
        assert!(out.status.success(), "{run} run of {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let owner = init_user.map_or_else(|| rustix::process::geteuid().as_raw(), |(uid, _)| uid);
    for source in &copy.sources {
        let made = here(&copy.dest).join(source.file_name().unwrap());
        let meta = std::fs::symlink_metadata(&made).unwrap();
        assert!(meta.file_type().is_file(), "{made:?} is a regular file");
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o400, owner), "{made:?}");
        assert_eq!(std::fs::read(&made).unwrap(), std::fs::read(here(source)).unwrap(), "{made:?}");
    }

    // The config with each [cluster] file moved to `place(key, path)`, checked as ticketd's user.
    let check = |label: &str, place: &dyn Fn(&Path) -> PathBuf| {
        let mut text = config.to_string();
        for key in CLUSTER_FILES {
            let path = named(key);
            text = text.replace(&format!("\"{}\"", path.display()), &format!("\"{}\"", place(&path).display()));
        }
        let file = root.path().join(format!("{label}.toml"));
        std::fs::write(&file, text).unwrap();
        check_config_as(&file, ticketd_user)
    };
    let source_of = |path: &Path| {
        let name = path.file_name().unwrap();
        copy.sources.iter().find(|s| s.file_name() == Some(name)).unwrap().clone()
    };
    // The Secret volume's files as the config would name them without the copy: refused.
    let (ok, said) = check("secret", &|path| here(&source_of(path)));
    assert!(!ok && said.contains("encryption_key_file") && said.contains("is a symlink"), "{said}");
    let (ok, said) = check("behind-data", &|path| {
        let source = source_of(path);
        here(source.parent().unwrap()).join("..data").join(source.file_name().unwrap())
    });
    assert!(!ok && said.contains("is readable by group or others (mode 440)"), "{said}");
    // The copies, where ticketd's mount of the volume the init container fills puts them.
    let (ok, said) = check("copies", &|path| {
        let mount = fleet.mount_at(fleet.ticketd, path.parent().unwrap()).unwrap();
        assert_eq!(mount["name"], copy.dest_volume["name"]);
        root.path().join(mount["name"].as_str().unwrap()).join(path.file_name().unwrap())
    });
    assert!(ok && said.contains(": ok (1 ticket"), "the copies:\n{said}");
    assert!(!said.contains("no encryption_key_file"), "{said}");
}
