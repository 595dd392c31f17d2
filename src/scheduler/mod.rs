//! The scheduler: one queue of tickets keyed by their next deadline, one loop.
//!
//! Deadlines are planned from wall-clock expiries but waited for in monotonic time, so a step of
//! the wall clock never moves a wait. The loop compares the two clocks on every wake, and at least
//! every [`WALL_CLOCK_RECHECK`]: when the wall clock stepped (either way), every ticket is planned
//! again at once. It sleeps until the earliest deadline, then starts the due calls as tasks of
//! their own: a slow cloud never stalls other tickets. Results come back to the loop,
//! which alone changes holdings, then sinks are written, then state is saved. A failed call
//! changes nothing but the retry time: the last good token stays.

pub mod timing;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::apis::{Operation, Provider, ProviderError};
use crate::board::{Board, Table, Ticket, TicketId, stamp};
use crate::clock::{Clock, Mono, Now, Stamp, until};
use crate::config::{ApiSpec, TicketSpec};
use crate::credentials::CredentialStore;
use crate::sinks::SinkSet;
use crate::state::{StateDir, StateFile, StateFileRef, StoredTicketRef, identity};
use crate::token::{Current, Holding, Issued, TicketPart, TokenPart};
use timing::{Lifecycle, RetryClass, Step};

/// The loop compares the wall clock with the monotonic one at least this often, even with nothing
/// due.
pub const WALL_CLOCK_RECHECK: Duration = Duration::from_secs(300);
/// A wall clock that moved against the monotonic one by this much or more between two looks
/// stepped (NTP slews at most 0.5 ms a second: 150 ms in [`WALL_CLOCK_RECHECK`]).
pub const CLOCK_STEP: Duration = crate::clock::CLOCK_STEP;
/// A call that has not finished after this long is abandoned and retried; sooner while a held
/// token is running out: after half the time it has left, but not before [`MIN_CALL_TIMEOUT`].
pub const CALL_TIMEOUT: Duration = Duration::from_secs(45);
/// The shortest a call may take before it is abandoned, however little the held token has left:
/// a connect (5 s) and an answer fit.
pub const MIN_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A new token or ticket that lives less than this is no use (the loop would refresh it several
/// times a second): the call counts as failed and is retried with backoff. Half the shortest
/// lifetime a config may ask for.
pub const MIN_USEFUL_LIFE: Duration = Duration::from_secs(5);
/// Token changes are saved to the state file at most this late (mints are saved at once), unless
/// the last save was slow: see `SAVE_SPACING`.
pub const SAVE_DEBOUNCE: Duration = Duration::from_millis(500);
/// After a save that took `d` ([`SLOW_SAVE`] or more: a state of many thousand tickets), the next
/// waits at least `d * SAVE_SPACING`, so saving takes at most a tenth of the loop's time.
const SAVE_SPACING: u32 = 9;
/// Saves faster than this (a small state, an fsync) are never spaced: mints stay saved at once.
const SLOW_SAVE: Duration = Duration::from_millis(20);
/// At shutdown, in-flight calls get this long to finish so their results are not lost.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// At most this many API calls run at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// At most this many tickets just minted wait for the state save before their first token call;
/// then no call starts until the save, which then comes at once (not spaced: calls wait on it).
/// Bounds the tickets holding a pending ticket at once, and lets a start with 100,000 tickets
/// mint about this many per save (a save of that state takes about half a second).
pub const MAX_AWAITING_SAVE: usize = 16 * MAX_IN_FLIGHT;
/// How often, at most, the loop looks whether the secret pool needs its secrets moved down (see
/// [`Scheduler::settle_secrets`]).
const SETTLE_EVERY: Duration = Duration::from_millis(250);

/// What happened, for `ticketd dev`'s narration, tests and (later) notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new ticket was minted; its first token follows.
    TicketMinted { name: String, expires_at: SystemTime },
    /// A new token is held (not yet written to sinks).
    TokenRefreshed { name: String, generation: u64, expires_at: SystemTime, new_ticket: bool },
    /// Every sink of the ticket holds this generation.
    Published { name: String, generation: u64 },
    /// A call failed; the last good token (if any) is kept. `outlook` is what the log line says
    /// it means for the consumers.
    CallFailed {
        name: String,
        error: String,
        retry_at: SystemTime,
        token_expires_at: Option<SystemTime>,
        outlook: Outlook,
    },
    /// Writing a sink failed; retried later.
    PublishFailed { name: String, error: String },
}

/// Where the scheduler saves its state.
#[derive(Clone)]
pub enum Persistence {
    Disk(Arc<StateDir>),
    /// For tests: the last saved state, in memory.
    Memory(Arc<Mutex<StateFile>>),
    /// For tests: like `Memory`, each save taking (real) time, as a big state on disk does.
    #[cfg(test)]
    SlowMemory(Arc<Mutex<StateFile>>, Duration),
}

impl Persistence {
    fn save(&self, state: &impl serde::Serialize) -> Result<(), String> {
        match self {
            Persistence::Disk(dir) => dir.save(state).map_err(|e| e.to_string()),
            Persistence::Memory(slot) => {
                let value = serde_json::to_value(state).map_err(|e| e.to_string())?;
                *slot.lock().expect("state lock") = serde_json::from_value(value).map_err(|e| e.to_string())?;
                Ok(())
            }
            #[cfg(test)]
            Persistence::SlowMemory(slot, took) => {
                std::thread::sleep(*took);
                Persistence::Memory(slot.clone()).save(state)
            }
        }
    }
}

/// Requests to the running loop.
pub enum Command {
    /// Apply a new, already validated set of tickets and credentials (reload).
    Reconfigure { tickets: Vec<TicketSpec>, credentials: CredentialStore, reply: oneshot::Sender<ReloadSummary> },
}

/// What a reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Settings changed; the held ticket and token are kept.
    pub changed: Vec<String>,
    /// The API target changed; what was held is dropped and obtained anew.
    pub replaced: Vec<String>,
    pub unchanged: usize,
}

/// Liveness pings from the loop itself (systemd `WATCHDOG=1`): a stuck loop stops pinging.
#[derive(Clone)]
pub struct Watchdog {
    pub interval: Duration,
    pub ping: Arc<dyn Fn() + Send + Sync>,
}

enum Message {
    Called {
        id: TicketId,
        epoch: u32,
        step: Step,
        result: Result<Issued, ProviderError>,
        credentials_expire: Option<SystemTime>,
    },
    Published {
        id: TicketId,
        epoch: u32,
        generation: u64,
        /// The ticket as written (a reload may have changed its sinks meanwhile) and the sinks
        /// holding the generation now; `None` when the writer died before saying.
        written: Option<(TicketSpec, SinkSet)>,
        /// One per sink that could not be written, naming it.
        errors: Vec<String>,
    },
}

/// What a call task tells the loop, exactly once. Dropped unsent (the task panicked, or was
/// cancelled), it reports a failure instead: the ticket is retried with backoff and its call slot
/// and the daemon's in-flight count are released, whatever becomes of the task.
struct CallReport {
    tx: mpsc::UnboundedSender<Message>,
    id: TicketId,
    epoch: u32,
    step: Step,
    sent: bool,
}

impl CallReport {
    fn send(mut self, result: Result<Issued, ProviderError>, credentials_expire: Option<SystemTime>) {
        self.sent = true;
        let (id, epoch, step) = (self.id, self.epoch, self.step);
        let _ = self.tx.send(Message::Called { id, epoch, step, result, credentials_expire });
    }
}

impl Drop for CallReport {
    fn drop(&mut self) {
        if !self.sent {
            let detail = if std::thread::panicking() { "its task panicked" } else { "its task was cancelled" };
            let result = Err(ProviderError::Internal { api: "API call", detail });
            let (id, epoch, step) = (self.id, self.epoch, self.step);
            let _ = self.tx.send(Message::Called { id, epoch, step, result, credentials_expire: None });
        }
    }
}

/// What a sink writer tells the loop when it could not say what it wrote.
const WRITER_DIED: &str = "the sink writer ended without a result (it panicked or was cancelled)";

/// Like [`CallReport`], for a sink writer: dropped unsent, it reports a failed write, so the
/// sinks are retried.
struct PublishReport {
    tx: mpsc::UnboundedSender<Message>,
    id: TicketId,
    epoch: u32,
    generation: u64,
    sent: bool,
}

impl PublishReport {
    fn send(mut self, written: Option<(TicketSpec, SinkSet)>, errors: Vec<String>) {
        self.sent = true;
        let (id, epoch, generation) = (self.id, self.epoch, self.generation);
        let _ = self.tx.send(Message::Published { id, epoch, generation, written, errors });
    }
}

impl Drop for PublishReport {
    fn drop(&mut self) {
        if !self.sent {
            let (id, epoch, generation) = (self.id, self.epoch, self.generation);
            let errors = vec![WRITER_DIED.to_string()];
            let _ = self.tx.send(Message::Published { id, epoch, generation, written: None, errors });
        }
    }
}

/// Everything the scheduler needs from outside.
pub struct Parts {
    pub clock: Arc<dyn Clock>,
    pub provider: Arc<dyn Provider>,
    pub credentials: CredentialStore,
    pub persistence: Persistence,
    /// Where the scheduler keeps its tickets, for readers to see.
    pub board: Arc<Board>,
    pub watchdog: Option<Watchdog>,
    /// Told each time all sinks of a ticket with an `on_change` hook hold a new generation.
    pub changed: Option<mpsc::UnboundedSender<crate::sinks::notify::Changed>>,
    pub seed: u64,
}

pub struct Scheduler {
    parts: Parts,
    /// Deadlines (a [`Mono`]'s nanoseconds: monotonic time) and whose they are. A slot is live
    /// while its ticket is `queued` for that very time; others are stale and skipped.
    queue: BinaryHeap<Reverse<(u64, TicketId)>>,
    /// The last epoch handed out: every ticket added or retargeted gets a new one, so a result
    /// for a ticket that was removed or replaced is never applied to another.
    epochs: u32,
    rng: StdRng,
    events: broadcast::Sender<Event>,
    tx: mpsc::UnboundedSender<Message>,
    rx: mpsc::UnboundedReceiver<Message>,
    calls: TaskTracker,
    save_at: Option<Mono>,
    /// No save before this (see [`SAVE_SPACING`]).
    save_floor: Option<Mono>,
    /// Tickets just minted (with their epochs) whose first token is asked for only once the state
    /// file holds the new ticket: a crash meanwhile never loses it (and mints again).
    awaiting_save: std::collections::HashMap<TicketId, u32>,
    /// How far the wall clock was ahead of the monotonic one when the loop last looked
    /// ([`Now::wall_offset`]): a change of [`CLOCK_STEP`] or more is a step of the wall clock.
    wall_offset: Option<i128>,
    in_flight: usize,
    /// The board changed since its readers were last told.
    changed: bool,
    /// When the loop last looked whether the secret pool was scattered.
    settle_checked: Option<std::time::Instant>,
}

impl Scheduler {
    /// A scheduler for `tickets`, starting from `saved` state: holdings whose identity still
    /// matches the config are reused.
    pub fn new(parts: Parts, tickets: Vec<TicketSpec>, mut saved: StateFile) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let rng = StdRng::seed_from_u64(parts.seed);
        let mut scheduler = Scheduler {
            parts,
            queue: BinaryHeap::with_capacity(tickets.len()),
            epochs: 0,
            rng,
            events: broadcast::channel(4096).0,
            tx,
            rx,
            calls: TaskTracker::new(),
            save_at: None,
            save_floor: None,
            awaiting_save: std::collections::HashMap::new(),
            wall_offset: None,
            in_flight: 0,
            changed: false,
            settle_checked: None,
        };
        let now = scheduler.parts.clock.read();
        {
            let mut queue = scheduler.parts.board.revocations();
            for pending in std::mem::take(&mut saved.revocations) {
                queue.push(pending);
            }
        }
        let unconfirmed = std::mem::take(&mut saved.unconfirmed);
        let held: std::collections::HashSet<String> = saved
            .tickets
            .values()
            .filter_map(|t| Some(t.holding.current.as_ref()?.token.token_id.as_deref()?.to_string()))
            .collect();
        let reused = scheduler.with_table(|s, table| {
            table.reserve(tickets.len());
            let mut reused = 0usize;
            for spec in tickets {
                // Taken out of the saved state one by one: a big state is never held twice.
                let holding = saved
                    .tickets
                    .remove(spec.name.as_str())
                    .filter(|stored| {
                        let same = stored.identity == identity(&spec);
                        if !same {
                            kept_active(&spec.name, stored.holding.current.as_ref(), "its target changed");
                        }
                        same
                    })
                    .map(|stored| usable(stored.holding, now))
                    .unwrap_or_default();
                if holding.current.is_some() {
                    reused += 1;
                    tracing::debug!(ticket = %spec.name, generation = holding.generation(), "reusing the saved token");
                }
                s.insert(table, spec, holding);
            }
            reused
        });
        if reused > 0 {
            tracing::info!(tickets = reused, "reusing the saved tokens");
        }
        forget_stale_revocations(&scheduler.parts.board);
        // Saved tickets the config no longer has: a consumer may still use their tokens.
        for (name, stored) in &saved.tickets {
            kept_active(name, stored.holding.current.as_ref(), "it is no longer in the config");
        }
        scheduler.orphans(unconfirmed, &held);
        scheduler
    }

    /// Long-term tokens minted before the restart that never reached every sink (`unconfirmed`,
    /// less those a saved ticket holds: `held`): the restart writes the sinks afresh with what the
    /// ticket holds now, so no consumer is left with one; each is revoked once every sink of its
    /// ticket holds that (and its hook has run). One of a ticket no longer in the config stays
    /// active (its sinks are not written again: it may be in one), logged with its `TokenId`.
    fn orphans(&mut self, unconfirmed: Vec<crate::state::PendingRevocation>, held: &std::collections::HashSet<String>) {
        for mut orphan in unconfirmed {
            if held.contains(&orphan.token_id) {
                continue;
            }
            let (name, token_id) = (orphan.ticket.clone(), orphan.token_id.clone());
            let generation = self.parts.board.table().by_name(&name).map(|t| t.holding.generation());
            let Some(generation) = generation else {
                tracing::info!(ticket = %name, token_id = %token_id, "a long-term token minted before the restart never reached every sink, and its ticket is no longer in the config; it stays active");
                continue;
            };
            tracing::info!(ticket = %name, token_id = %token_id, "a long-term token minted before the restart never reached every sink; it is revoked once the sinks hold the ticket's token");
            orphan.after_generation = Some(generation);
            queue_revocation(&self.parts.board, orphan);
        }
    }

    /// Subscribe to events.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The board this scheduler keeps up to date.
    pub fn board(&self) -> Arc<Board> {
        self.parts.board.clone()
    }

    /// Change the board's table in `f`, then wake its readers if anything changed.
    fn with_table<R>(&mut self, f: impl FnOnce(&mut Self, &mut Table) -> R) -> R {
        let board = Arc::clone(&self.parts.board);
        let mut table = board.write();
        let result = f(self, &mut table);
        drop(table);
        if std::mem::take(&mut self.changed) {
            board.changed();
        }
        result
    }

    fn insert(&mut self, table: &mut Table, spec: TicketSpec, holding: Holding) -> TicketId {
        let now = self.parts.clock.read();
        let has_current = holding.valid_token(now).is_some();
        let mut ticket = Ticket::new(spec, holding, self.next_epoch(), self.rng.random());
        // Sinks may be stale or missing after a restart: write them once.
        if has_current {
            ticket.mark_unpublished();
        }
        let id = table.insert(ticket);
        self.changed = true;
        if has_current {
            self.publish(table, id);
        }
        self.reschedule(table, id, now);
        id
    }

    fn next_epoch(&mut self) -> u32 {
        self.epochs = self.epochs.wrapping_add(1);
        self.epochs
    }

    /// Run until `shutdown` is cancelled, then finish in-flight work and save state.
    pub async fn run(mut self, shutdown: CancellationToken, mut commands: mpsc::UnboundedReceiver<Command>) -> Self {
        let mut last_ping = tokio::time::Instant::now();
        loop {
            if let Some(w) = &self.parts.watchdog
                && last_ping.elapsed() >= w.interval / 2
            {
                (w.ping)();
                last_ping = tokio::time::Instant::now();
            }
            // On every wake: a stepped wall clock re-plans every ticket before anything waits.
            self.watch_clock();
            let next = self.next_wake();
            // Never longer than WALL_CLOCK_RECHECK, so a step is noticed with nothing due.
            let mut sleep = Some(
                next.map_or(WALL_CLOCK_RECHECK, |at| self.parts.clock.monotonic().until(at).min(WALL_CLOCK_RECHECK)),
            );
            if let Some(w) = &self.parts.watchdog {
                let ping_in = (w.interval / 2).saturating_sub(last_ping.elapsed());
                sleep = Some(sleep.map_or(ping_in, |s| s.min(ping_in)));
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.command(command),
                Some(message) = self.rx.recv() => self.handle(message),
                () = sleep_or_forever(sleep) => self.fire_due(),
            }
            self.settle_secrets();
        }
        self.finish().await;
        self
    }

    /// Compare the clocks: when the wall clock stepped since the last look (either way, by
    /// [`CLOCK_STEP`] or more), every ticket is planned again at once, in the wall clock's new
    /// frame.
    fn watch_clock(&mut self) {
        let now = self.parts.clock.read();
        let offset = now.wall_offset();
        let Some(last) = self.wall_offset.replace(offset) else { return };
        let step = offset - last;
        if step.unsigned_abs() < CLOCK_STEP.as_nanos() {
            return;
        }
        let by = humantime::format_duration(Duration::from_secs(
            u64::try_from(step.unsigned_abs() / 1_000_000_000).unwrap_or(u64::MAX),
        ));
        let direction = if step > 0 { "forward" } else { "back" };
        tracing::warn!(by = %by, direction, "the wall clock stepped; planning every ticket again");
        self.with_table(|s, table| s.replan(table, now));
    }

    /// Plan every ticket again at `now` (the wall clock stepped): deadlines read from expiries
    /// move with the clock; a ticket that was failing is retried at once (the step may be what
    /// failed it, or what fixed it); a sink write being retried keeps its retry.
    fn replan(&mut self, table: &mut Table, now: Now) {
        let ids: Vec<TicketId> = table.iter().filter(|(_, t)| !t.in_flight).map(|(id, _)| id).collect();
        for id in ids {
            let Some(ticket) = table.get(id) else { continue };
            if ticket.attempt > 0 {
                self.schedule_at(table, id, now.mono);
                continue;
            }
            let planned = now.mono_at(plan(ticket, now).at);
            let at = match (ticket.unpublished && ticket.queued).then_some(ticket.next_at).and_then(from_key) {
                Some(retry) => retry.min(planned),
                None => planned,
            };
            self.schedule_at(table, id, at);
        }
    }

    /// The earliest of the queue's head and a pending state save.
    fn next_wake(&mut self) -> Option<Mono> {
        let board = Arc::clone(&self.parts.board);
        let table = board.table();
        // Drop stale slots from the head so the loop never wakes for nothing.
        while let Some(&Reverse((key, id))) = self.queue.peek() {
            if is_live(&table, key, id) {
                break;
            }
            self.queue.pop();
        }
        // Stale slots deeper down (tickets rescheduled before their slot came up) are swept out
        // once they outnumber the tickets, so the queue stays about one slot per ticket.
        if self.queue.len() > 2 * table.len() + 64 {
            self.queue.retain(|&Reverse((key, id))| is_live(&table, key, id));
        }
        drop(table);
        // With every call slot taken, only a finished call (or a save) can make progress.
        let head = self.queue.peek().map(|&Reverse((key, _))| Mono::from_nanos(key)).filter(|_| !self.slots_taken());
        match (head, self.save_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fire_due(&mut self) {
        let now = self.parts.clock.read();
        if self.save_at.is_some_and(|at| at <= now.mono) {
            self.save();
        }
        self.with_table(|s, table| {
            while let Some(&Reverse((key, id))) = s.queue.peek() {
                // Calls beyond the limit stay queued (not spawned to wait): a burst of 100,000
                // due tickets costs a queue slot each, not a task each. A finished call wakes the
                // loop.
                if key > now.mono.nanos() || s.slots_taken() {
                    break;
                }
                s.queue.pop();
                match table.get_mut(id) {
                    Some(ticket) if waits_on(ticket, key) => ticket.queued = false,
                    _ => continue,
                }
                s.start(table, id, now);
            }
        });
    }

    /// No call may start: every call slot is taken, or [`MAX_AWAITING_SAVE`] tickets just minted
    /// wait for the save before their first token call.
    fn slots_taken(&self) -> bool {
        self.in_flight >= MAX_IN_FLIGHT || self.awaiting_save.len() >= MAX_AWAITING_SAVE
    }

    /// Do what is due for ticket `id`: republish, or call the API, or just reschedule.
    fn start(&mut self, table: &mut Table, id: TicketId, now: Now) {
        let Some(ticket) = table.get_mut(id) else { return };
        if ticket.in_flight {
            return;
        }
        let plan = plan(ticket, now);
        // A ticket just minted is not used before it is saved: the save asks for its token.
        if plan.step == Step::RefreshPending && self.awaiting_save.get(&id) == Some(&ticket.epoch) {
            return;
        }
        // A retry wake-up may come before the plan's time only after a failure; then retry now.
        if plan.at > now.wall && ticket.attempt == 0 {
            if ticket.unpublished {
                self.publish(table, id);
            }
            self.reschedule(table, id, now);
            return;
        }
        let op = match plan.step {
            Step::Mint => Operation::Mint,
            Step::RefreshCurrent => match ticket.holding.current.as_ref().and_then(|c| c.ticket.as_ref()) {
                Some(t) => Operation::Refresh { ticket: t.value.clone() },
                None => Operation::Mint,
            },
            Step::RefreshPending => match &ticket.holding.pending {
                Some(t) => Operation::Refresh { ticket: t.value.clone() },
                None => Operation::Mint,
            },
        };
        let epoch = ticket.epoch;
        let timeout = call_timeout(ticket.holding.valid(now).map(|c| until(now.wall, c.expiry(now))));
        ticket.in_flight = true;
        self.in_flight += 1;
        tracing::debug!(ticket = %ticket.spec.name, step = ?plan.step, "calling the API");
        let (store, clock, provider, spec) = (
            self.parts.credentials.clone(),
            self.parts.clock.clone(),
            self.parts.provider.clone(),
            ticket.spec.clone(),
        );
        let step = plan.step;
        // Made before the task starts: whatever becomes of the task, the loop hears of it.
        let report = CallReport { tx: self.tx.clone(), id, epoch, step, sent: false };
        self.calls.spawn(async move {
            // Keys being fetched or refreshed: wait for them rather than race with the old ones.
            let credentials = match store.fresh(&spec.credentials, clock.as_ref(), crate::credentials::FRESH_WAIT).await
            {
                Ok(c) => c,
                Err(e) => return report.send(Err(e.into()), None),
            };
            let credentials_expire = credentials.expires_at;
            let call = provider.call(&spec, op, credentials);
            let result = match tokio::time::timeout(timeout, call).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Timeout { api: "API call", endpoint: "the endpoint".into(), timeout }),
            };
            report.send(result, credentials_expire);
        });
    }

    fn handle(&mut self, message: Message) {
        self.with_table(|s, table| s.handle_in(table, message));
    }

    fn handle_in(&mut self, table: &mut Table, message: Message) {
        match message {
            Message::Called { id, epoch, step, result, credentials_expire } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                // Gone, or changed by a reload while this call was out: its call is already redone.
                let Some(ticket) = table.get_mut(id).filter(|t| t.epoch == epoch) else { return };
                ticket.in_flight = false;
                let now = self.parts.clock.read();
                let result =
                    result.and_then(|issued| apply(&mut ticket.holding, step, issued, credentials_expire, now));
                match result {
                    Ok(change) => self.succeeded(table, id, change, now),
                    Err(e) => self.failed(table, id, e, now),
                }
            }
            Message::Published { id, epoch, generation, written, errors } => {
                // The ticket's one writer is done, under whatever epoch (a retargeted ticket's next
                // write waited for it too: see `publish`).
                let Some(ticket) = table.get_mut(id) else { return };
                ticket.writing = false;
                self.changed = true;
                // A newer generation came, or a reload replaced the sinks or the target, while this
                // write ran: the write of what the ticket holds now waited for this one; start it.
                let stale = ticket.epoch != epoch
                    || ticket.holding.generation() != generation
                    || written.as_ref().is_some_and(|(spec, _)| spec.sinks != ticket.spec.sinks);
                if stale {
                    self.publish(table, id);
                    return;
                }
                // The writes of this generation are over: readers waiting for them look again (the
                // flag is down), and in the same change the board shows what they wrote.
                if let Some((_, held)) = written {
                    ticket.sinks_held = ticket.sinks_held.union(held);
                }
                let now = self.parts.clock.read();
                if errors.is_empty() && ticket.sinks_held == SinkSet::all(ticket.spec.sinks.len()) {
                    // The last error was this ticket's sinks' (no call failed since): it is over.
                    if ticket.publish_attempt > 0 && ticket.attempt == 0 {
                        ticket.last_error = None;
                    }
                    ticket.unpublished = false;
                    ticket.publish_attempt = 0;
                    ticket.previous = None;
                    ticket.current_written = true;
                    ticket.confirmed = true;
                    self.changed = true;
                    let has_hook = ticket.spec.consumers.on_change.is_some();
                    let hook = self.parts.changed.as_ref().filter(|_| has_hook);
                    // Tokens this one superseded are revoked now, or once the hook has run.
                    let board = &self.parts.board;
                    let wait_for_hook = board.revocations().published(&ticket.spec.name, generation, has_hook);
                    if has_hook && hook.is_none() {
                        // No hook runs here (`run --once`): what waits for this ticket's hook keeps
                        // waiting, saved, for a run whose hook tells its consumers first.
                        board.revocations().hooks_not_run(&ticket.spec.name, generation);
                    }
                    board.revocations_changed().notify_one();
                    if let Some(changed) = hook {
                        let ran = wait_for_hook.then(|| {
                            let (ran, hook_ran) = oneshot::channel();
                            let (board, name) = (Arc::clone(board), ticket.spec.name.to_string());
                            // Told when the hook has run (or will not: its runner is gone).
                            tokio::spawn(async move {
                                let _ = hook_ran.await;
                                board.revocations().hooks_ran(&name, generation);
                                board.revocations_changed().notify_one();
                            });
                            ran
                        });
                        let _ = changed.send((ticket.spec.clone(), generation, ran));
                    }
                    self.emit(Event::Published { name: ticket.spec.name.to_string(), generation });
                    self.save_soon(now.mono + SAVE_DEBOUNCE);
                } else if !errors.is_empty() {
                    ticket.publish_attempt = ticket.publish_attempt.saturating_add(1);
                    let delay = timing::retry_delay(
                        u32::from(ticket.publish_attempt),
                        RetryClass::Transient { after: None },
                        None,
                        self.rng.random(),
                    );
                    let retry_in = humantime::format_duration(round(delay)).to_string();
                    for error in &errors {
                        tracing::error!(ticket = %ticket.spec.name, error = %error, retry_in, "cannot write a sink; its previous file is intact, the other sinks are written");
                    }
                    let error = errors.join("; ");
                    ticket.last_error = Some(error.as_str().into());
                    self.changed = true;
                    let plan = plan(ticket, now);
                    self.emit(Event::PublishFailed { name: ticket.spec.name.to_string(), error });
                    self.schedule_at(table, id, now.mono_at(plan.at).min(now.mono + delay));
                }
            }
        }
    }

    fn succeeded(&mut self, table: &mut Table, id: TicketId, change: Change, now: Now) {
        let ticket = table.get_mut(id).expect("the ticket is on the board");
        ticket.attempt = 0;
        ticket.last_error = None;
        ticket.jitter = self.rng.random();
        ticket.refresh_successes = ticket.refresh_successes.saturating_add(1);
        ticket.last_success = stamp(now.wall);
        self.changed = true;
        let name = &ticket.spec.name;
        match change {
            Change::Ticket { expires_at } => {
                tracing::info!(ticket = %name, expires_at = %crate::clock::rfc3339(expires_at), "minted a new ticket");
                self.emit(Event::TicketMinted { name: name.to_string(), expires_at });
                // A minted ticket must survive a crash: save now (or as soon as saves may come),
                // and ask for its first token once saved (see `release_saved`).
                self.awaiting_save.insert(id, ticket.epoch);
                if self.awaiting_save.len() >= MAX_AWAITING_SAVE {
                    // No call starts until this save: it is not spaced.
                    self.save_at = Some(now.mono);
                } else {
                    self.save_soon(now.mono);
                }
                return;
            }
            Change::Token { generation, expires_at, new_ticket, replaced } => {
                // A long-term token replaced is revoked once the new one is in every sink.
                let new_id = ticket.holding.current.as_ref().and_then(|c| c.token.token_id.as_deref());
                if let Some(old_id) = replaced.as_ref().and_then(|c| c.token.token_id.as_deref())
                    && Some(old_id) != new_id
                    && let Some(pending) = superseded(&ticket.spec, old_id, generation, now.wall)
                {
                    queue_revocation(&self.parts.board, pending);
                }
                // The new one is recorded too, until it is in every sink: a crash before then
                // must not forget it (see `orphans`).
                if let Some(mut minted) = new_id.and_then(|id| superseded(&ticket.spec, id, generation, now.wall)) {
                    minted.after_generation = Some(generation);
                    self.parts.board.revocations().minted(minted);
                    // Saved at once (long-term mints are rare).
                    self.save_soon(now.mono);
                }
                // The sinks still hold the token just replaced: keep it for readers and the state
                // file until they hold the new one.
                if std::mem::take(&mut ticket.current_written) {
                    ticket.previous = replaced.map(Box::new);
                }
                tracing::info!(ticket = %name, generation, expires_at = %crate::clock::rfc3339(expires_at), "refreshed the token");
                self.emit(Event::TokenRefreshed { name: name.to_string(), generation, expires_at, new_ticket });
                ticket.mark_unpublished();
                self.publish(table, id);
                if new_ticket {
                    self.save_soon(now.mono);
                }
            }
        }
        self.reschedule(table, id, now);
    }

    fn failed(&mut self, table: &mut Table, id: TicketId, error: ProviderError, now: Now) {
        let ticket = table.get_mut(id).expect("the ticket is on the board");
        // A credential the API created and ticketd cannot use: nobody ever saw it, revoke it now.
        if let ProviderError::Unusable { token_id, .. } = &error
            && let Some(mut orphan) = superseded(&ticket.spec, token_id, 0, now.wall)
        {
            orphan.after_generation = None;
            tracing::info!(ticket = %ticket.spec.name, token_id = %token_id, "the created long-term token cannot be used; revoking it");
            queue_revocation(&self.parts.board, orphan);
            self.parts.board.revocations_changed().notify_one();
            self.save_soon(now.mono);
        }
        let ticket = table.get_mut(id).expect("the ticket is on the board");
        ticket.attempt = ticket.attempt.saturating_add(1);
        ticket.refresh_failures = ticket.refresh_failures.saturating_add(1);
        let token_expires_at = ticket.holding.valid(now).map(|c| c.expiry(now));
        let remaining = token_expires_at.map(|t| until(now.wall, t));
        let delay = timing::retry_delay(u32::from(ticket.attempt), error.retry_class(), remaining, self.rng.random());
        let retry_at = now.wall + delay;
        let text = error.to_string();
        let retry_in = humantime::format_duration(round(delay)).to_string();
        let next_attempt = crate::clock::rfc3339(retry_at);
        let (name, attempt) = (&ticket.spec.name, ticket.attempt);
        let outlook = outlook(ticket.holding.current.is_some(), token_expires_at, error.retry_class(), retry_at, delay);
        if error.is_clock_skew() {
            tracing::error!(ticket = %name, error = %text, retry_in, next_attempt, "the cloud says this host's clock is wrong; fix the clock (NTP)");
        } else {
            let message = outlook.message();
            match (outlook, token_expires_at) {
                (Outlook::Keeps, Some(t)) => {
                    let expires_at = crate::clock::rfc3339(t);
                    tracing::warn!(ticket = %name, error = %text, attempt, retry_in, next_attempt, expires_at, "{message}");
                }
                (Outlook::WillLapse, Some(t)) => {
                    let expires_at = crate::clock::rfc3339(t);
                    tracing::error!(ticket = %name, error = %text, attempt, retry_in, next_attempt, expires_at, "{message}");
                }
                (Outlook::NoTokenYet { retry_helps: true }, _) => {
                    tracing::warn!(ticket = %name, error = %text, attempt, retry_in, next_attempt, "{message}");
                }
                _ => tracing::error!(ticket = %name, error = %text, attempt, retry_in, next_attempt, "{message}"),
            }
        }
        let name = name.clone();
        ticket.last_error = Some(text.as_str().into());
        self.changed = true;
        self.emit(Event::CallFailed { name: name.to_string(), error: text, retry_at, token_expires_at, outlook });
        self.schedule_at(table, id, now.mono + delay);
    }

    /// Write the sinks of ticket `id` in the background: until the loop hears how it went,
    /// readers of the ticket wait ([`Board::settle_writes`]).
    fn publish(&mut self, table: &mut Table, id: TicketId) {
        let Some(ticket) = table.get_mut(id) else { return };
        let Some(current) = &ticket.holding.current else { return };
        // One writer per ticket at a time: two could finish out of order, the older token's files
        // renamed over the newer one's while the board and the state record the newer, and nothing
        // would write them again before the next token (the older token lapsing in the sinks
        // meanwhile). The running writer's report starts this write (`Message::Published`).
        if ticket.writing {
            return;
        }
        let (generation, epoch) = (current.generation, ticket.epoch);
        ticket.writing = true;
        self.changed = true;
        if ticket.spec.sinks.is_empty() {
            let written = Some((ticket.spec.clone(), SinkSet::NONE));
            let _ = self.tx.send(Message::Published { id, epoch, generation, written, errors: Vec::new() });
            return;
        }
        // The writer gets a copy of its own: the holding may change while it writes.
        let (current, spec, held) = (current.clone(), ticket.spec.clone(), ticket.sinks_held);
        let report = PublishReport { tx: self.tx.clone(), id, epoch, generation, sent: false };
        self.calls.spawn(async move {
            let writer = tokio::task::spawn_blocking(move || {
                #[cfg(test)]
                tests::before_sink_write(&spec.name);
                let published = crate::sinks::publish(&spec, &current, held);
                #[cfg(test)]
                tests::after_sink_write(&spec.name);
                (spec, published)
            });
            match writer.await {
                Ok((spec, published)) => {
                    let errors = published.errors.iter().map(ToString::to_string).collect();
                    report.send(Some((spec, published.held)), errors);
                }
                // Not the join error's text: a panic's message may quote what was written.
                Err(_) => report.send(None, vec![WRITER_DIED.to_string()]),
            }
        });
    }

    fn reschedule(&mut self, table: &mut Table, id: TicketId, now: Now) {
        let Some(ticket) = table.get(id) else { return };
        let planned = now.mono_at(plan(ticket, now).at);
        // A step due at once (the first token of a ticket just minted) keeps the ticket's place in
        // line, ahead of tickets that fell due after it. Otherwise 100,000 tickets loaded at once
        // would all be minted before the first got its token, each holding a pending ticket.
        let at = match from_key(ticket.next_at) {
            Some(was) if planned <= now.mono => was.min(planned),
            _ => planned,
        };
        self.schedule_at(table, id, at);
    }

    /// Queue ticket `id` for monotonic time `at`.
    fn schedule_at(&mut self, table: &mut Table, id: TicketId, at: Mono) {
        let Some(ticket) = table.get_mut(id) else { return };
        ticket.next_at = at.nanos();
        ticket.queued = true;
        self.queue.push(Reverse((ticket.next_at, id)));
        self.changed = true;
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Reconfigure { tickets, credentials, reply } => {
                let summary = self.with_table(|s, table| s.reconfigure(table, tickets, credentials));
                let _ = reply.send(summary);
            }
        }
    }

    /// Apply a reloaded config: unchanged tickets keep everything, changed ones keep their holding
    /// when it is still good for the new settings, removed ones stop (their files stay).
    fn reconfigure(
        &mut self,
        table: &mut Table,
        tickets: Vec<TicketSpec>,
        credentials: CredentialStore,
    ) -> ReloadSummary {
        self.parts.credentials.replace(&credentials);
        let mut summary = ReloadSummary::default();
        let keep: HashSet<&str> = tickets.iter().map(|t| t.name.as_str()).collect();
        let mut removed: Vec<(String, TicketId)> =
            table.iter().filter(|(_, t)| !keep.contains(t.name())).map(|(id, t)| (t.name().to_string(), id)).collect();
        removed.sort_unstable();
        for (name, id) in &removed {
            if let Some(gone) = table.remove(*id) {
                forget_revocations(&self.parts.board, name);
                kept_active(name, gone.written(), "it is no longer in the config");
            }
        }
        summary.removed = removed.into_iter().map(|(name, _)| name).collect();
        table.reserve(tickets.len().saturating_sub(table.len()));
        let now = self.parts.clock.read();
        for spec in tickets {
            let Some(id) = table.id(&spec.name) else {
                summary.added.push(spec.name.to_string());
                self.insert(table, spec, Holding::default());
                continue;
            };
            let ticket = table.get_mut(id).expect("the ticket is on the board");
            if ticket.spec == spec {
                summary.unchanged += 1;
                continue;
            }
            let same_target = identity(&ticket.spec) == identity(&spec);
            ticket.spec = spec;
            ticket.attempt = 0;
            ticket.last_error = None;
            let name = ticket.spec.name.clone();
            if same_target {
                summary.changed.push(name.to_string());
                // The sinks may have changed: all are written again.
                ticket.unpublished = false;
                if ticket.holding.valid_token(now).is_some() {
                    ticket.mark_unpublished();
                    self.publish(table, id);
                }
            } else {
                summary.replaced.push(name.to_string());
                forget_revocations(&self.parts.board, &name);
                kept_active(&name, ticket.written(), "its target changed");
                ticket.holding = Holding::default();
                ticket.previous = None;
                ticket.current_written = false;
                ticket.confirmed = false;
                // A call still out for the old target is dropped when it returns (its epoch is old).
                ticket.epoch = self.next_epoch();
                ticket.in_flight = false;
                ticket.unpublished = false;
                // The old target's write, if one runs, still ends before the next one starts
                // (`writing` stays set until its report comes, whatever its epoch).
            }
            self.reschedule(table, id, now);
        }
        self.changed = true;
        self.save_soon(now.mono);
        summary
    }

    /// When tokens change length (a serial in them gains a digit), each refresh leaves a hole in
    /// the pool's size class the old token was in, and a page goes back to the system only once
    /// every slot on it is free: without help, the class the tokens leave keeps all its pages
    /// until the last of them has moved. So when the pool is scattered, every secret held is
    /// moved down into the lowest free slot of its class, and the pages above them empty. Looked
    /// at after the loop's work, at most every [`SETTLE_EVERY`]: an idle daemon never wakes for it.
    fn settle_secrets(&mut self) {
        let now = std::time::Instant::now();
        if self.settle_checked.is_some_and(|at| now.duration_since(at) < SETTLE_EVERY) {
            return;
        }
        self.settle_checked = Some(now);
        if crate::secret::pool::scattered() {
            let moved = self.parts.board.write().settle_secrets();
            tracing::debug!(moved, took = ?now.elapsed(), "secrets moved down in their pool");
        }
    }

    fn save_soon(&mut self, at: Mono) {
        let at = self.save_floor.map_or(at, |floor| at.max(floor));
        self.save_at = Some(self.save_at.map_or(at, |s| s.min(at)));
    }

    /// What the state file holds now (tests look at it).
    #[cfg(test)]
    fn snapshot(&self) -> StateFile {
        let table = self.parts.board.table();
        let tickets = records(&table).into_iter().map(|id| {
            let ticket = record_of(&table, id);
            let record = record(ticket);
            let stored = crate::state::StoredTicket {
                kind: record.kind.to_string(),
                identity: record.identity,
                holding: record.holding.into_owned(),
            };
            (ticket.name().to_string(), stored)
        });
        let queue = self.parts.board.revocations();
        StateFile {
            version: 1,
            tickets: tickets.collect(),
            revocations: queue.saved(),
            unconfirmed: queue.unconfirmed(),
        }
    }

    /// What ticket `name` holds now (tests look at it).
    #[cfg(test)]
    fn holding(&self, name: &str) -> Holding {
        self.parts.board.table().by_name(name).expect("the ticket is on the board").holding.clone()
    }

    fn save(&mut self) {
        self.save_at = None;
        let started = std::time::Instant::now();
        let result = {
            let table = self.parts.board.table();
            let records = records(&table);
            let (revocations, unconfirmed) = {
                let queue = self.parts.board.revocations();
                (queue.saved(), queue.unconfirmed())
            };
            let state = StateFileRef(
                || records.iter().map(|&id| record_of(&table, id)).map(|ticket| (ticket.name(), record(ticket))),
                revocations,
                unconfirmed,
            );
            self.parts.persistence.save(&state)
        };
        crate::heap::release_free_pages();
        // A large state (100,000 tickets) takes a while to write: space saves so that writing
        // takes at most a tenth of the loop's time. Small states never notice.
        let took = started.elapsed();
        let now = self.parts.clock.monotonic();
        self.save_floor = (took >= SLOW_SAVE).then(|| now + took * SAVE_SPACING);
        if let Err(e) = &result {
            tracing::error!(error = %e, "cannot save state; retrying");
            self.save_soon(now + Duration::from_secs(5));
        }
        self.release_saved(result.is_ok());
    }

    /// The tickets minted before a save may now get their first token. After a failed save too:
    /// waiting for the disk would leave them with no token at all.
    fn release_saved(&mut self, saved: bool) {
        if self.awaiting_save.is_empty() {
            return;
        }
        if !saved {
            tracing::warn!(tickets = self.awaiting_save.len(), "asking for the first token of tickets not saved yet");
        }
        let now = self.parts.clock.read();
        let released = std::mem::take(&mut self.awaiting_save);
        self.with_table(|s, table| {
            for (id, epoch) in released {
                if table.get(id).is_some_and(|t| t.epoch == epoch && !t.in_flight) {
                    s.reschedule(table, id, now);
                }
            }
        });
    }

    async fn finish(&mut self) {
        self.calls.close();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.in_flight > 0 || !self.calls.is_empty() {
            tokio::select! {
                Some(message) = self.rx.recv() => self.handle(message),
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(in_flight = self.in_flight, "shutdown grace period over; abandoning calls in flight");
                    break;
                }
            }
        }
        self.save();
    }

    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

/// The state file's records, in name order: their ids, sorted (4 bytes a ticket, not an 8-byte
/// reference: at 100,000 tickets this is the largest passing allocation of a save).
fn records(table: &Table) -> Vec<TicketId> {
    let mut ids: Vec<TicketId> = table.iter().map(|(id, _)| id).collect();
    ids.sort_unstable_by_key(|&id| record_of(table, id).name());
    ids
}

fn record_of(table: &Table, id: TicketId) -> &Ticket {
    table.get(id).expect("an id read from the table under the same lock")
}

/// What the state file records for a ticket. State never runs ahead of the sinks: an unpublished
/// token is recorded once written; meanwhile the last written one (and its ticket) stays on
/// record, and a new ticket not yet in the sinks is recorded as pending, so a crash never loses
/// it.
fn record(ticket: &Ticket) -> StoredTicketRef<'_> {
    let mut holding = std::borrow::Cow::Borrowed(&ticket.holding);
    if ticket.unpublished && !ticket.spec.sinks.is_empty() {
        let recorded = holding.to_mut();
        let fresh = std::mem::replace(&mut recorded.current, ticket.written().cloned());
        let on_record = recorded.current.as_ref().and_then(|c| c.ticket.as_ref());
        if let Some(minted) = fresh.and_then(|c| c.ticket.clone())
            && on_record != Some(&minted)
            && recorded.pending.is_none()
        {
            recorded.pending = Some(Box::new(minted));
        }
    }
    StoredTicketRef { kind: ticket.spec.kind().as_str(), identity: identity(&ticket.spec), holding }
}

/// What a failed call means for a ticket's consumers, as its log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outlook {
    /// A valid token is held and retries fit before it expires.
    Keeps,
    /// A valid token is held, but it will expire before an attempt can succeed unless something
    /// changes: the error is permanent, or the retries have crowded up to its expiry.
    WillLapse,
    /// The ticket never had a token (this process or its state file); consumers have none yet.
    NoTokenYet { retry_helps: bool },
    /// The last token expired; consumers have none until an attempt succeeds.
    Lapsed { retry_helps: bool },
}

impl Outlook {
    /// The log line's sentence.
    pub fn message(self) -> &'static str {
        match self {
            Outlook::Keeps => "call failed; keeping the last good token",
            Outlook::WillLapse => "call failed; the token will lapse without help",
            Outlook::NoTokenYet { retry_helps: true } => "call failed; no token yet, retrying",
            Outlook::NoTokenYet { retry_helps: false } => {
                "call failed; no token yet, and retrying will not help until the config, keys or permissions change"
            }
            Outlook::Lapsed { retry_helps: true } => "call failed; the last token has expired, retrying",
            Outlook::Lapsed { retry_helps: false } => {
                "call failed; the last token has expired, and retrying will not help until the config, keys or permissions change"
            }
        }
    }
}

/// The outlook after a failed call retried at `retry_at` (`delay` from now): `held` says whether the
/// ticket has a token at all, `token_expires_at` when the held token expires if it is still valid.
fn outlook(
    held: bool,
    token_expires_at: Option<SystemTime>,
    class: RetryClass,
    retry_at: SystemTime,
    delay: Duration,
) -> Outlook {
    let retry_helps = class != RetryClass::Permanent;
    match token_expires_at {
        // Should the next attempt fail too, the one after comes only at expiry.
        Some(t) if !retry_helps || retry_at + delay >= t => Outlook::WillLapse,
        Some(_) => Outlook::Keeps,
        None if held => Outlook::Lapsed { retry_helps },
        None => Outlook::NoTokenYet { retry_helps },
    }
}

/// The revocation of TCR long-term token `token_id` of ticket `spec`, replaced by `generation`
/// at `now` (`None` for other kinds).
fn superseded(
    spec: &TicketSpec,
    token_id: &str,
    generation: u64,
    now: SystemTime,
) -> Option<crate::state::PendingRevocation> {
    let ApiSpec::Tcr(tcr) = &spec.api else { return None };
    Some(crate::state::PendingRevocation {
        ticket: spec.name.to_string(),
        token_id: token_id.to_string(),
        endpoint: tcr.endpoint.to_string(),
        region: tcr.region.clone(),
        registry_id: tcr.registry_id.clone(),
        credentials: spec.credentials.clone(),
        after_generation: Some(generation),
        since: now.into(),
    })
}

fn queue_revocation(board: &Board, pending: crate::state::PendingRevocation) {
    let (ticket, token_id) = (pending.ticket.clone(), pending.token_id.clone());
    match board.revocations().push(pending) {
        crate::revocation::Pushed::Queued => tracing::info!(
            ticket = %ticket,
            token_id = %token_id,
            "the long-term token was replaced; it is revoked once the new one is in every sink"
        ),
        crate::revocation::Pushed::Duplicate => {}
        crate::revocation::Pushed::Full => tracing::error!(
            ticket = %ticket,
            token_id = %token_id,
            cap = crate::revocation::MAX_PENDING,
            "too many revocations pending: the replaced long-term token stays active; delete it by hand"
        ),
    }
}

/// At start: the saved revocations that wait for the successor of a ticket whose saved token was
/// not taken up (the ticket left the config or changed target while ticketd was stopped, or its
/// token lapsed) would wait for a generation that is no longer the ticket's: for good, or until a
/// later token, of another target maybe, happens to reach it. They are taken out and their tokens
/// kept active, as a reload does; tokens already due are still revoked.
fn forget_stale_revocations(board: &Board) {
    let waiting: Vec<String> = board
        .revocations()
        .entries()
        .iter()
        .filter(|e| e.pending.after_generation.is_some())
        .map(|e| e.pending.ticket.clone())
        .collect();
    let mut stale: Vec<String> = board.read(|table| {
        waiting.into_iter().filter(|name| table.by_name(name).is_none_or(|t| t.holding.current.is_none())).collect()
    });
    stale.sort_unstable();
    stale.dedup();
    for name in stale {
        for pending in board.revocations().forget_waiting(&name) {
            tracing::info!(ticket = %name, token_id = %pending.token_id, "not revoking the replaced long-term token: its successor, saved before the restart, is not in use now (the ticket left the config, changed target or its token lapsed); it stays active");
        }
    }
}

/// `name` left the config or changed target: what waited for its new token to reach the sinks
/// is no longer revoked (which token a consumer uses cannot be known).
fn forget_revocations(board: &Board, name: &str) {
    for pending in board.revocations().forget_waiting(name) {
        tracing::info!(ticket = %name, token_id = %pending.token_id, "not revoking the replaced long-term token: the ticket left the config before its successor reached every sink; it stays active");
    }
    for pending in board.revocations().forget_unconfirmed(name) {
        tracing::info!(ticket = %name, token_id = %pending.token_id, "the ticket left the config before its new long-term token reached every sink; that token stays active");
    }
}

/// Say that the TCR long-term token `current` of ticket `name` stays active (`why`: the ticket
/// left the config, or its target changed): a consumer may still use it.
fn kept_active(name: &str, current: Option<&Current>, why: &str) {
    if let Some(token_id) = current.and_then(|c| c.token.token_id.as_deref()) {
        tracing::info!(ticket = %name, token_id = %token_id, "{why}; its long-term token stays active (a consumer may still use it)");
    }
}

/// How long a call may take when the held token has `remaining` to live: at most half of it, so
/// a call that hangs is abandoned while another attempt still fits before the token lapses; never
/// less than [`MIN_CALL_TIMEOUT`], never more than [`CALL_TIMEOUT`].
fn call_timeout(remaining: Option<Duration>) -> Duration {
    remaining.map_or(CALL_TIMEOUT, |left| (left / 2).clamp(MIN_CALL_TIMEOUT, CALL_TIMEOUT))
}

/// Whether the queue slot `(key, id)` is the one its ticket waits on.
fn is_live(table: &Table, key: u64, id: TicketId) -> bool {
    table.get(id).is_some_and(|ticket| waits_on(ticket, key))
}

fn waits_on(ticket: &Ticket, key: u64) -> bool {
    ticket.queued && ticket.next_at == key
}

/// What a successful call changed.
enum Change {
    Ticket { expires_at: SystemTime },
    Token { generation: u64, expires_at: SystemTime, new_ticket: bool, replaced: Option<Current> },
}

/// Fold a call's result into a holding, capping expiries: a token never outlives its ticket, its
/// credentials, or its own `exp` claim.
fn apply(
    holding: &mut Holding,
    step: Step,
    issued: Issued,
    credentials_expire: Option<SystemTime>,
    now: Now,
) -> Result<Change, ProviderError> {
    let malformed = |detail: &str| ProviderError::Malformed { api: "API call", detail: detail.to_string() };
    match (step, issued) {
        (Step::Mint, Issued::Ticket(mut ticket)) => {
            ticket.expires_at = cap(ticket.expires_at, [crate::jwt::expiry(ticket.value.expose())]);
            if ticket.expires_at <= now.wall {
                return Err(malformed("the new ticket is already expired (is the host clock right?)"));
            }
            too_short("ticket", until(now.wall, ticket.expires_at.time()))?;
            let expires_at = ticket.expires_at.time();
            holding.pending = Some(Box::new(ticket));
            Ok(Change::Ticket { expires_at })
        }
        (step, Issued::Token(token)) => {
            let ticket: Option<TicketPart> = match step {
                Step::Mint => None,
                Step::RefreshCurrent => holding.current.as_ref().and_then(|c| c.ticket.clone()),
                Step::RefreshPending => holding.pending.as_deref().cloned(),
            };
            let token = capped_token(token, ticket.as_ref(), credentials_expire);
            if token.expires_at <= now.wall {
                return Err(malformed("the new token is already expired (is the host clock right?)"));
            }
            too_short("token", until(now.wall, token.expires_at.time()))?;
            let generation = holding.generation() + 1;
            let expires_at = token.expires_at.time();
            let new_ticket = step == Step::RefreshPending;
            if new_ticket {
                holding.pending = None;
            }
            // Its life left counts in monotonic time too, from now: a wall clock set back later
            // cannot stretch it.
            let expires_mono = Some(now.mono_at(token.expires_at.time()));
            let current = Current { ticket, token, generation, refreshed_at: now.wall.into(), expires_mono };
            let replaced = holding.current.replace(current);
            Ok(Change::Token { generation, expires_at, new_ticket, replaced })
        }
        (_, Issued::Ticket(_)) => Err(malformed("a ticket came back where a token was expected")),
    }
}

/// A new `what` living only `life` is refused: see [`MIN_USEFUL_LIFE`].
fn too_short(what: &str, life: Duration) -> Result<(), ProviderError> {
    if life >= MIN_USEFUL_LIFE {
        return Ok(());
    }
    let detail = format!(
        "the new {what} expires in {} (after capping by its ticket and keys); at least {} is needed to be of use",
        humantime::format_duration(Duration::from_millis(life.as_millis() as u64)),
        humantime::format_duration(MIN_USEFUL_LIFE)
    );
    Err(ProviderError::Malformed { api: "API call", detail })
}

fn capped_token(
    mut token: TokenPart,
    ticket: Option<&TicketPart>,
    credentials_expire: Option<SystemTime>,
) -> TokenPart {
    token.expires_at = cap(
        token.expires_at,
        [crate::jwt::expiry(token.value.expose()), ticket.map(|t| t.expires_at.time()), credentials_expire],
    );
    token
}

fn cap<const N: usize>(t: Stamp, limits: [Option<SystemTime>; N]) -> Stamp {
    limits.into_iter().flatten().map(Stamp::from).fold(t, Stamp::min)
}

/// Drop what can no longer be used: an expired token (and its ticket) or pending ticket.
fn usable(mut holding: Holding, now: Now) -> Holding {
    if holding
        .current
        .as_ref()
        .is_some_and(|c| !c.is_valid(now) && c.ticket.as_ref().is_none_or(|t| t.expires_at <= now.wall))
    {
        holding.current = None;
    }
    if holding.pending.as_ref().is_some_and(|p| p.expires_at <= now.wall) {
        holding.pending = None;
    }
    holding
}

/// The ticket's next step and when it is due, on the wall clock as it reads at `now`. A token
/// whose monotonic expiry comes before its stated one (the wall clock was set back) is planned
/// by the earlier.
fn plan(ticket: &Ticket, now: Now) -> timing::Plan {
    let early =
        ticket.holding.current.as_ref().map_or(Duration::ZERO, |c| {
            c.token.expires_at.time().duration_since(c.expiry(now)).unwrap_or(Duration::ZERO)
        });
    timing::plan(&ticket.holding, lifecycle(&ticket.spec), now.wall, ticket.jitter(), early)
}

/// The monotonic time a queue key or [`Ticket::next_at`](crate::board::Ticket) stands for; 0
/// stands for none.
fn from_key(key: u64) -> Option<Mono> {
    (key != 0).then(|| Mono::from_nanos(key))
}

fn lifecycle(spec: &TicketSpec) -> Lifecycle {
    match &spec.api {
        ApiSpec::Sls(sls) => Lifecycle::TicketAndToken { renew_before: sls.ticket_renew_before },
        ApiSpec::Dsw(_) => Lifecycle::SingleCall,
        ApiSpec::Tcr(tcr) => match tcr.token_type {
            crate::config::TcrTokenType::Temp => Lifecycle::SingleCall,
            crate::config::TcrTokenType::LongTerm => {
                Lifecycle::LongTerm { renew_before: timing::LONGTERM_RENEW_BEFORE }
            }
        },
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(if d.is_zero() { 0 } else { 1 }))
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod revocation_tests;
#[cfg(test)]
pub(crate) mod tests;
