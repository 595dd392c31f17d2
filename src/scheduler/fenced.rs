//! Gating a fleet ticket's calls (issue #19): before the call, [`admit`] asks the fleet's gate;
//! after it, [`returned`] computes the new holding aside and writes it through the fence, and
//! [`fenced`] publishes it only once etcd took it.
//!
//! - `Local` (a node-scoped ticket): as on one host.
//! - `Wait` (a follower; or etcd unreachable and no fallback): no call; the ticket is looked at
//!   again later ([`recheck`]), or at once when a holding or a role change comes.
//! - `Fenced` (the leader): the result is written to etcd first. Landed: the board takes it and
//!   publishes, saves it. Deposed, raced, stale: dropped (etcd's holding comes by the watch).
//!   Unreachable: a mint is never published (a ticket etcd does not hold would fork the fleet); a
//!   renewal only under the fallback rule.
//! - `Fallback` (etcd unreachable for a lease TTL, a renewal whose token would lapse): called and
//!   published on this node alone, with a warning; the holding etcd sends when it returns wins.
//!
//! A call or write started in an earlier term (the role changed meanwhile) is never published.

use std::time::{Duration, SystemTime};

use crate::apis::{CallKind, Operation};
use crate::board::{Board, Table, Ticket, TicketId};
use crate::clock::{Mono, Now};
use crate::cluster::fence::Refused;
use crate::cluster::gate::{Facts, Gate, decide};
use crate::cluster::link::{Standing, WriteError};
use crate::cluster::record::FleetRecord;
use crate::cluster::view::Role;
use crate::config::Scope;
use crate::scheduler::apply::{self, Change};
use crate::scheduler::core::Core;
use crate::scheduler::error::CallError;
use crate::scheduler::fleet::{Fleet, Gated, Unsure};
use crate::scheduler::handle;
use crate::scheduler::reports::{FencedReport, FencedWrite, WriteFailed};
use crate::scheduler::revoke;
use crate::scheduler::timing::{KEEP_ALIVE_AT, Step};
use crate::store::record::{StoredTicket, identity};
use crate::token::{Holding, Issued};

/// A ticket the gate holds back is looked at again at least this late (a holding or a role
/// change re-plans it sooner); a dropped fenced result is retried this late.
pub const FLEET_RECHECK: Duration = Duration::from_secs(30);
/// ...and never sooner than this after the last look.
const MIN_RECHECK: Duration = Duration::from_secs(1);

/// What the gate says to a due call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Call; `Some` for a fleet ticket's call (fenced, or the fallback).
    Call(Option<Gated>),
    /// No call: look again at this monotonic time.
    Wait(Mono),
}

/// Whether `holding`'s token lapses before another attempt would come: none is valid, or it has
/// served [`KEEP_ALIVE_AT`] of its life (the leader would have renewed it by three quarters).
pub(crate) fn would_lapse(holding: &Holding, now: Now) -> bool {
    lapse_point(holding, now) <= now.wall
}

/// When [`would_lapse`] becomes true.
fn lapse_point(holding: &Holding, now: Now) -> SystemTime {
    let Some(current) = holding.valid(now) else { return now.wall };
    let issued = current.token.issued_at.time();
    let life = current.expiry(now).duration_since(issued).unwrap_or_default();
    issued + life.mul_f64(KEEP_ALIVE_AT)
}

/// When a ticket the gate held back (`kind` of call, holding `holding`, this node `standing`) is
/// looked at again: a follower at its token's expiry (the leader's holding, or a role change,
/// comes before); etcd unreachable, once the fallback could be allowed (a lease TTL unreachable,
/// the token near its end). At least [`MIN_RECHECK`] on; with no valid token, every
/// [`FLEET_RECHECK`]. Pure.
pub(crate) fn recheck(standing: Standing, kind: CallKind, holding: &Holding, now: Now) -> Mono {
    let later = |at: SystemTime, floor: Duration| now.mono_at(at).max(now.mono + floor);
    match (standing.role, kind) {
        (Role::Unreachable, CallKind::Renew) => {
            let ttl_left = standing.lease_ttl.saturating_sub(standing.unreachable_for);
            later(lapse_point(holding, now).max(now.wall + ttl_left), MIN_RECHECK)
        }
        (Role::Unreachable, CallKind::Mint) if lapse_point(holding, now) > now.wall + MIN_RECHECK => {
            // A ticket-and-token kind may renew on its old ticket then (its keep-alive step).
            later(lapse_point(holding, now), MIN_RECHECK)
        }
        _ => {
            let expiry = holding.valid(now).map_or(now.wall, |c| c.expiry(now));
            later(expiry, FLEET_RECHECK)
        }
    }
}

/// The gate's word on the due call `op` of `ticket`.
pub(crate) fn admit(fleet: &Fleet, id: TicketId, ticket: &Ticket, op: &Operation, now: Now) -> Admit {
    let spec = ticket.spec();
    if spec.scope == Scope::Node {
        return Admit::Call(None);
    }
    let kind = spec.api.call_kind(op);
    let mut standing = fleet.link.standing();
    if standing.role == Role::Leader && fleet.role != Role::Leader {
        // Leader a moment before the scheduler took in its `Role` event (which marks what to
        // read again first): a follower until then.
        standing.role = Role::Follower;
    }
    if kind == CallKind::Mint && fleet.rereading(id, ticket.epoch()) {
        // etcd may hold what this node ignored before (review G5): its answer re-plans the ticket.
        tracing::debug!(ticket = %spec.name, "waiting for etcd's holding before minting");
        return Admit::Wait(recheck(standing, kind, ticket.holding(), now));
    }
    let facts = facts(standing, kind, ticket.holding(), now);
    let gated = |fenced| Admit::Call(Some(Gated { fenced, kind, term: fleet.term }));
    match decide(spec.scope, Some(standing.role), facts) {
        Gate::Local => Admit::Call(None),
        Gate::Fenced => gated(true),
        Gate::Fallback => {
            let unreachable_for = humantime::format_duration(Duration::from_secs(standing.unreachable_for.as_secs()));
            tracing::warn!(
                ticket = %spec.name,
                unreachable_for = %unreachable_for,
                "etcd is unreachable and the token would lapse: renewing it on this node alone (fallback); the fleet's holding wins when etcd returns"
            );
            gated(false)
        }
        Gate::Wait => {
            let at = recheck(standing, kind, ticket.holding(), now);
            tracing::debug!(ticket = %spec.name, role = standing.role.as_str(), ?kind, "not this node's call: waiting for the fleet");
            Admit::Wait(at)
        }
    }
}

fn facts(standing: Standing, kind: CallKind, holding: &Holding, now: Now) -> Facts {
    let would_lapse = would_lapse(holding, now);
    Facts { kind, unreachable_for: standing.unreachable_for, lease_ttl: standing.lease_ttl, would_lapse }
}

/// What the loop does with a gated call's result after [`returned`].
pub(crate) enum Then {
    /// Fold it in as on one host (a failure; a fallback's result).
    Local(Result<Issued, CallError>),
    /// Nothing more now: dropped, or being written through the fence.
    Done,
}

/// A gated call's ticket, step, result, its credentials' expiry, and how the gate let it out.
pub(crate) type Returned = (TicketId, Step, Result<Issued, CallError>, Option<SystemTime>, Gated);

/// A gated call of ticket `id` (on the board at the call's epoch, its call just finished)
/// returned `result`.
pub(crate) fn returned(
    fleet: &mut Fleet,
    core: &mut Core,
    board: &Board,
    table: &mut Table,
    out: Returned,
    now: Now,
) -> Then {
    let (id, step, result, credentials_expire, gated) = out;
    let Some(ticket) = table.get_mut(id) else { return Then::Done };
    if gated.term != fleet.term {
        tracing::info!(ticket = %ticket.spec().name, "this node's part in the fleet changed while the call was out: its result is not published");
        if let Ok(Issued::Token(token)) = &result
            && let Some(token_id) = token.token_id.as_deref()
        {
            // Nobody will ever hold it (review G11).
            revoke::dropped(core, board, ticket.spec(), token_id, now);
        }
        core.queue.reschedule(table, id, now);
        return Then::Done;
    }
    let issued = match result {
        Ok(issued) if gated.fenced => issued,
        other => return Then::Local(other),
    };
    let mut holding = ticket.holding().clone();
    let change = match apply::apply(&mut holding, step, issued, credentials_expire, now) {
        Ok(change) => change,
        Err(e) => return Then::Local(Err(e)),
    };
    let spec = ticket.spec();
    let stored = StoredTicket { kind: spec.kind().as_str().to_string(), identity: identity(spec), holding };
    let record = FleetRecord { ticket: spec.name.to_string(), writer: fleet.link.node().to_string(), stored };
    let write = fleet.link.write(record.clone());
    let fenced = FencedWrite {
        id,
        epoch: ticket.epoch(),
        term: gated.term,
        kind: gated.kind,
        holding: record.stored.holding,
        change,
        result: Ok(0),
    };
    // In flight until etcd answers: no other call of it starts meanwhile.
    ticket.call_started();
    fleet.writing(id, fenced.epoch, true);
    let report = FencedReport { tx: core.tx.clone(), write: Some(Box::new(fenced)) };
    core.calls.spawn(async move { report.send(write.await) });
    Then::Done
}

/// etcd answered the fenced write `write`: publish it only if it landed (or, etcd unreachable,
/// under the fallback rule); otherwise drop it and look again later.
pub(crate) fn fenced(
    fleet: &mut Fleet,
    core: &mut Core,
    board: &Board,
    table: &mut Table,
    write: FencedWrite,
    now: Now,
) {
    let FencedWrite { id, epoch, term, kind, holding, change, result } = write;
    fleet.writing(id, epoch, false);
    let Some(ticket) = table.get_mut(id).filter(|t| t.epoch() == epoch) else { return };
    ticket.call_finished();
    let name = ticket.spec().name.to_string();
    let retry = |core: &mut Core, table: &mut Table| core.queue.schedule_at(table, id, now.mono + FLEET_RECHECK);
    // A long-term token this write would have brought (none for other kinds).
    let minted = minted_token(&holding, ticket.holding());
    match &result {
        // etcd took it: the fence proved the leadership when it committed, whatever the role is
        // now; every node adopts it, this one too (its echo was not adopted: review G12).
        Ok(_) => {}
        Err(WriteFailed::Etcd(WriteError::Refused(_))) => {
            if let Some(token_id) = &minted {
                // Refused, so nobody holds it (review G11).
                revoke::dropped(core, board, ticket.spec(), token_id, now);
            }
        }
        Err(_) if kind == CallKind::Mint => {
            // Taken or not (or taken later), etcd says when it is read again (the node reads this
            // key again): no second mint meanwhile, and a long-term token is kept until then.
            let replaced =
                ticket.holding().current.as_ref().and_then(|c| c.token.token_id.as_deref().map(str::to_string));
            let unsure = minted.clone().map(|token_id| Unsure { epoch, token_id, replaced });
            fleet.unanswered_mint(table, id, epoch, unsure);
        }
        Err(_) => {}
    }
    let Some(ticket) = table.get_mut(id) else { return };
    if term != fleet.term && result.is_err() {
        tracing::info!(ticket = %name, "this node's part in the fleet changed while the write was out: its result is not published");
        return core.queue.reschedule(table, id, now);
    }
    match result {
        Ok(revision) => {
            if ticket.holding().generation() > holding.generation() {
                // A newer holding came from etcd meanwhile: ours was written after it, and comes
                // back by the watch.
                return core.queue.reschedule(table, id, now);
            }
            tracing::debug!(ticket = %name, revision, "etcd holds the new holding");
            let generation = holding.generation();
            fleet.saw(id, epoch, generation);
            take(core, board, table, id, holding, change, now);
            if revision > fleet.applied {
                // What it replaced is revoked once every node has it too (review G13).
                board.revocations().wait_for_fleet(&name, generation, revision);
            }
        }
        Err(WriteFailed::Etcd(WriteError::Refused(Refused::Deposed))) => {
            tracing::warn!(ticket = %name, "this node is no longer the fleet's leader: its new holding is dropped, not published; the ticket waits for the leader's");
            retry(core, table);
        }
        Err(WriteFailed::Etcd(WriteError::Refused(refused))) => {
            tracing::info!(ticket = %name, reason = %refused, "etcd holds a newer holding: this node's is dropped; etcd's comes by the watch");
            retry(core, table);
        }
        Err(failed) => {
            let standing = fleet.link.standing();
            let unreachable = Standing { role: Role::Unreachable, ..standing };
            let facts = facts(unreachable, kind, ticket.holding(), now);
            let fallback = decide(Scope::Cluster, Some(Role::Unreachable), facts) == Gate::Fallback;
            if fallback {
                tracing::warn!(ticket = %name, error = %failed, "etcd did not take the new holding and the token would lapse: published on this node alone (fallback); the fleet's holding wins when etcd returns");
                take(core, board, table, id, holding, change, now);
            } else {
                let why = if kind == CallKind::Mint {
                    "a new ticket or long-term token etcd does not hold would fork the fleet"
                } else {
                    "the token does not lapse yet"
                };
                tracing::warn!(ticket = %name, error = %failed, why, "etcd did not take the new holding: not published");
                retry(core, table);
            }
        }
    }
}

/// The long-term token `written` carries that `held` does not (TCR long-term mints).
fn minted_token(written: &Holding, held: &Holding) -> Option<String> {
    let token_id = |h: &Holding| h.current.as_ref().and_then(|c| c.token.token_id.as_deref().map(str::to_string));
    token_id(written).filter(|id| token_id(held).as_ref() != Some(id))
}

/// The board takes `holding` (the result `change` of a call) and publishes it, as on one host.
/// A new SLS ticket etcd holds gets its first token at once: a crash meanwhile loses nothing.
fn take(core: &mut Core, board: &Board, table: &mut Table, id: TicketId, holding: Holding, change: Change, now: Now) {
    let Some(ticket) = table.get_mut(id) else { return };
    *ticket.holding_mut() = holding;
    let minted = matches!(change, Change::Ticket { .. });
    handle::succeeded(core, board, table, id, change, now);
    if minted && core.awaiting_save.remove(&id).is_some() {
        core.queue.reschedule(table, id, now);
    }
}

#[cfg(test)]
#[path = "fenced_tests.rs"]
mod tests;
