//! The scheduler's loop: it sleeps until the earliest deadline, starts the due calls as tasks of
//! their own, and alone folds their results (and the sink writers' reports) into the board.
//!
//! Deadlines are planned from wall-clock expiries but waited for in monotonic time, so a step of
//! the wall clock never moves a wait. The loop compares the two clocks on every wake, and at least
//! every [`WALL_CLOCK_RECHECK`]: when the wall clock stepped (either way), every ticket is planned
//! again at once. A slow cloud never stalls other tickets. Results come back to the loop, which
//! alone changes holdings, then sinks are written, then state is saved. A failed call changes
//! nothing but the retry time: the last good token stays.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::apis::Provider;
use crate::board::{Board, Table, TicketId};
use crate::clock::{Clock, Mono, Now, until};
use crate::cluster::link::{FleetEvent, FleetLink};
use crate::config::TicketSpec;
use crate::credentials::CredentialStore;
use crate::scheduler::apply::{self, call_timeout, plan};
use crate::scheduler::call::{self, Call};
use crate::scheduler::core::{Core, MAX_AWAITING_SAVE, MAX_IN_FLIGHT};
use crate::scheduler::fenced::{self, Admit, Then};
use crate::scheduler::fleet::{self, Fleet};
use crate::scheduler::handle::{self, Written};
use crate::scheduler::reload::{self, ReloadPlan, ReloadSummary};
use crate::scheduler::reports::{CallReport, Event, Message};
use crate::scheduler::restore::Restore;
use crate::scheduler::timing::Step;
use crate::store::contract::Store;
use crate::store::record::StateFile;
#[cfg(test)]
use crate::token::Holding;

/// The loop compares the wall clock with the monotonic one at least this often, even with nothing
/// due.
pub const WALL_CLOCK_RECHECK: Duration = Duration::from_secs(300);
/// A wall clock that moved against the monotonic one by this much or more between two looks
/// stepped (NTP slews at most 0.5 ms a second: 150 ms in [`WALL_CLOCK_RECHECK`]).
pub const CLOCK_STEP: Duration = crate::clock::CLOCK_STEP;
/// At shutdown, in-flight calls get this long to finish so their results are not lost.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Requests to the running loop.
pub enum Command {
    /// Apply a new, already validated set of tickets and credentials (reload).
    Reconfigure { tickets: Vec<TicketSpec>, credentials: CredentialStore, reply: oneshot::Sender<ReloadSummary> },
    /// What the fleet's task saw in etcd: a holding to adopt, or this node's new role (see
    /// [`FleetEvent`]). Ignored by a scheduler without [`Parts::fleet`].
    Fleet(FleetEvent),
}

/// Liveness pings from the loop itself (systemd `WATCHDOG=1`): a stuck loop stops pinging.
#[derive(Clone)]
pub struct Watchdog {
    pub interval: Duration,
    pub ping: Arc<dyn Fn() + Send + Sync>,
}

/// Everything the scheduler needs from outside.
pub struct Parts {
    pub clock: Arc<dyn Clock>,
    pub provider: Arc<dyn Provider>,
    pub credentials: CredentialStore,
    /// Where the state is saved (locked by its holder).
    pub store: Arc<dyn Store>,
    /// Where the scheduler keeps its tickets, for readers to see.
    pub board: Arc<Board>,
    pub watchdog: Option<Watchdog>,
    /// Told each time all sinks of a ticket with an `on_change` hook hold a new generation.
    pub changed: Option<mpsc::UnboundedSender<crate::sinks::notify::Changed>>,
    pub seed: u64,
    /// The fleet (`[cluster]`): cluster-scoped tickets are called only as its gate allows and
    /// written through its fence before they are published. `None`: one host, as ever.
    pub fleet: Option<Arc<dyn FleetLink>>,
}

pub struct Scheduler {
    pub(crate) parts: Parts,
    pub(crate) core: Core,
    rx: mpsc::UnboundedReceiver<Message>,
    /// How far the wall clock was ahead of the monotonic one when the loop last looked
    /// ([`Now::wall_offset`]): a change of [`CLOCK_STEP`] or more is a step of the wall clock.
    pub(crate) wall_offset: Option<i128>,
    pub(crate) in_flight: usize,
    /// The fleet's state in the scheduler, with [`Parts::fleet`].
    pub(crate) fleet: Option<Fleet>,
}

impl Scheduler {
    /// A scheduler for `tickets`, starting from `saved` state: holdings whose identity still
    /// matches the config are reused.
    pub fn new(parts: Parts, tickets: Vec<TicketSpec>, mut saved: StateFile) -> Self {
        let records = std::mem::take(&mut saved.tickets);
        let restored = Self::starting(parts, tickets, |restore| {
            for (name, stored) in records {
                restore.offer(name, stored);
            }
            Ok::<_, std::convert::Infallible>((saved, ()))
        });
        match restored {
            Ok((scheduler, _)) => scheduler,
            Err(never) => match never {},
        }
    }

    /// [`Scheduler::new`] from the state saved in `store`, read record by record (each record's
    /// holding goes straight to its ticket on the board as it is read: a big state is never held
    /// whole, nor staged). Also answers where a corrupt state was set aside, and why.
    pub fn restore(
        parts: Parts,
        tickets: Vec<TicketSpec>,
        store: &dyn Store,
    ) -> Result<(Self, Option<(std::path::PathBuf, String)>), crate::store::StoreError> {
        let (scheduler, set_aside) = Self::starting(parts, tickets, |restore| {
            let loaded = store.load_each(&mut |name, stored| restore.offer(name, stored))?;
            if loaded.set_aside.is_some() {
                restore.discard();
            }
            Ok((loaded.state, loaded.set_aside))
        })?;
        Ok((scheduler, set_aside))
    }

    /// The scheduler, its board holding `tickets` with the holdings `load` restores (it answers
    /// the saved state's other parts, revocations and unconfirmed tokens, and an `R` of its own);
    /// then every ticket is queued.
    fn starting<R, E>(
        parts: Parts,
        tickets: Vec<TicketSpec>,
        load: impl FnOnce(&mut Restore<'_>) -> Result<(StateFile, R), E>,
    ) -> Result<(Self, R), E> {
        let (core, rx) = Core::new(parts.seed, tickets.len());
        let fleet = parts.fleet.clone().map(Fleet::new);
        let mut scheduler = Scheduler { parts, core, rx, wall_offset: None, in_flight: 0, fleet };
        let now = scheduler.parts.clock.read();
        let loaded = scheduler.with_table(|s, table| {
            table.reserve(tickets.len());
            let ids: Vec<TicketId> =
                tickets.into_iter().map(|spec| s.core.place(table, spec, crate::token::Holding::default())).collect();
            let mut restore = Restore::new(table, now);
            match load(&mut restore) {
                Ok(saved) => Ok((ids, saved, restore.finish())),
                Err(e) => {
                    for id in ids {
                        table.remove(id);
                    }
                    Err(e)
                }
            }
        });
        let (ids, (mut saved, rest), held) = loaded?;
        {
            let mut queue = scheduler.parts.board.revocations();
            for pending in std::mem::take(&mut saved.revocations) {
                queue.push(pending);
            }
        }
        let unconfirmed = std::mem::take(&mut saved.unconfirmed);
        let reused = scheduler.with_table(|s, table| {
            // Issue #19: a cluster-scoped ticket's sinks are written once etcd's holdings are in.
            let fleet_bound = s.fleet.as_ref().map(|fleet| fleet.link.standing().lease_ttl);
            let mut reused = 0usize;
            for id in ids {
                if let Some(ticket) = table.get(id).filter(|t| t.holding().current.is_some()) {
                    reused += 1;
                    let generation = ticket.holding().generation();
                    tracing::debug!(ticket = %ticket.name(), generation, "reusing the saved token");
                }
                s.core.start(table, id, now, fleet_bound);
                // A ticket with no sinks reports its (empty) write at once: take the report now,
                // not after all are started (100,000 waiting reports held ~10 MB at the restart).
                while let Ok(message) = s.rx.try_recv() {
                    s.handle_in(table, message);
                }
            }
            reused
        });
        if reused > 0 {
            tracing::info!(tickets = reused, "reusing the saved tokens");
        }
        crate::scheduler::revoke::forget_stale_revocations(&scheduler.parts.board);
        crate::scheduler::revoke::orphans(&scheduler.parts.board, unconfirmed, &held);
        Ok((scheduler, rest))
    }

    /// Subscribe to events.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.core.subscribe()
    }

    /// The board this scheduler keeps up to date.
    pub fn board(&self) -> Arc<Board> {
        self.parts.board.clone()
    }

    /// Change the board's table in `f`, then wake its readers if anything changed.
    pub(crate) fn with_table<R>(&mut self, f: impl FnOnce(&mut Self, &mut Table) -> R) -> R {
        let board = Arc::clone(&self.parts.board);
        let mut table = board.write();
        let result = f(self, &mut table);
        let touched = table.take_touched();
        drop(table);
        if touched {
            board.changed();
        }
        result
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
        }
        self.finish().await;
        self
    }

    /// The earliest of the queue's head and a pending state save.
    fn next_wake(&mut self) -> Option<Mono> {
        let head = {
            let table = self.parts.board.table();
            self.core.queue.head(&table)
        };
        // With every call slot taken, only a finished call (or a save) can make progress.
        let head = head.filter(|_| !self.slots_taken());
        [head, self.core.saves.at, self.core.held.until].into_iter().flatten().min()
    }

    fn fire_due(&mut self) {
        let now = self.parts.clock.read();
        if self.core.saves.at.is_some_and(|at| at <= now.mono) {
            self.save();
        }
        self.with_table(|s, table| {
            if s.core.held.until.is_some_and(|at| at <= now.mono) {
                s.core.release_held(table, now, "etcd's holdings did not come within a lease TTL");
            }
            // Calls beyond the limit stay queued (not spawned to wait): a burst of 100,000 due
            // tickets costs a queue slot each, not a task each. A finished call wakes the loop.
            while !s.slots_taken() {
                let Some(id) = s.core.queue.pop_due(table, now.mono) else { break };
                s.start(table, id, now);
            }
        });
    }

    /// No call may start: every call slot is taken, or [`MAX_AWAITING_SAVE`] tickets just minted
    /// wait for the save before their first token call.
    fn slots_taken(&self) -> bool {
        self.in_flight >= MAX_IN_FLIGHT || self.core.awaiting_save.len() >= MAX_AWAITING_SAVE
    }

    /// Do what is due for ticket `id`: republish, or call the API, or just reschedule.
    fn start(&mut self, table: &mut Table, id: TicketId, now: Now) {
        let Some(ticket) = table.get_mut(id) else { return };
        if ticket.in_flight() {
            return;
        }
        let plan = plan(ticket, now);
        // A ticket just minted is not used before it is saved: the save asks for its token.
        if plan.step == Step::RefreshPending && self.core.awaiting_save.get(&id) == Some(&ticket.epoch()) {
            return;
        }
        // A retry wake-up may come before the plan's time only after a failure; then retry now.
        if plan.at > now.wall && ticket.failures() == 0 {
            if ticket.unpublished() {
                self.core.publish(table, id);
            }
            self.core.queue.reschedule(table, id, now);
            return;
        }
        let op = apply::operation(plan.step, ticket.holding());
        let gated = match self.fleet.as_ref().map(|fleet| fenced::admit(fleet, id, ticket, &op, now)) {
            Some(Admit::Wait(at)) => return self.core.queue.schedule_at(table, id, at),
            Some(Admit::Call(gated)) => gated,
            None => None,
        };
        let epoch = ticket.epoch();
        let timeout = call_timeout(ticket.holding().valid(now).map(|c| until(now.wall, c.expiry(now))));
        ticket.call_started();
        self.in_flight += 1;
        tracing::debug!(ticket = %ticket.spec().name, step = ?plan.step, "calling the API");
        let spec = ticket.spec().clone();
        let step = plan.step;
        let report = CallReport { tx: self.core.tx.clone(), id, epoch, step, sent: false };
        let (store, clock, provider) =
            (self.parts.credentials.clone(), self.parts.clock.clone(), self.parts.provider.clone());
        call::spawn(&self.core.calls, store, clock, provider, Call { spec, op, timeout, report });
        if let (Some(gated), Some(fleet)) = (gated, self.fleet.as_mut()) {
            fleet.called(id, epoch, gated);
        }
    }

    fn handle(&mut self, message: Message) {
        self.with_table(|s, table| s.handle_in(table, message));
    }

    fn handle_in(&mut self, table: &mut Table, message: Message) {
        match message {
            Message::Called { id, epoch, step, result, credentials_expire } => {
                self.in_flight = self.in_flight.saturating_sub(1);
                let gated = self.fleet.as_mut().and_then(|fleet| fleet.returned(id, epoch));
                // Gone, or changed by a reload while this call was out: its call is already redone.
                let Some(ticket) = table.get_mut(id).filter(|t| t.epoch() == epoch) else { return };
                ticket.call_finished();
                let now = self.parts.clock.read();
                let result = match (gated, self.fleet.as_mut()) {
                    (Some(gated), Some(fleet)) => {
                        let out = (id, step, result, credentials_expire, gated);
                        match fenced::returned(fleet, &mut self.core, &self.parts.board, table, out, now) {
                            Then::Local(result) => result,
                            Then::Done => return,
                        }
                    }
                    _ => result,
                };
                let ticket = table.get_mut(id).expect("the ticket is on the board");
                let result =
                    result.and_then(|issued| apply::apply(ticket.holding_mut(), step, issued, credentials_expire, now));
                let board = &self.parts.board;
                match result {
                    Ok(change) => handle::succeeded(&mut self.core, board, table, id, change, now),
                    Err(e) => handle::failed(&mut self.core, board, table, id, e, now),
                }
            }
            Message::Published { id, epoch, generation, outcome } => {
                let now = self.parts.clock.read();
                let report = Written { epoch, generation, outcome };
                let (board, hooks) = (&self.parts.board, self.parts.changed.as_ref());
                handle::written(&mut self.core, board, hooks, table, id, report, now);
            }
            Message::Fenced(write) => {
                let now = self.parts.clock.read();
                if let Some(fleet) = self.fleet.as_mut() {
                    fenced::fenced(fleet, &mut self.core, &self.parts.board, table, *write, now);
                }
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Reconfigure { tickets, credentials, reply } => {
                let summary = self.with_table(|s, table| s.reconfigure(table, tickets, credentials));
                let _ = reply.send(summary);
            }
            Command::Fleet(event) => self.fleet_event(event),
        }
    }

    /// Apply what the fleet's task saw (see [`FleetEvent`]).
    fn fleet_event(&mut self, event: FleetEvent) {
        let now = self.parts.clock.read();
        self.with_table(|s, table| {
            let Some(fleet) = s.fleet.as_mut() else {
                return tracing::debug!("a fleet event for a scheduler without [cluster]: ignored");
            };
            match event {
                FleetEvent::Holding { ticket, stored, writer, revision } => {
                    let held = fleet::Held { name: ticket, stored: *stored, writer, revision };
                    fleet::adopt(fleet, &mut s.core, &s.parts.board, table, held, now);
                }
                FleetEvent::Loaded => s.core.release_held(table, now, "etcd's holdings are loaded"),
                FleetEvent::Role(role) => fleet::role_changed(fleet, &mut s.core, table, role, now),
                FleetEvent::Reread(rereads) => {
                    fleet::reread_done(fleet, &mut s.core, &s.parts.board, table, rereads, now);
                }
                FleetEvent::Applied(revision) => {
                    fleet.applied = fleet.applied.max(revision);
                    let board = &s.parts.board;
                    if board.revocations().fleet_applied(revision) {
                        board.revocations_changed().notify_one();
                    }
                }
            }
        });
    }

    /// Apply a reloaded config (see [`ReloadPlan`]).
    fn reconfigure(
        &mut self,
        table: &mut Table,
        tickets: Vec<TicketSpec>,
        credentials: CredentialStore,
    ) -> ReloadSummary {
        self.parts.credentials.replace(&credentials);
        let now = self.parts.clock.read();
        let plan = ReloadPlan::new(table, tickets, now);
        let summary = plan.summary();
        reload::apply(plan, &mut self.core, &self.parts.board, table, now);
        if let Some(fleet) = self.fleet.as_mut() {
            // A holding etcd handed on before these tickets were configured (or retargeted) here
            // was ignored then (review G5).
            let names = summary.added.iter().chain(&summary.replaced).chain(&summary.changed);
            let ids: Vec<_> = names.filter_map(|name| table.id(name)).collect();
            fleet.reread_unseen(table, ids, "the reload added or changed them");
        }
        summary
    }

    /// What ticket `name` holds now (tests look at it).
    #[cfg(test)]
    pub(crate) fn holding(&self, name: &str) -> Holding {
        self.parts.board.table().by_name(name).expect("the ticket is on the board").holding().clone()
    }

    /// Reports waiting in the loop's channel (tests look at it).
    #[cfg(test)]
    pub(crate) fn reports_waiting(&self) -> usize {
        self.rx.len()
    }

    /// What the state file holds now (tests look at it).
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> StateFile {
        crate::scheduler::persist::snapshot(&self.parts.board)
    }

    fn save(&mut self) {
        let clock = Arc::clone(&self.parts.clock);
        let saved = self.core.saves.save(&self.parts.board, self.parts.store.as_ref(), || clock.monotonic());
        self.release_saved(saved);
    }

    /// The tickets minted before a save may now get their first token. After a failed save too:
    /// waiting for the disk would leave them with no token at all.
    fn release_saved(&mut self, saved: bool) {
        if self.core.awaiting_save.is_empty() {
            return;
        }
        if !saved {
            tracing::warn!(
                tickets = self.core.awaiting_save.len(),
                "asking for the first token of tickets not saved yet"
            );
        }
        let now = self.parts.clock.read();
        let released = std::mem::take(&mut self.core.awaiting_save);
        self.with_table(|s, table| {
            for (id, epoch) in released {
                if table.get(id).is_some_and(|t| t.epoch() == epoch && !t.in_flight()) {
                    s.core.queue.reschedule(table, id, now);
                }
            }
        });
    }

    async fn finish(&mut self) {
        self.core.calls.close();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while self.in_flight > 0 || !self.core.calls.is_empty() {
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
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
