//! Handing a new token to its consumers: sink writers in the background (one per ticket at a
//! time), and once every sink holds it, the `on_change` hook and the revocations that waited.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::board::{Board, Table, TicketId};
use crate::config::TicketSpec;
use crate::scheduler::error::WriterDied;
use crate::scheduler::reports::{Message, PublishReport, Wrote};
use crate::sinks::SinkSet;
use crate::sinks::notify::Changed;

/// Write the sinks of ticket `id` in the background (on `calls`, reporting on `tx`): until the
/// loop hears how it went, readers of the ticket wait ([`Board::settle_writes`]).
pub(crate) fn publish(table: &mut Table, id: TicketId, tx: &mpsc::UnboundedSender<Message>, calls: &TaskTracker) {
    let Some(ticket) = table.get_mut(id) else { return };
    let Some(generation) = ticket.holding().current.as_ref().map(|c| c.generation) else { return };
    // One writer per ticket at a time: two could finish out of order, the older token's files
    // renamed over the newer one's while the board and the state record the newer, and nothing
    // would write them again before the next token (the older token lapsing in the sinks
    // meanwhile). The running writer's report starts this write (`Message::Published`).
    if !ticket.publish_started() {
        return;
    }
    let epoch = ticket.epoch();
    if ticket.spec().sinks.is_empty() {
        let outcome = Ok(Wrote { spec: ticket.spec().clone(), held: SinkSet::NONE, errors: Vec::new() });
        let _ = tx.send(Message::Published { id, epoch, generation, outcome });
        table.touch();
        return;
    }
    // The writer gets a copy of its own: the holding may change while it writes.
    let current = ticket.holding().current.clone().expect("a current token, looked at above");
    let (spec, held) = (ticket.spec().clone(), ticket.sinks_held());
    table.touch();
    let report = PublishReport { tx: tx.clone(), id, epoch, generation, sent: false };
    calls.spawn(async move {
        let writer = tokio::task::spawn_blocking(move || {
            #[cfg(test)]
            crate::scheduler::tests::before_sink_write(&spec.name);
            let published = crate::sinks::publish(&spec, &current, held);
            #[cfg(test)]
            crate::scheduler::tests::after_sink_write(&spec.name);
            #[cfg(test)]
            crate::scheduler::restart_tests::wrote(&spec.name, generation);
            (spec, published)
        });
        match writer.await {
            Ok((spec, published)) => report.send(Ok(Wrote { spec, held: published.held, errors: published.errors })),
            // Not the join error's text: a panic's message may quote what was written.
            Err(_) => report.send(Err(WriterDied)),
        }
    });
}

/// Every sink of `spec` holds `generation`: tokens it superseded are revoked now, or once its
/// hook has run; the hook (when this process runs hooks: `hooks`) is told.
pub(crate) fn all_sinks_hold(
    board: &Arc<Board>,
    hooks: Option<&mpsc::UnboundedSender<Changed>>,
    spec: &TicketSpec,
    generation: u64,
) {
    let has_hook = spec.consumers.on_change.is_some();
    let hook = hooks.filter(|_| has_hook);
    let wait_for_hook = board.revocations().published(&spec.name, generation, has_hook);
    if has_hook && hook.is_none() {
        // No hook runs here (`run --once`): what waits for this ticket's hook keeps
        // waiting, saved, for a run whose hook tells its consumers first.
        board.revocations().hooks_not_run(&spec.name, generation);
    }
    board.revocations_changed().notify_one();
    if let Some(changed) = hook {
        let ran = wait_for_hook.then(|| {
            let (ran, hook_ran) = oneshot::channel();
            let (board, name) = (Arc::clone(board), spec.name.to_string());
            // Told when the hook has run (or will not: its runner is gone).
            tokio::spawn(async move {
                let _ = hook_ran.await;
                board.revocations().hooks_ran(&name, generation);
                board.revocations_changed().notify_one();
            });
            ran
        });
        let _ = changed.send((spec.clone(), generation, ran));
    }
}
