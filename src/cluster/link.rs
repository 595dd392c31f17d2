//! The scheduler's one handle on the fleet ([`FleetLink`]): this node's standing, the fenced write
//! of a holding. What etcd sends back comes to the scheduler as [`FleetEvent`]s.
//!
//! The scheduler knows nothing of etcd: it asks [`FleetLink::standing`] before a due call of a
//! cluster-scoped ticket (and [`crate::cluster::gate::decide`] answers what it may do), writes each
//! result it would publish through [`FleetLink::write`] when the gate said `Fenced`, and applies
//! the [`FleetEvent`]s the fleet's task sends it. The etcd implementation lives with the `etcd`
//! feature; tests drive the scheduler with a fake.

use std::time::Duration;

use crate::apis::BoxFuture;
use crate::cluster::fence::Refused;
use crate::cluster::record::FleetRecord;
use crate::cluster::view::Role;
use crate::store::record::StoredTicket;

/// This node's part in the fleet at one moment: what [`crate::cluster::gate::decide`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub role: Role,
    /// How long etcd has been unreachable (zero while it answers).
    pub unreachable_for: Duration,
    /// `[cluster] lease_ttl`.
    pub lease_ttl: Duration,
}

/// Why a fenced write did not land.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// etcd answered and refused it: [`Refused::Deposed`] means step down and do not publish.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// etcd did not answer (or has no quorum). Names the endpoints, never the holding.
    #[error("etcd at {endpoints} did not take the write: {reason}")]
    Unreachable { endpoints: String, reason: String },
}

/// The fleet, as the scheduler sees it. One per daemon with `[cluster]`.
pub trait FleetLink: Send + Sync + std::fmt::Debug {
    /// This node's name (`[cluster] node`): the `writer` of each holding it writes.
    fn node(&self) -> &str;

    /// This node's standing now. `Role::Leader` only while the leadership is proven (the lease
    /// known alive on the monotonic clock, review F2): the scheduler mints on that word alone.
    fn standing(&self) -> Standing;

    /// Write `record` (one ticket's new holding) through the fence: it commits only while this
    /// node leads and nobody wrote the holding since this node last saw it. `Ok`: etcd holds it,
    /// at this mod revision; every node (this one included) will also see it through the watch.
    fn write(&self, record: FleetRecord) -> BoxFuture<Result<i64, WriteError>>;

    /// Read again what etcd holds for `tickets` and hand it on (review G5): a holding handed on
    /// before its ticket was configured here (or while it had another target) was ignored, and
    /// the watch does not send it twice. Each holding etcd has comes as a
    /// [`FleetEvent::Holding`] (never one older than already handed on), then one
    /// [`FleetEvent::Reread`] names them all, found or not. Does not wait: a request made while
    /// etcd is away is answered once it answers again.
    fn reread(&self, tickets: Vec<Wanted>);
}

/// One ticket's [`FleetEvent::Reread`]: which key was read, and whether the read is certain to
/// show every write this node made there. It is not while a write this node sent got no answer
/// in the current session: etcd may still apply it (a timed-out request can commit later), until
/// the session's lease is gone and its leadership compare fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reread {
    pub wanted: Wanted,
    pub certain: bool,
}

/// A ticket whose holding [`FleetLink::reread`] reads again: its name and identity (the
/// holding's key in etcd).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wanted {
    pub ticket: String,
    pub identity: String,
}

/// What the fleet's task tells the scheduler.
#[derive(Debug)]
pub enum FleetEvent {
    /// etcd holds this holding for ticket `ticket` (read at start, or seen by the watch). The
    /// scheduler adopts it when the ticket is configured with the same identity and the holding
    /// does not go back (see [`crate::cluster::record::supersedes`]); then publishes and saves it
    /// as it would its own result.
    Holding { ticket: String, stored: Box<StoredTicket>, writer: String, revision: i64 },
    /// Every holding etcd held at a load (a session's first, or after a compaction) has been
    /// handed on: a restarted node writes its sinks from its saved state only now (issue #19).
    Loaded,
    /// This node's role changed: on becoming leader every cluster-scoped ticket is planned again
    /// from its holding (a call the old leader died in is made at once); on losing it, no
    /// fenced result still in flight is published.
    Role(Role),
    /// A [`FleetLink::reread`] of these tickets is done: what etcd holds of them came before.
    Reread(Vec<Reread>),
    /// Every member of the fleet has applied etcd's holdings up to this revision (each member
    /// key says so): a long-term token replaced by a holding written at or before it is no
    /// longer served by any node that is in touch with etcd, and may be revoked (review G13).
    Applied(i64),
}
