//! What the real binary trusts on disk and hands on (issue 16, items 7–10 and 15): the hook's
//! environment, the `pid_file` of a signal hook, reading the config file, and the directories of
//! sinks, the socket and the state.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn config(extra_ticket: &str) -> String {
    format!(
        r#"
state_dir = "{{dir}}/state"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "{{emulator}}"
ticket_lifetime = "1h"
token_lifetime = "10s"
{extra_ticket}

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/dash.json"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_the_exec_hook_gets_a_cleared_environment_without_the_cloud_keys() {
    let h = Harness::start().await;
    let out = h.path("hook.env");
    let hook = format!(
        "on_change = {{ exec = [\"/bin/sh\", \"-c\", \"env > {}.tmp && mv {0}.tmp {0}\"], debounce = \"0s\", env = {{ NGINX_CONF = \"/etc/nginx\" }} }}",
        out.display()
    );
    let path = h.write_config(&config(&hook));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let text = wait_for("the hook's environment", WAIT, || std::fs::read_to_string(&out).ok()).await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    let secret = h.key.access_key_secret.expose().to_string();
    let tencent_secret = h.tencent_key.access_key_secret.expose().to_string();
    assert!(!text.contains(&secret) && !text.contains(&tencent_secret), "a cloud key reached the hook");
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_once('=').map(|(n, _)| n)).collect();
    for name in names.iter().filter(|n| **n != "PWD" && **n != "SHLVL" && **n != "_") {
        assert!(
            ["PATH", "NGINX_CONF", "TICKETD_TICKET", "TICKETD_GENERATION", "TICKETD_FILES"].contains(name),
            "unexpected variable {name} in the hook's environment"
        );
    }
    assert!(text.contains("NGINX_CONF=/etc/nginx\n") && text.contains("TICKETD_TICKET=dash\n"), "{names:?}");
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_fifo_as_the_config_on_sighup_is_refused_and_sigterm_still_saves_state() {
    let h = Harness::start().await;
    let path = h.write_config(&config(""));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    wait_for("the first token", WAIT, || read_json(&h.path("out/dash.json"))).await;
    std::fs::rename(&path, h.path("ticketd.toml.real")).unwrap();
    mkfifo(&path);
    daemon.signal("HUP");
    let log =
        wait_for("the reload to be refused", WAIT, || Some(daemon.log_text()).filter(|t| t.contains("reload refused")))
            .await;
    assert!(log.contains("cannot read the config file: is not a regular file (it is a FIFO)"), "{log}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    assert!(daemon.log_text().contains("stopped"));
    let state = read_json(&h.path("state/state.json")).expect("the state was saved");
    assert!(state["tickets"]["dash"].is_object(), "{state}");
}

#[test]
fn issue_16_check_config_refuses_dev_zero_and_an_oversized_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let big = dir.path().join("big.toml");
    std::fs::File::create(&big).unwrap().set_len(65 * 1024 * 1024).unwrap();
    for (path, message) in
        [(&zero, "is not a regular file (it is a character device)"), (&big, "is larger than the limit of 64 MiB")]
    {
        let out = std::process::Command::new(BIN)
            .args(["check-config", "-c", path.to_str().unwrap()])
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(&format!("cannot read the config file: {message}")), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_pid_file_others_can_write_is_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start().await;
    let pid_file = h.path("reader.pid");
    let hups = h.path("hups.log");
    let _reader = HupReader::spawn(&pid_file, &hups);
    wait_for("the reader's pid file", WAIT, || std::fs::read_to_string(&pid_file).ok().filter(|t| t.ends_with('\n')))
        .await;
    // Anyone could now write another pid into it.
    std::fs::set_permissions(&pid_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let hook = format!("on_change = {{ signal = \"HUP\", pid_file = \"{}\", debounce = \"0s\" }}", pid_file.display());
    let path = h.write_config(&config(&hook));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let log = wait_for("two refusals", WAIT, || {
        Some(daemon.log_text()).filter(|t| t.matches("not signalling on change").count() >= 2)
    })
    .await;
    assert!(log.contains("reader.pid is writable by every user (mode 666)"), "{log}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    assert!(!hups.exists(), "the process named by a world-writable pid file was signalled");
}

/// `ticketd run -c <config>` under `umask 000`, with the harness's environment.
fn spawn_with_umask_000(h: &Harness, config: &std::path::Path) -> std::process::Child {
    let log = std::fs::File::create(h.path("umask-log.txt")).unwrap();
    std::process::Command::new("/bin/sh")
        .args(["-c", "umask 000; exec \"$0\" run -c \"$1\"", BIN, config.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &h.key.access_key_id)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", h.key.access_key_secret.expose())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_under_umask_000_every_directory_and_file_ticketd_creates_has_its_exact_mode() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start().await;
    let body = config("").replace(
        "state_dir = \"{dir}/state\"",
        "state_dir = \"{dir}/lib/state\"\nsocket = \"{dir}/run/sub/ticketd.sock\"\nsocket_mode = \"0660\"",
    );
    let path = h.write_config(&body.replace("{dir}/out/dash.json", "{dir}/out/deep/dash.json"));
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut daemon = Kill(spawn_with_umask_000(&h, &path));
    wait_for("the first token", WAIT, || read_json(&h.path("out/deep/dash.json"))).await;
    wait_for("the socket", WAIT, || h.path("run/sub/ticketd.sock").exists().then_some(())).await;
    let mode = |p: &str| std::fs::symlink_metadata(h.path(p)).unwrap().permissions().mode() & 0o7777;
    let found: Vec<(&str, u32)> = [
        "run",
        "run/sub",
        "run/sub/ticketd.sock",
        "lib",
        "lib/state",
        "lib/state/state.lock",
        "out",
        "out/deep",
        "out/deep/dash.json",
    ]
    .into_iter()
    .map(|p| (p, mode(p)))
    .collect();
    let want = [
        ("run", 0o755),
        ("run/sub", 0o755),
        ("run/sub/ticketd.sock", 0o660),
        ("lib", 0o700),
        ("lib/state", 0o700),
        ("lib/state/state.lock", 0o600),
        ("out", 0o755),
        ("out/deep", 0o755),
        ("out/deep/dash.json", 0o600),
    ];
    assert_eq!(found, want);
    let status = std::process::Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = wait_for("the daemon to exit", WAIT, || daemon.0.try_wait().unwrap()).await;
    assert_eq!(exited.code(), Some(0));
    assert_eq!(mode("lib/state/state.json"), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_root), ignore = "needs root (the refusal applies to root)")]
async fn issue_16_as_root_a_socket_directory_others_can_write_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start().await;
    let open = h.path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let body = config("")
        .replace("state_dir = \"{dir}/state\"", "state_dir = \"{dir}/state\"\nsocket = \"{dir}/open/ticketd.sock\"");
    let path = h.write_config(&body);
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    assert_ne!(daemon.wait_exit(WAIT).await, 0);
    let log = daemon.log_text();
    assert!(log.contains("socket directory") && log.contains("/open is writable by every user (mode 777)"), "{log}");
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0, "nothing was created in it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_root), ignore = "needs root (a symlink owned by another uid)")]
async fn issue_16_as_root_a_sink_under_a_symlink_another_user_planted_is_refused_and_nothing_is_written() {
    let h = Harness::start().await;
    let target = h.path("root-only");
    std::fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&target, h.path("out")).unwrap();
    std::os::unix::fs::lchown(h.path("out"), Some(65534), Some(65534)).unwrap();
    let path = h.write_config(&config(""));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    assert_ne!(daemon.wait_exit(WAIT).await, 0);
    let log = daemon.log_text();
    assert!(log.contains("sink directory") && log.contains("/out is a symlink owned by uid 65534"), "{log}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "nothing was written where the symlink points");
}
