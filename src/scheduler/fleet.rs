//! The fleet's side of the scheduler (issue #19).
//!
//! It adopts the holdings etcd sends (`FleetEvent`s) and follows this node's role. The pure rule
//! of adoption is [`adoption`].
//!
//! Generations: etcd's watch comes in mod-revision order, and a holding is adopted when it differs
//! from what this node holds and is not older than the last generation this node saw etcd hold
//! (review F9: not older than this node's own, which fallback renewals may have pushed past the
//! leader's). This node's generation never goes back: an adopted holding whose generation is not
//! above the one held gets the held one plus one, so consumers still see a rotation.

use std::collections::HashMap;
use std::sync::Arc;

use crate::apis::CallKind;
use crate::board::{Board, Table, TicketId};
use crate::clock::Now;
use crate::cluster::link::{FleetLink, Reread, Wanted};
use crate::cluster::view::Role;
use crate::config::Scope;
use crate::scheduler::apply;
use crate::scheduler::core::Core;
use crate::scheduler::reports::Event;
use crate::scheduler::revoke;
use crate::store::record::{StoredTicket, identity};
use crate::token::{Current, Holding};

/// The scheduler's side of the fleet: the link, the role's term, and what etcd last held.
pub(crate) struct Fleet {
    pub(crate) link: Arc<dyn FleetLink>,
    /// Bumped at each role change: a gated call (or write) started in an earlier term is not
    /// published (a leader that lost its role must not publish what it fetched as leader).
    pub(crate) term: u64,
    /// Per ticket (under its epoch), the last generation etcd was seen holding: adopted, or
    /// written by this node.
    seen: HashMap<TicketId, (u32, u64)>,
    /// The gated calls out, by ticket (under its epoch).
    calls: HashMap<TicketId, (u32, Gated)>,
    /// The tickets (under their epoch) whose holding etcd is asked to send again
    /// ([`FleetLink::reread`]): none is minted for until the answer (review G5).
    rereading: HashMap<TicketId, u32>,
    /// The tickets (under their epoch) whose new holding is being written through the fence: the
    /// watch's echo of it is not adopted, the write's answer publishes it (review G12).
    writing: HashMap<TicketId, u32>,
    /// Long-term tokens (by ticket) minted as leader whose write got no answer: etcd may hold
    /// them, now or later (review G11). Revoked once a certain read of etcd shows it does not;
    /// when it does, the token they replaced is revoked instead.
    unsure: HashMap<TicketId, Unsure>,
    /// This node's role as the scheduler last took it in ([`role_changed`]): the link may say
    /// `Leader` a moment before its `Role` event has marked the tickets to read again.
    pub(crate) role: Role,
    /// The revision every fleet member has applied, as last told ([`crate::cluster::link::FleetEvent::Applied`]).
    pub(crate) applied: i64,
}

/// A long-term token minted as leader whose write got no answer ([`Fleet::unanswered_mint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsure {
    pub(crate) epoch: u32,
    pub(crate) token_id: String,
    /// The long-term token it was to replace, if any.
    pub(crate) replaced: Option<String>,
}

/// A call the gate let through: whether its result goes through the fence, what it makes, and
/// the fleet's term it started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gated {
    pub(crate) fenced: bool,
    pub(crate) kind: CallKind,
    pub(crate) term: u64,
}

impl Fleet {
    pub(crate) fn new(link: Arc<dyn FleetLink>) -> Fleet {
        let role = link.standing().role;
        Fleet {
            role,
            link,
            term: 0,
            seen: HashMap::new(),
            calls: HashMap::new(),
            rereading: HashMap::new(),
            writing: HashMap::new(),
            unsure: HashMap::new(),
            applied: 0,
        }
    }

    /// Whether ticket `id` at `epoch` waits for etcd to be read again (no mint meanwhile).
    pub(crate) fn rereading(&self, id: TicketId, epoch: u32) -> bool {
        self.rereading.get(&id) == Some(&epoch)
    }

    /// A fenced write of ticket `id` at `epoch` is out (`true`) or answered (`false`).
    pub(crate) fn writing(&mut self, id: TicketId, epoch: u32, out: bool) {
        if out {
            self.writing.insert(id, epoch);
        } else if self.writing.get(&id) == Some(&epoch) {
            self.writing.remove(&id);
        }
    }

    /// A mint of ticket `id` at `epoch` (a new SLS ticket, a TCR long-term token: `unsure`) was
    /// written and got no answer: etcd may hold it, now or later. Nothing is minted again for the
    /// ticket until etcd has been read again (review of G5-G13, M3: a second CreateTicket), and a
    /// long-term token is kept until a certain read says whether etcd holds it.
    pub(crate) fn unanswered_mint(&mut self, table: &Table, id: TicketId, epoch: u32, unsure: Option<Unsure>) {
        if let Some(unsure) = unsure {
            self.unsure.insert(id, unsure);
        }
        if let Some(ticket) = table.get(id) {
            // The node reads the key again after such a write; asking here marks the ticket too.
            let wanted = Wanted { ticket: ticket.spec().name.to_string(), identity: identity(ticket.spec()) };
            self.rereading.insert(id, epoch);
            self.link.reread(vec![wanted]);
        }
    }

    /// Ask etcd to send again what it holds for the cluster-scoped tickets among `ids` it was never
    /// seen holding (at their epoch): a holding handed on before the ticket was configured here,
    /// or while it had another target, was ignored then (review G5).
    pub(crate) fn reread_unseen(&mut self, table: &Table, ids: impl IntoIterator<Item = TicketId>, why: &'static str) {
        let mut wanted = Vec::new();
        for id in ids {
            let Some(ticket) = table.get(id) else { continue };
            let epoch = ticket.epoch();
            if ticket.spec().scope != Scope::Cluster || self.seen(id, epoch).is_some() || self.rereading(id, epoch) {
                continue;
            }
            self.rereading.insert(id, epoch);
            wanted.push(Wanted { ticket: ticket.spec().name.to_string(), identity: identity(ticket.spec()) });
        }
        if !wanted.is_empty() {
            tracing::debug!(
                tickets = wanted.len(),
                why,
                "asking etcd again for the holdings of tickets it was not seen holding"
            );
            self.link.reread(wanted);
        }
    }

    /// The gate let `gated` call out for ticket `id` at `epoch`.
    pub(crate) fn called(&mut self, id: TicketId, epoch: u32, gated: Gated) {
        self.calls.insert(id, (epoch, gated));
    }

    /// The gated call of ticket `id` at `epoch` returned: how it was let out (`None`: not gated).
    /// A late report of an older epoch leaves the entry of the ticket's current call alone.
    pub(crate) fn returned(&mut self, id: TicketId, epoch: u32) -> Option<Gated> {
        let &(at, gated) = self.calls.get(&id)?;
        (at == epoch).then(|| {
            self.calls.remove(&id);
            gated
        })
    }

    /// The last generation etcd was seen holding for ticket `id` at `epoch`.
    pub(crate) fn seen(&self, id: TicketId, epoch: u32) -> Option<u64> {
        self.seen.get(&id).filter(|(e, _)| *e == epoch).map(|&(_, generation)| generation)
    }

    /// etcd holds `generation` for ticket `id` at `epoch` (never lowers what was seen).
    pub(crate) fn saw(&mut self, id: TicketId, epoch: u32, generation: u64) {
        let seen = self.seen(id, epoch).map_or(generation, |s| s.max(generation));
        self.seen.insert(id, (epoch, seen));
    }
}

/// A holding etcd sends ([`crate::cluster::link::FleetEvent::Holding`]).
pub(crate) struct Held {
    pub(crate) name: String,
    pub(crate) stored: StoredTicket,
    pub(crate) writer: String,
    /// The etcd mod revision it was written at.
    pub(crate) revision: i64,
}

/// What to do with a holding etcd sends for a ticket holding `held`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Adopt {
    /// Keep what is held; the reason, for the debug log.
    Ignore(&'static str),
    /// Take it; its token (when it carries a new one) gets this generation on this node.
    Take { generation: u64, new_token: bool },
}

/// Whether a holding etcd sends (`incoming`) replaces `held`, `seen` being the last generation
/// etcd was seen holding for the ticket (none since this process started). Pure.
pub(crate) fn adoption(incoming: &Holding, held: &Holding, seen: Option<u64>, now: Now) -> Adopt {
    if same_token(incoming.current.as_ref(), held.current.as_ref()) && same_pending(incoming, held) {
        return Adopt::Ignore("already held");
    }
    let generation = incoming.generation();
    if seen.is_some_and(|seen| generation < seen) {
        return Adopt::Ignore("older than a generation etcd held before");
    }
    // Never trade a token consumers can use for one they cannot.
    if incoming.valid(now).is_none() && held.valid(now).is_some() {
        return Adopt::Ignore("its token has expired and this node holds a valid one");
    }
    let new_token = incoming.current.is_some() && !same_token(incoming.current.as_ref(), held.current.as_ref());
    let generation = if new_token { generation.max(held.generation() + 1) } else { held.generation() };
    Adopt::Take { generation, new_token }
}

fn same_token(a: Option<&Current>, b: Option<&Current>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.token.value == b.token.value
                && a.token.expires_at == b.token.expires_at
                && a.ticket.as_ref().map(|t| &t.value) == b.ticket.as_ref().map(|t| &t.value)
        }
        _ => false,
    }
}

fn same_pending(a: &Holding, b: &Holding) -> bool {
    a.pending.as_ref().map(|t| &t.value) == b.pending.as_ref().map(|t| &t.value)
}

/// etcd holds `stored` for ticket `name` (written by `writer`): adopt it when [`adoption`] says
/// so, and publish it as this node's own result would be.
pub(crate) fn adopt(fleet: &mut Fleet, core: &mut Core, board: &Board, table: &mut Table, held: Held, now: Now) {
    let Held { name, stored, writer, revision } = held;
    let (name, writer) = (name.as_str(), writer.as_str());
    let Some(id) = table.id(name) else {
        tracing::debug!(ticket = %name, writer, "a holding in etcd for a ticket not configured here: ignored");
        return;
    };
    let ticket = table.get_mut(id).expect("an id just read");
    if ticket.spec().scope != Scope::Cluster || stored.identity != identity(ticket.spec()) {
        tracing::debug!(ticket = %name, writer, "a holding in etcd for another target (or a node-scoped ticket): ignored");
        return;
    }
    let epoch = ticket.epoch();
    let incoming_generation = stored.holding.generation();
    if writer == fleet.link.node() && fleet.writing.get(&id) == Some(&epoch) {
        // The echo of this node's write, before the write's answer: the answer publishes it.
        tracing::debug!(ticket = %name, generation = incoming_generation, "the echo of this node's own write: its answer publishes it");
        fleet.saw(id, epoch, incoming_generation);
        return;
    }
    let decision = adoption(&stored.holding, ticket.holding(), fleet.seen(id, epoch), now);
    let Adopt::Take { generation, new_token } = decision else {
        if let Adopt::Ignore(why) = decision {
            tracing::debug!(ticket = %name, writer, generation = incoming_generation, why, "a holding in etcd: not adopted");
        }
        if decision == Adopt::Ignore("already held") {
            fleet.saw(id, epoch, incoming_generation);
        }
        return;
    };
    fleet.saw(id, epoch, incoming_generation);
    let mut holding = apply::usable(stored.holding, now);
    if let Some(current) = holding.current.as_mut() {
        current.generation = generation;
    }
    let ticket_of = |h: &Holding| h.current.as_ref().and_then(|c| c.ticket.as_ref()).map(|t| t.value.clone());
    let new_ticket = new_token && ticket_of(&holding) != ticket_of(ticket.holding());
    let replaced = std::mem::replace(ticket.holding_mut(), holding).current;
    table.touch();
    if new_token {
        let ticket = table.get_mut(id).expect("an id just read");
        let token_id = ticket.holding().current.as_ref().and_then(|c| c.token.token_id.as_deref());
        if let Some(unsure) =
            fleet.unsure.get(&id).filter(|u| u.epoch == epoch && Some(u.token_id.as_str()) == token_id)
        {
            // etcd took this node's unanswered long-term mint: what it replaced goes, once every
            // node has it (review of G5-G13, M2).
            if let Some(old) = unsure.replaced.as_deref()
                && let Some(mut pending) = revoke::superseded(ticket.spec(), old, generation, now.wall)
            {
                pending.after_generation = None;
                revoke::queue_revocation(board, pending);
                if revision > fleet.applied {
                    board.revocations().wait_for_fleet_now(old, revision);
                } else {
                    board.revocations_changed().notify_one();
                }
            }
            fleet.unsure.remove(&id);
        }
        let ticket = table.get_mut(id).expect("an id just read");
        let expires_at = ticket.holding().current.as_ref().map(|c| c.token.expires_at.time());
        tracing::info!(ticket = %name, writer, generation, "adopted the fleet's token");
        ticket.token_replaced(replaced);
        core.publish(table, id);
        if let Some(expires_at) = expires_at {
            core.emit(Event::TokenRefreshed { name: name.to_string(), generation, expires_at, new_ticket });
        }
    } else {
        tracing::debug!(ticket = %name, writer, "adopted the fleet's holding (a new ticket awaiting its token)");
    }
    core.saves.soon(now.mono);
    if table.get(id).is_some_and(|t| !t.in_flight()) {
        core.queue.reschedule(table, id, now);
    }
}

/// This node's role is now `role`: a new term (gated calls of the last one are not published),
/// and every cluster-scoped ticket planned again from its holding at once (a new leader makes at
/// once a call the old one died in, and nothing else: a good holding is not minted again).
pub(crate) fn role_changed(fleet: &mut Fleet, core: &mut Core, table: &mut Table, role: Role, now: Now) {
    fleet.term += 1;
    fleet.role = role;
    let node = fleet.link.node();
    tracing::info!(
        node,
        role = role.as_str(),
        "this node's part in the fleet changed; planning the fleet's tickets again"
    );
    if role == Role::Leader {
        // A ticket etcd was never seen holding is minted for only once etcd says it has none.
        let ids: Vec<TicketId> = table.iter().map(|(id, _)| id).collect();
        fleet.reread_unseen(table, ids, "this node leads now");
    }
    let ids: Vec<TicketId> =
        table.iter().filter(|(_, t)| t.spec().scope == Scope::Cluster && !t.in_flight()).map(|(id, _)| id).collect();
    for id in ids {
        core.queue.reschedule(table, id, now);
    }
}

/// etcd was read again for `rereads` ([`FleetLink::reread`]): what it holds of them came before
/// and was adopted as any holding. They may be minted for again. A long-term token minted here
/// whose write got no answer is revoked once a certain read shows etcd does not hold it; an
/// uncertain one (the write's session still runs: etcd may yet apply it) keeps it active.
pub(crate) fn reread_done(
    fleet: &mut Fleet,
    core: &mut Core,
    board: &Board,
    table: &mut Table,
    rereads: Vec<Reread>,
    now: Now,
) {
    for Reread { wanted, certain } in rereads {
        let Some(id) = table.id(&wanted.ticket) else { continue };
        let Some(ticket) = table.get(id) else { continue };
        // An answer for another target (a reload retargeted it meanwhile) says nothing of this one.
        if identity(ticket.spec()) != wanted.identity {
            continue;
        }
        let epoch = ticket.epoch();
        if fleet.rereading.get(&id) == Some(&epoch) {
            fleet.rereading.remove(&id);
        }
        if let Some(unsure) = fleet.unsure.get(&id).filter(|u| u.epoch == epoch).cloned() {
            let held = ticket.holding().current.as_ref().and_then(|c| c.token.token_id.as_deref());
            let name = &wanted.ticket;
            let token_id = &unsure.token_id;
            if held == Some(token_id.as_str()) {
                tracing::info!(ticket = %name, token_id = %token_id, "etcd took the long-term token whose write got no answer");
                fleet.unsure.remove(&id);
            } else if certain {
                tracing::info!(ticket = %name, token_id = %token_id, "etcd does not hold the long-term token this node minted (its write got no answer): revoking it");
                revoke::dropped(core, board, ticket.spec(), token_id, now);
                fleet.unsure.remove(&id);
            } else {
                tracing::warn!(ticket = %name, token_id = %token_id, "etcd does not hold the long-term token whose write got no answer, but may still apply that write: it stays active until this node's next fleet session reads etcd again");
            }
        }
        if table.get(id).is_some_and(|t| !t.in_flight()) {
            core.queue.reschedule(table, id, now);
        }
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "fleet_reread_tests.rs"]
mod reread_tests;
