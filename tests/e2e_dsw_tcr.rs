//! The real binary against the emulator: PAI-DSW tokens, TCR registry credentials (temp and
//! long-term), the docker-config and env sinks, and the docker credential helper.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const CONFIG: &str = r#"
state_dir = "{dir}/state"

[credentials.ali]
vendor = "alibaba"

[credentials.tc]
vendor = "tencent"

[[tickets]]
name = "notebook"
kind = "dsw"
credentials = "ali"
endpoint = "{emulator}"
instance_id = "dsw-730abcdef"
token_lifetime = "10s"
token_type = "Access"
audience = "ThirdParty"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/notebook.json"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/notebook.env"
format = "env"
env_prefix = "DSW_"

[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
endpoint = "{emulator}"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
token_type = "longterm"
description = "ci pulls"
registry = "myreg.tencentcloudcr.com"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/registry.json"

[[tickets.sinks]]
type = "docker-config"
path = "{dir}/docker/config.json"
"#;

const WAIT: Duration = Duration::from_secs(30);
const REGISTRY: &str = "myreg.tencentcloudcr.com";
const EMULATOR_USERNAME: &str = "100012345678";

fn generation(h: &Harness, file: &str) -> Option<u64> {
    read_json(&h.path(file)).and_then(|j| j["generation"].as_u64())
}

/// Run the docker credential helper: `args` after the binary, `input` on stdin.
fn helper(h: &Harness, program: &std::path::Path, args: &[&str], input: &str) -> (i32, String) {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("TICKETD_CONFIG", h.path("ticketd.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the helper");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsw_refreshes_tcr_longterm_survives_a_restart_and_docker_clients_read_the_credentials() {
    let h = Harness::start().await;
    let config = h.write_config(CONFIG);
    let config = config.to_str().unwrap();
    // An existing docker config with entries and keys of its own.
    std::fs::create_dir_all(h.path("docker")).unwrap();
    let existing =
        r#"{"auths":{"docker.io":{"auth":"dXNlcjpwYXNz"}},"psFormat":"table {{.ID}}","experimental":"enabled"}"#;
    std::fs::write(h.path("docker/config.json"), existing).unwrap();
    let mut daemon = h.spawn(&["run", "-c", config]);

    // DSW: a token, then a refresh of the 10 s token.
    wait_for("the first DSW token", WAIT, || generation(&h, "out/notebook.json").filter(|g| *g >= 1)).await;
    let json = read_json(&h.path("out/notebook.json")).unwrap();
    assert_eq!(json["kind"], "dsw");
    let first = json["access_token"].as_str().unwrap().to_string();
    // The sinks are written one after another: wait for the env file to hold the same token.
    let env = wait_for("the env sink", WAIT, || {
        std::fs::read_to_string(h.path("out/notebook.env")).ok().filter(|e| e.contains(first.as_str()))
    })
    .await;
    assert!(env.starts_with(&format!("DSW_TOKEN={first}\nDSW_EXPIRES_AT=")), "{env}");
    assert_eq!(mode(&h.path("out/notebook.env")), 0o600);
    wait_for("a refreshed DSW token", WAIT, || generation(&h, "out/notebook.json").filter(|g| *g >= 2)).await;
    assert_ne!(read_json(&h.path("out/notebook.json")).unwrap()["access_token"].as_str().unwrap(), first);

    // TCR: one long-term token, with its user name, in the json and the docker config.
    wait_for("the TCR token", WAIT, || generation(&h, "out/registry.json").filter(|g| *g >= 1)).await;
    let json = read_json(&h.path("out/registry.json")).unwrap();
    assert_eq!(json["kind"], "tcr");
    assert_eq!(json["username"], EMULATOR_USERNAME);
    let tcr_token = json["access_token"].as_str().unwrap().to_string();
    // ExpTime is milliseconds: a one-year token, not one that expired in 1970 or lives for ever.
    let expires = humantime::parse_rfc3339(json["token_expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(360 * 86_400) && left <= Duration::from_secs(366 * 86_400), "{left:?}");

    let docker = wait_for("the docker config entry", WAIT, || {
        read_json(&h.path("docker/config.json")).filter(|d| !d["auths"][REGISTRY].is_null())
    })
    .await;
    assert_eq!(docker["auths"]["docker.io"]["auth"], "dXNlcjpwYXNz", "other entries are kept");
    assert_eq!(docker["psFormat"], "table {{.ID}}");
    assert_eq!(docker["experimental"], "enabled");
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{EMULATOR_USERNAME}:{tcr_token}"));
    assert_eq!(docker["auths"][REGISTRY]["auth"], auth.as_str());
    assert_eq!(mode(&h.path("docker/config.json")), 0o600);

    // The credential helper answers from the saved state.
    wait_for("the saved state", WAIT, || {
        read_json(&h.path("state/state.json")).filter(|s| !s["tickets"]["registry"]["current"].is_null())
    })
    .await;
    let (code, out) =
        helper(&h, std::path::Path::new(BIN), &["docker-credential", "get"], &format!("https://{REGISTRY}\n"));
    assert_eq!(code, 0, "{out}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"ServerURL": format!("https://{REGISTRY}"), "Username": EMULATOR_USERNAME, "Secret": tcr_token})
    );
    // Invoked as docker-credential-ticketd (a symlink), with docker's bare arguments.
    let link = h.path("docker-credential-ticketd");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let (code, out) = helper(&h, &link, &["list"], "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), format!(r#"{{"{REGISTRY}":"{EMULATOR_USERNAME}"}}"#));
    let (code, out) = helper(&h, &link, &["get"], "unknown.example.com\n");
    assert_eq!((code, out.trim()), (1, "credentials not found in native keychain"));
    let (code, out) = helper(&h, &link, &["store"], r#"{"ServerURL":"x","Username":"u","Secret":"s"}"#);
    assert_eq!(code, 1);
    assert!(out.contains("ticketd owns these credentials"), "{out}");

    // A restart keeps the long-term token: no second CreateInstanceToken.
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
    assert_eq!(h.emulator.stats().create_instance_token, 1);
    let before = generation(&h, "out/notebook.json").unwrap();
    let mut daemon = h.spawn(&["run", "-c", config]);
    wait_for("a DSW refresh after the restart", WAIT, || generation(&h, "out/notebook.json").filter(|g| *g > before))
        .await;
    assert!(daemon.log_text().contains("reusing the saved token"), "{}", daemon.log_text());
    assert_eq!(h.emulator.stats().create_instance_token, 1, "a restart must not mint another long-term token");
    assert_eq!(read_json(&h.path("out/registry.json")).unwrap()["access_token"].as_str().unwrap(), tcr_token);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);

    let stats = h.emulator.stats();
    assert!(stats.get_token >= 3, "{stats:?}");
    assert_eq!(stats.rejected, 0, "{stats:?}");
    let logs = h.all_logs();
    for secret in [h.key.access_key_secret.expose(), h.tencent_key.access_key_secret.expose(), &tcr_token, &first] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_skopeo), ignore = "needs skopeo (apt-get install skopeo)")]
async fn skopeo_reads_the_docker_config_ticketd_writes() {
    let h = Harness::start().await;
    let config = h.write_config(CONFIG);
    let out = h.command(&["run", "--once", "-c", config.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "run --once: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("skopeo")
        .args(["login", "--get-login", "--authfile"])
        .arg(h.path("docker/config.json"))
        .arg(REGISTRY)
        .env("HOME", h.path("home"))
        .output()
        .expect("skopeo runs (apt-get install skopeo)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "skopeo: {stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), EMULATOR_USERNAME);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temp_tcr_token_lives_one_hour_and_a_wrong_tencent_key_is_reported() {
    let h = Harness::start().await;
    let config = h.write_config(
        r#"
state_dir = "{dir}/state"
[credentials.tc]
vendor = "tencent"
[[tickets]]
name = "pull"
kind = "tcr"
credentials = "tc"
endpoint = "{emulator}"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/pull.env"
format = "env"
"#,
    );
    let config = config.to_str().unwrap();
    let mut daemon = h.spawn(&["run", "-c", config]);
    let env = wait_for("the temp TCR token", WAIT, || std::fs::read_to_string(h.path("out/pull.env")).ok()).await;
    assert!(env.contains(&format!("TICKETD_USERNAME={EMULATOR_USERNAME}\n")), "{env}");
    let expires = env.lines().find_map(|l| l.strip_prefix("TICKETD_EXPIRES_AT=")).unwrap();
    let left = humantime::parse_rfc3339(expires).unwrap().duration_since(std::time::SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600), "{left:?}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);

    // A wrong SecretKey: the emulator's AuthFailure reaches the log, nothing more is written.
    std::fs::remove_dir_all(h.path("state")).unwrap();
    let mut cmd = h.command(&["run", "-c", config]);
    cmd.env("TENCENTCLOUD_SECRET_KEY", "not-the-secret-key");
    let log = h.path("wrong.txt");
    let mut child = cmd.stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    wait_for("the signature error", WAIT, || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("AuthFailure.SignatureFailure"))
    })
    .await;
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let status = wait_for("exit", WAIT, || child.try_wait().unwrap()).await;
    assert_eq!(status.code(), Some(0));
    assert!(!std::fs::read_to_string(&log).unwrap().contains("not-the-secret-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_helper_asks_the_running_daemon_over_its_socket() {
    let h = Harness::start().await;
    let text =
        CONFIG.replace("state_dir = \"{dir}/state\"", "state_dir = \"{dir}/state\"\nsocket = \"{dir}/ticketd.sock\"");
    let config = h.write_config(&text);
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let token = wait_for("the registry token", WAIT, || {
        read_json(&h.path("out/registry.json")).and_then(|j| j["access_token"].as_str().map(String::from))
    })
    .await;
    wait_for("the saved state", WAIT, || {
        read_json(&h.path("state/state.json")).filter(|s| !s["tickets"]["registry"]["current"].is_null())
    })
    .await;
    // Without the state file, only the daemon can answer.
    std::fs::remove_file(h.path("state/state.json")).unwrap();
    let (code, out) = helper(&h, std::path::Path::new(BIN), &["docker-credential", "get"], &format!("{REGISTRY}\n"));
    assert_eq!(code, 0, "{out}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["Secret"].as_str(), Some(token.as_str()));
    assert_eq!(answer["Username"], EMULATOR_USERNAME);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_broken_sink_listed_first_neither_blocks_the_others_nor_hides_its_error() {
    let h = Harness::start().await;
    // Not a docker config: ticketd refuses to overwrite it, and reports it by path.
    std::fs::create_dir_all(h.path("docker")).unwrap();
    std::fs::write(h.path("docker/config.json"), "not json\n").unwrap();
    let config = h.write_config(
        r#"
state_dir = "{dir}/state"
[credentials.tc]
vendor = "tencent"
[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
endpoint = "{emulator}"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
registry = "myreg.tencentcloudcr.com"
[[tickets.sinks]]
type = "docker-config"
path = "{dir}/docker/config.json"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/reg.json"
"#,
    );
    let started = std::time::Instant::now();
    let out = h.command(&["run", "--once", "--once-timeout", "60s", "-c", config.to_str().unwrap()]).output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // At once, with the broken sink's own error naming it, not "no token obtained in time".
    assert!(took < Duration::from_secs(30), "--once took {took:?}: {stderr}");
    let failed = stderr.lines().find(|l| l.starts_with("ticketd: registry: FAILED")).expect("the ticket's line");
    assert!(failed.contains(&format!("{}", h.path("docker/config.json").display())), "{failed}");
    assert!(failed.contains("not a docker config"), "{failed}");
    // The sink after it was written anyway; the broken file was left alone.
    let reg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.path("out/reg.json")).unwrap()).unwrap();
    assert_eq!(reg["username"], EMULATOR_USERNAME);
    assert_eq!(std::fs::read_to_string(h.path("docker/config.json")).unwrap(), "not json\n");
}
