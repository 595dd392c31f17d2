//! One ticket's record on the board (spec, holding, what the sinks hold), its states as enums that
//! the scheduler changes only through named transitions.

use std::time::SystemTime;

use crate::clock::{Mono, Now, Stamp};
use crate::config::TicketSpec;
use crate::token::{Current, Holding};

/// Which token the sinks hold. A byte: the older token itself is the ticket's `previous` (an
/// enum carrying it would take 8 bytes more a record, the pointer having one niche only), and
/// only these transitions set it: it is `None` whenever the sinks hold the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sinks {
    /// The holding's current one (none while nothing is held): last written to every sink, or
    /// loaded from the state file.
    Current,
    /// `previous` (none: no token of this target), while a newer one is being written: what
    /// readers see and the state file records meanwhile, so state never runs ahead of the sinks
    /// and never loses a ticket.
    Previous,
}

/// Whether readers are shown the token the sinks hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Not written by this process yet (loaded from state: the sinks may be stale): no token.
    NotYet,
    /// This process wrote every sink: readers see what they hold.
    Written,
}

/// The ticket's API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Idle,
    InFlight,
}

/// The ticket's sink writer: one at a time per ticket (two writers of different generations
/// could rename their files in either order and leave the older token in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    Idle,
    /// From when the scheduler hands the sinks the current generation until it has heard how
    /// the writes went. Meanwhile a file may already hold a token the board does not show yet;
    /// readers wait (`Board::settle_writes`).
    Writing,
}

/// Whether every sink holds the current generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    Done,
    /// Not yet: the sinks are (re)written, those in `held` (already holding it) skipped.
    Pending,
}

/// The ticket's place in the scheduler's queue (independent of its call: a sink retry may be
/// queued while a call is out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// No live slot (`next_at` is the last deadline, shown to readers).
    Out,
    /// `next_at` has a live slot in the queue.
    Queued,
}

/// See [`Ticket::aside`].
#[derive(Debug, Default)]
struct Aside {
    /// The token the sinks hold while it is not the current one ([`Sinks::Previous`]).
    previous: Option<Box<Current>>,
    /// The last failure since the last success.
    last_error: Option<Box<str>>,
}

/// Everything held for one ticket. Readers use its methods; the scheduler changes it only through
/// the named transitions below (`call_started`, `token_replaced`, `publish_started`, ...).
#[derive(Debug)]
pub struct Ticket {
    spec: TicketSpec,
    holding: Holding,
    sinks: Sinks,
    /// What a ticket holds only for a while: the token its sinks hold while a newer one is
    /// written, its last error while failing. One pointer for both (none most of the time):
    /// at 100,000 tickets each 8 bytes of the record are 0.8 MB.
    aside: Option<Box<Aside>>,
    /// When the scheduler will act next, in monotonic time: a [`Mono`]'s nanoseconds, the
    /// scheduler's queue key (0: not scheduled yet).
    next_at: u64,
    /// When a call for this ticket last succeeded in this process, as a [`stamp`] (0: never).
    last_success: u64,
    /// Calls that succeeded, and that failed, since the ticket was added (metrics).
    refresh_successes: u32,
    refresh_failures: u32,
    /// Failed calls since the last success (stays at its maximum, past which backoff no longer
    /// grows anyway).
    attempt: u16,
    /// Failed sink writes since the last good one (likewise; a byte, so that the record stays
    /// within its 176 bytes).
    publish_attempt: u8,
    /// Given anew when the ticket is added or a reload retargets it: a result started under
    /// another epoch (a removed ticket's, whose id this one reuses, or the old target's) is dropped.
    epoch: u32,
    /// Random in [0, 1) in steps of 1/65,536 (see [`Ticket::jitter`]), drawn per token,
    /// spreading refresh points.
    jitter: u16,
    shown: Shown,
    call: Call,
    writer: Writer,
    publish: Publish,
    /// While publishing is pending: the sinks that already hold the current generation (the
    /// others are retried alone).
    sinks_held: crate::sinks::SinkSet,
    slot: Slot,
}

impl Ticket {
    pub(crate) fn new(spec: TicketSpec, holding: Holding, epoch: u32, jitter: u16) -> Self {
        Ticket {
            spec,
            sinks: if holding.current.is_some() { Sinks::Current } else { Sinks::Previous },
            aside: None,
            holding,
            next_at: 0,
            last_success: 0,
            refresh_successes: 0,
            refresh_failures: 0,
            attempt: 0,
            publish_attempt: 0,
            epoch,
            jitter,
            shown: Shown::NotYet,
            call: Call::Idle,
            writer: Writer::Idle,
            publish: Publish::Done,
            sinks_held: crate::sinks::SinkSet::NONE,
            slot: Slot::Out,
        }
    }

    // --- The scheduler's reads of its own bookkeeping.

    /// What is held: the current token (and its ticket) and a ticket waiting for its first token.
    pub(crate) fn holding(&self) -> &Holding {
        &self.holding
    }

    /// The holding, for a call's result to be folded in (`scheduler::apply`).
    pub(crate) fn holding_mut(&mut self) -> &mut Holding {
        &mut self.holding
    }

    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    pub(crate) fn in_flight(&self) -> bool {
        self.call == Call::InFlight
    }

    /// A sink writer of this ticket is under way.
    pub(crate) fn writing(&self) -> bool {
        self.writer == Writer::Writing
    }

    /// The sinks do not all hold the current generation yet.
    pub(crate) fn unpublished(&self) -> bool {
        self.publish == Publish::Pending
    }

    /// The sinks that hold the current generation already.
    pub(crate) fn sinks_held(&self) -> crate::sinks::SinkSet {
        self.sinks_held
    }

    /// The ticket's queue key: its deadline's nanoseconds (0: never scheduled).
    pub(crate) fn queue_key(&self) -> u64 {
        self.next_at
    }

    /// Whether the queue slot keyed `key` is the one this ticket waits on.
    pub(crate) fn waits_on(&self, key: u64) -> bool {
        self.slot == Slot::Queued && self.next_at == key
    }

    /// Queued for a sink retry (or anything) at its key, while publishing is pending.
    pub(crate) fn queued(&self) -> bool {
        self.slot == Slot::Queued
    }

    // --- Transitions, each named for what happened.

    /// A call for the ticket was started.
    pub(crate) fn call_started(&mut self) {
        self.call = Call::InFlight;
    }

    /// The call's report came back (whatever it says).
    pub(crate) fn call_finished(&mut self) {
        self.call = Call::Idle;
    }

    /// The call succeeded at `now`: failures are over, and the next token gets `jitter`.
    pub(crate) fn call_succeeded(&mut self, jitter: u16, now: SystemTime) {
        self.attempt = 0;
        self.set_last_error(None);
        self.jitter = jitter;
        self.refresh_successes = self.refresh_successes.saturating_add(1);
        self.last_success = stamp(now);
    }

    /// The call failed with `error`; the failed calls in a row so far.
    pub(crate) fn call_failed(&mut self) -> u32 {
        self.attempt = self.attempt.saturating_add(1);
        self.refresh_failures = self.refresh_failures.saturating_add(1);
        u32::from(self.attempt)
    }

    /// Show `error` as the ticket's last failure.
    pub(crate) fn failed_with(&mut self, error: &str) {
        self.set_last_error(Some(error.into()));
    }

    /// A new token is current, `replaced` the one before: if the sinks held that one, they keep
    /// it for readers and the state file until they hold the new one; all sinks are written again.
    pub(crate) fn token_replaced(&mut self, replaced: Option<Current>) {
        if self.sinks == Sinks::Current {
            self.sinks = Sinks::Previous;
            self.set_previous(replaced.map(Box::new));
        }
        self.mark_unpublished();
    }

    /// The sinks no longer hold the current generation: all are written again.
    pub(crate) fn mark_unpublished(&mut self) {
        self.publish = Publish::Pending;
        self.sinks_held = crate::sinks::SinkSet::NONE;
    }

    /// A writer is to start: false while one is under way (its report starts the next).
    pub(crate) fn publish_started(&mut self) -> bool {
        if self.writer == Writer::Writing {
            return false;
        }
        self.writer = Writer::Writing;
        true
    }

    /// The writer's report came (whatever it says).
    pub(crate) fn writer_finished(&mut self) {
        self.writer = Writer::Idle;
    }

    /// The sinks in `held` now hold the current generation too.
    pub(crate) fn sinks_written(&mut self, held: crate::sinks::SinkSet) {
        self.sinks_held = self.sinks_held.union(held);
    }

    /// Every sink holds the current generation, written by this process: readers see it. A last
    /// error that was the sinks' own (no call failed since) is over.
    pub(crate) fn published(&mut self) {
        if self.publish_attempt > 0 && self.attempt == 0 {
            self.set_last_error(None);
        }
        self.publish = Publish::Done;
        self.publish_attempt = 0;
        self.sinks = Sinks::Current;
        self.set_previous(None);
        self.shown = Shown::Written;
    }

    /// A round of writes failed with `error`; the failed rounds in a row so far.
    pub(crate) fn publish_failed(&mut self, error: &str) -> u32 {
        self.publish_attempt = self.publish_attempt.saturating_add(1);
        self.set_last_error(Some(error.into()));
        u32::from(self.publish_attempt)
    }

    /// Queued at `key` (a [`Mono`]'s nanoseconds).
    pub(crate) fn queued_at(&mut self, key: u64) {
        self.next_at = key;
        self.slot = Slot::Queued;
    }

    /// Taken off the queue: due now.
    pub(crate) fn dequeued(&mut self) {
        self.slot = Slot::Out;
    }

    /// A reload changed the ticket to `spec`, same target: failures are forgotten; `republish`
    /// (the sinks may have changed) writes them all again, or none.
    pub(crate) fn reconfigured(&mut self, spec: TicketSpec, republish: bool) {
        self.spec = spec;
        self.attempt = 0;
        self.set_last_error(None);
        self.publish = Publish::Done;
        if republish {
            self.mark_unpublished();
        }
    }

    /// A reload gave the ticket `spec`, a new target, under `epoch`: nothing held is of use; a
    /// call still out for the old target is dropped when it returns. The old target's write, if
    /// one runs, still ends before the next one starts (the writer stays until its report comes).
    pub(crate) fn retargeted(&mut self, spec: TicketSpec, epoch: u32) {
        self.spec = spec;
        self.attempt = 0;
        self.set_last_error(None);
        self.holding = Holding::default();
        self.sinks = Sinks::Previous;
        self.set_previous(None);
        self.shown = Shown::NotYet;
        self.epoch = epoch;
        self.call = Call::Idle;
        self.publish = Publish::Done;
    }

    /// Tests: calls that succeeded and failed so far, failures in a row, the last success (a
    /// [`stamp`]).
    #[cfg(test)]
    pub(crate) fn set_history(&mut self, successes: u32, failures: u32, attempt: u16, last_success: u64) {
        (self.refresh_successes, self.refresh_failures, self.attempt, self.last_success) =
            (successes, failures, attempt, last_success);
    }

    /// Tests: `holding` is held and written to every sink by this process.
    #[cfg(test)]
    pub(crate) fn written_by_this_process(&mut self, holding: Holding) {
        self.holding = holding;
        self.sinks = Sinks::Current;
        self.set_previous(None);
        self.shown = Shown::Written;
    }

    pub fn spec(&self) -> &TicketSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The token every sink holds (none until this process has written one).
    pub fn current(&self) -> Option<&Current> {
        self.written().filter(|_| self.shown == Shown::Written)
    }

    /// The last token written to the sinks, or loaded from the state file.
    pub(crate) fn written(&self) -> Option<&Current> {
        match self.sinks {
            Sinks::Current => self.holding.current.as_ref(),
            Sinks::Previous => self.previous(),
        }
    }

    /// The tokens this ticket holds: its current one and, while a newer one is written, the one
    /// its sinks still hold.
    pub(crate) fn tokens(&self) -> impl Iterator<Item = &Current> {
        self.holding.current.iter().chain(self.previous())
    }

    /// A token that has not expired at `now` by either clock (see [`Current::is_valid`]).
    pub fn valid(&self, now: Now) -> Option<&Current> {
        self.current().filter(|c| c.is_valid(now))
    }

    /// Settled: it holds a valid token, or its last attempt failed (it has been tried).
    pub fn settled(&self, now: Now) -> bool {
        self.valid(now).is_some() || self.attempt > 0
    }

    /// Failed calls since the last success.
    pub fn failures(&self) -> u32 {
        u32::from(self.attempt)
    }

    /// Failed rounds of sink writes since every sink last held the token.
    pub fn publish_failures(&self) -> u32 {
        u32::from(self.publish_attempt)
    }

    /// The ticket's jitter, in [0, 1).
    pub(crate) fn jitter(&self) -> f64 {
        f64::from(self.jitter) / 65_536.0
    }

    /// When the scheduler will act next, on the wall clock as it reads at `now` (the scheduler
    /// waits in monotonic time: after a clock step this moves with the clock).
    pub fn next_at(&self, now: Now) -> Option<SystemTime> {
        (self.next_at != 0).then(|| now.wall_at(Mono::from_nanos(self.next_at)))
    }

    /// The last failure since the last success.
    pub fn last_error(&self) -> Option<&str> {
        self.aside.as_ref().and_then(|aside| aside.last_error.as_deref())
    }

    /// The token the sinks hold while it is not the current one ([`Sinks::Previous`]).
    fn previous(&self) -> Option<&Current> {
        self.aside.as_ref().and_then(|aside| aside.previous.as_deref())
    }

    fn set_previous(&mut self, previous: Option<Box<Current>>) {
        self.set_aside(|aside| aside.previous = previous);
    }

    fn set_last_error(&mut self, error: Option<Box<str>>) {
        self.set_aside(|aside| aside.last_error = error);
    }

    /// Change what is set aside; the allocation goes once nothing is.
    fn set_aside(&mut self, change: impl FnOnce(&mut Aside)) {
        let mut aside = self.aside.take().unwrap_or_default();
        change(&mut aside);
        if aside.previous.is_some() || aside.last_error.is_some() {
            self.aside = Some(aside);
        }
    }

    /// Calls that succeeded, and that failed, since the ticket was added.
    pub fn refresh_counts(&self) -> (u64, u64) {
        (self.refresh_successes.into(), self.refresh_failures.into())
    }

    /// When a call for this ticket last succeeded in this process.
    pub fn last_success(&self) -> Option<SystemTime> {
        from_stamp(self.last_success)
    }

    /// An owned copy, for readers that answer after the lock is gone.
    pub fn view(&self) -> TicketView {
        let (refresh_successes, refresh_failures) = self.refresh_counts();
        TicketView {
            spec: self.spec.clone(),
            current: self.current().cloned(),
            last_error: self.last_error().map(str::to_string),
            failures: self.failures(),
            refresh_successes,
            refresh_failures,
            last_success: self.last_success(),
        }
    }
}

/// A time as a [`Stamp`]'s nanoseconds since the Unix epoch, for the scheduler's own fields and
/// queue keys (0 is kept for none).
pub(crate) fn stamp(at: SystemTime) -> u64 {
    Stamp::from(at).nanos()
}

/// The time a [`stamp`] stands for; 0 stands for none.
pub(crate) fn from_stamp(stamp: u64) -> Option<SystemTime> {
    (stamp != 0).then(|| Stamp::from_nanos(stamp).time())
}

/// One ticket as the outside sees it, copied out of the board.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub spec: TicketSpec,
    /// The token every sink holds (none until the first is written).
    pub current: Option<Current>,
    /// The last failure since the last success.
    pub last_error: Option<String>,
    /// Failed calls since the last success.
    pub failures: u32,
    /// Calls for this ticket that succeeded, and that failed, since it was added (metrics).
    pub refresh_successes: u64,
    pub refresh_failures: u64,
    /// When a call for this ticket last succeeded in this process.
    pub last_success: Option<SystemTime>,
}

impl TicketView {
    /// A token that has not expired at `now` by either clock (see [`Current::is_valid`]).
    pub fn valid(&self, now: Now) -> Option<&Current> {
        self.current.as_ref().filter(|c| c.is_valid(now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The token the sinks still hold and the last error take an allocation only while either
    /// is held: most records hold neither.
    #[test]
    fn what_is_set_aside_is_freed_once_nothing_is() {
        let (now, hour) = (SystemTime::now(), Duration::from_secs(3600));
        let spec = crate::testing::sls_ticket("a", 24 * hour, hour);
        let token = |generation| crate::testing::current("tok", None, now, hour, generation);
        let mut t = Ticket::new(spec, Holding { current: Some(token(1)), pending: None }, 1, 0);
        t.published();
        assert!(t.aside.is_none(), "a ticket that holds nothing aside");
        t.failed_with("the call failed");
        t.token_replaced(Some(token(1)));
        assert_eq!((t.last_error(), t.written().map(|c| c.generation)), (Some("the call failed"), Some(1)));
        t.call_succeeded(0, now);
        assert!(t.aside.is_some() && t.last_error().is_none(), "the older token is still held aside");
        t.published();
        assert!(t.aside.is_none(), "freed once neither is held");
    }
}
