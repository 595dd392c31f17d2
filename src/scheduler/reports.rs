//! What the scheduler's tasks tell its loop (a call's result, a sink write's outcome), each
//! exactly once even if the task dies, and the events the loop tells the outside.

use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::apis::CallKind;
use crate::board::TicketId;
use crate::cluster::link::WriteError;
use crate::config::TicketSpec;
use crate::scheduler::apply::{Change, Outlook};
use crate::scheduler::error::{CallError, PublishError, TaskEnd, WriterDied};
use crate::scheduler::timing::Step;
use crate::sinks::{SinkError, SinkSet};
use crate::token::{Holding, Issued};

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
        error: CallError,
        retry_at: SystemTime,
        token_expires_at: Option<SystemTime>,
        outlook: Outlook,
    },
    /// Writing a sink failed; retried later.
    PublishFailed { name: String, error: PublishError },
}

pub(crate) enum Message {
    Called {
        id: TicketId,
        epoch: u32,
        step: Step,
        result: Result<Issued, CallError>,
        credentials_expire: Option<SystemTime>,
    },
    Published {
        id: TicketId,
        epoch: u32,
        generation: u64,
        /// What the writer wrote, or that it died before saying.
        outcome: Result<Wrote, WriterDied>,
    },
    /// A fenced write of a fleet ticket's new holding was answered (see `scheduler::fenced`).
    Fenced(Box<FencedWrite>),
}

/// A fleet ticket's new holding, computed aside from a call's result, and what etcd said to it.
pub(crate) struct FencedWrite {
    pub(crate) id: TicketId,
    pub(crate) epoch: u32,
    /// The fleet's term the call started in.
    pub(crate) term: u64,
    pub(crate) kind: CallKind,
    /// The holding the board takes if the write landed.
    pub(crate) holding: Holding,
    pub(crate) change: Change,
    /// etcd's mod revision of the write, or why it did not land.
    pub(crate) result: Result<i64, WriteFailed>,
}

/// Why a fenced write did not land.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteFailed {
    #[error(transparent)]
    Etcd(#[from] WriteError),
    /// The write's task ended before etcd answered: whether it landed is unknown (the watch says).
    #[error("the fenced write's task ended before etcd answered: {how}")]
    TaskDied { how: TaskEnd },
}

/// Sends a [`FencedWrite`] to the loop exactly once: dropped unsent (the task panicked or was
/// cancelled), it reports [`WriteFailed::TaskDied`], so the ticket is never left in flight.
pub(crate) struct FencedReport {
    pub(crate) tx: mpsc::UnboundedSender<Message>,
    pub(crate) write: Option<Box<FencedWrite>>,
}

impl FencedReport {
    pub(crate) fn send(mut self, result: Result<i64, WriteError>) {
        if let Some(mut write) = self.write.take() {
            write.result = result.map_err(WriteFailed::Etcd);
            let _ = self.tx.send(Message::Fenced(write));
        }
    }
}

impl Drop for FencedReport {
    fn drop(&mut self) {
        if let Some(mut write) = self.write.take() {
            let how = if std::thread::panicking() { TaskEnd::Panicked } else { TaskEnd::Cancelled };
            write.result = Err(WriteFailed::TaskDied { how });
            let _ = self.tx.send(Message::Fenced(write));
        }
    }
}

/// What a sink writer did with one generation.
#[derive(Debug)]
pub(crate) struct Wrote {
    /// The ticket as written (a reload may have changed its sinks meanwhile).
    pub(crate) spec: TicketSpec,
    /// The sinks holding the generation now.
    pub(crate) held: SinkSet,
    /// One per sink that could not be written, naming it.
    pub(crate) errors: Vec<SinkError>,
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
    pub(crate) fn send(mut self, result: Result<Issued, CallError>, credentials_expire: Option<SystemTime>) {
        self.sent = true;
        let (id, epoch, step) = (self.id, self.epoch, self.step);
        let _ = self.tx.send(Message::Called { id, epoch, step, result, credentials_expire });
    }
}

impl Drop for CallReport {
    fn drop(&mut self) {
        if !self.sent {
            let how = if std::thread::panicking() { TaskEnd::Panicked } else { TaskEnd::Cancelled };
            let result = Err(CallError::TaskDied { how });
            let (id, epoch, step) = (self.id, self.epoch, self.step);
            let _ = self.tx.send(Message::Called { id, epoch, step, result, credentials_expire: None });
        }
    }
}

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
    pub(crate) fn send(mut self, outcome: Result<Wrote, WriterDied>) {
        self.sent = true;
        let (id, epoch, generation) = (self.id, self.epoch, self.generation);
        let _ = self.tx.send(Message::Published { id, epoch, generation, outcome });
    }
}

impl Drop for PublishReport {
    fn drop(&mut self) {
        if !self.sent {
            let (id, epoch, generation) = (self.id, self.epoch, self.generation);
            let _ = self.tx.send(Message::Published { id, epoch, generation, outcome: Err(WriterDied) });
        }
    }
}
