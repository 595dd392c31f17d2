//! The real binary against the emulator: files, refreshes, restarts, signals, bad configs.

mod common;

use std::time::Duration;

use common::*;

const CONFIG: &str = r#"
state_dir = "{dir}/state"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "ops-dashboard"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"
token_lifetime = "10s"
console_url = "https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d"
console_params = { hideTopbar = "true", hideSidebar = "true" }

[[tickets.sinks]]
type = "file"
path = "{dir}/out/ops-dashboard.json"
format = "json"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/ops-dashboard.token"
format = "token"
mode = "0640"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/ops-dashboard.url"
format = "url"
"#;

const WAIT: Duration = Duration::from_secs(30);

fn generation(h: &Harness) -> Option<u64> {
    read_json(&h.path("out/ops-dashboard.json")).and_then(|j| j["generation"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_files_refreshes_survives_a_restart_and_stops_cleanly() {
    let h = Harness::start().await;
    let config = h.write_config(CONFIG);
    let config = config.to_str().unwrap();
    let mut daemon = h.spawn(&["run", "-c", config]);

    // The first token arrives and every sink holds it.
    // (The sinks are written one after another: wait for the last one too.)
    wait_for("the first token", WAIT, || {
        generation(&h).filter(|g| *g >= 1 && h.path("out/ops-dashboard.url").exists())
    })
    .await;
    let json = read_json(&h.path("out/ops-dashboard.json")).unwrap();
    for field in
        ["name", "kind", "ticket", "access_token", "url", "token_expires_at", "ticket_expires_at", "refreshed_at"]
    {
        assert!(!json[field].is_null(), "json sink lacks {field}: {json}");
    }
    assert_eq!(json["name"], "ops-dashboard");
    assert_eq!(json["kind"], "sls");
    let ticket = json["ticket"].as_str().unwrap().to_string();
    let url = std::fs::read_to_string(h.path("out/ops-dashboard.url")).unwrap();
    assert!(
        url.trim().starts_with(&format!(
            "https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d?sls_ticket={ticket}&supportRefreshToken=true&hideTopbar=true&hideSidebar=true"
        )),
        "{url}"
    );
    assert_eq!(mode(&h.path("out/ops-dashboard.json")), 0o600);
    assert_eq!(mode(&h.path("out/ops-dashboard.token")), 0o640);

    // A refresh within the 10 s token's life (at 2/3 of it).
    wait_for("a refreshed token", WAIT, || generation(&h).filter(|g| *g >= 2)).await;
    // The sinks are written one after the other (json first): wait until both hold the same token.
    let json = wait_for("token and json sinks to agree", WAIT, || {
        let token = std::fs::read_to_string(h.path("out/ops-dashboard.token")).ok()?;
        read_json(&h.path("out/ops-dashboard.json")).filter(|j| j["access_token"].as_str() == Some(token.as_str()))
    })
    .await;
    let token = json["access_token"].as_str().unwrap().to_string();
    assert_eq!(json["ticket"].as_str().unwrap(), ticket, "a refresh keeps the ticket");
    let stats = h.emulator.stats();
    assert_eq!(stats.create_ticket, 1);
    assert!(stats.refresh_token >= 2, "{stats:?}");
    assert_eq!(stats.rejected, 0);

    // SIGTERM: exit 0, state saved 0600.
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
    let state = h.path("state/state.json");
    assert_eq!(mode(&state), 0o600);
    let saved = read_json(&state).unwrap();
    assert!(saved["tickets"]["ops-dashboard"]["current"]["ticket"]["value"].as_str() == Some(ticket.as_str()));

    // A restart reuses the ticket: no second CreateTicket, and refreshes go on.
    let before = generation(&h).unwrap();
    let mut daemon = h.spawn(&["run", "-c", config]);
    wait_for("a refresh after the restart", WAIT, || generation(&h).filter(|g| *g > before)).await;
    assert_eq!(h.emulator.stats().create_ticket, 1, "a restart must not mint a ticket that is still good");
    assert_eq!(read_json(&h.path("out/ops-dashboard.json")).unwrap()["ticket"].as_str().unwrap(), ticket);
    daemon.signal("INT");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);

    // No secret in any log line.
    let logs = h.all_logs();
    assert!(logs.contains("refreshed the token"), "{logs}");
    for secret in [h.key.access_key_secret.expose(), &ticket, token.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    // No temp files left beside the sinks.
    let leftovers: Vec<_> = std::fs::read_dir(h.path("out"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_reported_and_nothing_is_written() {
    let h = Harness::start().await;
    let config = h.write_config(CONFIG);
    let mut cmd = h.command(&["run", "-c", config.to_str().unwrap()]);
    cmd.env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "not-the-secret");
    let log = h.path("wrong.txt");
    let mut child = cmd.stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    wait_for("the signature error", WAIT, || {
        std::fs::read_to_string(&log).ok().filter(|l| l.contains("SignatureNotMatch"))
    })
    .await;
    assert!(!h.path("out/ops-dashboard.json").exists());
    assert!(h.emulator.stats().rejected >= 1);
    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let status = wait_for("exit", WAIT, || child.try_wait().unwrap()).await;
    assert_eq!(status.code(), Some(0));
    assert!(!std::fs::read_to_string(&log).unwrap().contains("not-the-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_prints_every_problem_with_file_line_and_key() {
    let h = Harness::start().await;
    let bad = CONFIG
        .replace("token_lifetime = \"10s\"", "token_lifetime = \"2d\"\nflavour = \"vanilla\"")
        .replace("endpoint = \"{emulator}\"", "endpoint = \"http://192.0.2.1:80\"")
        .replace("credentials = \"prod\"", "credentials = \"staging\"");
    let config = h.write_config(&bad);
    let out = h.command(&["check-config", "-c", config.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    let file = config.display().to_string();
    for expected in [
        format!("{file}:14:1: tickets[0].flavour: unknown key"),
        format!(
            "{file}:13:1: tickets[0].token_lifetime: 2d is longer than SLS (accessTokenExpirationTime) allows (max 1day)"
        ),
        format!("{file}:10:1: tickets[0].credentials: unknown credentials `staging`"),
        format!("{file}:11:1: tickets[0].endpoint: `http://192.0.2.1:80`: plain http is allowed only on loopback"),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
    assert!(err.starts_with("4 problems in the configuration:"), "{err}");

    // The same file fails `run` the same way, before touching anything.
    let out = h.command(&["run", "-c", config.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!h.path("state").exists());

    // A missing environment variable is named (source = "env"; the default chain goes on).
    let good = h.write_config(&CONFIG.replace("vendor = \"alibaba\"", "vendor = \"alibaba\"\nsource = \"env\""));
    let out = h
        .command(&["check-config", "-c", good.to_str().unwrap()])
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("environment variable ALIBABA_CLOUD_ACCESS_KEY_ID is not set")
    );
    let out = h.command(&["check-config", "-c", good.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Which source each set resolves to, without values.
    let good = h.write_config(CONFIG);
    let out = h.command(&["check-config", "-c", good.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("credentials prod: chain -> env (ALIBABA_CLOUD_ACCESS_KEY_ID)"), "{text}");
    assert!(!text.contains(h.key.access_key_secret.expose()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let h = Harness::start().await;
    let config = h.write_config(CONFIG);
    let config = config.to_str().unwrap();
    let mut first = h.spawn(&["run", "-c", config]);
    wait_for("the first token", WAIT, || generation(&h)).await;
    let out = h.command(&["run", "-c", config]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another ticketd") && err.contains(&first.pid().to_string()), "{err}");
    first.signal("TERM");
    assert_eq!(first.wait_exit(WAIT).await, 0);
}
