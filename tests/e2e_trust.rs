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
