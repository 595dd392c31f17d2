//! Fencing: the compares of the one transaction a leader writes a holding in, with what a refused
//! write means. Pure data: `etcd.rs` turns [`Guard`]s into etcd compares.
//!
//! A write commits only while (1) the leader's election key still exists with the create
//! revision it had when this node won (a deposed leader's key is gone with its lease, or was
//! created anew by another campaign) and (2) the holding is still at the revision this node read
//! (nobody wrote it since). With the generation check before it, an older holding never
//! overwrites a newer one.

/// This node's leadership, as the election gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// The election key (`<prefix>/leader/<lease id>`).
    pub key: Vec<u8>,
    /// Its create revision: the fence token.
    pub create_revision: i64,
    pub lease: i64,
}

/// The holding's state the write expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No holding under the key yet.
    Absent,
    /// The holding as read, at this mod revision.
    At(i64),
}

/// One compare of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// `create_revision(key) == equals` (a missing key's is 0).
    CreateRevision { key: Vec<u8>, equals: i64 },
    /// `mod_revision(key) == equals` (a missing key's is 0).
    ModRevision { key: Vec<u8>, equals: i64 },
}

/// The compares a fenced write of `holding_key` makes.
pub fn guards(leadership: &Leadership, holding_key: &str, expect: Expect) -> [Guard; 2] {
    let equals = match expect {
        Expect::Absent => 0,
        Expect::At(revision) => revision,
    };
    [
        Guard::CreateRevision { key: leadership.key.clone(), equals: leadership.create_revision },
        Guard::ModRevision { key: holding_key.as_bytes().to_vec(), equals },
    ]
}

/// Why a fenced write did not commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This node is no longer the leader: it steps down and does not publish the result.
    #[error("this node is no longer the fleet's leader (its election key is gone or was made anew)")]
    Deposed,
    /// Another write reached the holding first: read it again.
    #[error("the holding changed in etcd since it was read")]
    Raced,
    /// etcd holds a newer generation than the one to write.
    #[error("etcd holds generation {stored}, newer than this write's {ours}")]
    Stale { stored: u64, ours: u64 },
}

/// Why the transaction's compares failed, from the leader key's create revision read in its
/// else branch (`None`: the key is gone).
pub fn refused(leader_key_now: Option<i64>, leadership: &Leadership) -> Refused {
    match leader_key_now {
        Some(revision) if revision == leadership.create_revision => Refused::Raced,
        _ => Refused::Deposed,
    }
}

/// Whether a holding of generation `ours` may be written over one of `stored` (`None`: none).
/// An equal generation may be written (an SLS ticket's pending re-mint keeps its generation), so
/// two holdings of one generation can replace each other: what keeps a stale one out is the
/// transaction's mod-revision compare, not this check.
pub fn check_generation(stored: Option<u64>, ours: u64) -> Result<(), Refused> {
    match stored {
        Some(stored) if stored > ours => Err(Refused::Stale { stored, ours }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leadership() -> Leadership {
        Leadership { key: b"/t/leader/694d7a1b2c3d4e5f".to_vec(), create_revision: 41, lease: 0x694d7a1b2c3d4e5f }
    }

    #[test]
    fn a_write_is_guarded_by_the_leadership_and_the_revision_it_read() {
        let l = leadership();
        assert_eq!(
            guards(&l, "/t/tickets/a/00", Expect::At(57)),
            [
                Guard::CreateRevision { key: l.key.clone(), equals: 41 },
                Guard::ModRevision { key: b"/t/tickets/a/00".to_vec(), equals: 57 },
            ]
        );
        // A first write expects the key absent: etcd compares a missing key's revision as 0.
        assert_eq!(
            guards(&l, "/t/tickets/a/00", Expect::Absent)[1],
            Guard::ModRevision { key: b"/t/tickets/a/00".to_vec(), equals: 0 }
        );
    }

    #[test]
    fn a_failed_compare_is_a_deposition_unless_the_leader_key_is_still_ours() {
        let l = leadership();
        assert_eq!(refused(None, &l), Refused::Deposed);
        assert_eq!(refused(Some(99), &l), Refused::Deposed);
        assert_eq!(refused(Some(41), &l), Refused::Raced);
    }

    #[test]
    fn an_older_generation_never_overwrites_a_newer_one() {
        assert_eq!(check_generation(None, 1), Ok(()));
        assert_eq!(check_generation(Some(4), 5), Ok(()));
        assert_eq!(check_generation(Some(5), 5), Ok(()));
        assert_eq!(check_generation(Some(6), 5), Err(Refused::Stale { stored: 6, ours: 5 }));
    }
}
