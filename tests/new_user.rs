//! What a new user trips on (issue 17): client commands in a shell without cloud keys, the
//! commands `ticketd dev` and the README print, and a config for `ticketd emulator`.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// `ticketd args...` in a shell that holds no cloud keys (a consumer's, an admin's): only `PATH`.
fn keyless(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).stdin(Stdio::null());
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The daemon's credentials come from the environment (`source = "env"`, as in
/// `config.example.toml`); its clients' shells have none of them.
const ENV_CONFIG: &str = r#"
state_dir = "{dir}/state"
socket = "{dir}/run/ticketd.sock"

[credentials.prod]
vendor = "alibaba"
source = "env"

[credentials.tc]
vendor = "tencent"
source = "env"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"
token_lifetime = "10m"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/dash.json"

[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
endpoint = "{emulator}"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
registry = "myreg.tencentcloudcr.com"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/registry.json"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue17_status_get_and_the_credential_helper_need_no_cloud_keys() {
    let h = Harness::start().await;
    let config = h.write_config(ENV_CONFIG);
    let config = config.to_str().unwrap();
    let mut daemon = h.spawn(&["run", "-c", config]);
    let token = wait_for("both tokens", WAIT, || {
        read_json(&h.path("out/registry.json"))?;
        read_json(&h.path("out/dash.json")).map(|j| j["access_token"].as_str().unwrap().to_string())
    })
    .await;

    let out = keyless(&["status", "-c", config]).output().unwrap();
    assert!(out.status.success() && text(&out).contains("dash  "), "{}", text(&out));
    // The socket named by a variable, and no config at all.
    let out = keyless(&["status"]).env("TICKETD_SOCKET", h.path("run/ticketd.sock")).output().unwrap();
    assert!(out.status.success() && text(&out).contains("registry  tcr"), "{}", text(&out));
    let out = keyless(&["get", "dash", "-c", config]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), token);
    // The helper answers through the daemon, then (daemon stopped) from the saved state.
    let helper = |input: &str| {
        let mut child = keyless(&["docker-credential", "get"])
            .env("TICKETD_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = helper("https://myreg.tencentcloudcr.com\n");
    assert!(out.status.success(), "{}", text(&out));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    let out = helper("myreg.tencentcloudcr.com\n");
    assert!(out.status.success(), "{}", text(&out));
}
