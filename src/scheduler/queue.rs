//! The queue of deadlines: each ticket waits in it for the monotonic time of its next step.
//!
//! A ticket rescheduled before its slot comes up leaves a stale slot behind; a slot is live
//! while its ticket is queued for that very time. Stale slots are skipped at the head and swept
//! out once they outnumber the tickets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::board::{Table, TicketId};
use crate::clock::{Mono, Now};
use crate::scheduler::apply::plan;

/// Deadlines (a [`Mono`]'s nanoseconds) and whose they are.
pub(crate) struct Queue {
    heap: BinaryHeap<Reverse<(u64, TicketId)>>,
}

impl Queue {
    pub(crate) fn with_capacity(tickets: usize) -> Self {
        Queue { heap: BinaryHeap::with_capacity(tickets) }
    }

    /// Queue ticket `id` for monotonic time `at`.
    pub(crate) fn schedule_at(&mut self, table: &mut Table, id: TicketId, at: Mono) {
        let Some(ticket) = table.get_mut(id) else { return };
        ticket.queued_at(at.nanos());
        self.heap.push(Reverse((at.nanos(), id)));
        table.touch();
    }

    /// Queue ticket `id` for its plan's time at `now`.
    pub(crate) fn reschedule(&mut self, table: &mut Table, id: TicketId, now: Now) {
        let Some(ticket) = table.get(id) else { return };
        let planned = now.mono_at(plan(ticket, now).at);
        // A step due at once (the first token of a ticket just minted) keeps the ticket's place in
        // line, ahead of tickets that fell due after it. Otherwise 100,000 tickets loaded at once
        // would all be minted before the first got its token, each holding a pending ticket.
        let at = match from_key(ticket.queue_key()) {
            Some(was) if planned <= now.mono => was.min(planned),
            _ => planned,
        };
        self.schedule_at(table, id, at);
    }

    /// The earliest live deadline, dropping stale slots on the way.
    pub(crate) fn head(&mut self, table: &Table) -> Option<Mono> {
        // Drop stale slots from the head so the loop never wakes for nothing.
        while let Some(&Reverse((key, id))) = self.heap.peek() {
            if is_live(table, key, id) {
                break;
            }
            self.heap.pop();
        }
        // Stale slots deeper down (tickets rescheduled before their slot came up) are swept out
        // once they outnumber the tickets, so the queue stays about one slot per ticket.
        if self.heap.len() > 2 * table.len() + 64 {
            self.heap.retain(|&Reverse((key, id))| is_live(table, key, id));
        }
        self.heap.peek().map(|&Reverse((key, _))| Mono::from_nanos(key))
    }

    /// Take the next ticket due at `now` off the queue (no longer queued), skipping stale slots.
    pub(crate) fn pop_due(&mut self, table: &mut Table, now: Mono) -> Option<TicketId> {
        while let Some(&Reverse((key, id))) = self.heap.peek() {
            if key > now.nanos() {
                return None;
            }
            self.heap.pop();
            if let Some(ticket) = table.get_mut(id).filter(|t| t.waits_on(key)) {
                ticket.dequeued();
                return Some(id);
            }
        }
        None
    }
}

/// Whether the queue slot `(key, id)` is the one its ticket waits on.
fn is_live(table: &Table, key: u64, id: TicketId) -> bool {
    table.get(id).is_some_and(|ticket| ticket.waits_on(key))
}

/// The monotonic time a queue key or [`Ticket::next_at`](crate::board::Ticket) stands for; 0
/// stands for none.
pub(crate) fn from_key(key: u64) -> Option<Mono> {
    (key != 0).then(|| Mono::from_nanos(key))
}
