//! Prometheus metrics of the real binary, on the TCP listener (`metrics_listen`) and at `/metrics`
//! on the socket. `promtool check metrics` reads both in a test of its own, reported as ignored where
//! promtool is not installed (`apt-get install prometheus`) and required under `CI`.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET /metrics` over plain HTTP/1.0: (status line, headers and body).
fn scrape(port: u16) -> Option<(String, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// The value of the first sample line starting with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

/// `promtool check metrics` on `text`: it must run and find nothing to say.
fn promtool_check(text: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool cannot run ({e}): apt-get install prometheus"));
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics complained:\n{said}\n---\n{text}");
}

/// The daemon with a good ticket (`dash`) and one whose endpoint is dead (`broken`), metrics on a
/// free TCP port, started once the good token is written and a scrape shows the broken one's
/// failure: (the daemon, the port, that scrape's head and body).
async fn daemon_with_metrics(h: &Harness) -> (Daemon, u16, String, String) {
    let port = free_port();
    let dead = free_port();
    let path = h.write_config(&format!(
        r#"
state_dir = "{{dir}}/state"
socket = "{{dir}}/run/ticketd.sock"
metrics_listen = "127.0.0.1:{port}"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "{{emulator}}"
ticket_lifetime = "1h"
token_lifetime = "10m"

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/dash.json"

[[tickets]]
name = "broken"
kind = "sls"
credentials = "prod"
endpoint = "http://127.0.0.1:{dead}"
ticket_lifetime = "1h"
token_lifetime = "10m"
required = false

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/broken.json"
"#
    ));
    let daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    wait_for("the token file", WAIT, || h.path("out/dash.json").exists().then_some(())).await;

    let fail = "ticketd_refresh_total{ticket=\"broken\",kind=\"sls\",result=\"failure\"}";
    // The file is written before the scheduler hears that every sink holds the token, and readers
    // (metrics, the socket) see a token only then: wait for that too, not just for the file.
    let held = "ticketd_token_expiry_timestamp_seconds{ticket=\"dash\",kind=\"sls\"}";
    let (head, body) = wait_for("a scrape showing a failure and the held token", WAIT, || {
        scrape(port).filter(|(_, b)| value(b, fail).is_some_and(|v| v >= 1.0) && value(b, held).is_some())
    })
    .await;
    (daemon, port, head, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_promtool), ignore = "needs promtool (apt-get install prometheus)")]
async fn metrics_on_tcp_and_socket_pass_promtool() {
    let h = Harness::start().await;
    let (_daemon, port, _, body) = daemon_with_metrics(&h).await;
    promtool_check(&body);
    let socket = h.path("run/ticketd.sock");
    let (code, answer) = ticketd::api::client::get(&socket, "/metrics").await.expect("the socket answers");
    assert_eq!(code, 200);
    promtool_check(&String::from_utf8(answer).unwrap());
    let _ = port;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_tcp_and_socket_show_each_ticket() {
    let h = Harness::start().await;
    let (_daemon, port, head, body) = daemon_with_metrics(&h).await;
    assert!(head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert!(!body.contains("# EOF") && body.contains("# TYPE ticketd_refresh_total counter"), "{body}");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let dash = "{ticket=\"dash\",kind=\"sls\"}";
    let token_expiry = value(&body, &format!("ticketd_token_expiry_timestamp_seconds{dash}")).expect(&body);
    assert!(token_expiry > now && token_expiry <= now + 601.0, "{body}");
    let ticket_expiry = value(&body, &format!("ticketd_ticket_expiry_timestamp_seconds{dash}")).expect(&body);
    assert!(ticket_expiry > now + 3000.0 && ticket_expiry <= now + 3601.0, "{body}");
    let next = value(&body, &format!("ticketd_next_refresh_timestamp_seconds{dash}")).expect(&body);
    assert!(next > now && next < token_expiry, "{body}");
    let last = value(&body, &format!("ticketd_last_success_timestamp_seconds{dash}")).expect(&body);
    assert!(last <= now + 1.0 && last > now - 60.0, "{body}");
    let ok = "ticketd_refresh_total{ticket=\"dash\",kind=\"sls\",result=\"success\"}";
    assert!(value(&body, ok).is_some_and(|v| v >= 2.0), "a ticket and a token: {body}");
    assert!(value(&body, "ticketd_refresh_total{ticket=\"dash\",kind=\"sls\",result=\"failure\"}") == Some(0.0));
    assert!(value(&body, "ticketd_last_success_timestamp_seconds{ticket=\"broken\"").is_none(), "{body}");
    for name in
        ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds", "process_start_time_seconds"]
    {
        assert!(value(&body, &format!("{name} ")).is_some_and(|v| v > 0.0), "{name}: {body}");
    }

    let socket = h.path("run/ticketd.sock");
    let (code, answer) = ticketd::api::client::get(&socket, "/metrics").await.expect("the socket answers");
    let text = String::from_utf8(answer).unwrap();
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("ticketd_token_expiry_timestamp_seconds{ticket=\"dash\",kind=\"sls\"}"), "{text}");

    // Probes over TCP: /readyz answers as on the socket (only `dash` is required).
    let probe = |path: &str| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(probe("/readyz").starts_with("HTTP/1.0 200"), "{}", probe("/readyz"));
    assert!(probe("/healthz").starts_with("HTTP/1.0 200"));
    assert!(probe("/v1/tickets").starts_with("HTTP/1.0 404"), "tokens are never served over TCP");

    // A scraper that asks for OpenMetrics gets it.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(
            b"GET /metrics HTTP/1.0\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n",
        )
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{answer}");
    assert!(answer.contains("# TYPE ticketd_refresh counter") && answer.ends_with("# EOF\n"), "{answer}");
}

/// `/metrics` leaving out the per-ticket series is said in the log at start and at each reload
/// that leaves the board over `metrics_ticket_series`, never at one that does not: the warning
/// counted the running config's tickets, which the scheduler had already taken (always none), so
/// it never said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_tickets_than_metrics_ticket_series_is_warned_of_at_start_and_at_each_reload_that_keeps_it_so() {
    const HIDDEN: &str = "/metrics shows no per-ticket series";
    let h = Harness::start().await;
    let port = free_port();
    let config = |tickets: usize| {
        let mut text = format!(
            "state_dir = \"{{dir}}/state\"\nmetrics_listen = \"127.0.0.1:{port}\"\nmetrics_ticket_series = 2\n\n\
             [credentials.prod]\nvendor = \"alibaba\"\n"
        );
        for i in 0..tickets {
            text.push_str(&format!(
                "\n[[tickets]]\nname = \"t{i}\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"{{emulator}}\"\n\
                 ticket_lifetime = \"1h\"\ntoken_lifetime = \"10m\"\n"
            ));
        }
        h.write_config(&text)
    };
    let path = config(3);
    let daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let series = |shown: f64| {
        move || scrape(port).filter(|(_, body)| value(body, "ticketd_ticket_series ") == Some(shown)).map(|_| ())
    };
    wait_for("a scrape without the per-ticket series", WAIT, series(0.0)).await;
    assert_eq!(daemon.log_text().matches(HIDDEN).count(), 1, "said at start: {}", daemon.log_text());

    for (tickets, reloads, warnings, shown) in [(2, 1, 1, 1.0), (3, 2, 2, 0.0)] {
        config(tickets);
        daemon.signal("HUP");
        wait_for("the reload", WAIT, || {
            (daemon.log_text().matches("reloaded the configuration").count() == reloads).then_some(())
        })
        .await;
        wait_for("the series as the reload left them", WAIT, series(shown)).await;
        let log = daemon.log_text();
        assert_eq!(log.matches(HIDDEN).count(), warnings, "{tickets} tickets against 2: {log}");
    }
}
