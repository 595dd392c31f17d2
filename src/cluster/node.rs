//! This node's part in its fleet ([`FleetNode`]), run as one task beside the scheduler.
//!
//! It connects to etcd (again while it is down), keeps the lease alive, campaigns, follows the
//! leader and the members, watches the holdings, hands them to the scheduler as [`FleetEvent`]s;
//! it is also the scheduler's [`FleetLink`] (standing, fenced write).
//!
//! One session = one connection and one lease. It ends when the lease keep-alive fails (etcd
//! unreachable or without quorum), a stream ends, or a write finds this node deposed; its lease
//! is then revoked (bounded), the role becomes `Unreachable` and a new session starts with a
//! backoff. The watch of the holdings resumes after the last revision applied; when etcd has
//! compacted it, the holdings are loaded again. Holdings are handed on in mod-revision order
//! (`cluster::order::Applied`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::apis::BoxFuture;
use crate::cluster::etcd::{EtcdFleet, FleetError};
use crate::cluster::fence::{Leadership, Refused};
use crate::cluster::link::{FleetEvent, FleetLink, Standing, Wanted, WriteError};
use crate::cluster::order::Applied;
use crate::cluster::prepare::Prepared;
use crate::cluster::record::FleetRecord;
use crate::cluster::view::{ClusterView, Role};
use crate::config::ClusterSpec;

/// What a session exchanges with etcd (holdings, member keys), in its own file.
#[path = "node_holdings.rs"]
mod holdings;

/// The first wait before connecting again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A node records its sync in its member key at most this often (review G7: one put per watch
/// answer made every refresh cost a write per node); a burst of changes is recorded once.
const MEMBER_PUT_SPACING: Duration = Duration::from_millis(500);
/// How long a clean stop waits for etcd to revoke the lease.
const REVOKE_LIMIT: Duration = Duration::from_secs(2);

/// Where the events go (the scheduler's command channel).
pub type Send = Box<dyn Fn(FleetEvent) + std::marker::Send + Sync>;

/// This node in its fleet. Shared (`Arc`) by the scheduler (as its [`FleetLink`]) and the task.
pub struct FleetNode {
    spec: ClusterSpec,
    prepared: Prepared,
    view: Arc<ClusterView>,
    state: Mutex<State>,
    send: OnceLock<Send>,
    /// Told when a write found this node deposed: the session ends.
    deposed: tokio::sync::Notify,
    /// Told when holdings are to be read again ([`State::wanted`]).
    reread_wanted: tokio::sync::Notify,
    /// This node itself, for the `'static` futures of [`FleetLink::write`].
    me: std::sync::Weak<FleetNode>,
}

#[derive(Debug)]
struct State {
    role: Role,
    /// Since when etcd has not answered (None while it answers).
    failing_since: Option<Instant>,
    /// Until when this node's lease is known alive (last keep-alive answer: its send + the TTL).
    lease_until: Option<Instant>,
    session: Option<Arc<EtcdFleet>>,
    leadership: Option<Leadership>,
    /// The mod revision this node last saw for each holding key (load, watch, its own writes):
    /// what its next write there expects.
    seen: HashMap<String, i64>,
    applied: Applied,
    /// Each member's last applied revision of the holdings (its member key says), this node's
    /// included; and the lowest of them last told to the scheduler.
    members_applied: HashMap<String, i64>,
    fleet_applied: i64,
    /// The holdings to read again and hand on ([`FleetLink::reread`]; and after a write that did
    /// not land), kept until a session reads them.
    wanted: HashSet<Wanted>,
    /// Sessions started so far (the current one's number).
    sessions: u64,
    /// Writes that got no answer, by key: the ticket and the session they were sent in. A read
    /// there is certain only in a later session (the lease the write's fence named is gone).
    unanswered: HashMap<String, (Wanted, u64)>,
}

impl std::fmt::Debug for FleetNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetNode").field("node", &self.spec.node).field("role", &self.lock().role).finish()
    }
}

impl FleetNode {
    /// This node, not connected yet (role `Unreachable` until its task connects).
    pub fn new(spec: ClusterSpec, view: Arc<ClusterView>, prepared: Prepared) -> Arc<FleetNode> {
        view.set_role(Role::Unreachable);
        Arc::new_cyclic(|me| FleetNode {
            me: me.clone(),
            spec,
            prepared,
            view,
            state: Mutex::new(State {
                role: Role::Unreachable,
                failing_since: Some(Instant::now()),
                lease_until: None,
                session: None,
                leadership: None,
                seen: HashMap::new(),
                applied: Applied::default(),
                members_applied: HashMap::new(),
                fleet_applied: 0,
                wanted: HashSet::new(),
                sessions: 0,
                unanswered: HashMap::new(),
            }),
            send: OnceLock::new(),
            deposed: tokio::sync::Notify::new(),
            reread_wanted: tokio::sync::Notify::new(),
        })
    }

    pub fn view(&self) -> &Arc<ClusterView> {
        &self.view
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a few assignments that cannot panic half-way.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, event: FleetEvent) {
        if let Some(send) = self.send.get() {
            send(event);
        }
    }

    /// Change the role (and tell the view and the scheduler) if it differs.
    fn set_role(&self, role: Role) {
        let changed = {
            let mut state = self.lock();
            if role != Role::Leader {
                state.leadership = None;
            }
            std::mem::replace(&mut state.role, role) != role
        };
        if changed {
            self.view.set_role(role);
            tracing::info!(node = %self.spec.node, role = role.as_str(), "fleet role changed");
            self.send(FleetEvent::Role(role));
        }
    }

    /// etcd answered: the unreachable streak (if any) is over.
    fn answered(&self) {
        self.lock().failing_since = None;
    }

    /// etcd did not answer: a streak starts (or goes on).
    fn failed(&self) {
        self.lock().failing_since.get_or_insert_with(Instant::now);
    }

    /// Run until `shutdown`: connect, run a session, and again after it ends. `send` takes the
    /// events for the scheduler. At `shutdown` the lease is revoked (bounded), so another node
    /// takes the leadership at once.
    pub async fn run(self: Arc<Self>, send: Send, shutdown: CancellationToken) {
        if self.send.set(send).is_err() {
            tracing::error!("the fleet task was started twice; this one stops");
            return;
        }
        let mut backoff = FIRST_BACKOFF;
        let mut down_logged = false;
        loop {
            let granted = Instant::now();
            let connected = tokio::select! {
                () = shutdown.cancelled() => return,
                c = tokio::time::timeout(self.spec.lease_ttl, EtcdFleet::connect(&self.spec, &self.prepared)) => c,
            };
            let fleet = match connected {
                Ok(Ok(fleet)) => Arc::new(fleet),
                failed => {
                    self.failed();
                    self.set_role(Role::Unreachable);
                    if !std::mem::replace(&mut down_logged, true) {
                        let why = failed.map_or_else(
                            |_| "no answer".to_string(),
                            |e| e.err().map(|e| e.to_string()).unwrap_or_default(),
                        );
                        tracing::warn!(error = %why, "cannot reach the fleet's etcd; serving the tokens held, trying again");
                    }
                    wait(&shutdown, &mut backoff).await;
                    continue;
                }
            };
            if std::mem::take(&mut down_logged) {
                tracing::info!("the fleet's etcd answers again");
            }
            backoff = FIRST_BACKOFF;
            let ended = self.session(fleet.clone(), granted, &shutdown).await;
            {
                let mut state = self.lock();
                state.session = None;
                state.leadership = None;
                state.lease_until = None;
            }
            // Whatever ended the session, its lease goes: a deposed node's candidate key must not
            // hold the election until the TTL runs out.
            let revoked = tokio::time::timeout(REVOKE_LIMIT, fleet.revoke()).await;
            match ended {
                None => {
                    if !matches!(revoked, Ok(Ok(()))) {
                        tracing::warn!("could not revoke this node's lease at stop; another node leads once it lapses");
                    }
                    self.set_role(Role::Unreachable);
                    return;
                }
                Some(FleetError::Refused(Refused::Deposed)) => {
                    tracing::warn!("this node is no longer the fleet's leader; it joins again as a follower");
                    self.set_role(Role::Follower);
                }
                Some(e) => {
                    self.failed();
                    self.set_role(Role::Unreachable);
                    tracing::warn!(error = %e, "the fleet session ended; serving the tokens held, connecting again");
                }
            }
            wait(&shutdown, &mut backoff).await;
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    /// One session on `fleet` until it fails (`Some(why)`) or `shutdown` (`None`).
    async fn session(
        &self,
        fleet: Arc<EtcdFleet>,
        granted: Instant,
        shutdown: &CancellationToken,
    ) -> Option<FleetError> {
        let ttl = self.spec.lease_ttl;
        let mut watch = match self.bounded(self.holdings(&fleet)).await {
            Ok(watch) => watch,
            Err(e) => return Some(e),
        };
        self.answered();
        {
            let mut state = self.lock();
            state.session = Some(fleet.clone());
        }
        self.set_role(Role::Follower);
        if let Err(e) = self.bounded(self.put_member(&fleet)).await {
            return Some(e);
        }
        let mut members = match self.bounded(fleet.members()).await {
            Ok((now, watch)) => {
                self.lock().members_applied.clear();
                self.members(now);
                watch
            }
            Err(e) => return Some(e),
        };
        // etcd answers an observe only once there is a leader (its headers come with the first
        // proclamation): opened inside the loop, never awaited before the campaign.
        let observe = fleet.observe();
        tokio::pin!(observe);
        let mut leaders: Option<crate::cluster::etcd::Leaders> = None;
        // Granted at connect: alive for a TTL from before the grant at least.
        self.lock().lease_until = Some(granted + ttl);
        // Its own task (review of G5-G13, M5): the session's inline awaits (a reread, a member key
        // put, a reload after a compaction) never hold back a keep-alive.
        // None only while the node is being dropped: the session ends as at a stop.
        let me = self.me.upgrade()?;
        let keeper = fleet.clone();
        let mut keep_alive = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
            let alive = |until: Instant| me.lock().lease_until = Some(until);
            keeper.keep_alive(ttl, granted + ttl, &alive).await
        }));
        let campaign = fleet.campaign();
        tokio::pin!(campaign);
        let mut campaigning = true;
        // What was asked for while no session ran is read now, and what a write of an earlier
        // session left unsure is read again, certain now (that session's lease is gone).
        {
            let mut state = self.lock();
            state.sessions += 1;
            let sessions = state.sessions;
            let earlier: Vec<Wanted> =
                state.unanswered.values().filter(|(_, s)| *s < sessions).map(|(w, _)| w.clone()).collect();
            state.wanted.extend(earlier);
        }
        self.reread_wanted.notify_one();
        // When the member key was last put, and when it is due again (a change applied since).
        let mut member_put = Instant::now();
        let mut member_due: Option<Instant> = None;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = self.deposed.notified() => return Some(FleetError::Refused(Refused::Deposed)),
                () = tokio::time::sleep_until(member_due.unwrap_or(member_put)), if member_due.is_some() => {
                    member_due = None;
                    if let Err(e) = self.bounded(self.put_member(&fleet)).await {
                        return Some(e);
                    }
                    member_put = Instant::now();
                }
                () = self.reread_wanted.notified() => {
                    if let Err(e) = self.reread(&fleet).await {
                        return Some(e);
                    }
                }
                lost = &mut keep_alive => {
                    return Some(lost.unwrap_or_else(|_| FleetError::KeepAliveEnded { endpoints: fleet.endpoints().to_string() }));
                }
                won = &mut campaign, if campaigning => {
                    campaigning = false;
                    match won {
                        Ok(leadership) => {
                            self.lock().leadership = Some(leadership);
                            self.view.set_leader(Some(&self.spec.node));
                            self.set_role(Role::Leader);
                        }
                        Err(e) => return Some(e),
                    }
                }
                changes = watch.next() => match changes {
                    Ok(changes) => {
                        self.apply(changes, watch.revision);
                        self.view.synced(SystemTime::now());
                        member_due.get_or_insert(member_put + MEMBER_PUT_SPACING);
                    }
                    Err(FleetError::Compacted { .. }) => {
                        tracing::warn!("etcd compacted the holdings' history under the watch; loading them again");
                        match self.bounded(self.load(&fleet)).await {
                            Ok(w) => watch = w,
                            Err(e) => return Some(e),
                        }
                        member_due.get_or_insert(member_put + MEMBER_PUT_SPACING);
                    }
                    Err(e) => return Some(e),
                },
                changed = members.next() => match changed {
                    Ok(changes) => self.members(changes),
                    Err(e) => return Some(e),
                },
                opened = &mut observe, if leaders.is_none() => match opened {
                    Ok(opened) => leaders = Some(opened),
                    Err(e) => return Some(e),
                },
                leader = async { leaders.as_mut().expect("guarded").next().await }, if leaders.is_some() => match leader {
                    Ok(name) => self.view.set_leader(Some(&name).filter(|n| !n.is_empty()).map(|n| n.as_str())),
                    Err(e) => return Some(e),
                },
            }
        }
    }

    /// `what`, or a timeout error after a lease TTL (etcd without quorum answers nothing).
    async fn bounded<T>(&self, what: impl Future<Output = Result<T, FleetError>>) -> Result<T, FleetError> {
        let after = self.spec.lease_ttl;
        match tokio::time::timeout(after, what).await {
            Ok(answer) => answer,
            Err(_) => Err(FleetError::Timeout { endpoints: self.spec.endpoints.join(", "), after }),
        }
    }
}

impl FleetLink for FleetNode {
    fn node(&self) -> &str {
        &self.spec.node
    }

    fn standing(&self) -> Standing {
        let state = self.lock();
        standing(&state, Instant::now(), self.spec.lease_ttl)
    }

    fn reread(&self, tickets: Vec<Wanted>) {
        if !tickets.is_empty() {
            self.want(tickets);
        }
    }

    fn write(&self, record: FleetRecord) -> BoxFuture<Result<i64, WriteError>> {
        let me = self.me.upgrade();
        Box::pin(async move {
            match me {
                Some(node) => node.write_fenced(record).await,
                // Only while the node is being dropped: nothing can lead then.
                None => Err(Refused::Deposed.into()),
            }
        })
    }
}

/// The standing `state` gives at `now` (review F2): `Leader` only while the lease is known alive,
/// with a margin (a paused or partitioned leader whose lease may have lapsed must not mint on
/// its old word); past that, `Unreachable`. `unreachable_for` counts only from a failure seen
/// (review G4: a leader resumed from SIGSTOP has seen none, and must not fall back to renewing on
/// its own for the length of its pause).
fn standing(state: &State, now: Instant, lease_ttl: Duration) -> Standing {
    let margin = (lease_ttl / 4).min(Duration::from_secs(1));
    let lapsed = state.lease_until.is_none_or(|until| now + margin >= until);
    let role = match (state.role, lapsed) {
        (Role::Leader, true) => Role::Unreachable,
        (role, _) => role,
    };
    Standing {
        role,
        unreachable_for: state.failing_since.map_or(Duration::ZERO, |since| now.saturating_duration_since(since)),
        lease_ttl,
    }
}

/// Wait `backoff` (or until `shutdown`), then double it up to [`MAX_BACKOFF`].
async fn wait(shutdown: &CancellationToken, backoff: &mut Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unix(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(role: Role, lease_until: Option<Instant>, failing_since: Option<Instant>) -> State {
        State {
            role,
            failing_since,
            lease_until,
            session: None,
            leadership: None,
            seen: HashMap::new(),
            applied: Applied::default(),
            members_applied: HashMap::new(),
            fleet_applied: 0,
            wanted: HashSet::new(),
            sessions: 0,
            unanswered: HashMap::new(),
        }
    }

    /// Review F2: a leader whose lease is not known alive (SIGSTOPped past it, or its keep-alives
    /// unanswered) is not `Leader` to the scheduler, which mints on that word alone.
    #[test]
    fn issue_19_a_leader_is_leader_only_while_its_lease_is_known_alive() {
        let ttl = Duration::from_secs(10);
        let t0 = Instant::now();
        let s = state(Role::Leader, Some(t0 + Duration::from_secs(5)), None);
        assert_eq!(
            standing(&s, t0, ttl),
            Standing { role: Role::Leader, unreachable_for: Duration::ZERO, lease_ttl: ttl }
        );
        // Within the margin (1 s) of the lease's end: no longer.
        let late = standing(&s, t0 + Duration::from_millis(4_500), ttl);
        assert_eq!(late.role, Role::Unreachable);
        // Review G4: no failure seen (a SIGSTOP, not etcd): no fallback time counted.
        assert_eq!(late.unreachable_for, Duration::ZERO);
        assert_eq!(standing(&s, t0 + Duration::from_secs(60), ttl).unreachable_for, Duration::ZERO);
        let failing = state(Role::Leader, Some(t0 + Duration::from_secs(5)), Some(t0 + Duration::from_secs(2)));
        assert_eq!(standing(&failing, t0 + Duration::from_secs(6), ttl).unreachable_for, Duration::from_secs(4));
        // No lease known at all.
        assert_eq!(standing(&state(Role::Leader, None, None), t0, ttl).role, Role::Unreachable);
        // Other roles are what they are; unreachable_for counts from the first failure.
        let f = state(Role::Follower, None, Some(t0));
        assert_eq!(standing(&f, t0 + Duration::from_secs(3), ttl).role, Role::Follower);
        assert_eq!(standing(&f, t0 + Duration::from_secs(3), ttl).unreachable_for, Duration::from_secs(3));
    }
}
