//! The board: one compact record per ticket, kept by the scheduler (its only writer) and read in
//! place by everything outside its loop (the socket API, `--once`, metrics, systemd readiness and
//! status lines).
//!
//! Each ticket is held once: its record carries the spec, the holding, what the sinks hold and the
//! scheduler's bookkeeping, in a slab indexed by a small id, with a name index that stores no
//! second copy of the name. Every change the scheduler makes bumps a version that readers can wait
//! on, so a long-poll or a readiness check never polls.

use std::hash::{BuildHasher, RandomState};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use hashbrown::HashTable;
use tokio::sync::watch;

use crate::clock::{Mono, Now, Stamp};
use crate::config::TicketSpec;
use crate::token::{Current, Holding, ThinStr};

/// A ticket's place in the board (stable while the ticket is configured).
pub type TicketId = u32;

/// The longest a reader waits for a sink write under way ([`Board::settle_writes`]): far beyond
/// an atomic write and its fsyncs, short of a client's patience.
pub const WRITE_WAIT: Duration = Duration::from_secs(5);

/// Everything held for one ticket. Readers use its methods; the scheduler owns its fields.
#[derive(Debug)]
pub struct Ticket {
    pub(crate) spec: TicketSpec,
    pub(crate) holding: Holding,
    /// The token last written to every sink (or loaded from the state file) is the holding's
    /// current one. When a newer one is still being written, it is `previous` instead.
    pub(crate) current_written: bool,
    /// The last written token while a newer one is being written: what readers see and the state
    /// file records meanwhile, so state never runs ahead of the sinks and never loses a ticket.
    /// Held inline, like the current one: a ticket costs no allocation of its own but its secrets.
    pub(crate) previous: Option<Box<Current>>,
    /// When the scheduler will act next, in monotonic time: a [`Mono`]'s nanoseconds, the
    /// scheduler's queue key (0: not scheduled yet).
    pub(crate) next_at: u64,
    /// When a call for this ticket last succeeded in this process, as a [`stamp`] (0: never).
    pub(crate) last_success: u64,
    /// The last failure since the last success.
    pub(crate) last_error: Option<ThinStr>,
    /// Calls that succeeded, and that failed, since the ticket was added (metrics).
    pub(crate) refresh_successes: u32,
    pub(crate) refresh_failures: u32,
    /// Failed calls since the last success (stays at its maximum, past which backoff no longer
    /// grows anyway).
    pub(crate) attempt: u16,
    /// Failed sink writes since the last good one (likewise; a byte, so that `writing` fits in the
    /// record's 192 bytes).
    pub(crate) publish_attempt: u8,
    /// Given anew when the ticket is added or a reload retargets it: a result started under
    /// another epoch (a removed ticket's, whose id this one reuses, or the old target's) is dropped.
    pub(crate) epoch: u32,
    /// Random in [0, 1) in steps of 1/65,536 (see [`Ticket::jitter`]), drawn per token,
    /// spreading refresh points.
    pub(crate) jitter: u16,
    /// The written token was written by this process (until then the sinks may be stale: readers see
    /// no token).
    pub(crate) confirmed: bool,
    pub(crate) in_flight: bool,
    /// Sinks are being written: from when the scheduler hands them the current generation until it
    /// has heard how the writes went. One writer at a time per ticket: two writers of different
    /// generations could rename their files in either order and leave the older token in place. Meanwhile a file may already hold a token the board does not
    /// show yet; readers wait ([`Board::settle_writes`]).
    pub(crate) writing: bool,
    /// Sinks do not hold the current generation yet.
    pub(crate) unpublished: bool,
    /// While `unpublished`: the sinks that already hold the current generation (the others are
    /// retried alone).
    pub(crate) sinks_held: crate::sinks::SinkSet,
    /// `next_at` has a live slot in the scheduler's queue.
    pub(crate) queued: bool,
}

impl Ticket {
    pub(crate) fn new(spec: TicketSpec, holding: Holding, epoch: u32, jitter: u16) -> Self {
        Ticket {
            spec,
            current_written: holding.current.is_some(),
            previous: None,
            holding,
            next_at: 0,
            last_success: 0,
            last_error: None,
            refresh_successes: 0,
            refresh_failures: 0,
            attempt: 0,
            publish_attempt: 0,
            epoch,
            jitter,
            confirmed: false,
            in_flight: false,
            writing: false,
            unpublished: false,
            sinks_held: crate::sinks::SinkSet::NONE,
            queued: false,
        }
    }

    pub fn spec(&self) -> &TicketSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The token every sink holds (none until this process has written one).
    pub fn current(&self) -> Option<&Current> {
        self.written().filter(|_| self.confirmed)
    }

    /// The last token written to the sinks, or loaded from the state file.
    pub(crate) fn written(&self) -> Option<&Current> {
        if self.current_written { self.holding.current.as_ref() } else { self.previous.as_deref() }
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

    /// The sinks no longer hold the current generation: all are written again.
    pub(crate) fn mark_unpublished(&mut self) {
        self.unpublished = true;
        self.sinks_held = crate::sinks::SinkSet::NONE;
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
        self.last_error.as_deref()
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

/// The records, by id, and an index from name to id.
#[derive(Debug, Default)]
pub struct Table {
    slots: Vec<Option<Ticket>>,
    /// Ids of empty slots, reused first.
    free: Vec<TicketId>,
    /// Ids, found by the hash of their ticket's name (the name itself lives in the record).
    index: HashTable<TicketId>,
    hasher: RandomState,
    /// Something readers see changed since the writer last looked ([`Table::take_touched`]).
    touched: bool,
}

impl Table {
    /// Say that something readers see changed: the writer wakes them once its guard is gone.
    pub(crate) fn touch(&mut self) {
        self.touched = true;
    }

    /// Whether anything changed since the last call (see [`Table::touch`]).
    pub(crate) fn take_touched(&mut self) -> bool {
        std::mem::take(&mut self.touched)
    }

    /// Room for `additional` more tickets without growing (a big config is loaded at once).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.slots.reserve_exact(additional.saturating_sub(self.free.len()));
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index.reserve(additional, |&id| hasher.hash_one(name_of(slots, id)));
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn id(&self, name: &str) -> Option<TicketId> {
        let slots = &self.slots;
        self.index.find(self.hasher.hash_one(name), |&id| name_of(slots, id) == name).copied()
    }

    pub fn get(&self, id: TicketId) -> Option<&Ticket> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    pub fn by_name(&self, name: &str) -> Option<&Ticket> {
        self.id(name).and_then(|id| self.get(id))
    }

    pub(crate) fn get_mut(&mut self, id: TicketId) -> Option<&mut Ticket> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// Every ticket, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (TicketId, &Ticket)> {
        self.slots.iter().enumerate().filter_map(|(id, slot)| slot.as_ref().map(|t| (id as TicketId, t)))
    }

    /// Every ticket, in no particular order, without ids.
    pub fn tickets(&self) -> impl Iterator<Item = &Ticket> {
        self.iter().map(|(_, ticket)| ticket)
    }

    /// Add a ticket whose name is not on the board yet.
    pub(crate) fn insert(&mut self, ticket: Ticket) -> TicketId {
        debug_assert!(self.id(ticket.name()).is_none(), "a ticket name is on the board once");
        let hash = self.hasher.hash_one(ticket.name());
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(ticket);
                id
            }
            None => {
                let id = TicketId::try_from(self.slots.len()).expect("fewer than 2^32 tickets");
                self.slots.push(Some(ticket));
                id
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, id, |&other| hasher.hash_one(name_of(slots, other)));
        id
    }

    pub(crate) fn remove(&mut self, id: TicketId) -> Option<Ticket> {
        let name = self.get(id)?.name();
        let hash = self.hasher.hash_one(name);
        if let Ok(entry) = self.index.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
        self.free.push(id);
        self.slots[id as usize].take()
    }
}

fn name_of(slots: &[Option<Ticket>], id: TicketId) -> &str {
    slots.get(id as usize).and_then(Option::as_ref).map_or("", Ticket::name)
}

#[derive(Debug)]
pub struct Board {
    table: RwLock<Table>,
    version: watch::Sender<u64>,
    /// Superseded TCR long-term tokens waiting to be revoked (never locked while `table` is
    /// taken by the same holder the other way round: take it alone, or after `table`).
    revocations: std::sync::Mutex<crate::revocation::queue::Revocations>,
    /// Told when a revocation may have become due.
    revocations_changed: tokio::sync::Notify,
    /// Sink writes a reader gave up waiting for ([`Board::settle_writes`]): one stuck on a hung
    /// file system, say. Later readers do not wait for them again, so a stuck sink costs one
    /// wait, not one per request to `/readyz`, `/metrics` or the list. By ticket, epoch and
    /// generation; an entry goes once its write is over (taken only after `table`).
    abandoned: std::sync::Mutex<std::collections::HashSet<(TicketId, u32, u64)>>,
}

impl Default for Board {
    fn default() -> Self {
        Board {
            table: RwLock::new(Table::default()),
            version: watch::channel(0).0,
            revocations: std::sync::Mutex::default(),
            revocations_changed: tokio::sync::Notify::new(),
            abandoned: std::sync::Mutex::default(),
        }
    }
}

impl Board {
    /// Copies of every ticket (for answers built after the lock is released).
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Vec<TicketView> {
        self.by_name(|tickets| tickets.iter().map(|t| t.view()).collect())
    }

    /// Every ticket, in name order, lent to `f` under the read lock. Readers that need no secret
    /// (metrics, the list, `--once`) read here: copying views would copy every ticket's secrets.
    pub fn by_name<R>(&self, f: impl FnOnce(&[&Ticket]) -> R) -> R {
        let table = self.table();
        let mut tickets: Vec<&Ticket> = table.tickets().collect();
        tickets.sort_unstable_by(|a, b| a.name().cmp(b.name()));
        f(&tickets)
    }

    /// Look at every ticket without copying any (under the read lock: keep `f` short).
    pub fn read<R>(&self, f: impl FnOnce(&Table) -> R) -> R {
        f(&self.table())
    }

    pub fn get(&self, name: &str) -> Option<TicketView> {
        self.table().by_name(name).map(Ticket::view)
    }

    /// The `required` tickets without a valid token at `now` (readiness: `/readyz`), by name.
    ///
    /// The names are lent to `answer`, in order, under the read lock: a daemon starting with
    /// 100,000 tickets polled by a readiness probe copies none of them.
    pub fn not_ready<R>(&self, now: Now, answer: impl FnOnce(&[&str]) -> R) -> R {
        let table = self.table();
        let mut names: Vec<&str> =
            table.tickets().filter(|t| t.spec.consumers.required && t.valid(now).is_none()).map(Ticket::name).collect();
        names.sort_unstable();
        answer(&names)
    }

    /// Wait, at most `limit`, until the sink writes under way now for ticket `name` (every
    /// ticket: `None`) are over and the board shows what they wrote. A consumer that sees a new
    /// file and asks at once is answered with that token, never the one before it (or none): the
    /// files are renamed into place before the scheduler hears of it. A ticket whose writes end
    /// and start again while the reader waits on other tickets may be waited for twice (still
    /// within `limit`). A write still under way after `limit` (a sink stuck on a hung file
    /// system) is given up on for good: no later reader waits for it, so the API stays quick for
    /// everyone while it hangs; a later write of the ticket is waited for again.
    pub async fn settle_writes(&self, name: Option<&str>, limit: Duration) {
        // Subscribed before looking, so no change between the look and the wait is missed.
        let mut changes = self.subscribe();
        // Each with its epoch: a ticket removed and its id reused is not waited for. And its
        // generation: a write given up on before is not waited for again, a later one is.
        let key = |id: TicketId, t: &Ticket| (id, t.epoch, t.holding.generation());
        let mut under_way: Vec<(TicketId, u32, u64)> = self.read(|table| {
            let writing = |&(id, epoch, generation): &(TicketId, u32, u64)| {
                table.get(id).is_some_and(|t| t.writing && key(id, t) == (id, epoch, generation))
            };
            let mut abandoned = self.abandoned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            abandoned.retain(writing);
            let found: Vec<_> = match name {
                Some(name) => table
                    .id(name)
                    .and_then(|id| Some((id, table.get(id)?)))
                    .filter(|(_, t)| t.writing)
                    .map(|(id, t)| key(id, t))
                    .into_iter()
                    .collect(),
                None => table.iter().filter(|(_, t)| t.writing).map(|(id, t)| key(id, t)).collect(),
            };
            found.into_iter().filter(|k| !abandoned.contains(k)).collect()
        });
        if under_way.is_empty() {
            return;
        }
        let wait = async {
            loop {
                self.read(|table| {
                    under_way.retain(|&(id, epoch, generation)| {
                        table.get(id).is_some_and(|t| t.writing && key(id, t) == (id, epoch, generation))
                    });
                });
                if under_way.is_empty() || changes.changed().await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            let mut abandoned = self.abandoned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            abandoned.extend(under_way);
        }
    }

    /// The revocation queue (keep the guard short; see [`crate::revocation`]).
    pub fn revocations(&self) -> std::sync::MutexGuard<'_, crate::revocation::queue::Revocations> {
        self.revocations.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notified when a revocation may have become due.
    pub fn revocations_changed(&self) -> &tokio::sync::Notify {
        &self.revocations_changed
    }

    /// A receiver that changes whenever any ticket does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub(crate) fn table(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The table for changing; call [`Board::changed`] once the guard is gone.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wake the readers waiting for a change.
    pub(crate) fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::secret::Secret;
    use crate::token::TokenPart;
    use std::time::Duration;

    const HOUR: Duration = Duration::from_secs(3600);

    fn ticket(name: &str) -> Ticket {
        ticket_holding(name, Holding::default())
    }

    fn ticket_holding(name: &str, holding: Holding) -> Ticket {
        Ticket::new(crate::testing::sls_ticket(name, 24 * HOUR, HOUR), holding, 0, 1 << 15)
    }

    /// A reader waits for a write under way, but a write stuck past the wait is not waited for
    /// again by every later request (`/readyz`, `/metrics`, the list, the ticket's own reads);
    /// the ticket's next write is. Failed before the fix: every call waited the full limit.
    #[tokio::test(start_paused = true)]
    async fn a_stuck_sink_write_costs_one_wait_not_one_per_request() {
        let board = Board::default();
        let id = {
            let mut table = board.write();
            let id = table.insert(ticket_holding("a", holding_a_token(SystemTime::now())));
            table.insert(ticket("b"));
            table.get_mut(id).unwrap().writing = true;
            id
        };
        let limit = Duration::from_secs(5);
        let elapsed = |start: tokio::time::Instant| tokio::time::Instant::now() - start;
        let start = tokio::time::Instant::now();
        board.settle_writes(Some("a"), limit).await;
        assert_eq!(elapsed(start), limit, "the first reader waits for the write, up to the limit");
        let start = tokio::time::Instant::now();
        board.settle_writes(None, limit).await;
        board.settle_writes(Some("a"), limit).await;
        board.settle_writes(Some("b"), limit).await;
        assert_eq!(elapsed(start), Duration::ZERO, "the stuck write is not waited for again");
        // The stuck write ends; the next generation's write is waited for until it ends.
        board.write().get_mut(id).unwrap().writing = false;
        board.changed();
        board.settle_writes(None, limit).await;
        {
            let mut table = board.write();
            let t = table.get_mut(id).unwrap();
            t.holding.current.as_mut().unwrap().generation = 2;
            t.writing = true;
        }
        board.changed();
        let start = tokio::time::Instant::now();
        let finish = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            board.write().get_mut(id).unwrap().writing = false;
            board.changed();
        };
        tokio::join!(board.settle_writes(None, limit), finish);
        assert_eq!(elapsed(start), Duration::from_secs(1), "a new write is waited for, until it ends");
    }

    #[test]
    fn names_find_their_ids_across_inserts_and_removals() {
        let mut table = Table::default();
        table.reserve(3);
        let a = table.insert(ticket("a"));
        let b = table.insert(ticket("b"));
        let c = table.insert(ticket("c"));
        assert_eq!((table.id("a"), table.id("b"), table.id("c")), (Some(a), Some(b), Some(c)));
        assert_eq!(table.remove(b).map(|t| t.spec.name), Some("b".into()));
        assert_eq!(table.id("b"), None);
        assert!(table.get(b).is_none());
        assert_eq!(table.len(), 2);
        // The freed slot is reused, and the other names still resolve.
        let d = table.insert(ticket("d"));
        assert_eq!(d, b);
        assert_eq!(table.by_name("d").map(Ticket::name), Some("d"));
        assert_eq!((table.id("a"), table.id("c")), (Some(a), Some(c)));
        let mut names: Vec<&str> = table.iter().map(|(_, t)| t.name()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "c", "d"]);
    }

    #[test]
    fn many_names_survive_the_index_growing() {
        let mut table = Table::default();
        for i in 0..1000 {
            table.insert(ticket(&format!("t{i}")));
        }
        for i in (0..1000).step_by(3) {
            let id = table.id(&format!("t{i}")).unwrap();
            table.remove(id);
        }
        for i in 0..1000 {
            let found = table.by_name(&format!("t{i}")).map(Ticket::name);
            assert_eq!(found.is_some(), i % 3 != 0, "t{i}");
        }
    }

    /// A holding of a token good for an hour from `now`.
    fn holding_a_token(now: SystemTime) -> Holding {
        let token = TokenPart {
            value: Secret::new("t"),
            username: None,
            token_id: None,
            issued_at: now.into(),
            expires_at: (now + HOUR).into(),
        };
        Holding {
            current: Some(Current { ticket: None, token, generation: 1, refreshed_at: now.into(), expires_mono: None }),
            pending: None,
        }
    }

    #[test]
    fn readers_see_a_token_only_once_this_process_wrote_it() {
        let board = Board::default();
        let now = crate::clock::Clock::read(&crate::clock::SystemClock);
        board.write().insert(ticket_holding("a", holding_a_token(now.wall)));
        assert!(board.get("a").unwrap().current.is_none(), "loaded from state: the sinks may be stale");
        assert!(board.not_ready(now, |names| names == ["a"]));
        {
            let mut table = board.write();
            let id = table.id("a").unwrap();
            table.get_mut(id).unwrap().confirmed = true;
        }
        assert!(board.get("a").unwrap().valid(now).is_some());
        assert!(board.not_ready(now, |names| names.is_empty()));
        assert!(board.read(|table| table.tickets().all(|t| t.settled(now))));
    }

    #[test]
    fn a_record_holds_its_token_inline_in_at_most_200_bytes() {
        // At 100,000 tickets each byte here is 100 kB resident (BENCHMARKS.md, section 2): a new
        // field must earn its place. 184 until the token's monotonic expiry (8 bytes, issue 16
        // item 3: a wall clock set back must not keep an expired token valid); 192 until the
        // token's id (8 bytes, issue 17 item 2: a replaced TCR long-term token is revoked by it).
        assert!(size_of::<Option<Ticket>>() <= 200, "{} bytes", size_of::<Option<Ticket>>());
    }

    #[test]
    fn metrics_and_summaries_read_the_tickets_in_place_without_copying_a_secret() {
        let board = Board::default();
        let now = SystemTime::now();
        for name in ["b", "a"] {
            let mut ticket = ticket_holding(name, holding_a_token(now));
            ticket.confirmed = true;
            board.write().insert(ticket);
        }
        let before = crate::secret::made_here();
        let metrics = crate::api::metrics::render(&board, crate::clock::Clock::read(&crate::clock::SystemClock));
        let names = board.by_name(|tickets| tickets.iter().map(|t| t.name().to_string()).collect::<Vec<_>>());
        assert_eq!(crate::secret::made_here(), before, "no secret copied");
        assert!(metrics.contains("ticketd_token_expiry_timestamp_seconds{"), "{metrics}");
        assert_eq!(names, ["a", "b"]);
        // The counter does count: a view, made for answers that hand the token out, copies it.
        assert!(board.get("a").unwrap().current.is_some());
        assert_eq!(crate::secret::made_here(), before + 1);
    }
}
