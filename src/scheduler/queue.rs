//! The queue of deadlines: each ticket waits in it for the monotonic time of its next step.
//!
//! A ticket rescheduled before its slot comes up leaves a stale slot behind; a slot is live
//! while its ticket is queued for that very time. Stale slots are skipped at the head and swept
//! out when the queue is full, before it would grow: it grows only when a sweep leaves less
//! than a quarter of it free, so it stays within 1.25 slots a ticket (12 bytes a slot; doubling
//! at 100,000 tickets held 3.2 MB at 16 bytes a slot).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::board::{Table, TicketId};
use crate::clock::{Mono, Now};
use crate::scheduler::apply::plan;

/// Deadlines (a [`Mono`]'s nanoseconds) and whose they are.
pub(crate) struct Queue {
    heap: BinaryHeap<Reverse<Slot>>,
}

/// A deadline's key and its ticket, in 12 bytes (a `(u64, u32)` takes 16, its padding 0.4 MB at
/// 100,000 tickets): ordered by the key, then the ticket.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    key_high: u32,
    key_low: u32,
    id: TicketId,
}

impl Slot {
    fn new(key: u64, id: TicketId) -> Slot {
        Slot { key_high: (key >> 32) as u32, key_low: key as u32, id }
    }

    fn key(self) -> u64 {
        (u64::from(self.key_high) << 32) | u64::from(self.key_low)
    }
}

impl Queue {
    pub(crate) fn with_capacity(tickets: usize) -> Self {
        Queue { heap: BinaryHeap::with_capacity(tickets) }
    }

    /// Queue ticket `id` for monotonic time `at`.
    pub(crate) fn schedule_at(&mut self, table: &mut Table, id: TicketId, at: Mono) {
        let Some(ticket) = table.get_mut(id) else { return };
        ticket.queued_at(at.nanos());
        if self.heap.len() == self.heap.capacity() {
            self.make_room(table);
        }
        self.heap.push(Reverse(Slot::new(at.nanos(), id)));
        table.touch();
    }

    /// The queue is full: sweep the stale slots out, and grow (to a quarter more than the live
    /// slots, never doubling) only if that left less than a quarter free. So a sweep comes at
    /// most once per quarter of the queue's pushes, and costs one pass over it.
    fn make_room(&mut self, table: &Table) {
        self.heap.retain(|&Reverse(slot)| is_live(table, slot.key(), slot.id));
        let wanted = self.heap.len() + self.heap.len() / 4 + 64;
        if wanted > self.heap.capacity() {
            self.heap.reserve_exact(wanted - self.heap.len());
        }
    }

    /// Slots the queue has room for (tests look at it).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.heap.capacity()
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
        while let Some(&Reverse(slot)) = self.heap.peek() {
            if is_live(table, slot.key(), slot.id) {
                break;
            }
            self.heap.pop();
        }
        self.heap.peek().map(|&Reverse(slot)| Mono::from_nanos(slot.key()))
    }

    /// Take the next ticket due at `now` off the queue (no longer queued), skipping stale slots.
    pub(crate) fn pop_due(&mut self, table: &mut Table, now: Mono) -> Option<TicketId> {
        while let Some(&Reverse(slot)) = self.heap.peek() {
            let (key, id) = (slot.key(), slot.id);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::board::Ticket;
    use crate::token::Holding;

    #[test]
    fn a_slot_is_twelve_bytes_and_orders_by_its_key_then_its_ticket() {
        assert_eq!(size_of::<Reverse<Slot>>(), 12);
        let keys = [0, 1, u64::from(u32::MAX), 1 << 32, (1 << 32) + 1, u64::MAX - 1];
        for pair in keys.windows(2) {
            assert!(Slot::new(pair[0], 9) < Slot::new(pair[1], 0), "{pair:?}");
            assert_eq!(Slot::new(pair[1], 3).key(), pair[1]);
        }
        assert!(Slot::new(5, 1) < Slot::new(5, 2));
    }

    /// Tickets rescheduled over and over, before their slots come up, leave stale slots: the
    /// queue sweeps them out instead of growing, and still hands out every live slot in order.
    #[test]
    fn stale_slots_are_swept_out_before_the_queue_grows() {
        let hour = Duration::from_secs(3600);
        let mut table = Table::default();
        let ids: Vec<TicketId> = (0..1000)
            .map(|i| {
                let spec = crate::testing::sls_ticket(&format!("t{i}"), 24 * hour, hour);
                table.insert(Ticket::new(spec, Holding::default(), 1, 0))
            })
            .collect();
        let mut queue = Queue::with_capacity(ids.len());
        for round in 1..=20u64 {
            for (i, &id) in ids.iter().enumerate() {
                queue.schedule_at(&mut table, id, Mono::from_nanos(round * 1_000_000 + i as u64));
            }
            assert!(
                queue.capacity() <= ids.len() + ids.len() / 4 + 64,
                "round {round}: {} slots for {} tickets",
                queue.capacity(),
                ids.len()
            );
        }
        // Each ticket's last slot is the one handed out, in deadline order, and nothing else.
        let mut due = Vec::new();
        while let Some(id) = queue.pop_due(&mut table, Mono::from_nanos(u64::MAX)) {
            due.push(id);
        }
        assert_eq!(due, ids, "every ticket once, in the order of its last deadline");
        assert_eq!(queue.head(&table), None);
    }
}
