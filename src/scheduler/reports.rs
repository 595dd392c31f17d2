//! What the scheduler's tasks tell its loop (a call's result, a sink write's outcome), each
//! exactly once even if the task dies, and the events the loop tells the outside.

use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::apis::ProviderError;
use crate::board::TicketId;
use crate::config::TicketSpec;
use crate::scheduler::apply::Outlook;
use crate::scheduler::timing::Step;
use crate::sinks::SinkSet;
use crate::token::Issued;

/// What happened, for `ticketd dev`'s narration, tests and (later) notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new ticket was minted; its first token follows.
    TicketMinted { name: String, expires_at: SystemTime },
    /// A new token is held (not yet written to sinks).
    TokenRefreshed { name: String, generation: u64, expires_at: SystemTime, new_ticket: bool },
    /// Every sink of the ticket holds this generation.
    Published { name: String, generation: u64 },
    /// A call failed; the last good token (if any) is kept. `outlook` is what the log line says
    /// it means for the consumers.
    CallFailed {
        name: String,
        error: String,
        retry_at: SystemTime,
        token_expires_at: Option<SystemTime>,
        outlook: Outlook,
    },
    /// Writing a sink failed; retried later.
    PublishFailed { name: String, error: String },
}

pub(crate) enum Message {
    Called {
        id: TicketId,
        epoch: u32,
        step: Step,
        result: Result<Issued, ProviderError>,
        credentials_expire: Option<SystemTime>,
    },
    Published {
        id: TicketId,
        epoch: u32,
        generation: u64,
        /// The ticket as written (a reload may have changed its sinks meanwhile) and the sinks
        /// holding the generation now; `None` when the writer died before saying.
        written: Option<(TicketSpec, SinkSet)>,
        /// One per sink that could not be written, naming it.
        errors: Vec<String>,
    },
}

/// What a call task tells the loop, exactly once. Dropped unsent (the task panicked, or was
/// cancelled), it reports a failure instead: the ticket is retried with backoff and its call slot
/// and the daemon's in-flight count are released, whatever becomes of the task.
pub(crate) struct CallReport {
    pub(crate) tx: mpsc::UnboundedSender<Message>,
    pub(crate) id: TicketId,
    pub(crate) epoch: u32,
    pub(crate) step: Step,
    pub(crate) sent: bool,
}

impl CallReport {
    pub(crate) fn send(mut self, result: Result<Issued, ProviderError>, credentials_expire: Option<SystemTime>) {
        self.sent = true;
        let (id, epoch, step) = (self.id, self.epoch, self.step);
        let _ = self.tx.send(Message::Called { id, epoch, step, result, credentials_expire });
    }
}

impl Drop for CallReport {
    fn drop(&mut self) {
        if !self.sent {
            let detail = if std::thread::panicking() { "its task panicked" } else { "its task was cancelled" };
            let result = Err(ProviderError::Internal { api: "API call", detail });
            let (id, epoch, step) = (self.id, self.epoch, self.step);
            let _ = self.tx.send(Message::Called { id, epoch, step, result, credentials_expire: None });
        }
    }
}

/// What a sink writer tells the loop when it could not say what it wrote.
pub(crate) const WRITER_DIED: &str = "the sink writer ended without a result (it panicked or was cancelled)";

/// Like [`CallReport`], for a sink writer: dropped unsent, it reports a failed write, so the
/// sinks are retried.
pub(crate) struct PublishReport {
    pub(crate) tx: mpsc::UnboundedSender<Message>,
    pub(crate) id: TicketId,
    pub(crate) epoch: u32,
    pub(crate) generation: u64,
    pub(crate) sent: bool,
}

impl PublishReport {
    pub(crate) fn send(mut self, written: Option<(TicketSpec, SinkSet)>, errors: Vec<String>) {
        self.sent = true;
        let (id, epoch, generation) = (self.id, self.epoch, self.generation);
        let _ = self.tx.send(Message::Published { id, epoch, generation, written, errors });
    }
}

impl Drop for PublishReport {
    fn drop(&mut self) {
        if !self.sent {
            let (id, epoch, generation) = (self.id, self.epoch, self.generation);
            let errors = vec![WRITER_DIED.to_string()];
            let _ = self.tx.send(Message::Published { id, epoch, generation, written: None, errors });
        }
    }
}
