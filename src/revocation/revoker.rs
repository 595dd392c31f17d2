//! The revoker: a task that deletes the due tokens of the queue one at a time with
//! `DeleteInstanceToken`, never one a ticket holds (and `run --once`'s bounded version).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::apis::tcr::{Deleted, Revocation};
use crate::apis::{Provider, ProviderError};
use crate::board::Board;
use crate::clock::Clock;
use crate::credentials::CredentialStore;
use crate::revocation::queue::{Entry, Outcome};
use crate::store::record::PendingRevocation;

/// A delete that has not answered after this long is abandoned and retried.
pub(crate) const DELETE_TIMEOUT: Duration = crate::backoff::CALL_TIMEOUT;

/// Whether any ticket on `board` holds the token `token_id`: as its current token, or as the one
/// its sinks still hold while a newer one is written.
pub(crate) fn in_use(board: &Board, token_id: &str) -> bool {
    board.read(|table| table.tickets().any(|t| t.tokens().any(|c| c.token.token_id.as_deref() == Some(token_id))))
}

/// Revoke what the board's queue holds, one at a time, until `shutdown`.
pub(crate) async fn run(
    board: Arc<Board>,
    provider: Arc<dyn Provider>,
    credentials: CredentialStore,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    loop {
        let notified = board.revocations_changed().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = tokio::time::Instant::now();
        let (due, retry_at) = {
            let mut queue = board.revocations();
            (queue.take_due(now, u32::MAX), queue.earliest_retry())
        };
        if let Some(pending) = due {
            let outcome = tokio::select! {
                () = shutdown.cancelled() => break,
                outcome = attempt(&board, provider.as_ref(), &credentials, clock.as_ref(), &pending) => outcome,
            };
            log_outcome(&pending, &outcome);
            board.revocations().finish(&pending.token_id, &outcome, clock.now(), rand::random());
            board.changed();
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = &mut notified => {}
            () = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

/// `run --once` tries each due revocation at most this many times (with the daemon's backoff
/// between: 2 s, then 4 s)...
pub(crate) const ONCE_ATTEMPTS: u32 = 3;
/// ... within at most this long in all: a one-shot run (cron, CI, an init container) must end
/// soon after its tokens are delivered; what is left stays in the state file for the next run.
pub(crate) const ONCE_LIMIT: Duration = Duration::from_secs(30);

/// The revocations of `run --once`: once the sinks hold the new tokens (the loop has published
/// them), revoke what is due, each at most [`ONCE_ATTEMPTS`] times, until `deadline`. An entry
/// waiting for its hook (told at once in one-shot mode, which runs no hooks) or for sinks being
/// written is waited for; one whose sinks failed is left. Whatever is left stays queued, for the state file the
/// loop writes when it stops. Returns what is left.
pub(crate) async fn once(
    board: &Board,
    provider: &dyn Provider,
    credentials: &CredentialStore,
    clock: &dyn Clock,
    deadline: tokio::time::Instant,
) -> Vec<Entry> {
    loop {
        let notified = board.revocations_changed().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = tokio::time::Instant::now();
        // Read before the queue is locked (the loop locks the table first, then the queue).
        let writing: Vec<String> =
            board.read(|table| table.tickets().filter(|t| t.writing()).map(|t| t.name().to_string()).collect());
        let (due, next) = {
            let mut queue = board.revocations();
            let due = queue.take_due(now, ONCE_ATTEMPTS);
            // Soon due: the hook's word is on its way, or the new token's sinks are being written.
            let soon = queue.entries().iter().any(|e| {
                e.hooks_running || (e.pending.after_generation.is_some() && writing.contains(&e.pending.ticket))
            });
            let retry = queue
                .entries()
                .iter()
                .filter(|e| {
                    e.pending.after_generation.is_none() && e.fleet_wait.is_none() && e.attempts < ONCE_ATTEMPTS
                })
                .filter_map(|e| e.retry_at)
                .min();
            (due, if soon { Some(deadline) } else { retry })
        };
        if let Some(pending) = due {
            let outcome =
                match tokio::time::timeout_at(deadline, attempt(board, provider, credentials, clock, &pending)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(ProviderError::Timeout {
                        api: crate::apis::tcr::DELETE_INSTANCE_TOKEN,
                        endpoint: pending.endpoint.clone(),
                        timeout: ONCE_LIMIT,
                    }),
                };
            log_outcome(&pending, &outcome);
            board.revocations().finish(&pending.token_id, &outcome, clock.now(), rand::random());
            board.changed();
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            continue;
        }
        // Nothing due: wait for what will be (a hook's word, a backoff), not past the deadline.
        let Some(wake) = next.map(|at| at.min(deadline)) else { break };
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(wake) => {
                if wake >= deadline {
                    break;
                }
            }
        }
    }
    board.revocations().entries().to_vec()
}

async fn attempt(
    board: &Board,
    provider: &dyn Provider,
    store: &CredentialStore,
    clock: &dyn Clock,
    pending: &PendingRevocation,
) -> Result<Outcome, ProviderError> {
    let api = crate::apis::tcr::DELETE_INSTANCE_TOKEN;
    if in_use(board, &pending.token_id) {
        return Ok(Outcome::InUse);
    }
    let base = reqwest::Url::parse(&pending.endpoint).map_err(|e| ProviderError::Malformed {
        api,
        detail: format!("the saved endpoint {} is not a URL ({e})", pending.endpoint),
    })?;
    let revocation = Revocation {
        endpoint: crate::config::Endpoint { base },
        region: pending.region.clone(),
        registry_id: pending.registry_id.clone(),
        token_id: pending.token_id.clone(),
    };
    let credentials = store.fresh(&pending.credentials, clock, crate::credentials::FRESH_WAIT).await?;
    match tokio::time::timeout(DELETE_TIMEOUT, provider.revoke(revocation, credentials)).await {
        Ok(result) => result.map(Outcome::Deleted),
        Err(_) => Err(ProviderError::Timeout { api, endpoint: pending.endpoint.clone(), timeout: DELETE_TIMEOUT }),
    }
}

fn log_outcome(pending: &PendingRevocation, outcome: &Result<Outcome, ProviderError>) {
    let (ticket, token_id) = (&pending.ticket, &pending.token_id);
    match outcome {
        Ok(Outcome::Deleted(Deleted::Now)) => {
            tracing::info!(ticket = %ticket, token_id = %token_id, "revoked the superseded long-term token")
        }
        Ok(Outcome::Deleted(Deleted::AlreadyGone)) => tracing::info!(
            ticket = %ticket,
            token_id = %token_id,
            "the superseded long-term token was already gone (ResourceNotFound)"
        ),
        Ok(Outcome::InUse) => tracing::error!(
            ticket = %ticket,
            token_id = %token_id,
            "not revoking the long-term token: a ticket holds it; it stays active"
        ),
        Err(_) => {} // Logged with its retry by `finish`.
    }
}
