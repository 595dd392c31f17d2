//! The order in which a node applies the holdings etcd sends it ([`Applied`]): by etcd's mod
//! revision, which only grows fleet-wide, never by the generation a node computed on its own.
//!
//! Review F9: after a partition a node's fallback renewals may have raised its local generation
//! past the leader's; ordering by generation would keep that forked token until the leader's
//! generation overtook it. The mod revision says which write etcd took last, so the leader's
//! reconciling write is always handed on. What is refused is only an older (or the same) revision
//! of a key than one already handed on: a load after a reconnect or a compaction re-reads holdings
//! the watch already delivered.

use std::collections::HashMap;

/// The last mod revision handed on for each holding key, and the highest revision seen at all
/// (where a resumed watch starts).
#[derive(Debug, Default)]
pub(crate) struct Applied {
    revisions: HashMap<String, i64>,
    /// The highest revision seen (a watch resumes after it), 0 before the first load.
    pub(crate) watched: i64,
}

impl Applied {
    /// Whether the holding at `key`, written at `revision`, is to be handed on: true once per
    /// revision, and never for a revision below one already handed on for the key.
    pub(crate) fn admit(&mut self, key: &str, revision: i64) -> bool {
        self.watched = self.watched.max(revision);
        match self.revisions.get_mut(key) {
            Some(last) if *last >= revision => false,
            Some(last) => {
                *last = revision;
                true
            }
            None => {
                self.revisions.insert(key.to_string(), revision);
                true
            }
        }
    }

    /// Whether the holding at `key`, read again at `revision` ([`crate::cluster::link::FleetLink::reread`]),
    /// is to be handed on: unless one of a later revision was handed on. The same revision is
    /// handed on again (the scheduler may have ignored it); the watch then does not repeat it.
    pub(crate) fn readmit(&mut self, key: &str, revision: i64) -> bool {
        // Not `watched`: the watch has not reached this revision for the other keys.
        match self.revisions.get_mut(key) {
            Some(last) if *last > revision => false,
            Some(last) => {
                *last = revision;
                true
            }
            None => {
                self.revisions.insert(key.to_string(), revision);
                true
            }
        }
    }

    /// The watch has reached `revision` (an answer with no holding of ours in it).
    pub(crate) fn reached(&mut self, revision: i64) {
        self.watched = self.watched.max(revision);
    }

    /// `key` was deleted at `revision`: a holding written there later is new again.
    pub(crate) fn deleted(&mut self, key: &str, revision: i64) {
        self.revisions.insert(key.to_string(), revision);
        self.watched = self.watched.max(revision);
    }

    /// Whether anything has been loaded yet (a new session loads; a later one resumes).
    pub(crate) fn loaded(&self) -> bool {
        self.watched > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F9's sequence: a node renewed three times on its own while etcd was away (its local
    /// generation is now past the leader's), then the leader's reconciling write comes, with a
    /// lower generation but a later revision: it is handed on. A reload that reads the same
    /// revision again (or an older one) is not handed on twice.
    #[test]
    fn issue_19_holdings_are_handed_on_by_mod_revision_not_by_generation() {
        let mut applied = Applied::default();
        assert!(!applied.loaded());
        assert!(applied.admit("/t/tickets/sls/ab", 10));
        // The leader's write after the partition: generation 7 < the node's 9, revision 42 > 10.
        assert!(applied.admit("/t/tickets/sls/ab", 42));
        assert!(applied.loaded());
        // A reload after a reconnect reads it again at 42: not twice.
        assert!(!applied.admit("/t/tickets/sls/ab", 42));
        // A load racing a watch may read an older value: never handed on after a newer one.
        assert!(!applied.admit("/t/tickets/sls/ab", 30));
        // Other keys keep their own order.
        assert!(applied.admit("/t/tickets/tcr/cd", 31));
        assert_eq!(applied.watched, 42);
        applied.deleted("/t/tickets/tcr/cd", 50);
        assert!(!applied.admit("/t/tickets/tcr/cd", 31));
        assert!(applied.admit("/t/tickets/tcr/cd", 51));
        applied.reached(60);
        assert_eq!(applied.watched, 60);
    }

    /// Review G5: a holding read again is handed on again at the revision already handed on
    /// (the scheduler ignored it), never at an older one; the watch does not repeat it after.
    #[test]
    fn issue_19_a_holding_read_again_is_handed_on_again_but_never_backwards() {
        let mut applied = Applied::default();
        assert!(applied.admit("/t/tickets/sls/ab", 10));
        assert!(applied.readmit("/t/tickets/sls/ab", 10), "the same revision, asked for again");
        assert!(!applied.readmit("/t/tickets/sls/ab", 9), "an older one");
        assert!(applied.readmit("/t/tickets/sls/ab", 12), "a newer one");
        assert!(!applied.admit("/t/tickets/sls/ab", 12), "the watch's copy of what was read");
        assert!(applied.readmit("/t/tickets/new/cd", 5), "a key never handed on");
        assert!(!applied.admit("/t/tickets/new/cd", 5));
        assert_eq!(applied.watched, 12, "as far as the watch went");
        assert!(applied.readmit("/t/tickets/sls/ab", 30));
        assert_eq!(applied.watched, 12, "a read does not move where the watch resumes");
    }
}
