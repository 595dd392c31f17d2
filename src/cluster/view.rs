//! The cluster status this node shows: its name, its role, the leader's name, the members with
//! each one's last sync. The fleet's code updates it through narrow setters; the socket API,
//! metrics and `ticketd status` read a [`ViewSnapshot`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::Serialize;

/// This node's part in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Holds the leadership: the one node that calls the cloud for cluster-scoped tickets.
    Leader,
    /// Applies what etcd holds; calls the cloud only for node-scoped tickets (and the fallback).
    Follower,
    /// Cannot reach etcd (or etcd has no quorum): serves the last good tokens.
    Unreachable,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Unreachable => "unreachable",
        }
    }
}

/// One member as this node last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberSnapshot {
    pub name: String,
    /// When it last applied etcd's holdings, when known.
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_sync: Option<SystemTime>,
}

/// The view at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ViewSnapshot {
    /// This node's name.
    pub node: String,
    pub role: Role,
    /// The leader's name, when one is known.
    pub leader: Option<String>,
    /// When this node last applied etcd's holdings.
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_sync: Option<SystemTime>,
    /// Every member known, this node included, by name.
    pub members: Vec<MemberSnapshot>,
}

#[derive(Debug)]
struct State {
    role: Role,
    leader: Option<String>,
    members: BTreeMap<String, Option<SystemTime>>,
}

/// The shared view: one per daemon with `[cluster]`, held in an `Arc` by its writer and readers.
#[derive(Debug)]
pub struct ClusterView {
    node: String,
    state: Mutex<State>,
}

impl ClusterView {
    /// A view of node `node`: a follower that knows no leader and has not synced yet.
    pub fn new(node: &str) -> Arc<ClusterView> {
        let members = BTreeMap::from([(node.to_string(), None)]);
        Arc::new(ClusterView {
            node: node.to_string(),
            state: Mutex::new(State { role: Role::Follower, leader: None, members }),
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn set_role(&self, role: Role) {
        self.state().role = role;
    }

    /// The leader's name as etcd says, or `None` while there is none.
    pub fn set_leader(&self, leader: Option<&str>) {
        self.state().leader = leader.map(str::to_string);
    }

    /// This node applied etcd's holdings at `at`.
    pub fn synced(&self, at: SystemTime) {
        self.state().members.insert(self.node.clone(), Some(at));
    }

    /// Member `name` is present, having last synced at `last_sync`. This node's own entry is
    /// [`ClusterView::synced`]'s alone: a report of this node's name is ignored.
    pub fn member(&self, name: &str, last_sync: Option<SystemTime>) {
        if name != self.node {
            self.state().members.insert(name.to_string(), last_sync);
        }
    }

    /// Member `name` is gone (its lease expired or it left). This node stays.
    pub fn member_left(&self, name: &str) {
        if name != self.node {
            self.state().members.remove(name);
        }
    }

    pub fn snapshot(&self) -> ViewSnapshot {
        let state = self.state();
        ViewSnapshot {
            node: self.node.clone(),
            role: state.role,
            leader: state.leader.clone(),
            last_sync: state.members.get(&self.node).copied().flatten(),
            members: state
                .members
                .iter()
                .map(|(name, last_sync)| MemberSnapshot { name: name.clone(), last_sync: *last_sync })
                .collect(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is one assignment: a panic elsewhere cannot leave the state half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) fn rfc3339_opt<S: serde::Serializer>(at: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&crate::clock::rfc3339(*at)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn issue_19_a_new_view_is_a_follower_alone_unsynced() {
        let view = ClusterView::new("web-1");
        assert_eq!(
            view.snapshot(),
            ViewSnapshot {
                node: "web-1".into(),
                role: Role::Follower,
                leader: None,
                last_sync: None,
                members: vec![MemberSnapshot { name: "web-1".into(), last_sync: None }],
            }
        );
    }

    #[test]
    fn issue_19_setters_change_only_their_part_and_members_sort_by_name() {
        let view = ClusterView::new("web-2");
        view.set_role(Role::Leader);
        view.set_leader(Some("web-2"));
        view.synced(at(100));
        view.member("web-3", Some(at(90)));
        view.member("web-1", None);
        view.member("web-2", Some(at(1))); // ignored: our own entry is synced()'s
        let s = view.snapshot();
        assert_eq!((s.role, s.leader.as_deref(), s.last_sync), (Role::Leader, Some("web-2"), Some(at(100))));
        let names: Vec<_> = s.members.iter().map(|m| (m.name.as_str(), m.last_sync)).collect();
        assert_eq!(names, [("web-1", None), ("web-2", Some(at(100))), ("web-3", Some(at(90)))]);
        view.member_left("web-3");
        view.member_left("web-2"); // ignored: this node stays
        view.set_role(Role::Unreachable);
        view.set_leader(None);
        let s = view.snapshot();
        assert_eq!((s.role, s.leader), (Role::Unreachable, None));
        assert_eq!(s.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["web-1", "web-2"]);
    }

    #[test]
    fn issue_19_a_snapshot_serializes_with_rfc3339_times() {
        let view = ClusterView::new("web-1");
        view.set_leader(Some("web-2"));
        view.synced(at(1_700_000_000));
        view.member("web-2", None);
        let json = serde_json::to_value(view.snapshot()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "node": "web-1", "role": "follower", "leader": "web-2", "last_sync": "2023-11-14T22:13:20Z",
                "members": [
                    {"name": "web-1", "last_sync": "2023-11-14T22:13:20Z"},
                    {"name": "web-2", "last_sync": null},
                ],
            })
        );
        assert_eq!(Role::Unreachable.as_str(), "unreachable");
    }
}
