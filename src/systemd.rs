//! systemd notifications: `READY=1` once every ticket is settled, `STATUS=` lines with counts,
//! `RELOADING=1` and `STOPPING=1`, and the watchdog ping. Without `NOTIFY_SOCKET` every call is a
//! no-op.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sd_notify::NotifyState;

use crate::board::Board;
use crate::clock::{Clock, Now, until};
use crate::scheduler::Watchdog;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The watchdog, when systemd asked for one (`WatchdogSec=`).
pub(crate) fn watchdog() -> Option<Watchdog> {
    let interval = sd_notify::watchdog_enabled()?;
    Some(Watchdog { interval, ping: Arc::new(|| send(&[NotifyState::Watchdog])) })
}

pub(crate) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub(crate) fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub(crate) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Every ticket settled: holding a valid token, or tried and failed.
pub(crate) fn all_settled(board: &Board, now: Now) -> bool {
    board.read(|table| table.tickets().all(|t| t.settled(now)))
}

/// A one-line summary, e.g. "3 tickets fresh, next refresh in 4h 12m".
pub(crate) fn status_line(board: &Board, now: Now) -> String {
    let (mut all, mut fresh, mut failing, mut next_at) = (0, 0, 0, None::<SystemTime>);
    board.read(|table| {
        for ticket in table.tickets() {
            all += 1;
            fresh += usize::from(ticket.valid(now).is_some());
            failing += usize::from(ticket.failures() > 0);
            if let Some(at) = ticket.next_at(now) {
                next_at = Some(next_at.map_or(at, |n: SystemTime| n.min(at)));
            }
        }
    });
    let waiting = all - fresh;
    let mut line = format!("{fresh} ticket{} fresh", if fresh == 1 { "" } else { "s" });
    if waiting > 0 {
        line.push_str(&format!(", {waiting} without a token"));
    }
    if failing > 0 {
        line.push_str(&format!(", {failing} failing"));
    }
    if let Some(next) = next_at {
        let secs = until(now.wall, next).as_secs();
        line.push_str(&format!(", next refresh in {}", humantime::format_duration(Duration::from_secs(secs))));
    }
    line
}

/// Follow the board: `READY=1` once all tickets are settled, `STATUS=` when the line changes
/// (at most once a second). Runs until the board's sender is gone or the task is aborted.
pub(crate) async fn follow(board: Arc<Board>, clock: Arc<dyn Clock>) {
    let mut changes = board.subscribe();
    let mut ready = false;
    let mut last = String::new();
    loop {
        let now = clock.read();
        let line = status_line(&board, now);
        if !ready && all_settled(&board, now) {
            ready = true;
            send(&[NotifyState::Ready, NotifyState::Status(&line)]);
            tracing::info!(status = %line, "ready");
            last = line;
        } else if line != last {
            send(&[NotifyState::Status(&line)]);
            last = line;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if changes.changed().await.is_err() {
            break;
        }
    }
}
