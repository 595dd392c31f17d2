//! The queue of superseded TCR long-term tokens waiting to be revoked: when each becomes due
//! (its successor in every sink, the hook run), its retries, and what the state file records.

use std::time::{Duration, SystemTime};

use crate::apis::ProviderError;
use crate::apis::tcr::Deleted;
use crate::store::record::PendingRevocation;

/// At most this many tokens wait to be revoked. A ticket re-mints a long-term token about once a
/// tenth of its life (yearly tokens: monthly), so reaching it takes a thousand re-mints whose
/// deletes all failed. At the cap a newly superseded token is not queued: it stays active, and
/// the log says so at ERROR with its ticket and `TokenId` (to delete by hand).
pub(crate) const MAX_PENDING: usize = 1024;

/// One token waiting to be revoked, with the revoker's bookkeeping (not saved).
#[derive(Debug, Clone)]
pub struct Entry {
    pub pending: PendingRevocation,
    /// Failed deletes so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When the next attempt is due (wall clock, for display), after a failure.
    pub next_attempt: Option<SystemTime>,
    pub(crate) retry_at: Option<tokio::time::Instant>,
    /// Every sink holds the successor; its `on_change` hook is running or waiting its debounce.
    pub(crate) hooks_running: bool,
    /// A fleet's ticket (issue #19, review G13): the successor was written to etcd at this
    /// revision, and the token is not revoked before every fleet node has applied it
    /// ([`Revocations::fleet_applied`]). Not saved: after a restart it waits for this node's
    /// sinks alone.
    pub(crate) fleet_wait: Option<i64>,
    in_flight: bool,
}

impl Entry {
    /// Where the entry stands, for `ticketd status`.
    pub fn stage(&self) -> &'static str {
        match (self.pending.after_generation, self.hooks_running, self.attempts) {
            (Some(_), false, _) => "waiting for the new token to reach every sink",
            (Some(_), true, _) => "waiting for the on_change hook",
            (None, _, _) if self.fleet_wait.is_some() => "waiting for every fleet node to receive the new token",
            (None, _, 0) => "due",
            (None, _, _) => "retrying",
        }
    }

    /// Due to be attempted (the successor in every sink, the hook run, the fleet caught up).
    fn due(&self) -> bool {
        self.pending.after_generation.is_none() && self.fleet_wait.is_none()
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

/// The tokens waiting to be revoked (kept on the [`Board`](crate::board::Board), for the state file, metrics and
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
            fleet_wait: None,
            in_flight: false,
        });
        Pushed::Queued
    }

    /// The successor `generation` of fleet ticket `ticket` was written to etcd at `revision`: the
    /// tokens it supersedes also wait until every fleet node has applied that revision.
    pub fn wait_for_fleet(&mut self, ticket: &str, generation: u64, revision: i64) {
        for e in self.entries.iter_mut() {
            if e.pending.ticket == ticket && e.pending.after_generation == Some(generation) {
                e.fleet_wait = Some(revision);
            }
        }
    }

    /// The queued token `token_id` also waits until every fleet node has applied `revision`.
    pub fn wait_for_fleet_now(&mut self, token_id: &str, revision: i64) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.pending.token_id == token_id) {
            e.fleet_wait = Some(revision);
        }
    }

    /// Every fleet node has applied etcd's holdings up to `revision`: what waited for that is no
    /// longer held back by the fleet. Whether any entry was.
    pub fn fleet_applied(&mut self, revision: i64) -> bool {
        let mut released = false;
        for e in self.entries.iter_mut().filter(|e| e.fleet_wait.is_some_and(|at| at <= revision)) {
            e.fleet_wait = None;
            released = true;
        }
        released
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
    pub(crate) fn take_due(&mut self, now: tokio::time::Instant, max_attempts: u32) -> Option<PendingRevocation> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.due() && !e.in_flight && e.attempts < max_attempts && e.retry_at.is_none_or(|at| at <= now))?;
        e.in_flight = true;
        Some(e.pending.clone())
    }

    /// When the earliest failed entry is due again.
    pub(crate) fn earliest_retry(&self) -> Option<tokio::time::Instant> {
        self.entries.iter().filter(|e| e.due()).filter_map(|e| e.retry_at).min()
    }

    pub(crate) fn finish(
        &mut self,
        token_id: &str,
        outcome: &Result<Outcome, ProviderError>,
        wall: SystemTime,
        random: f64,
    ) {
        let Some(at) = self.entries.iter().position(|e| e.pending.token_id == token_id) else { return };
        let e = &mut self.entries[at];
        e.in_flight = false;
        match outcome {
            Ok(_) => {
                self.entries.remove(at);
            }
            Err(error) => {
                e.attempts = e.attempts.saturating_add(1);
                let delay = crate::backoff::retry_delay(e.attempts, crate::backoff::retry_class(error), None, random);
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
pub(crate) enum Outcome {
    Deleted(Deleted),
    /// A ticket holds the token: it is taken out of the queue, never deleted.
    InUse,
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
