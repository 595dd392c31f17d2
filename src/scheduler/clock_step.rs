//! Noticing a step of the wall clock: every ticket is then planned again in its new frame.

use std::time::Duration;

use crate::board::{Table, TicketId};
use crate::clock::Now;
use crate::scheduler::apply::plan;
use crate::scheduler::event_loop::{CLOCK_STEP, Scheduler};
use crate::scheduler::queue::from_key;

impl Scheduler {
    /// Compare the clocks: when the wall clock stepped since the last look (either way, by
    /// [`CLOCK_STEP`] or more), every ticket is planned again at once, in the wall clock's new
    /// frame.
    pub(crate) fn watch_clock(&mut self) {
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
        let ids: Vec<TicketId> = table.iter().filter(|(_, t)| !t.in_flight()).map(|(id, _)| id).collect();
        for id in ids {
            let Some(ticket) = table.get(id) else { continue };
            if ticket.failures() > 0 {
                self.core.queue.schedule_at(table, id, now.mono);
                continue;
            }
            let planned = now.mono_at(plan(ticket, now).at);
            let at = match (ticket.unpublished() && ticket.queued()).then_some(ticket.queue_key()).and_then(from_key) {
                Some(retry) => retry.min(planned),
                None => planned,
            };
            self.core.queue.schedule_at(table, id, at);
        }
    }
}
