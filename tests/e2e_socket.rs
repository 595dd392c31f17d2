//! The socket API of the real binary: list, get, long-poll, the SLS embed answer, readiness,
//! per-caller access control (a second uid), `on_change` hooks, and a thousand clients at once.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn config(token_lifetime: &str, extra_ticket: &str) -> String {
    format!(
        r#"
state_dir = "{{dir}}/state"
socket = "{{dir}}/run/ticketd.sock"
socket_mode = "0666"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "{{emulator}}"
ticket_lifetime = "1h"
token_lifetime = "{token_lifetime}"
{extra_ticket}

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/dash.json"
"#
    )
}

async fn get(socket: &Path, path: &str) -> (u16, serde_json::Value, String) {
    let (code, body) = ticketd::api::client::get(socket, path).await.expect("the socket answers");
    let text = String::from_utf8_lossy(&body).into_owned();
    (code, serde_json::from_str(&text).unwrap_or_default(), text)
}

fn open_up(h: &Harness) {
    // Let another uid reach the socket inside the temp dir.
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_wait_embed_answer_readiness_and_cli() {
    let h = Harness::start().await;
    let path = h.write_config(&config("10s", ""));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let socket = h.path("run/ticketd.sock");
    wait_for("the socket", WAIT, || socket.exists().then_some(())).await;
    assert_eq!(mode(&socket), 0o666);

    let (code, _, text) = get(&socket, "/healthz").await;
    assert_eq!((code, text.as_str()), (200, "ok\n"));
    let start = std::time::Instant::now();
    loop {
        let (code, body, _) = get(&socket, "/readyz").await;
        if code == 200 {
            break;
        }
        assert_eq!(code, 503, "{body}");
        assert!(start.elapsed() < WAIT, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The list has no secrets.
    let (code, list, text) = get(&socket, "/v1/tickets").await;
    assert_eq!(code, 200);
    assert_eq!(list[0]["name"], "dash");
    assert_eq!(list[0]["status"], "fresh");
    let file = read_json(&h.path("out/dash.json")).unwrap();
    assert!(!text.contains(file["access_token"].as_str().unwrap()) && !text.contains(file["ticket"].as_str().unwrap()));

    // The full view equals the json sink; the raw token and the embed answer agree with it.
    let (code, view, _) = get(&socket, "/v1/tickets/dash").await;
    assert_eq!(code, 200);
    let generation = view["generation"].as_u64().unwrap();
    let (_, _, raw) = get(&socket, "/v1/tickets/dash/token").await;
    assert_eq!(raw, view["access_token"].as_str().unwrap());
    let (code, embed, _) = get(&socket, "/v1/sls/dash/access-token").await;
    assert_eq!(code, 200);
    assert_eq!(embed["accessToken"], view["access_token"]);
    assert_eq!(embed["ticket"], view["ticket"]);
    assert_eq!(embed.as_object().unwrap().len(), 2);

    // A long-poll returns the next generation as soon as it is written.
    let (code, next, _) = get(&socket, &format!("/v1/tickets/dash?wait={generation}&timeout=25s")).await;
    assert_eq!(code, 200, "{next}");
    assert!(next["generation"].as_u64().unwrap() > generation);
    let (code, _, _) = get(&socket, "/v1/tickets/dash?wait=999999&timeout=1s").await;
    assert_eq!(code, 408);
    let (code, missing, _) = get(&socket, "/v1/tickets/nope").await;
    assert_eq!(code, 404, "{missing}");

    // The CLI on top of it.
    let out = h.command(&["status", "-c", path.to_str().unwrap()]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.starts_with("NAME") && table.contains("dash  sls   fresh"), "{table}");
    let out = h.command(&["get", "dash", "-c", path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
    let out = h.command(&["get", "nope", "-c", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let out = h.command(&["get", "dash", "--wait", "--format", "json", "-c", path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let waited: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(waited["generation"].as_u64().unwrap() > next["generation"].as_u64().unwrap());

    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    assert!(!socket.exists(), "the socket file is removed on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_root), ignore = "needs root to run a client as another uid")]
async fn a_caller_outside_allow_uids_is_denied_and_logged() {
    assert_eq!(unsafe_getuid(), 0, "needs root to run a client as another uid");
    let h = Harness::start().await;
    open_up(&h);
    let path = h.write_config(&config("10m", "allow_uids = [4242]"));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    wait_for("the first token", WAIT, || read_json(&h.path("out/dash.json"))).await;
    let socket = h.path("run/ticketd.sock");
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(args)
            .env_clear()
            .output()
            .unwrap()
    };
    let out = as_nobody(&["get", "dash", "--socket", socket.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("uid 65534 may not read `dash`"));
    assert!(out.stdout.is_empty());
    // Listing (no secrets) is open to anyone who can reach the socket.
    let out = as_nobody(&["status", "--socket", socket.to_str().unwrap()]);
    assert!(out.status.success());
    // Root still reads it.
    let (code, _, _) = get(&socket, "/v1/tickets/dash/token").await;
    assert_eq!(code, 200);
    wait_for("the denial in the log", WAIT, || daemon.log_text().contains("denied a caller").then_some(())).await;
    assert!(daemon.log_text().contains("uid=65534"));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}

fn unsafe_getuid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_on_change_hook_runs_once_per_change() {
    let h = Harness::start().await;
    let log = h.path("hook.log");
    let hook = format!(
        "on_change = {{ exec = [\"/bin/sh\", \"-c\", \"echo $TICKETD_TICKET $TICKETD_GENERATION >> {}\"], debounce = \"0s\" }}",
        log.display()
    );
    let path = h.write_config(&config("10s", &hook));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    wait_for("two generations", WAIT, || {
        read_json(&h.path("out/dash.json")).filter(|j| j["generation"].as_u64() >= Some(2))
    })
    .await;
    let lines =
        wait_for("two hook runs", WAIT, || std::fs::read_to_string(&log).ok().filter(|t| t.lines().count() >= 2)).await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines[0], "dash 1");
    assert_eq!(lines[1], "dash 2");
    let text = std::fs::read_to_string(&log).unwrap();
    let generations: Vec<&str> = text.lines().collect();
    let mut unique = generations.clone();
    unique.dedup();
    assert_eq!(unique, generations, "one run per generation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_clients_do_not_stop_refreshes() {
    let h = Harness::start().await;
    let path = h.write_config(&config("10s", ""));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let first = wait_for("the first token", WAIT, || read_json(&h.path("out/dash.json"))).await;
    let generation = first["generation"].as_u64().unwrap();
    let socket = h.path("run/ticketd.sock");
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let socket = socket.clone();
        clients.spawn(async move {
            ticketd::api::client::get(&socket, &format!("/v1/tickets/dash?wait={generation}&timeout=25s")).await
        });
    }
    let mut newer = 0;
    while let Some(result) = clients.join_next().await {
        let (code, body) = result.unwrap().expect("every client is served");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if code == 200 && json["generation"].as_u64().unwrap() > generation {
            newer += 1;
        }
    }
    assert_eq!(newer, 1000, "every waiting client got the refreshed token");
    assert!(read_json(&h.path("out/dash.json")).unwrap()["generation"].as_u64().unwrap() > generation);
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_on_change_signal_reaches_the_pid_file_process_once_per_change() {
    let h = Harness::start().await;
    let pid_file = h.path("reader.pid");
    let hups = h.path("hups.log");
    let mut reader = HupReader::spawn(&pid_file, &hups);
    wait_for("the reader's pid file", WAIT, || std::fs::read_to_string(&pid_file).ok().filter(|t| t.ends_with('\n')))
        .await;

    let hook = format!("on_change = {{ signal = \"HUP\", pid_file = \"{}\", debounce = \"0s\" }}", pid_file.display());
    let path = h.write_config(&config("10s", &hook));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let generation = || read_json(&h.path("out/dash.json")).and_then(|j| j["generation"].as_u64()).unwrap_or(0);
    let count = || std::fs::read_to_string(&hups).map(|t| t.lines().count() as u64).unwrap_or(0);
    // At a quiet moment (no new generation around the reading) there is exactly one HUP per
    // generation written, and never more HUPs than generations.
    let start = std::time::Instant::now();
    let settled = loop {
        let before = generation();
        let seen = count();
        std::thread::sleep(Duration::from_millis(300));
        let after = generation();
        assert!(seen <= after, "{seen} HUPs for {after} generations");
        let now = count();
        if before == after && after >= 2 && now == after {
            break after;
        }
        // On a timeout, what was seen and what the daemon says it signalled.
        let log = daemon.log_text();
        let signalled: Vec<&str> = log.lines().filter(|l| l.contains("signal")).collect();
        assert!(
            start.elapsed() < WAIT,
            "no quiet moment with one HUP per generation within {WAIT:?}: {now} HUPs for {after} generations\n{}",
            signalled.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(reader.0.try_wait().unwrap().is_none(), "the reader handled every HUP and still runs");
    assert!(daemon.log_text().contains("signalled on change"));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    assert!(count() <= generation().max(settled));
}
