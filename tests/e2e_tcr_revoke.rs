//! Issue 17 item 2: the real binary revokes each TCR long-term token a re-mint replaced
//! (`DeleteInstanceToken`), once the new one is in every sink; a failing delete stays pending
//! (in `ticketd status`, in `/metrics`, in the state file across a restart) and is retried until it
//! succeeds; the token in use is never deleted; a ticket removed from the config keeps its token.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use emulator::faults::{Fault, FaultPlan, Service, Trigger};

const CONFIG: &str = TCR_LONGTERM_CONFIG;

/// Long-term tokens this short are re-minted every ~7 s (at nine tenths of their life).
const LIFETIME: Duration = Duration::from_secs(8);
const WAIT: Duration = Duration::from_secs(60);

fn state(h: &Harness) -> Option<serde_json::Value> {
    read_json(&h.path("state/state.json"))
}

/// The `TokenId` of the token the state file (and so every sink) holds, and its generation.
fn in_use(h: &Harness) -> Option<(String, u64)> {
    let current = state(h)?["tickets"]["registry"]["current"].clone();
    Some((current["token"]["token_id"].as_str()?.to_string(), current["generation"].as_u64()?))
}

/// The token in use is live at the emulator and was never deleted.
fn assert_in_use_is_live(h: &Harness) {
    let (id, _) = in_use(h).expect("a token in use");
    assert!(h.emulator.live_tcr_tokens().contains(&id), "the token in use {id} is live");
    assert!(!h.emulator.deleted_tcr_tokens().contains(&id), "the token in use {id} was never deleted");
}

async fn metric(socket: &Path) -> Option<f64> {
    let (code, body) = ticketd::api::client::get(socket, "/metrics").await.ok()?;
    let text = String::from_utf8(body).ok()?;
    let line = text.lines().find(|l| l.starts_with("ticketd_revocations_pending "))?;
    (code == 200).then(|| line.rsplit(' ').next()?.parse().ok())?
}

fn status(h: &Harness) -> String {
    let socket = h.path("run/ticketd.sock");
    let out = h.command(&["status", "--socket", socket.to_str().unwrap()]).output().expect("ticketd status");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_replaced_long_term_token_is_revoked_and_a_failed_revocation_is_retried() {
    let h = Harness::start().await;
    h.emulator.set_tcr_longterm_lifetime(LIFETIME);
    let config = h.write_config(CONFIG);
    let config = config.to_str().unwrap();
    let socket = h.path("run/ticketd.sock");
    let mut daemon = h.spawn(&["run", "-c", config]);

    // A re-mint: the token it replaced is deleted, the new one stays live.
    let (first, _) = wait_for("the first token", WAIT, || in_use(&h)).await;
    let (second, _) = wait_for("a re-mint", WAIT, || in_use(&h).filter(|(id, _)| *id != first)).await;
    wait_for("the replaced token deleted", WAIT, || h.emulator.deleted_tcr_tokens().contains(&first).then_some(()))
        .await;
    assert!(!h.emulator.live_tcr_tokens().contains(&first));
    assert_in_use_is_live(&h);
    assert_ne!(second, first);

    // Deletes fail: the next replaced token stays pending, shown by status and /metrics.
    h.emulator.inject(Service::TcrDelete, Some(FaultPlan { fault: Fault::ServerError, trigger: Trigger::EveryKth(1) }));
    let (now_in_use, _) = in_use(&h).unwrap();
    let (third, _) = wait_for("another re-mint", WAIT, || in_use(&h).filter(|(id, _)| *id != now_in_use)).await;
    let replaced = now_in_use;
    wait_for("a failed delete", WAIT, || (h.emulator.stats().faults_injected > 0).then_some(())).await;
    let shown = wait_for("status to show the pending revocation", WAIT, || {
        let text = status(&h);
        (text.contains("REVOCATIONS PENDING") && text.contains(&replaced) && text.contains("InternalError"))
            .then_some(text)
    })
    .await;
    let _ = (shown, third);
    wait_for_metric(&socket, "the gauge to count it", |v| v >= 1.0).await;
    assert!(h.emulator.live_tcr_tokens().contains(&replaced), "not deleted while the fault lasts");
    assert_in_use_is_live(&h);

    // The fault lifted: the delete is retried and succeeds, the gauge goes back to 0.
    h.emulator.inject(Service::TcrDelete, None);
    wait_for("the failed revocation retried and done", WAIT, || {
        h.emulator.deleted_tcr_tokens().contains(&replaced).then_some(())
    })
    .await;
    wait_for_metric(&socket, "the gauge back to 0", |v| v == 0.0).await;
    assert_in_use_is_live(&h);

    // Stopped while a delete fails: the state file keeps it, and the next run revokes it.
    h.emulator.inject(Service::TcrDelete, Some(FaultPlan { fault: Fault::ServerError, trigger: Trigger::EveryKth(1) }));
    let (before, _) = in_use(&h).unwrap();
    let failed = h.emulator.stats().faults_injected;
    wait_for("another re-mint", WAIT, || in_use(&h).filter(|(id, _)| *id != before)).await;
    wait_for("its delete failing", WAIT, || (h.emulator.stats().faults_injected > failed).then_some(())).await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    let saved = state(&h).unwrap();
    let saved_ids: Vec<&str> = saved["revocations"]
        .as_array()
        .expect("revocations saved")
        .iter()
        .filter_map(|r| r["token_id"].as_str())
        .collect();
    assert!(saved_ids.contains(&before.as_str()), "{saved_ids:?}");
    assert!(h.emulator.live_tcr_tokens().contains(&before));
    h.emulator.inject(Service::TcrDelete, None);
    let mut daemon = h.spawn(&["run", "-c", config]);
    wait_for("the saved revocation done after the restart", WAIT, || {
        h.emulator.deleted_tcr_tokens().contains(&before).then_some(())
    })
    .await;
    wait_for_metric(&socket, "the gauge back to 0", |v| v == 0.0).await;
    assert_in_use_is_live(&h);
    assert!(daemon.log_text().contains("revoked the superseded long-term token"), "{}", daemon.log_text());

    // A ticket removed from the config keeps its token, and the log names it.
    let (kept, _) = in_use(&h).unwrap();
    h.write_config("state_dir = \"{dir}/state\"\nsocket = \"{dir}/run/ticketd.sock\"\n");
    daemon.signal("HUP");
    let line = wait_for("the removal logged", WAIT, || {
        daemon.log_text().lines().find(|l| l.contains("its long-term token stays active")).map(str::to_string)
    })
    .await;
    assert!(line.contains(&kept) && line.contains("registry"), "{line}");
    assert!(h.emulator.live_tcr_tokens().contains(&kept));
    assert!(!h.emulator.deleted_tcr_tokens().contains(&kept));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}

/// Poll the gauge until `good` holds (bounded by [`WAIT`]).
async fn wait_for_metric(socket: &Path, what: &str, good: impl Fn(f64) -> bool) -> f64 {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = metric(socket).await.filter(|v| good(*v)) {
            return v;
        }
        assert!(start.elapsed() < WAIT, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `run --once` until the token in use is no longer `id` (a re-mint), bounded; each run's output.
fn once_until_remint(h: &Harness, config: &str, id: &str) -> std::process::Output {
    for _ in 0..300 {
        let out = h.command(&["run", "--once", "-c", config]).output().expect("ticketd run --once");
        if in_use(h).is_some_and(|(now, _)| now != id) {
            return out;
        }
        assert!(out.status.success(), "run --once: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no re-mint after 300 runs of run --once");
}

/// Issue 17 item 2 follow-up: `run --once` revokes the token its re-mint replaced, within a
/// bound; a delete that keeps failing leaves it pending in the state file (the run still
/// succeeds: the consumer got its token, and stderr says the old one is still active), and the
/// next run revokes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_run_once_revokes_the_replaced_long_term_token() {
    let h = Harness::start().await;
    h.emulator.set_tcr_longterm_lifetime(LIFETIME);
    let config = h.write_config(CONFIG);
    let config = config.to_str().unwrap();
    let out = h.command(&["run", "--once", "-c", config]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (first, _) = in_use(&h).expect("the first token");

    // A run that re-mints revokes the token it replaced before it exits.
    let out = once_until_remint(&h, config, &first);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(h.emulator.deleted_tcr_tokens().contains(&first), "{stderr}");
    assert_in_use_is_live(&h);
    assert!(state(&h).unwrap().get("revocations").is_none(), "nothing left pending: {stderr}");

    // Deletes fail: the run ends within its bound, succeeds, says so, and keeps it pending.
    h.emulator.inject(Service::TcrDelete, Some(FaultPlan { fault: Fault::ServerError, trigger: Trigger::EveryKth(1) }));
    let (second, _) = in_use(&h).unwrap();
    let started = std::time::Instant::now();
    let out = once_until_remint(&h, config, &second);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(90), "{stderr}");
    assert!(
        stderr.contains(&format!("the replaced long-term token {second} is still active"))
            && stderr.contains("InternalError")
            && stderr.contains("1 revocation(s) pending"),
        "{stderr}"
    );
    assert!(h.emulator.live_tcr_tokens().contains(&second));
    let saved = state(&h).unwrap()["revocations"].clone();
    assert_eq!(saved[0]["token_id"].as_str(), Some(second.as_str()), "{saved}");
    assert_in_use_is_live(&h);

    // The next run (no re-mint due) revokes it.
    h.emulator.inject(Service::TcrDelete, None);
    let out = h.command(&["run", "--once", "-c", config]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(h.emulator.deleted_tcr_tokens().contains(&second), "{stderr}");
    assert!(state(&h).unwrap().get("revocations").is_none(), "{stderr}");
    assert_in_use_is_live(&h);
}
