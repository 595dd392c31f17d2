//! The board: what each ticket holds right now, as written to its sinks, for readers outside the
//! scheduler loop (the socket API, `--once`, systemd readiness and status lines).
//!
//! Only the scheduler writes it. Every change bumps a version that readers can wait on, so a
//! long-poll or a readiness check never polls.

use std::collections::{BTreeMap, btree_map};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::sync::watch;

use crate::config::TicketSpec;
use crate::token::Current;

/// One ticket as the outside sees it.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub spec: Arc<TicketSpec>,
    /// The token every sink holds (none until the first is written).
    pub current: Option<Arc<Current>>,
    /// When the scheduler will act next.
    pub next_at: Option<SystemTime>,
    /// The last failure since the last success.
    pub last_error: Option<String>,
    /// Failed calls since the last success.
    pub failures: u32,
    /// Calls for this ticket that succeeded, and that failed, since it was added (metrics).
    pub refresh_successes: u64,
    pub refresh_failures: u64,
    /// When a call for this ticket last succeeded in this process.
    pub last_success: Option<SystemTime>,
}

impl TicketView {
    /// A token that has not expired at `now`.
    pub fn valid(&self, now: SystemTime) -> Option<&Current> {
        self.current.as_deref().filter(|c| c.token.is_valid_at(now))
    }

    /// Settled: it holds a valid token, or its last attempt failed (it has been tried).
    pub fn settled(&self, now: SystemTime) -> bool {
        self.valid(now).is_some() || self.failures > 0
    }
}

#[derive(Debug)]
pub struct Board {
    tickets: RwLock<BTreeMap<String, TicketView>>,
    version: watch::Sender<u64>,
}

impl Default for Board {
    fn default() -> Self {
        Board { tickets: RwLock::new(BTreeMap::new()), version: watch::channel(0).0 }
    }
}

impl Board {
    pub fn snapshot(&self) -> Vec<TicketView> {
        self.tickets.read().expect("board lock").values().cloned().collect()
    }

    /// Look at every ticket without copying any (under the read lock: keep `f` short).
    pub fn read<R>(&self, f: impl FnOnce(btree_map::Values<'_, String, TicketView>) -> R) -> R {
        let tickets = self.tickets.read().expect("board lock");
        f(tickets.values())
    }

    pub fn get(&self, name: &str) -> Option<TicketView> {
        self.tickets.read().expect("board lock").get(name).cloned()
    }

    /// The `required` tickets without a valid token at `now` (readiness: `/readyz`).
    pub fn not_ready(&self, now: SystemTime) -> Vec<String> {
        let tickets = self.tickets.read().expect("board lock");
        tickets
            .values()
            .filter(|v| v.spec.consumers.required && v.valid(now).is_none())
            .map(|v| v.spec.name.clone())
            .collect()
    }

    /// A receiver that changes whenever any ticket does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    pub(crate) fn upsert(&self, name: &str, spec: &Arc<TicketSpec>, change: impl FnOnce(&mut TicketView)) {
        {
            let mut tickets = self.tickets.write().expect("board lock");
            let view = tickets.entry(name.to_string()).or_insert_with(|| TicketView {
                spec: spec.clone(),
                current: None,
                next_at: None,
                last_error: None,
                failures: 0,
                refresh_successes: 0,
                refresh_failures: 0,
                last_success: None,
            });
            view.spec = spec.clone();
            change(view);
        }
        self.version.send_modify(|v| *v += 1);
    }

    pub(crate) fn remove(&self, name: &str) {
        self.tickets.write().expect("board lock").remove(name);
        self.version.send_modify(|v| *v += 1);
    }
}
