//! Service behaviour of the real binary: `run --once`, SIGHUP reload (valid and broken), and the
//! systemd notify protocol on a fake `NOTIFY_SOCKET`.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn config(token_lifetime: &str, extra: &str) -> String {
    format!(
        r#"
state_dir = "{{dir}}/state"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "one"
kind = "sls"
credentials = "prod"
endpoint = "{{emulator}}"
ticket_lifetime = "1h"
token_lifetime = "{token_lifetime}"

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/one.json"
{extra}
"#
    )
}

const SECOND: &str = r#"
[[tickets]]
name = "two"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"
token_lifetime = "10m"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/two.json"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_writes_every_sink_and_exits_zero_or_one_with_a_summary() {
    let h = Harness::start().await;
    let path = h.write_config(&config("10m", SECOND));
    let out = h.command(&["run", "--once", "-c", path.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("--once: 2 ok, 0 failed"), "{err}");
    assert!(read_json(&h.path("out/one.json")).is_some() && read_json(&h.path("out/two.json")).is_some());
    assert_eq!(h.emulator.stats().create_ticket, 2);

    // Again: the saved tokens are still good, so nothing is minted or refreshed.
    let out = h.command(&["run", "--once", "-c", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(h.emulator.stats().create_ticket, 2);
    assert_eq!(h.emulator.stats().refresh_token, 2);

    // With a wrong secret and no saved state, it fails with the reason.
    let other = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&h.path("state").display().to_string(), &other.path().display().to_string());
    std::fs::write(&path, text).unwrap();
    let out = h
        .command(&["run", "--once", "-c", path.to_str().unwrap()])
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("one: FAILED: SLS CreateTicket: HTTP 401 SignatureNotMatch"), "{err}");
    assert!(err.contains("--once: 0 ok, 2 failed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_valid_change_and_keeps_running_on_a_broken_file() {
    let h = Harness::start().await;
    let path = h.write_config(&config("10m", ""));
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    wait_for("the first token", WAIT, || read_json(&h.path("out/one.json"))).await;
    let first_ticket = read_json(&h.path("out/one.json")).unwrap()["ticket"].clone();

    // A broken file: every problem logged, nothing changes.
    std::fs::write(&path, "state_dir = \"/elsewhere\"\n[[tickets]]\nname = 5\n").unwrap();
    daemon.signal("HUP");
    wait_for("the refused reload", WAIT, || daemon.log_text().contains("reload refused").then_some(())).await;
    assert!(daemon.log_text().contains("ticketd.toml:3:1: tickets[0].name: is an integer"), "{}", daemon.log_text());

    // A valid change: the unchanged ticket keeps its ticket, the new one starts.
    h.write_config(&config("10m", SECOND));
    daemon.signal("HUP");
    wait_for("the second ticket", WAIT, || read_json(&h.path("out/two.json"))).await;
    assert!(daemon.log_text().contains("reloaded the configuration"));
    assert_eq!(read_json(&h.path("out/one.json")).unwrap()["ticket"], first_ticket);
    assert_eq!(h.emulator.stats().create_ticket, 2, "one new ticket, no re-mint of the unchanged one");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}

/// Datagrams received on a fake notify socket, in order.
fn messages(socket: &UnixDatagram, until: impl Fn(&[String]) -> bool) -> Vec<String> {
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !until(&seen) {
        assert!(start.elapsed() < WAIT, "notify messages so far: {seen:?}");
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notify_protocol_goes_ready_status_watchdog_reloading_stopping() {
    let h = Harness::start().await;
    let path = h.write_config(&config("10m", ""));
    let socket_path = h.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let log = h.path("notify-log.txt");
    let mut child = h
        .command(&["run", "-c", path.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "2000000")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let has = |seen: &[String], what: &str| seen.iter().any(|m| m.contains(what));
    let seen = messages(&socket, |s| has(s, "READY=1") && s.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2);
    let ready = seen.iter().find(|m| m.contains("READY=1")).unwrap();
    assert!(ready.contains("STATUS=1 ticket fresh, next refresh in"), "{ready}");
    assert!(read_json(&h.path("out/one.json")).is_some(), "READY comes after the first token is written");

    std::process::Command::new("kill").arg("-HUP").arg(child.id().to_string()).status().unwrap();
    let seen = messages(&socket, |s| has(s, "READY=1"));
    let reloading = seen.iter().position(|m| m.contains("RELOADING=1")).expect("RELOADING=1");
    assert!(seen[reloading].contains("MONOTONIC_USEC="), "{seen:?}");
    assert!(seen.iter().position(|m| m.contains("READY=1")).unwrap() > reloading);

    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let seen = messages(&socket, |s| has(s, "STOPPING=1"));
    assert!(has(&seen, "STOPPING=1"));
    let status = wait_for("exit", WAIT, || child.try_wait().unwrap()).await;
    assert_eq!(status.code(), Some(0));
}
