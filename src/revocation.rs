//! Revoking superseded TCR long-term tokens with `DeleteInstanceToken`.
//!
//! A long-term token stays valid at the vendor until deleted, so each re-mint would leave the one
//! it replaced active for good. The scheduler queues the replaced token's `TokenId` here when the
//! new token arrives ([`Revocations::push`], saved in the state file at once); it becomes due once
//! every sink holds the new token ([`Revocations::published`]) and the ticket's `on_change` hook
//! has run since ([`Revocations::hooks_ran`]), so no consumer is left holding it. The revoker
//! ([`run`]) is a task of its own, one delete at a time: a failing or slow delete never holds up
//! a refresh. A failed delete is retried with backoff until the API says the token is gone; the
//! queue is capped at [`MAX_PENDING`] (see [`Pushed::Full`]). Before each attempt the revoker looks
//! at the board: a token any ticket holds (current, or still in its sinks) is never deleted.
//!
//! Temporary tokens are never revoked: they have no `TokenId` (the SDK: "not available to
//! temporary access credential"), `DeleteInstanceToken` "is used to delete a long-term access
//! credential", and they lapse within the hour anyway.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::apis::tcr::{Deleted, Revocation};
use crate::apis::{Provider, ProviderError};
use crate::board::Board;
use crate::clock::Clock;
use crate::credentials::CredentialStore;
use crate::state::PendingRevocation;

/// At most this many tokens wait to be revoked. A ticket re-mints a long-term token about once a
/// tenth of its life (yearly tokens: monthly), so reaching it takes a thousand re-mints whose
/// deletes all failed. At the cap a newly superseded token is not queued: it stays active, and
/// the log says so at ERROR with its ticket and `TokenId` (to delete by hand).
pub const MAX_PENDING: usize = 1024;
/// A delete that has not answered after this long is abandoned and retried.
pub const DELETE_TIMEOUT: Duration = crate::scheduler::CALL_TIMEOUT;

/// One token waiting to be revoked, with the revoker's bookkeeping (not saved).
#[derive(Debug, Clone)]
pub struct Entry {
    pub pending: PendingRevocation,
    /// Failed deletes so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the next attempt is due (wall clock, for display), after a failure.
    pub next_attempt: Option<SystemTime>,
    retry_at: Option<tokio::time::Instant>,
    /// Every sink holds the successor; its `on_change` hook is running or waiting its debounce.
    hooks_running: bool,
    in_flight: bool,
}

impl Entry {
    /// Where the entry stands, for `ticketd status`.
    pub fn stage(&self) -> &'static str {
        match (self.pending.after_generation, self.hooks_running, self.attempts) {
            (Some(_), false, _) => "waiting for the new token to reach every sink",
            (Some(_), true, _) => "waiting for the on_change hook",
            (None, _, 0) => "due",
            (None, _, _) => "retrying",
        }
    }
}

/// What [`Revocations::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// The token was queued already.
    Duplicate,
    /// [`MAX_PENDING`] tokens wait already: this one was not queued.
    Full,
}

/// The tokens waiting to be revoked (kept on the [`Board`], for the state file, metrics and
/// `ticketd status`).
#[derive(Debug, Default)]
pub struct Revocations {
    entries: Vec<Entry>,
    /// Long-term tokens minted and not yet in every sink of their ticket (at most one a ticket
    /// in practice): saved, so a crash before the sinks hold one does not forget it
    /// ([`Revocations::minted`]).
    unconfirmed: Vec<PendingRevocation>,
}

impl Revocations {
    /// Record the long-term token `pending` (its `after_generation`: the generation carrying
    /// it) just minted and not yet in every sink. Dropped once every sink holds it
    /// ([`Revocations::published`]) or when it is superseded in turn ([`Revocations::push`]).
    pub fn minted(&mut self, pending: PendingRevocation) {
        self.unconfirmed.retain(|u| u.token_id != pending.token_id);
        self.unconfirmed.push(pending);
    }

    /// What the state file records of [`Revocations::minted`].
    pub fn unconfirmed(&self) -> Vec<PendingRevocation> {
        self.unconfirmed.clone()
    }

    /// Queue a superseded token (see [`Pushed`]).
    pub fn push(&mut self, pending: PendingRevocation) -> Pushed {
        // Superseded before it reached every sink: it is revoked like any other.
        self.unconfirmed.retain(|u| u.token_id != pending.token_id);
        if self.entries.iter().any(|e| e.pending.token_id == pending.token_id) {
            return Pushed::Duplicate;
        }
        if self.entries.len() >= MAX_PENDING {
            return Pushed::Full;
        }
        self.entries.push(Entry {
            pending,
            attempts: 0,
            last_error: None,
            next_attempt: None,
            retry_at: None,
            hooks_running: false,
            in_flight: false,
        });
        Pushed::Queued
    }

    /// Every sink of `ticket` holds `generation`: the tokens it superseded are due, or, when the
    /// ticket has an `on_change` hook, wait for its run ([`Revocations::hooks_ran`]). Whether any
    /// now waits for the hook.
    pub fn published(&mut self, ticket: &str, generation: u64, hook: bool) -> bool {
        // What was minted up to `generation` is in every sink now: the state file records it.
        self.unconfirmed.retain(|u| u.ticket != ticket || u.after_generation.is_none_or(|g| g > generation));
        let mut waiting = false;
        for e in self.waiting_for(ticket, generation) {
            if hook {
                e.hooks_running = true;
                waiting = true;
            } else {
                e.pending.after_generation = None;
            }
        }
        waiting
    }

    /// The hook of `ticket` has run since its sinks got `generation`: what waited for it is due.
    pub fn hooks_ran(&mut self, ticket: &str, generation: u64) {
        for e in self.waiting_for(ticket, generation).filter(|e| e.hooks_running) {
            e.hooks_running = false;
            e.pending.after_generation = None;
        }
    }

    /// No hook runs in this process (`run --once`): what [`Revocations::published`] set waiting
    /// for `ticket`'s hook goes back to waiting for its successor's publication, so that a later
    /// run, whose hook tells the consumers, makes it due.
    pub fn hooks_not_run(&mut self, ticket: &str, generation: u64) {
        for e in self.waiting_for(ticket, generation).filter(|e| e.hooks_running) {
            e.hooks_running = false;
        }
    }

    fn waiting_for(&mut self, ticket: &str, generation: u64) -> impl Iterator<Item = &mut Entry> {
        self.entries
            .iter_mut()
            .filter(move |e| e.pending.ticket == ticket && e.pending.after_generation.is_some_and(|g| g <= generation))
    }

    /// `ticket` left the config (or its target changed) before its new token reached every sink:
    /// the tokens waiting on it are taken out (which one a consumer uses cannot be known) and
    /// returned, to be logged as kept active. Tokens already due are still revoked.
    pub fn forget_waiting(&mut self, ticket: &str) -> Vec<PendingRevocation> {
        let (forgotten, kept) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| e.pending.ticket == ticket && e.pending.after_generation.is_some());
        self.entries = kept;
        forgotten.into_iter().map(|e: Entry| e.pending).collect()
    }

    /// `ticket` left the config (or its target changed): its unconfirmed tokens (see
    /// [`Revocations::minted`]) are taken out and returned, to be logged as kept active (one may
    /// be in some of its sinks).
    pub fn forget_unconfirmed(&mut self, ticket: &str) -> Vec<PendingRevocation> {
        let (forgotten, kept) = std::mem::take(&mut self.unconfirmed).into_iter().partition(|u| u.ticket == ticket);
        self.unconfirmed = kept;
        forgotten
    }

    /// What the state file records.
    pub fn saved(&self) -> Vec<PendingRevocation> {
        self.entries.iter().map(|e| e.pending.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The next entry due at `now` that failed fewer than `max_attempts` times, marked as being
    /// attempted.
    fn take_due(&mut self, now: tokio::time::Instant, max_attempts: u32) -> Option<PendingRevocation> {
        let e = self.entries.iter_mut().find(|e| {
            e.pending.after_generation.is_none()
                && !e.in_flight
                && e.attempts < max_attempts
                && e.retry_at.is_none_or(|at| at <= now)
        })?;
        e.in_flight = true;
        Some(e.pending.clone())
    }

    /// When the earliest failed entry is due again.
    fn earliest_retry(&self) -> Option<tokio::time::Instant> {
        self.entries.iter().filter(|e| e.pending.after_generation.is_none()).filter_map(|e| e.retry_at).min()
    }

    fn finish(&mut self, token_id: &str, outcome: &Result<Outcome, ProviderError>, wall: SystemTime, random: f64) {
        let Some(at) = self.entries.iter().position(|e| e.pending.token_id == token_id) else { return };
        let e = &mut self.entries[at];
        e.in_flight = false;
        match outcome {
            Ok(_) => {
                self.entries.remove(at);
            }
            Err(error) => {
                e.attempts = e.attempts.saturating_add(1);
                let delay = crate::scheduler::timing::retry_delay(e.attempts, error.retry_class(), None, random);
                e.last_error = Some(error.to_string());
                e.retry_at = Some(tokio::time::Instant::now() + delay);
                e.next_attempt = Some(wall + delay);
                tracing::warn!(
                    ticket = %e.pending.ticket,
                    token_id = %e.pending.token_id,
                    error = %error,
                    attempts = e.attempts,
                    retry_in = %humantime::format_duration(Duration::from_secs(delay.as_secs().max(1))),
                    "cannot revoke the superseded long-term token; retrying"
                );
            }
        }
    }
}

/// What an attempt came to, short of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Deleted(Deleted),
    /// A ticket holds the token: it is taken out of the queue, never deleted.
    InUse,
}

/// Whether any ticket on `board` holds the token `token_id`: as its current token, or as the one
/// its sinks still hold while a newer one is written.
pub fn in_use(board: &Board, token_id: &str) -> bool {
    board.read(|table| {
        table.tickets().any(|t| {
            [t.holding.current.as_ref(), t.previous.as_deref()]
                .into_iter()
                .flatten()
                .any(|c| c.token.token_id.as_deref() == Some(token_id))
        })
    })
}

/// Revoke what the board's queue holds, one at a time, until `shutdown`.
pub async fn run(
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
pub const ONCE_ATTEMPTS: u32 = 3;
/// ... within at most this long in all: a one-shot run (cron, CI, an init container) must end
/// soon after its tokens are delivered; what is left stays in the state file for the next run.
pub const ONCE_LIMIT: Duration = Duration::from_secs(30);

/// The revocations of `run --once`: once the sinks hold the new tokens (the loop has published
/// them), revoke what is due, each at most [`ONCE_ATTEMPTS`] times, until `deadline`. An entry
/// waiting for its hook (told at once in one-shot mode, which runs no hooks) or for sinks being
/// written is waited for; one whose sinks failed is left. Whatever is left stays queued, for the state file the
/// loop writes when it stops. Returns what is left.
pub async fn once(
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
            board.read(|table| table.tickets().filter(|t| t.writing).map(|t| t.name().to_string()).collect());
        let (due, next) = {
            let mut queue = board.revocations();
            let due = queue.take_due(now, ONCE_ATTEMPTS);
            // Soon due: the hook's word is on its way, or the new token's sinks are being written.
            let soon = queue.entries.iter().any(|e| {
                e.hooks_running || (e.pending.after_generation.is_some() && writing.contains(&e.pending.ticket))
            });
            let retry = queue
                .entries
                .iter()
                .filter(|e| e.pending.after_generation.is_none() && e.attempts < ONCE_ATTEMPTS)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(ticket: &str, token_id: &str, after: Option<u64>) -> PendingRevocation {
        PendingRevocation {
            ticket: ticket.into(),
            token_id: token_id.into(),
            endpoint: "http://127.0.0.1:1".into(),
            region: "ap-guangzhou".into(),
            registry_id: "tcr-1".into(),
            credentials: "default".into(),
            after_generation: after,
            since: SystemTime::UNIX_EPOCH.into(),
        }
    }

    #[test]
    fn a_superseded_token_is_due_once_its_successor_is_in_every_sink_and_the_hook_ran() {
        let mut q = Revocations::default();
        assert_eq!(q.push(pending("a", "1", Some(2))), Pushed::Queued);
        assert_eq!(q.push(pending("a", "1", Some(2))), Pushed::Duplicate);
        assert_eq!(q.push(pending("b", "2", Some(5))), Pushed::Queued);
        let now = tokio::time::Instant::now();
        assert!(q.take_due(now, u32::MAX).is_none(), "nothing is due before its successor is published");
        // An older generation published (a restart's first write) does not make it due.
        assert!(!q.published("a", 1, true));
        assert!(q.published("a", 2, true), "with a hook it waits for the run");
        assert_eq!(q.entries()[0].stage(), "waiting for the on_change hook");
        assert!(q.take_due(now, u32::MAX).is_none());
        q.hooks_ran("a", 2);
        assert_eq!(q.entries()[0].stage(), "due");
        assert_eq!(q.take_due(now, u32::MAX).map(|p| p.token_id).as_deref(), Some("1"));
        assert!(q.take_due(now, u32::MAX).is_none(), "one attempt at a time");
        // Without a hook: due at once.
        assert!(!q.published("b", 6, false));
        assert_eq!(q.saved().iter().map(|p| p.after_generation).collect::<Vec<_>>(), [None, None]);
    }

    #[test]
    fn a_failed_delete_is_retried_after_a_backoff_and_a_success_ends_it() {
        let mut q = Revocations::default();
        q.push(pending("a", "1", None));
        let now = tokio::time::Instant::now();
        let p = q.take_due(now, u32::MAX).unwrap();
        let error = ProviderError::Api {
            api: "TCR DeleteInstanceToken",
            status: 200,
            code: "InternalError".into(),
            message: "m".into(),
            request_id: None,
            kind: crate::apis::ApiErrorKind::Transient,
            retry_after: None,
        };
        q.finish(&p.token_id, &Err(error), SystemTime::UNIX_EPOCH, 0.5);
        let e = &q.entries()[0];
        assert_eq!((e.attempts, e.stage()), (1, "retrying"));
        assert!(e.last_error.as_deref().unwrap().contains("InternalError"));
        assert!(q.take_due(now, u32::MAX).is_none(), "not before its backoff");
        let later = q.earliest_retry().unwrap();
        assert!(later > now);
        let p = q.take_due(later, u32::MAX).unwrap();
        q.finish(&p.token_id, &Ok(Outcome::Deleted(Deleted::Now)), SystemTime::UNIX_EPOCH, 0.5);
        assert!(q.is_empty());
    }

    #[test]
    fn the_queue_is_capped_and_a_removed_ticket_keeps_what_waited_on_it() {
        let mut q = Revocations::default();
        for i in 0..MAX_PENDING {
            assert_eq!(q.push(pending("a", &i.to_string(), None)), Pushed::Queued);
        }
        assert_eq!(q.push(pending("a", "over", None)), Pushed::Full);
        assert_eq!(q.len(), MAX_PENDING);
        let mut q = Revocations::default();
        q.push(pending("a", "waits", Some(3)));
        q.push(pending("a", "due", None));
        q.push(pending("b", "other", Some(1)));
        let forgotten = q.forget_waiting("a");
        assert_eq!(forgotten.iter().map(|p| p.token_id.as_str()).collect::<Vec<_>>(), ["waits"]);
        assert_eq!(q.saved().iter().map(|p| p.token_id.as_str()).collect::<Vec<_>>(), ["due", "other"]);
    }
}
