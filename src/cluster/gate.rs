//! What the scheduler may do for a due ticket, given this node's part in the fleet: the one
//! seam between scheduling and leadership ([`decide`]). Pure: the role and the facts come in.
//!
//! - A node-scoped ticket, or no fleet: call, as on one host.
//! - The leader: call, and write the result through the fence before publishing it.
//! - A follower: no call; the watched holding comes from the leader.
//! - etcd unreachable: no mint ever (a new SLS ticket or TCR long-term token minted without proven
//!   leadership forks the fleet). A renewal of what the fleet shares (SLS RefreshToken for the
//!   stored ticket, a DSW token, a TCR temporary token) may run on this node once etcd has been
//!   unreachable for a lease TTL (long enough for a reachable node to have taken over) and the
//!   token would otherwise lapse; logged as a warning, reconciled when etcd returns.

use std::time::Duration;

use crate::cluster::view::Role;
use crate::config::Scope;

/// What a due call would do: each API says so (`Api::call_kind`).
pub use crate::apis::api::CallKind;

/// The facts a decision needs beyond the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub kind: CallKind,
    /// How long etcd has been unreachable (zero while reachable).
    pub unreachable_for: Duration,
    /// `[cluster] lease_ttl`.
    pub lease_ttl: Duration,
    /// Whether the ticket's token expires before the next attempt would come (or none is held).
    pub would_lapse: bool,
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Call, and publish as on one host.
    Local,
    /// Call, then write through the fence; publish only once etcd took it.
    Fenced,
    /// Do not call: wait for the holding etcd sends.
    Wait,
    /// Call on this node although etcd is unreachable (a renewal only); warn.
    Fallback,
}

/// The decision for one due ticket of `scope` on a node whose role is `role` (`None`: no
/// `[cluster]`).
pub fn decide(scope: Scope, role: Option<Role>, facts: Facts) -> Gate {
    match (scope, role) {
        (Scope::Node, _) | (_, None) => Gate::Local,
        (Scope::Cluster, Some(Role::Leader)) => Gate::Fenced,
        (Scope::Cluster, Some(Role::Follower)) => Gate::Wait,
        (Scope::Cluster, Some(Role::Unreachable)) => {
            let fallback =
                facts.kind == CallKind::Renew && facts.unreachable_for >= facts.lease_ttl && facts.would_lapse;
            if fallback { Gate::Fallback } else { Gate::Wait }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    fn facts(kind: CallKind, unreachable_for: u64, would_lapse: bool) -> Facts {
        Facts { kind, unreachable_for: Duration::from_secs(unreachable_for), lease_ttl: TTL, would_lapse }
    }

    #[test]
    fn node_tickets_and_single_hosts_call_as_today() {
        for role in [None, Some(Role::Leader), Some(Role::Follower), Some(Role::Unreachable)] {
            assert_eq!(decide(Scope::Node, role, facts(CallKind::Mint, 99, true)), Gate::Local);
        }
        assert_eq!(decide(Scope::Cluster, None, facts(CallKind::Mint, 0, false)), Gate::Local);
    }

    #[test]
    fn only_the_leader_calls_for_the_fleet_and_through_the_fence() {
        for kind in [CallKind::Mint, CallKind::Renew] {
            assert_eq!(decide(Scope::Cluster, Some(Role::Leader), facts(kind, 0, true)), Gate::Fenced);
            assert_eq!(decide(Scope::Cluster, Some(Role::Follower), facts(kind, 0, true)), Gate::Wait);
        }
    }

    #[test]
    fn without_etcd_nothing_is_minted_and_a_renewal_falls_back_only_when_the_token_would_lapse() {
        let unreachable = Some(Role::Unreachable);
        assert_eq!(decide(Scope::Cluster, unreachable, facts(CallKind::Mint, 3600, true)), Gate::Wait);
        assert_eq!(decide(Scope::Cluster, unreachable, facts(CallKind::Renew, 10, true)), Gate::Fallback);
        assert_eq!(decide(Scope::Cluster, unreachable, facts(CallKind::Renew, 10, false)), Gate::Wait);
        // Not yet a lease TTL: a reachable node may be taking over.
        assert_eq!(decide(Scope::Cluster, unreachable, facts(CallKind::Renew, 9, true)), Gate::Wait);
    }
}
