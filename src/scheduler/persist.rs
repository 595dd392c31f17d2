//! What the state records for each ticket (never ahead of the sinks), saved on a schedule:
//! debounced, mints at once, slow saves spaced out.

use std::time::Duration;

use crate::board::{Board, Table, Ticket, TicketId};
use crate::clock::Mono;
use crate::store::contract::Store;
use crate::store::record::{Snapshot, StoredTicketRef, identity};

/// Token changes are saved to the state file at most this late (mints are saved at once), unless
/// the last save was slow: see `SAVE_SPACING`.
pub const SAVE_DEBOUNCE: Duration = Duration::from_millis(500);
/// After a save that took `d` ([`SLOW_SAVE`] or more: a state of many thousand tickets), the next
/// waits at least `d * SAVE_SPACING`, so saving takes at most a tenth of the loop's time.
const SAVE_SPACING: u32 = 9;
/// Saves faster than this (a small state, an fsync) are never spaced: mints stay saved at once.
const SLOW_SAVE: Duration = Duration::from_millis(20);

/// When the next save is due.
#[derive(Default)]
pub(crate) struct Saves {
    /// The next save, if one is due.
    pub(crate) at: Option<Mono>,
    /// No save before this (see [`SAVE_SPACING`]).
    floor: Option<Mono>,
}

impl Saves {
    /// Save at `at`, or at the earliest a save may come.
    pub(crate) fn soon(&mut self, at: Mono) {
        let at = self.floor.map_or(at, |floor| at.max(floor));
        self.at = Some(self.at.map_or(at, |s| s.min(at)));
    }

    /// Save at `at`, not spaced (calls wait on it).
    pub(crate) fn at_once(&mut self, at: Mono) {
        self.at = Some(at);
    }

    /// Save what `board` holds now to `store`; `now` reads the monotonic clock.
    pub(crate) fn save(&mut self, board: &Board, store: &dyn Store, now: impl Fn() -> Mono) -> bool {
        self.at = None;
        let started = std::time::Instant::now();
        let result = {
            let table = board.table();
            let records = records(&table);
            let (revocations, unconfirmed) = {
                let queue = board.revocations();
                (queue.saved(), queue.unconfirmed())
            };
            let tickets = |visit: &mut dyn FnMut(&str, &StoredTicketRef<'_>)| {
                for ticket in records.iter().map(|&id| record_of(&table, id)) {
                    visit(ticket.name(), &record(ticket));
                }
            };
            store.save_all(&Snapshot { tickets: &tickets, revocations: &revocations, unconfirmed: &unconfirmed })
        };
        // A large state (100,000 tickets) takes a while to write: space saves so that writing
        // takes at most a tenth of the loop's time. Small states never notice.
        let took = started.elapsed();
        let now = now();
        self.floor = (took >= SLOW_SAVE).then(|| now + took * SAVE_SPACING);
        if let Err(e) = &result {
            tracing::error!(error = %e, "cannot save state; retrying");
            self.soon(now + Duration::from_secs(5));
        }
        result.is_ok()
    }
}

/// The state file's records, in name order: their ids, sorted (4 bytes a ticket, not an 8-byte
/// reference: at 100,000 tickets this is the largest passing allocation of a save).
pub(crate) fn records(table: &Table) -> Vec<TicketId> {
    let mut ids: Vec<TicketId> = table.iter().map(|(id, _)| id).collect();
    ids.sort_unstable_by_key(|&id| record_of(table, id).name());
    ids
}

pub(crate) fn record_of(table: &Table, id: TicketId) -> &Ticket {
    table.get(id).expect("an id read from the table under the same lock")
}

/// What the state file records for a ticket. State never runs ahead of the sinks: an unpublished
/// token is recorded once written; meanwhile the last written one (and its ticket) stays on
/// record, and a new ticket not yet in the sinks is recorded as pending, so a crash never loses
/// it.
pub(crate) fn record(ticket: &Ticket) -> StoredTicketRef<'_> {
    let mut holding = std::borrow::Cow::Borrowed(ticket.holding());
    if ticket.unpublished() && !ticket.spec().sinks.is_empty() {
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
    StoredTicketRef { kind: ticket.spec().kind().as_str(), identity: identity(ticket.spec()), holding }
}

/// What the state file holds now (tests look at it).
#[cfg(test)]
pub(crate) fn snapshot(board: &Board) -> crate::store::record::StateFile {
    let table = board.table();
    let tickets = records(&table).into_iter().map(|id| {
        let ticket = record_of(&table, id);
        let record = record(ticket);
        let stored = crate::store::record::StoredTicket {
            kind: record.kind.to_string(),
            identity: record.identity,
            holding: record.holding.into_owned(),
        };
        (ticket.name().to_string(), stored)
    });
    let queue = board.revocations();
    crate::store::record::StateFile {
        version: 1,
        tickets: tickets.collect(),
        revocations: queue.saved(),
        unconfirmed: queue.unconfirmed(),
    }
}
