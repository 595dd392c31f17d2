//! The etcd keys of a fleet, all under its `prefix`: the election, the members, the holdings.

use sha2::{Digest, Sha256};

/// The keys under one fleet's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix` as `[cluster] prefix` has it (starts with `/`, no trailing `/`).
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_string() }
    }

    /// The election's name: etcd's election API keeps each candidate at `<this>/<lease id>`.
    pub fn election(&self) -> String {
        format!("{}/leader", self.prefix)
    }

    /// The members' directory: every node's `<prefix>/members/<node>`, on its lease.
    pub fn members(&self) -> String {
        format!("{}/members/", self.prefix)
    }

    pub fn member(&self, node: &str) -> String {
        format!("{}{node}", self.members())
    }

    /// The node a member key names, if `key` is one.
    pub fn member_name<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(&self.members()).filter(|n| !n.is_empty() && !n.contains('/'))
    }

    /// The holdings' directory, watched by every node.
    pub fn tickets(&self) -> String {
        format!("{}/tickets/", self.prefix)
    }

    /// Where ticket `name`'s holding for `identity` (what it is good for, as `store::record`
    /// has it) lives: `<prefix>/tickets/<name>/<first 16 hex digits of SHA-256(identity)>`. A
    /// ticket edited to another API target gets another key, so its old holding is never
    /// taken for the new one.
    pub fn ticket(&self, name: &str, identity: &str) -> String {
        let digest = Sha256::digest(identity.as_bytes());
        format!("{}{name}/{}", self.tickets(), hex::encode(&digest[..8]))
    }

    /// The ticket name a holding key names, if `key` is one.
    pub fn ticket_name<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key.strip_prefix(&self.tickets())?;
        let (name, hash) = rest.split_once('/')?;
        (!name.is_empty() && hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_lives_under_the_prefix_and_reads_back() {
        let keys = Keys::new("/ticketd/prod");
        assert_eq!(keys.election(), "/ticketd/prod/leader");
        assert_eq!(keys.member("web-1"), "/ticketd/prod/members/web-1");
        assert_eq!(keys.member_name("/ticketd/prod/members/web-1"), Some("web-1"));
        assert_eq!(keys.member_name("/ticketd/prod/members/"), None);
        let key = keys.ticket("dash", "sls https://cn-shanghai.log.aliyuncs.com 30d");
        assert!(key.starts_with("/ticketd/prod/tickets/dash/"), "{key}");
        assert_eq!(key.len(), "/ticketd/prod/tickets/dash/".len() + 16);
        assert_eq!(keys.ticket_name(&key), Some("dash"));
        assert_eq!(keys.ticket_name("/ticketd/prod/tickets/dash"), None);
        assert_eq!(keys.ticket_name("/ticketd/other/tickets/dash/0123456789abcdef"), None);
    }

    #[test]
    fn an_edited_ticket_gets_another_key_and_prefixes_do_not_overlap() {
        let keys = Keys::new("/t");
        assert_ne!(keys.ticket("dash", "sls a"), keys.ticket("dash", "sls b"));
        assert_eq!(keys.ticket("dash", "sls a"), keys.ticket("dash", "sls a"));
        // A fleet at `/t` never reads `/t2`'s keys, nor its holdings its members.
        assert!(!Keys::new("/t2").tickets().starts_with(&keys.tickets()));
        assert!(!keys.election().starts_with(&keys.tickets()) && !keys.members().starts_with(&keys.tickets()));
    }
}
