//! Tells the tests which tools this machine has, so a test that needs one is reported as
//! *ignored* (visible in `cargo test`'s summary) where the tool is missing, instead of passing
//! without running. Under `CI` every tool counts as present: a missing one then fails its test.
//!
//! Each `cfg(have_<tool>)` is set when `<tool>` is on `PATH` (or `CI` is set); `cfg(have_root)`
//! when the build runs as root (or `CI` is set).

use std::path::{Path, PathBuf};

/// The tools tests may need, by the name of the program on `PATH`.
const TOOLS: &[&str] = &[
    "faketime",
    "prlimit",
    "setpriv",
    "nginx",
    "chromium",
    "skopeo",
    "promtool",
    "curl",
    "ldd",
    "kubectl",
    "lintian",
    "cargo-deb",
    "dpkg-deb",
    "kubernetes-validate",
    // The fleet tests' etcd cluster (Debian etcd-server, etcd-client).
    "etcd",
    "etcdctl",
    // Consumers of the template examples (tests/templates.rs): the machine's Node.js npm and JDK.
    "npm",
    "javac",
];

fn main() {
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-changed=build.rs");
    let ci = std::env::var_os("CI").is_some();
    // PATH, then the sbin directories a user's PATH may lack (nginx lives in /usr/sbin).
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    // The pinned Python tools tests use live in venvs under target/ (`.ci/run` makes them; a venv
    // made after the last build is seen once build.rs is touched: watching a missing path would
    // rerun this script on every build).
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    dirs.push(target.join("k8s-venv/bin"));
    dirs.retain(|d| d.is_dir());
    // A tool installed later must be seen: look again when a directory it would land in changes.
    for dir in &dirs {
        println!("cargo::rerun-if-changed={}", dir.display());
    }
    for tool in TOOLS {
        let name = tool.replace('-', "_");
        println!("cargo::rustc-check-cfg=cfg(have_{name})");
        if ci || dirs.iter().any(|dir| is_executable(&dir.join(tool))) {
            println!("cargo::rustc-cfg=have_{name}");
        }
    }
    // `cfg(ci)`: tests/common/feature.rs's stub for a fleet file built without `--features etcd`.
    println!("cargo::rustc-check-cfg=cfg(ci)");
    if ci {
        println!("cargo::rustc-cfg=ci");
    }
    println!("cargo::rustc-check-cfg=cfg(have_root)");
    if ci || is_root() {
        println!("cargo::rustc-cfg=have_root");
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this build runs as root, read from `/proc/self/status` (no unsafe call needed).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|v| v.split_whitespace().nth(1)) == Some("0")
    })
}
