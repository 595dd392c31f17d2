//! The saved state taken back at start: each saved record matched to its ticket of the config as
//! it is read, so that a big state is never held whole beside the board.
//!
//! A state of 100,000 tickets parsed whole is ~37 MiB of records (names, kinds, identities, the
//! map) on top of the secrets, all alive while the board fills: the restart's peak. Here a record
//! is checked against its ticket as the store reads it, and only its holding is kept (its secrets
//! stay where they were read to, in the pool), in the config's order, until the board takes it.

use std::collections::{HashMap, HashSet};

use crate::clock::Now;
use crate::config::TicketSpec;
use crate::scheduler::apply;
use crate::scheduler::revoke::kept_active;
use crate::store::record::{StoredTicket, identity};
use crate::token::Holding;

/// The saved holdings of the config's tickets, gathered record by record.
pub(crate) struct Restore<'a> {
    tickets: &'a [TicketSpec],
    by_name: HashMap<&'a str, usize>,
    /// By the tickets' positions in the config.
    holdings: Vec<Option<Holding>>,
    /// The long-term tokens (TCR `TokenId`s) saved tickets hold, in the config or not.
    held: HashSet<String>,
    now: Now,
}

/// What was saved for the config's tickets.
pub(crate) struct Restored {
    /// Each ticket's saved holding (still usable at `now`), by position in the config.
    pub(crate) holdings: Vec<Option<Holding>>,
    /// The long-term tokens the saved tickets hold.
    pub(crate) held: HashSet<String>,
}

impl<'a> Restore<'a> {
    pub(crate) fn new(tickets: &'a [TicketSpec], now: Now) -> Restore<'a> {
        let by_name = tickets.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
        Restore { tickets, by_name, holdings: tickets.iter().map(|_| None).collect(), held: HashSet::new(), now }
    }

    /// One saved record: kept for its ticket while it was obtained for the same target (a
    /// later record of the same name replaces an earlier one).
    pub(crate) fn offer(&mut self, name: String, stored: StoredTicket) {
        let current = stored.holding.current.as_ref();
        if let Some(token_id) = current.and_then(|c| c.token.token_id.as_deref()) {
            self.held.insert(token_id.to_string());
        }
        match self.by_name.get(name.as_str()) {
            Some(&at) if stored.identity == identity(&self.tickets[at]) => {
                self.holdings[at] = Some(apply::usable(stored.holding, self.now));
            }
            Some(_) => kept_active(&name, current, "its target changed"),
            // A consumer may still use its token.
            None => kept_active(&name, current, "it is no longer in the config"),
        }
    }

    /// Forget every record offered so far (they came from a state set aside as corrupt).
    pub(crate) fn discard(&mut self) {
        self.holdings.iter_mut().for_each(|h| *h = None);
        self.held.clear();
    }

    pub(crate) fn finish(self) -> Restored {
        Restored { holdings: self.holdings, held: self.held }
    }
}
