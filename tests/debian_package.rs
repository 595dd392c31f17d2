//! The Debian package (`cargo deb`, `[package.metadata.deb]` in Cargo.toml, `debian/`): it holds
//! the binary, the unit, the two helper links and the config as a conffile; its maintainer scripts
//! create no user or directory (the unit's `DynamicUser=` provides them) and purge the state; and
//! `lintian` reports no error. Built from the debug binary this test run already has
//! (`--no-build --profile dev`, `--fast` compression): what is checked is the packaging. Reported
//! as ignored where cargo-deb or lintian is missing, required under `CI`. Installing, upgrading
//! and removing it under a real systemd is tests/systemd/run.sh.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?} cannot run: {e}"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{command:?} failed:\n{said}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cargo deb` into `dir`: the package's path.
fn build(dir: &Path) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let printed = run(Command::new("cargo")
        .current_dir(root)
        .args(["deb", "--no-build", "--profile", "dev", "--fast", "-q", "-o"])
        .arg(dir));
    let path = PathBuf::from(printed.trim());
    let name = format!("ticketd_{}-1_amd64.deb", env!("CARGO_PKG_VERSION"));
    assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(name.as_str()), "{printed}");
    path
}

#[test]
#[cfg_attr(
    not(all(have_cargo_deb, have_lintian, have_dpkg_deb)),
    ignore = "needs cargo-deb (cargo install cargo-deb), lintian and dpkg-deb"
)]
fn the_debian_package_holds_what_it_should_and_lintian_finds_no_error() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build(dir.path());

    let files = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for want in [
        "-rwxr-xr-x 0/0 ./usr/bin/ticketd",
        "lrwxrwxrwx 0/0 ./usr/bin/docker-credential-ticketd -> ticketd",
        "-rw-r--r-- 0/0 ./usr/lib/systemd/system/ticketd.service",
        "-rw-r--r-- 0/0 ./etc/ticketd/ticketd.toml",
        "-rw-r--r-- 0/0 ./usr/share/doc/ticketd/copyright",
        "-rw-r--r-- 0/0 ./usr/share/doc/ticketd/changelog.Debian.gz",
    ] {
        let (mode, rest) = want.split_once(' ').unwrap();
        let (owner, path) = rest.split_once(' ').unwrap();
        let found = files
            .lines()
            .any(|l| l.starts_with(mode) && l.contains(&format!(" {owner} ")) && l.ends_with(&format!(" {path}")));
        assert!(found, "no {want} in the package:\n{files}");
    }
    // The kubelet provider's link is where the kubelet example tells the kubelet to look
    // (--image-credential-provider-bin-dir), by the provider name the example's config gives.
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes/credential-provider-config.yaml"),
    )
    .unwrap();
    let bin_dir = example
        .split("--image-credential-provider-bin-dir=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the example names the kubelet's bin dir");
    let provider =
        example.lines().find_map(|l| l.trim().strip_prefix("- name: ")).expect("the example names the provider");
    assert_eq!((bin_dir, provider), ("/usr/libexec/ticketd", "ticketd-credential-provider"));
    let link = format!(" .{bin_dir}/{provider} -> ../../bin/ticketd");
    assert!(files.lines().any(|l| l.starts_with("lrwxrwxrwx 0/0 ") && l.ends_with(&link)), "no{link} in:\n{files}");
    assert!(!files.contains("./usr/bin/ticketd-credential-provider"), "{files}");

    // Nothing under /var or /run: the unit's StateDirectory= and RuntimeDirectory= make them.
    assert!(!files.contains(" ./var/") && !files.contains(" ./run/"), "{files}");

    // The files are the repository's.
    let unpacked = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (ours, packaged) in [
        ("config.example.toml", "etc/ticketd/ticketd.toml"),
        ("systemd/ticketd.service", "usr/lib/systemd/system/ticketd.service"),
    ] {
        assert_eq!(
            std::fs::read(root.join(ours)).unwrap(),
            std::fs::read(unpacked.join(packaged)).unwrap(),
            "{packaged} is not {ours}"
        );
    }

    // The config is a conffile; the maintainer scripts create no user and no directory.
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    assert_eq!(std::fs::read_to_string(control.join("conffiles")).unwrap(), "/etc/ticketd/ticketd.toml\n");
    let fields = std::fs::read_to_string(control.join("control")).unwrap();
    assert!(fields.contains(&format!("Version: {}-1\n", env!("CARGO_PKG_VERSION"))), "{fields}");
    assert!(fields.contains("Depends: libc6"), "{fields}");
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let Ok(text) = std::fs::read_to_string(control.join(script)) else { continue };
        for creates in
            ["adduser", "useradd", "groupadd", "mkdir", "install -d", "chown", "systemd-sysusers", "systemd-tmpfiles"]
        {
            assert!(!text.contains(creates), "{script} runs {creates}:\n{text}");
        }
    }
    let postrm = std::fs::read_to_string(control.join("postrm")).unwrap();
    assert!(postrm.contains("rm -rf /var/lib/private/ticketd /var/lib/ticketd"), "{postrm}");
    // Not started at install (the config and keys come first); an upgrade restarts a running one.
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(
        postinst.contains("try-restart ticketd.service") && !postinst.contains("deb-systemd-invoke start"),
        "{postinst}"
    );

    // lintian: no error (warnings are printed for the record).
    let out = Command::new("lintian").arg(&deb).output().expect("lintian runs");
    let said = String::from_utf8_lossy(&out.stdout);
    eprintln!("lintian:\n{said}{}", String::from_utf8_lossy(&out.stderr));
    let errors: Vec<&str> = said.lines().filter(|l| l.starts_with("E: ")).collect();
    assert!(errors.is_empty() && out.status.success(), "lintian errors:\n{said}");
}
