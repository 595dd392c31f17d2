//! The saved state taken back at start: each saved record matched to its ticket of the config as
//! it is read, so that a big state is never held whole beside the board.
//!
//! A state of 100,000 tickets parsed whole is ~37 MiB of records (names, kinds, identities, the
//! map) on top of the secrets, all alive while the board fills: the restart's peak. Here the
//! config's tickets are placed on the board first; then each record is checked against its ticket
//! as the store reads it, and only its holding is kept, in the ticket itself (its secrets stay
//! where they were read to, in the pool). The tickets are scheduled once all are restored.

use std::collections::HashSet;

use crate::board::Table;
use crate::clock::Now;
use crate::scheduler::apply;
use crate::scheduler::revoke::kept_active;
use crate::store::record::{StoredTicket, identity};
use crate::token::Holding;

/// The board's tickets (just placed, not yet scheduled) taking their saved holdings, record by
/// record: each goes straight to its ticket, so nothing is staged beside the board (a staging
/// list by config position and a name index held +16 MiB at 100,000 tickets).
pub(crate) struct Restore<'a> {
    table: &'a mut Table,
    /// The long-term tokens (TCR `TokenId`s) saved tickets hold, in the config or not.
    held: HashSet<String>,
    now: Now,
}

impl<'a> Restore<'a> {
    /// Restore into `table`, which holds the config's tickets and nothing else.
    pub(crate) fn new(table: &'a mut Table, now: Now) -> Restore<'a> {
        Restore { table, held: HashSet::new(), now }
    }

    /// One saved record: its ticket takes it while it was obtained for the same target (a later
    /// record of the same name replaces an earlier one).
    pub(crate) fn offer(&mut self, name: String, stored: StoredTicket) {
        let current = stored.holding.current.as_ref();
        if let Some(token_id) = current.and_then(|c| c.token.token_id.as_deref()) {
            self.held.insert(token_id.to_string());
        }
        let Some(id) = self.table.id(&name) else {
            // A consumer may still use its token.
            return kept_active(&name, current, "it is no longer in the config");
        };
        match self.table.get_mut(id) {
            Some(ticket) if stored.identity == identity(ticket.spec()) => {
                *ticket.holding_mut() = apply::usable(stored.holding, self.now);
            }
            _ => kept_active(&name, current, "its target changed"),
        }
    }

    /// Forget every record offered so far (they came from a state set aside as corrupt).
    pub(crate) fn discard(&mut self) {
        for ticket in self.table.tickets_mut() {
            *ticket.holding_mut() = Holding::default();
        }
        self.held.clear();
    }

    /// The long-term tokens the saved tickets hold.
    pub(crate) fn finish(self) -> HashSet<String> {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::board::Ticket;
    use crate::config::{ApiSpec, TicketSpec};
    use crate::secret::Secret;
    use crate::token::{Current, TokenPart};

    const HOUR: Duration = Duration::from_secs(3600);

    fn spec(name: &str) -> TicketSpec {
        crate::scheduler::tests::sls_ticket(name, 24 * HOUR, HOUR)
    }

    fn record(spec: &TicketSpec, now: SystemTime, generation: u64) -> StoredTicket {
        let token = TokenPart {
            value: Secret::new("restored token"),
            username: None,
            token_id: Some(format!("id-{}-{generation}", spec.name).into()),
            issued_at: now.into(),
            expires_at: (now + HOUR).into(),
        };
        let current = Current { ticket: None, token, generation, refreshed_at: now.into(), expires_mono: None };
        StoredTicket {
            kind: "sls".into(),
            identity: identity(spec),
            holding: Holding { current: Some(current), pending: None },
        }
    }

    fn generation(table: &Table, name: &str) -> Option<u64> {
        table.by_name(name)?.holding().current.as_ref().map(|c| c.generation)
    }

    /// Each record's holding is in its board ticket as soon as it is offered (nothing is staged
    /// beside the board); records for another target or for no ticket of the config change
    /// nothing but the long-term tokens held; a later record replaces an earlier one.
    #[test]
    fn each_record_goes_straight_to_its_board_ticket_as_it_is_offered() {
        let now = crate::clock::Clock::read(&crate::clock::SystemClock);
        let mut table = Table::default();
        for name in ["a", "b", "moved"] {
            table.insert(Ticket::new(spec(name), Holding::default(), 1, 0));
        }
        let mut moved = spec("moved");
        let ApiSpec::Sls(sls) = &mut moved.api else { unreachable!("an sls ticket") };
        sls.endpoint.base = url::Url::parse("https://cn-beijing.log.aliyuncs.com").unwrap();
        let mut restore = Restore::new(&mut table, now);
        restore.offer("a".into(), record(&spec("a"), now.wall, 3));
        assert_eq!(generation(restore.table, "a"), Some(3), "the first record is on the board at once");
        assert_eq!(generation(restore.table, "b"), None);
        restore.offer("b".into(), record(&spec("b"), now.wall, 1));
        restore.offer("a".into(), record(&spec("a"), now.wall, 4));
        restore.offer("moved".into(), record(&moved, now.wall, 7));
        restore.offer("gone".into(), record(&spec("gone"), now.wall, 9));
        assert_eq!(
            ["a", "b", "moved"].map(|n| generation(restore.table, n)),
            [Some(4), Some(1), None],
            "a later record replaces an earlier one; another target's is not taken"
        );
        assert!(restore.table.by_name("gone").is_none(), "a record of no ticket adds none");
        let held = restore.finish();
        let mut held: Vec<_> = held.into_iter().collect();
        held.sort();
        assert_eq!(held, ["id-a-3", "id-a-4", "id-b-1", "id-gone-9", "id-moved-7"]);
    }

    #[test]
    fn a_discarded_state_leaves_every_ticket_without_a_holding() {
        let now = crate::clock::Clock::read(&crate::clock::SystemClock);
        let mut table = Table::default();
        table.insert(Ticket::new(spec("a"), Holding::default(), 1, 0));
        let mut restore = Restore::new(&mut table, now);
        restore.offer("a".into(), record(&spec("a"), now.wall, 3));
        restore.discard();
        assert!(restore.finish().is_empty());
        assert_eq!(generation(&table, "a"), None);
    }
}
