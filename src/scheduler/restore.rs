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
use crate::scheduler::revoke::token_kept_active;
use crate::store::record::{StoredTicket, identity};
use crate::token::Holding;

/// The board's tickets (just placed, not yet scheduled) taking their saved holdings, record by
/// record: each goes straight to its ticket, so nothing is staged beside the board (a staging
/// list by config position and a name index held +16 MiB at 100,000 tickets).
pub(crate) struct Restore<'a> {
    table: &'a mut Table,
    /// The long-term tokens (TCR `TokenId`s) saved tickets hold, in the config or not.
    held: HashSet<String>,
    /// The long-term tokens of records no ticket takes (name, `TokenId`, why), said only at
    /// [`Restore::finish`]: a state then set aside as corrupt must not log lines for its records.
    kept: Vec<(String, String, &'static str)>,
    now: Now,
}

impl<'a> Restore<'a> {
    /// Restore into `table`, which holds the config's tickets and nothing else.
    pub(crate) fn new(table: &'a mut Table, now: Now) -> Restore<'a> {
        Restore { table, held: HashSet::new(), kept: Vec::new(), now }
    }

    /// One saved record: its ticket takes it while it was obtained for the same target (a later
    /// record of the same name replaces an earlier one).
    pub(crate) fn offer(&mut self, name: String, stored: StoredTicket) {
        let token_id = stored.holding.current.as_ref().and_then(|c| c.token.token_id.as_deref()).map(str::to_string);
        if let Some(token_id) = &token_id {
            self.held.insert(token_id.clone());
        }
        let why = match self.table.id(&name).map(|id| self.table.get_mut(id)) {
            Some(Some(ticket)) if stored.identity == identity(ticket.spec()) => {
                *ticket.holding_mut() = apply::usable(stored.holding, self.now);
                return;
            }
            Some(_) => "its target changed",
            // A consumer may still use its token.
            None => "it is no longer in the config",
        };
        if let Some(token_id) = token_id {
            self.kept.push((name, token_id, why));
        }
    }

    /// Forget every record offered so far (they came from a state set aside as corrupt).
    pub(crate) fn discard(&mut self) {
        for ticket in self.table.tickets_mut() {
            *ticket.holding_mut() = Holding::default();
        }
        self.held.clear();
        self.kept.clear();
    }

    /// The long-term tokens the saved tickets hold; those no ticket takes are said now, once the
    /// state is known good.
    pub(crate) fn finish(self) -> HashSet<String> {
        for (name, token_id, why) in &self.kept {
            token_kept_active(name, token_id, why);
        }
        self.held
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::board::Ticket;
    use crate::clock::{Clock, PausedClock, from_unix_seconds};
    use crate::config::{ApiSpec, TicketSpec};
    use crate::secret::Secret;
    use crate::store::Store;
    use crate::store::file::{FileStore, STATE_FILE};
    use crate::store::record::{StateFile, VERSION};
    use crate::token::{Current, TokenPart};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

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

    /// Log lines written while `run` runs, as text.
    fn logged(run: impl FnOnce()) -> String {
        #[derive(Clone)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf(Arc::default());
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, run);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    /// A state whose one record, `gone`, holds the long-term token `tok-1` and is in no config.
    fn state_text() -> String {
        let t = from_unix_seconds(1_704_164_645);
        let holding = Holding {
            current: Some(Current {
                ticket: None,
                token: TokenPart {
                    value: Secret::new("secret-token"),
                    username: None,
                    token_id: Some("tok-1".into()),
                    issued_at: t.into(),
                    expires_at: t.into(),
                },
                generation: 1,
                refreshed_at: t.into(),
                expires_mono: None,
            }),
            pending: None,
        };
        let mut tickets = BTreeMap::new();
        tickets.insert("gone".to_string(), StoredTicket { kind: "tcr".into(), identity: "x".into(), holding });
        let state = StateFile { version: VERSION, tickets, revocations: Vec::new(), unconfirmed: Vec::new() };
        serde_json::to_string(&state).unwrap()
    }

    /// Restore from a state file holding `text`, as `Scheduler::restore` does, saying what it logged.
    fn restore_logs(text: &str) -> (String, bool) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), text).unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let clock = PausedClock::starting_at(from_unix_seconds(1_704_164_000));
        let mut set_aside = false;
        let logs = logged(|| {
            let mut table = Table::default();
            let mut restore = Restore::new(&mut table, clock.read());
            let loaded = store.load_each(&mut |name, stored| restore.offer(name, stored)).unwrap();
            if loaded.set_aside.is_some() {
                set_aside = true;
                restore.discard();
            }
            restore.finish();
        });
        (logs, set_aside)
    }

    /// Review N7: a state set aside as corrupt (a syntax error after its records, a version after
    /// them) logs no "stays active" line for the tokens of records it is discarding; a good one
    /// still does, once.
    #[test]
    fn a_corrupt_state_says_nothing_of_the_records_it_sets_aside() {
        let good = state_text();
        let (logs, aside) = restore_logs(&good);
        assert!(!aside);
        let line = "it is no longer in the config; its long-term token stays active";
        assert_eq!(logs.matches(line).count(), 1, "{logs}");
        assert!(logs.contains("tok-1") && !logs.contains("secret-token"), "{logs}");
        // A syntax error after the records: only the final `}` is replaced.
        let syntax = format!("{},", &good[..good.len() - 1]);
        // The version after the records (ticketd writes it first): only known bad at the end.
        let value: serde_json::Value = serde_json::from_str(&good).unwrap();
        let late_version = format!("{{\"tickets\":{},\"version\":999}}", value["tickets"]);
        for corrupt in [syntax, late_version] {
            let (logs, aside) = restore_logs(&corrupt);
            assert!(aside, "not set aside: {corrupt}");
            assert!(!logs.contains("stays active"), "{corrupt}: {logs}");
        }
    }
}
