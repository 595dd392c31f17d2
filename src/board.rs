//! The board: one compact record per ticket, the read model of what ticketd holds.
//!
//! The scheduler keeps it (its only writer); everything outside its loop reads it in place (the
//! socket API, `--once`, metrics, systemd readiness and status lines).
//!
//! Each ticket is held once: its record carries the spec, the holding, what the sinks hold and the
//! scheduler's bookkeeping, in a slab indexed by a small id, with a name index that stores no
//! second copy of the name. Every change the scheduler makes bumps a version that readers can wait
//! on, so a long-poll or a readiness check never polls.

use std::hash::{BuildHasher, RandomState};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use hashbrown::HashTable;
use tokio::sync::watch;

use crate::clock::Now;

/// A ticket's place in the board (stable while the ticket is configured).
pub(crate) type TicketId = u32;

/// The longest a reader waits for a sink write under way ([`Board::settle_writes`]): far beyond
/// an atomic write and its fsyncs, short of a client's patience.
pub(crate) const WRITE_WAIT: Duration = Duration::from_secs(5);

mod ticket;

#[cfg(test)]
pub(crate) use ticket::stamp;
pub(crate) use ticket::{Ticket, TicketView};

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

    /// Every ticket, to change, in no particular order.
    pub(crate) fn tickets_mut(&mut self) -> impl Iterator<Item = &mut Ticket> {
        self.slots.iter_mut().flatten()
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
        let mut names: Vec<&str> = table
            .tickets()
            .filter(|t| t.spec().consumers.required && t.valid(now).is_none())
            .map(Ticket::name)
            .collect();
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
        // One ticket not being written now (the common case of a token read): nothing to wait
        // for, and no subscription or bookkeeping per request (issue #18's socket reads).
        if let Some(name) = name
            && !self.read(|table| table.by_name(name).is_some_and(Ticket::writing))
        {
            return;
        }
        // Subscribed before looking, so no change between the look and the wait is missed.
        let mut changes = self.subscribe();
        // Each with its epoch: a ticket removed and its id reused is not waited for. And its
        // generation: a write given up on before is not waited for again, a later one is.
        let key = |id: TicketId, t: &Ticket| (id, t.epoch(), t.holding().generation());
        let mut under_way: Vec<(TicketId, u32, u64)> = self.read(|table| {
            let writing = |&(id, epoch, generation): &(TicketId, u32, u64)| {
                table.get(id).is_some_and(|t| t.writing() && key(id, t) == (id, epoch, generation))
            };
            let mut abandoned = self.abandoned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            abandoned.retain(writing);
            let found: Vec<_> = match name {
                Some(name) => table
                    .id(name)
                    .and_then(|id| Some((id, table.get(id)?)))
                    .filter(|(_, t)| t.writing())
                    .map(|(id, t)| key(id, t))
                    .into_iter()
                    .collect(),
                None => table.iter().filter(|(_, t)| t.writing()).map(|(id, t)| key(id, t)).collect(),
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
                        table.get(id).is_some_and(|t| t.writing() && key(id, t) == (id, epoch, generation))
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
    use crate::clock::Stamp;
    use crate::token::{Current, Holding};
    use std::time::SystemTime;

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
            assert!(table.get_mut(id).unwrap().publish_started());
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
        board.write().get_mut(id).unwrap().writer_finished();
        board.changed();
        board.settle_writes(None, limit).await;
        {
            let mut table = board.write();
            let t = table.get_mut(id).unwrap();
            t.holding_mut().current.as_mut().unwrap().generation = 2;
            assert!(t.publish_started());
        }
        board.changed();
        let start = tokio::time::Instant::now();
        let finish = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            board.write().get_mut(id).unwrap().writer_finished();
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
        assert_eq!(table.remove(b).map(|t| t.spec().name.clone()), Some("b".into()));
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
            table.get_mut(id).unwrap().published();
        }
        assert!(board.get("a").unwrap().valid(now).is_some());
        assert!(board.not_ready(now, |names| names.is_empty()));
        assert!(board.read(|table| table.tickets().all(|t| t.settled(now))));
    }

    fn generation(ticket: &Ticket) -> (Option<u64>, Option<u64>) {
        (ticket.current().map(|c| c.generation), ticket.written().map(|c| c.generation))
    }

    #[test]
    fn a_new_token_leaves_the_written_one_shown_until_every_sink_holds_it() {
        let now = SystemTime::now();
        let mut t = ticket_holding("a", holding_a_token(now));
        assert_eq!(generation(&t), (None, Some(1)), "loaded from state: written, not shown");
        t.published();
        assert_eq!(generation(&t), (Some(1), Some(1)));
        let one = t.holding().current.clone();
        t.holding_mut().current.as_mut().unwrap().generation = 2;
        t.token_replaced(one);
        assert_eq!(generation(&t), (Some(1), Some(1)), "the sinks still hold generation 1");
        assert!(t.unpublished() && t.sinks_held() == crate::sinks::SinkSet::NONE);
        assert_eq!(t.tokens().map(|c| c.generation).collect::<Vec<_>>(), [2, 1]);
        // A third token before the second is written: the sinks still hold the first.
        let two = t.holding().current.clone();
        t.holding_mut().current.as_mut().unwrap().generation = 3;
        t.token_replaced(two);
        assert_eq!(generation(&t), (Some(1), Some(1)));
        t.sinks_written(crate::sinks::SinkSet::all(1));
        assert_eq!(t.sinks_held(), crate::sinks::SinkSet::all(1));
        t.published();
        assert_eq!(generation(&t), (Some(3), Some(3)));
        assert!(!t.unpublished());
        assert_eq!(t.tokens().count(), 1, "the older token is let go");
    }

    #[test]
    fn one_call_and_one_writer_at_a_time() {
        let mut t = ticket("a");
        assert!(!t.in_flight());
        t.call_started();
        assert!(t.in_flight());
        t.call_finished();
        assert!(!t.in_flight());
        assert!(t.publish_started() && t.writing());
        assert!(!t.publish_started(), "a second writer waits for the first's report");
        t.writer_finished();
        assert!(!t.writing() && t.publish_started());
    }

    #[test]
    fn failures_count_until_a_success_and_a_sink_error_ends_with_its_sinks() {
        let now = SystemTime::now();
        let mut t = ticket("a");
        assert_eq!((t.call_failed(), t.call_failed()), (1, 2));
        t.failed_with("the call failed");
        assert_eq!((t.failures(), t.last_error()), (2, Some("the call failed")));
        t.call_succeeded(7, now);
        assert_eq!((t.failures(), t.last_error(), t.refresh_counts()), (0, None, (1, 2)));
        assert_eq!((t.last_success(), t.jitter()), (Some(Stamp::from(now).time()), 7.0 / 65_536.0));
        assert_eq!(t.publish_failed("cannot write"), 1);
        assert_eq!((t.publish_failures(), t.last_error()), (1, Some("cannot write")));
        t.published();
        assert_eq!((t.publish_failures(), t.last_error()), (0, None), "the sinks' error is over");
        // A call failing after a sink error: its error stays once the sinks are written.
        t.publish_failed("cannot write");
        t.call_failed();
        t.failed_with("the call failed");
        t.published();
        assert_eq!(t.last_error(), Some("the call failed"));
    }

    #[test]
    fn a_queue_slot_is_live_until_taken_and_the_deadline_stays_shown() {
        let now = crate::clock::Clock::read(&crate::clock::SystemClock);
        let mut t = ticket("a");
        assert!(!t.queued() && t.next_at(now).is_none());
        let key = now.mono.nanos() + 1_000;
        t.queued_at(key);
        assert!(t.queued() && t.waits_on(key) && !t.waits_on(key + 1));
        t.dequeued();
        assert!(!t.queued() && !t.waits_on(key));
        assert_eq!((t.queue_key(), t.next_at(now).is_some()), (key, true));
    }

    #[test]
    fn a_reload_changes_a_ticket_in_place_or_retargets_it() {
        let now = SystemTime::now();
        let mut t = ticket_holding("a", holding_a_token(now));
        t.published();
        t.call_failed();
        t.failed_with("x");
        let spec = t.spec().clone();
        t.reconfigured(spec.clone(), true);
        assert!(t.unpublished() && t.failures() == 0 && t.last_error().is_none());
        t.reconfigured(spec.clone(), false);
        assert!(!t.unpublished());
        assert_eq!(generation(&t), (Some(1), Some(1)), "same target: the token stays");
        t.call_started();
        assert!(t.publish_started());
        t.retargeted(spec, 9);
        assert_eq!(generation(&t), (None, None), "a new target: nothing held is of use");
        assert!(t.holding().current.is_none() && !t.in_flight() && !t.unpublished() && t.epoch() == 9);
        assert!(t.writing(), "the old target's write still ends before the next starts");
    }

    #[test]
    fn a_record_holds_its_token_inline_in_at_most_176_bytes() {
        // At 100,000 tickets each byte here is 100 kB resident (BENCHMARKS.md, section 2): a new
        // field must earn its place. 184 until the token's monotonic expiry (8 bytes, issue 16
        // item 3: a wall clock set back must not keep an expired token valid); 192 until the
        // token's id (8 bytes, issue 17 item 2: a replaced TCR long-term token is revoked by it);
        // 200 until a secret's handle became one word (issue 18: 16 bytes, its two secrets); 184
        // until the token the sinks still hold and the last error shared one pointer (issue 18).
        assert!(size_of::<Option<Ticket>>() <= 176, "{} bytes", size_of::<Option<Ticket>>());
    }

    #[test]
    fn metrics_and_summaries_read_the_tickets_in_place_without_copying_a_secret() {
        let board = Board::default();
        let now = SystemTime::now();
        for name in ["b", "a"] {
            let mut ticket = ticket_holding(name, holding_a_token(now));
            ticket.published();
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
