//! The scheduler's own bookkeeping beside the board: the queue, epochs, randomness, the tasks
//! and their report channel, the saves due, the tickets awaiting a save, and the event feed.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, mpsc};
use tokio_util::task::TaskTracker;

use crate::board::{Table, Ticket, TicketId};
use crate::clock::{Mono, Now};
use crate::config::{Scope, TicketSpec};
use crate::scheduler::persist::Saves;
use crate::scheduler::publish::publish;
use crate::scheduler::queue::Queue;
use crate::scheduler::reports::{Event, Message};
use crate::token::Holding;

/// At most this many API calls run at once.
pub const MAX_IN_FLIGHT: usize = 64;
/// At most this many tickets just minted wait for the state save before their first token call;
/// then no call starts until the save, which then comes at once (not spaced: calls wait on it).
/// Bounds the tickets holding a pending ticket at once, and lets a start with 100,000 tickets
/// mint about this many per save (a save of that state takes about half a second).
pub const MAX_AWAITING_SAVE: usize = 16 * MAX_IN_FLIGHT;

/// A subscriber that falls this many events behind misses the oldest (`RecvError::Lagged`).
const EVENTS: usize = 4096;

pub(crate) struct Core {
    pub(crate) queue: Queue,
    /// The last epoch handed out: every ticket added or retargeted gets a new one, so a result
    /// for a ticket that was removed or replaced is never applied to another.
    epochs: u32,
    pub(crate) rng: StdRng,
    /// The event feed, made when it is first subscribed to: events sent before have no receiver
    /// and are dropped either way, and the daemon itself subscribes to none (its ring of
    /// [`EVENTS`] slots held 0.8 MB).
    events: std::sync::OnceLock<broadcast::Sender<Event>>,
    /// Where call tasks and sink writers report (see [`Message`]), and the tasks themselves.
    pub(crate) tx: mpsc::UnboundedSender<Message>,
    pub(crate) calls: TaskTracker,
    pub(crate) saves: Saves,
    /// Tickets just minted (with their epochs) whose first token is asked for only once the state
    /// file holds the new ticket: a crash meanwhile never loses it (and mints again).
    pub(crate) awaiting_save: HashMap<TicketId, u32>,
    /// The start-up republish of the fleet's tickets, held until etcd's holdings are loaded.
    pub(crate) held: HeldRepublish,
}

/// In a fleet, the start-up republish of cluster-scoped tickets, held back until the fleet's
/// first load of etcd's holdings has been applied, or until a bound (issue #19).
///
/// Token saves are debounced ([`crate::scheduler::SAVE_DEBOUNCE`]): a node killed inside that
/// window restarts from a state older than what its sinks hold. Rewriting the sinks from that
/// state at once stepped their generation back (2, then 1, then the fleet's 2 again). Held here,
/// the ticket first adopts what etcd holds (published as any adoption); only a ticket still
/// holding its saved generation then is written again (the sinks may be missing after a reboot).
#[derive(Default)]
pub(crate) struct HeldRepublish {
    /// When the held tickets are written anyway (etcd did not answer): `None` once released.
    pub(crate) until: Option<Mono>,
    /// Held tickets, under their epoch, with the generation restored from the state.
    tickets: HashMap<TicketId, (u32, u64)>,
}

impl Core {
    /// Bookkeeping for about `tickets` tickets, its randomness from `seed`; and the receiving end
    /// of the report channel.
    pub(crate) fn new(seed: u64, tickets: usize) -> (Core, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let core = Core {
            queue: Queue::with_capacity(tickets),
            epochs: 0,
            rng: StdRng::seed_from_u64(seed),
            events: std::sync::OnceLock::new(),
            tx,
            calls: TaskTracker::new(),
            saves: Saves::default(),
            awaiting_save: HashMap::new(),
            held: HeldRepublish::default(),
        };
        (core, rx)
    }

    pub(crate) fn next_epoch(&mut self) -> u32 {
        self.epochs = self.epochs.wrapping_add(1);
        self.epochs
    }

    /// Write the sinks of ticket `id` in the background (see [`publish`]).
    pub(crate) fn publish(&self, table: &mut Table, id: TicketId) {
        publish(table, id, &self.tx, &self.calls);
    }

    /// Add ticket `spec`, holding `holding`, and queue it.
    pub(crate) fn insert(&mut self, table: &mut Table, spec: TicketSpec, holding: Holding, now: Now) -> TicketId {
        let id = self.place(table, spec, holding);
        self.start(table, id, now, None);
        id
    }

    /// Add ticket `spec`, holding `holding`, without queueing it yet ([`Core::start`] does).
    pub(crate) fn place(&mut self, table: &mut Table, spec: TicketSpec, holding: Holding) -> TicketId {
        let ticket = Ticket::new(spec, holding, self.next_epoch(), self.rng.random());
        let id = table.insert(ticket);
        table.touch();
        id
    }

    /// Queue ticket `id`, placed with its holding; whether it holds a token valid at `now`. In a
    /// fleet (`fleet_bound`: how long to wait for etcd's holdings, a lease TTL), a cluster-scoped
    /// ticket's republish waits for the fleet's load ([`Core::release_held`]).
    pub(crate) fn start(&mut self, table: &mut Table, id: TicketId, now: Now, fleet_bound: Option<Duration>) -> bool {
        let Some(ticket) = table.get_mut(id) else { return false };
        let has_current = ticket.holding().valid_token(now).is_some();
        match fleet_bound.filter(|_| ticket.spec().scope == Scope::Cluster) {
            Some(bound) if has_current => {
                self.held.tickets.insert(id, (ticket.epoch(), ticket.holding().generation()));
                self.held.until.get_or_insert(now.mono + bound);
            }
            // Sinks may be stale or missing after a restart: write them once.
            _ if has_current => {
                ticket.mark_unpublished();
                self.publish(table, id);
            }
            _ => {}
        }
        self.queue.reschedule(table, id, now);
        has_current
    }

    /// The fleet's holdings were loaded (or `HeldRepublish::until` passed: `why` says which): a
    /// held ticket that still holds its saved generation is written to its sinks now; one that
    /// took a newer holding meanwhile was published with it (and is not written back).
    pub(crate) fn release_held(&mut self, table: &mut Table, now: Now, why: &'static str) {
        if self.held.until.take().is_none() {
            return;
        }
        let mut written = 0usize;
        for (id, (epoch, generation)) in std::mem::take(&mut self.held.tickets) {
            let Some(ticket) = table.get_mut(id).filter(|t| t.epoch() == epoch) else { continue };
            let holding = ticket.holding();
            if holding.generation() != generation || holding.valid_token(now).is_none() {
                continue;
            }
            written += 1;
            ticket.mark_unpublished();
            self.publish(table, id);
        }
        tracing::info!(tickets = written, why, "writing the sinks of the fleet's tickets from the saved state");
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.get_or_init(|| broadcast::channel(EVENTS).0).subscribe()
    }

    pub(crate) fn emit(&self, event: Event) {
        if let Some(events) = self.events.get() {
            let _ = events.send(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon subscribes to no events: no ring is made for them (0.8 MB at 4,096 slots);
    /// a subscriber gets every event sent after it subscribed, as before.
    #[test]
    fn the_event_feed_is_made_when_first_subscribed_to() {
        let (core, _rx) = Core::new(1, 10);
        core.emit(Event::Published { name: "before".into(), generation: 1 });
        assert!(core.events.get().is_none(), "no ring before a subscriber");
        let mut events = core.subscribe();
        core.emit(Event::Published { name: "after".into(), generation: 2 });
        assert!(matches!(events.try_recv(), Ok(Event::Published { name, generation: 2 }) if name == "after"));
        assert!(events.try_recv().is_err(), "nothing else: the event sent before the subscription is not seen");
    }
}
