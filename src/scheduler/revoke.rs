//! Which replaced TCR long-term tokens the revoker is told about; the others are kept active
//! because a consumer may still use them (the revoker itself is [`crate::revocation`]).

use std::collections::HashSet;
use std::time::SystemTime;

use crate::board::Board;
use crate::clock::Now;
use crate::config::{ApiSpec, TicketSpec};
use crate::scheduler::core::Core;
use crate::store::record::PendingRevocation;
use crate::token::Current;

/// The revocation of TCR long-term token `token_id` of ticket `spec`, replaced by `generation`
/// at `now` (`None` for other kinds).
pub(crate) fn superseded(
    spec: &TicketSpec,
    token_id: &str,
    generation: u64,
    now: SystemTime,
) -> Option<PendingRevocation> {
    let ApiSpec::Tcr(tcr) = &spec.api else { return None };
    Some(PendingRevocation {
        ticket: spec.name.to_string(),
        token_id: token_id.to_string(),
        endpoint: tcr.endpoint.to_string(),
        region: tcr.region.clone(),
        registry_id: tcr.registry_id.clone(),
        credentials: spec.credentials.clone(),
        after_generation: Some(generation),
        since: now.into(),
    })
}

/// The long-term token `token_id` of ticket `spec` was minted and dropped before any consumer saw
/// it (a fenced result etcd refused, or does not hold): revoked now.
pub(crate) fn dropped(core: &mut Core, board: &Board, spec: &TicketSpec, token_id: &str, now: Now) {
    if let Some(mut orphan) = superseded(spec, token_id, 0, now.wall) {
        orphan.after_generation = None;
        queue_revocation(board, orphan);
        board.revocations_changed().notify_one();
        core.saves.soon(now.mono);
    }
}

pub(crate) fn queue_revocation(board: &Board, pending: PendingRevocation) {
    let (ticket, token_id) = (pending.ticket.clone(), pending.token_id.clone());
    match board.revocations().push(pending) {
        crate::revocation::queue::Pushed::Queued => tracing::info!(
            ticket = %ticket,
            token_id = %token_id,
            "the long-term token was replaced; it is revoked once the new one is in every sink"
        ),
        crate::revocation::queue::Pushed::Duplicate => {}
        crate::revocation::queue::Pushed::Full => tracing::error!(
            ticket = %ticket,
            token_id = %token_id,
            cap = crate::revocation::queue::MAX_PENDING,
            "too many revocations pending: the replaced long-term token stays active; delete it by hand"
        ),
    }
}

/// Long-term tokens minted before the restart that never reached every sink (`unconfirmed`,
/// less those a saved ticket holds: `held`): the restart writes the sinks afresh with what the
/// ticket holds now, so no consumer is left with one; each is revoked once every sink of its
/// ticket holds that (and its hook has run). One of a ticket no longer in the config stays
/// active (its sinks are not written again: it may be in one), logged with its `TokenId`.
pub(crate) fn orphans(board: &Board, unconfirmed: Vec<PendingRevocation>, held: &HashSet<String>) {
    for mut orphan in unconfirmed {
        if held.contains(&orphan.token_id) {
            continue;
        }
        let (name, token_id) = (orphan.ticket.clone(), orphan.token_id.clone());
        let generation = board.table().by_name(&name).map(|t| t.holding().generation());
        let Some(generation) = generation else {
            tracing::info!(ticket = %name, token_id = %token_id, "a long-term token minted before the restart never reached every sink, and its ticket is no longer in the config; it stays active");
            continue;
        };
        tracing::info!(ticket = %name, token_id = %token_id, "a long-term token minted before the restart never reached every sink; it is revoked once the sinks hold the ticket's token");
        orphan.after_generation = Some(generation);
        queue_revocation(board, orphan);
    }
}

/// At start: the saved revocations that wait for the successor of a ticket whose saved token was
/// not taken up (the ticket left the config or changed target while ticketd was stopped, or its
/// token lapsed) would wait for a generation that is no longer the ticket's: for good, or until a
/// later token, of another target maybe, happens to reach it. They are taken out and their tokens
/// kept active, as a reload does; tokens already due are still revoked.
pub(crate) fn forget_stale_revocations(board: &Board) {
    let waiting: Vec<String> = board
        .revocations()
        .entries()
        .iter()
        .filter(|e| e.pending.after_generation.is_some())
        .map(|e| e.pending.ticket.clone())
        .collect();
    let mut stale: Vec<String> = board.read(|table| {
        waiting.into_iter().filter(|name| table.by_name(name).is_none_or(|t| t.holding().current.is_none())).collect()
    });
    stale.sort_unstable();
    stale.dedup();
    for name in stale {
        for pending in board.revocations().forget_waiting(&name) {
            tracing::info!(ticket = %name, token_id = %pending.token_id, "not revoking the replaced long-term token: its successor, saved before the restart, is not in use now (the ticket left the config, changed target or its token lapsed); it stays active");
        }
    }
}

/// `name` left the config or changed target: what waited for its new token to reach the sinks
/// is no longer revoked (which token a consumer uses cannot be known).
pub(crate) fn forget_revocations(board: &Board, name: &str) {
    for pending in board.revocations().forget_waiting(name) {
        tracing::info!(ticket = %name, token_id = %pending.token_id, "not revoking the replaced long-term token: the ticket left the config before its successor reached every sink; it stays active");
    }
    for pending in board.revocations().forget_unconfirmed(name) {
        tracing::info!(ticket = %name, token_id = %pending.token_id, "the ticket left the config before its new long-term token reached every sink; that token stays active");
    }
}

/// Say that the TCR long-term token `current` of ticket `name` stays active (`why`: the ticket
/// left the config, or its target changed): a consumer may still use it.
pub(crate) fn kept_active(name: &str, current: Option<&Current>, why: &str) {
    if let Some(token_id) = current.and_then(|c| c.token.token_id.as_deref()) {
        token_kept_active(name, token_id, why);
    }
}

/// Say that ticket `name`'s long-term token `token_id` stays active (see [`kept_active`]).
pub(crate) fn token_kept_active(name: &str, token_id: &str, why: &str) {
    tracing::info!(ticket = %name, token_id = %token_id, "{why}; its long-term token stays active (a consumer may still use it)");
}
