//! Folding a report into the board: a call's result (a new ticket or token, or a failure with its
//! retry), a sink writer's outcome (every sink holds the token, or a retry).

use std::sync::Arc;

use rand::Rng;
use tokio::sync::mpsc;

use crate::board::{Board, Table, TicketId};
use crate::clock::Now;
use crate::scheduler::apply::{self, Change, Outlook, plan, round};
use crate::scheduler::core::{Core, MAX_AWAITING_SAVE};
use crate::scheduler::error::{CallError, PublishError, WriterDied};
use crate::scheduler::persist::SAVE_DEBOUNCE;
use crate::scheduler::publish::all_sinks_hold;
use crate::scheduler::reports::{Event, Wrote};
use crate::scheduler::revoke::{queue_revocation, superseded};
use crate::scheduler::timing::{self, RetryClass};
use crate::sinks::SinkSet;
use crate::sinks::notify::Changed;

/// A call for ticket `id` succeeded with `change`.
pub(crate) fn succeeded(core: &mut Core, board: &Board, table: &mut Table, id: TicketId, change: Change, now: Now) {
    table.touch();
    let ticket = table.get_mut(id).expect("the ticket is on the board");
    ticket.call_succeeded(core.rng.random(), now.wall);
    let name = &ticket.spec().name;
    match change {
        Change::Ticket { expires_at } => {
            tracing::info!(ticket = %name, expires_at = %crate::clock::rfc3339(expires_at), "minted a new ticket");
            core.emit(Event::TicketMinted { name: name.to_string(), expires_at });
            // A minted ticket must survive a crash: save now (or as soon as saves may come),
            // and ask for its first token once saved (see `release_saved`).
            core.awaiting_save.insert(id, ticket.epoch());
            if core.awaiting_save.len() >= MAX_AWAITING_SAVE {
                // No call starts until this save: it is not spaced.
                core.saves.at_once(now.mono);
            } else {
                core.saves.soon(now.mono);
            }
            return;
        }
        Change::Token { generation, expires_at, new_ticket, replaced } => {
            // A long-term token replaced is revoked once the new one is in every sink.
            let new_id = ticket.holding().current.as_ref().and_then(|c| c.token.token_id.as_deref());
            if let Some(old_id) = replaced.as_ref().and_then(|c| c.token.token_id.as_deref())
                && Some(old_id) != new_id
                && let Some(pending) = superseded(ticket.spec(), old_id, generation, now.wall)
            {
                queue_revocation(board, pending);
            }
            // The new one is recorded too, until it is in every sink: a crash before then
            // must not forget it (see `orphans`).
            if let Some(mut minted) = new_id.and_then(|id| superseded(ticket.spec(), id, generation, now.wall)) {
                minted.after_generation = Some(generation);
                board.revocations().minted(minted);
                // Saved at once (long-term mints are rare).
                core.saves.soon(now.mono);
            }
            tracing::info!(ticket = %name, generation, expires_at = %crate::clock::rfc3339(expires_at), "refreshed the token");
            core.emit(Event::TokenRefreshed { name: name.to_string(), generation, expires_at, new_ticket });
            // The sinks still hold the token just replaced: kept for readers and the state file
            // until they hold the new one.
            ticket.token_replaced(replaced);
            core.publish(table, id);
            if new_ticket {
                core.saves.soon(now.mono);
            }
        }
    }
    core.queue.reschedule(table, id, now);
}

/// A call for ticket `id` failed with `error`: the last good token stays; retried with backoff.
pub(crate) fn failed(core: &mut Core, board: &Board, table: &mut Table, id: TicketId, error: CallError, now: Now) {
    table.touch();
    let ticket = table.get_mut(id).expect("the ticket is on the board");
    // A credential the API created and ticketd cannot use: nobody ever saw it, revoke it now.
    if let Some(token_id) = error.unusable_token_id() {
        tracing::info!(ticket = %ticket.spec().name, token_id = %token_id, "the created long-term token cannot be used; revoking it");
        crate::scheduler::revoke::dropped(core, board, ticket.spec(), token_id, now);
    }
    let attempt = ticket.call_failed();
    let retry = apply::retry(ticket.holding(), attempt, error.retry_class(), now, core.rng.random());
    let apply::Retry { delay, retry_at, token_expires_at, outlook } = retry;
    let text = error.to_string();
    let retry_in = humantime::format_duration(round(delay)).to_string();
    let next_attempt = crate::clock::rfc3339(retry_at);
    let name = &ticket.spec().name;
    if error.is_clock_skew() {
        tracing::error!(ticket = %name, error = %text, retry_in, next_attempt, "the cloud says this host's clock is wrong; fix the clock (NTP)");
    } else {
        let message = outlook.message();
        match (outlook, token_expires_at) {
            (Outlook::Keeps, Some(t)) => {
                let expires_at = crate::clock::rfc3339(t);
                tracing::warn!(ticket = %name, error = %text, attempt, retry_in, next_attempt, expires_at, "{message}");
            }
            (Outlook::WillLapse, Some(t)) => {
                let expires_at = crate::clock::rfc3339(t);
                tracing::error!(ticket = %name, error = %text, attempt, retry_in, next_attempt, expires_at, "{message}");
            }
            (Outlook::NoTokenYet { retry_helps: true }, _) => {
                tracing::warn!(ticket = %name, error = %text, attempt, retry_in, next_attempt, "{message}");
            }
            _ => tracing::error!(ticket = %name, error = %text, attempt, retry_in, next_attempt, "{message}"),
        }
    }
    let name = name.to_string();
    ticket.failed_with(&text);
    core.emit(Event::CallFailed { name, error, retry_at, token_expires_at, outlook });
    core.queue.schedule_at(table, id, now.mono + delay);
}

/// What a sink writer of ticket `id` reported.
pub(crate) struct Written {
    pub(crate) epoch: u32,
    pub(crate) generation: u64,
    pub(crate) outcome: Result<Wrote, WriterDied>,
}

/// A sink writer of ticket `id` reported (see [`crate::scheduler::reports::Message::Published`]);
/// `hooks` is told when every sink holds the token.
pub(crate) fn written(
    core: &mut Core,
    board: &Arc<Board>,
    hooks: Option<&mpsc::UnboundedSender<Changed>>,
    table: &mut Table,
    id: TicketId,
    report: Written,
    now: Now,
) {
    let Written { epoch, generation, outcome } = report;
    // The ticket's one writer is done, under whatever epoch (a retargeted ticket's next
    // write waited for it too: see `publish`).
    let Some(ticket) = table.get_mut(id) else { return };
    ticket.writer_finished();
    // A newer generation came, or a reload replaced the sinks or the target, while this
    // write ran: the write of what the ticket holds now waited for this one; start it.
    let stale = ticket.epoch() != epoch
        || ticket.holding().generation() != generation
        || outcome.as_ref().is_ok_and(|wrote| wrote.spec.sinks != ticket.spec().sinks);
    if stale {
        table.touch();
        core.publish(table, id);
        return;
    }
    // The writes of this generation are over: readers waiting for them look again (the
    // flag is down), and in the same change the board shows what they wrote.
    let failure = match outcome {
        Ok(wrote) => {
            ticket.sinks_written(wrote.held);
            (!wrote.errors.is_empty()).then_some(PublishError::Sinks(wrote.errors))
        }
        Err(WriterDied) => Some(PublishError::WriterDied),
    };
    if failure.is_none() && ticket.sinks_held() == SinkSet::all(ticket.spec().sinks.len()) {
        ticket.published();
        all_sinks_hold(board, hooks, ticket.spec(), generation);
        core.emit(Event::Published { name: ticket.spec().name.to_string(), generation });
        core.saves.soon(now.mono + SAVE_DEBOUNCE);
    } else if let Some(failure) = failure {
        let attempt = ticket.publish_failed(&failure.to_string());
        let delay = timing::retry_delay(attempt, RetryClass::Transient { after: None }, None, core.rng.random());
        let retry_in = humantime::format_duration(round(delay)).to_string();
        let each: Vec<&dyn std::fmt::Display> = match &failure {
            PublishError::Sinks(errors) => errors.iter().map(|e| e as &dyn std::fmt::Display).collect(),
            PublishError::WriterDied => vec![&WriterDied],
        };
        for error in each {
            tracing::error!(ticket = %ticket.spec().name, error = %error, retry_in, "cannot write a sink; its previous file is intact, the other sinks are written");
        }
        let plan = plan(ticket, now);
        core.emit(Event::PublishFailed { name: ticket.spec().name.to_string(), error: failure });
        core.queue.schedule_at(table, id, now.mono_at(plan.at).min(now.mono + delay));
    }
    table.touch();
}
