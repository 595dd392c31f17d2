//! A validated ticket: its name with its shared settings (credentials, API, sinks, consumers,
//! their `on_change` hook).

use compact_str::CompactString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::cluster::Scope;
use super::sink::SinkSpec;
use crate::apis::kinds::{ApiSpec, Kind};

/// One ticket to keep fresh: its name and its settings, which it reads through (`spec.api`).
///
/// Tickets configured alike share one [`TicketSettings`]: a fleet of 100,000 tickets that differ
/// only by name holds one copy of their settings, not 100,000.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSpec {
    /// Kept inline up to 24 bytes: 100,000 names cost no allocation of their own.
    pub name: CompactString,
    settings: Arc<TicketSettings>,
}

/// Everything about a ticket but its name.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSettings {
    pub credentials: String,
    pub api: ApiSpec,
    pub sinks: Vec<SinkSpec>,
    pub consumers: ConsumerSpec,
    /// Optional. Default [`Scope::Cluster`] with `[cluster]`, else [`Scope::Node`].
    pub scope: Scope,
}

impl TicketSpec {
    pub fn new(name: impl Into<CompactString>, settings: TicketSettings) -> Self {
        TicketSpec::sharing(name, Arc::new(settings))
    }

    /// A ticket whose settings are shared with others.
    pub fn sharing(name: impl Into<CompactString>, settings: Arc<TicketSettings>) -> Self {
        TicketSpec { name: name.into(), settings }
    }
}

impl TicketSpec {
    /// Which API the ticket uses.
    pub fn kind(&self) -> Kind {
        self.api.kind()
    }
}

impl std::ops::Deref for TicketSpec {
    type Target = TicketSettings;

    fn deref(&self) -> &TicketSettings {
        &self.settings
    }
}

/// Changing a ticket's settings gives it a copy of its own (copy on write).
impl std::ops::DerefMut for TicketSpec {
    fn deref_mut(&mut self) -> &mut TicketSettings {
        Arc::make_mut(&mut self.settings)
    }
}

/// Who may read a ticket over the socket, whether readiness waits for it, and whom to tell when
/// it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Callers (by `SO_PEERCRED`) allowed to read the token; empty lists mean anyone who can open
    /// the socket. Root and ticketd's own uid are always allowed.
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
    /// `/readyz` fails while this ticket holds no valid token.
    pub required: bool,
    pub on_change: Option<HookSpec>,
}

impl Default for ConsumerSpec {
    fn default() -> Self {
        ConsumerSpec { allow_uids: Vec::new(), allow_gids: Vec::new(), required: true, on_change: None }
    }
}

impl ConsumerSpec {
    pub fn restricted(&self) -> bool {
        !self.allow_uids.is_empty() || !self.allow_gids.is_empty()
    }
}

/// What to run after all sinks of a ticket hold a new token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// A program and its arguments (no shell).
    pub exec: Option<Vec<String>>,
    /// A signal to send to the process whose pid is in `pid_file`.
    pub signal: Option<(i32, String)>,
    pub pid_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Changes closer together than this run the hook once.
    pub debounce: Duration,
    /// Optional. Default: none. Variables set for `exec`, besides
    /// [`HOOK_ENV_PASSED`](crate::config::HOOK_ENV_PASSED) and the `TICKETD_*` ones (the hook gets
    /// nothing else of ticketd's environment).
    pub env: Vec<(String, String)>,
}
