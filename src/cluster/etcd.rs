//! The etcd side of a fleet ([`EtcdFleet`]): one connection (endpoints, TLS, auth), this node's
//! lease kept alive, the election campaign, membership, fenced writes of holdings, and the
//! initial read + watch of the holdings with no gap between them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, PutOptions, TlsOptions, Txn, TxnOp,
    TxnOpResponse, WatchOptions, WatchStream,
};

use crate::cluster::endpoint;
use crate::cluster::fence::{self, Expect, Guard, Leadership, Refused};
use crate::cluster::keys::Keys;
use crate::cluster::link::Wanted;
use crate::cluster::prepare::Prepared;
use crate::cluster::record::{FleetRecord, RecordError};
use crate::cluster::seal::Sealer;
use crate::config::ClusterSpec;

/// etcd 3.4's default `--grpc-keepalive-min-time`: a client that pings more often is answered
/// with GOAWAY `too_many_pings`, which drops the connection and every stream on it.
pub const ETCD_MIN_PING_INTERVAL: Duration = Duration::from_secs(5);

/// [`EtcdFleet::read_many`] reads up to this many holdings one by one, more with one read of
/// the prefix.
const READ_ONE_BY_ONE: usize = 16;

/// The HTTP/2 keep-alive (interval, timeout) for a fleet of `lease_ttl` (review F10): a third of
/// the TTL, but never more often than twice etcd's minimum (timers fire early under load, and a
/// ping a little early is a strike). The lease keep-alive does not wait on it: it ends the session
/// once no answer has confirmed the lease for a TTL.
pub fn http2_keep_alive(lease_ttl: Duration) -> (Duration, Duration) {
    let interval = (lease_ttl / 3).max(2 * ETCD_MIN_PING_INTERVAL);
    let timeout = (lease_ttl / 3).max(Duration::from_secs(1));
    (interval, timeout)
}

/// Why an etcd operation failed. Holds etcd's message (never a holding or the password).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("etcd at {endpoints}: {source}")]
    Etcd { endpoints: String, source: etcd_client::Error },
    /// No endpoint answered a probe (`cluster/endpoint.rs`): each one tried, and why.
    #[error("no etcd endpoint answered: {tried}")]
    NoEndpoint { tried: String },
    #[error("[cluster] password_env: environment variable {0} is not set")]
    NoPassword(String),
    #[error("etcd at {endpoints} did not answer within {}", humantime::format_duration(*.after))]
    Timeout { endpoints: String, after: Duration },
    /// A watch asked to start at a revision etcd has compacted away: load again.
    #[error("etcd at {endpoints} has compacted the revisions the watch of {prefix} was to resume from")]
    Compacted { endpoints: String, prefix: String },
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("etcd at {endpoints}: the watch of {prefix} ended")]
    WatchEnded { endpoints: String, prefix: String },
    /// No keep-alive answer confirmed this node's lease up to now (review G6).
    #[error(
        "etcd at {endpoints} confirmed no keep-alive of this node's lease for its TTL of {} ({unanswered} unanswered)",
        humantime::format_duration(*.ttl)
    )]
    Lapsed { endpoints: String, unanswered: usize, ttl: Duration },
    #[error("etcd at {endpoints}: the lease keep-alive stream ended")]
    KeepAliveEnded { endpoints: String },
    #[error("etcd at {endpoints} answered a lease keep-alive this node did not send")]
    KeepAliveUnasked { endpoints: String },
}

/// How many keep-alives may wait for their answers at once: one each third of a TTL, so a TTL
/// without answers owes three or four; the bound only keeps a stuck stream from growing the queue.
const RENEWALS_IN_FLIGHT: usize = 8;

/// The bookkeeping of the lease keep-alive (review G6), apart from etcd: the send instants of the
/// keep-alives not yet answered, oldest first (etcd answers a stream in order), and how long the
/// lease is known to live.
#[derive(Debug)]
pub(crate) struct Renewals {
    unanswered: std::collections::VecDeque<tokio::time::Instant>,
    known_until: tokio::time::Instant,
}

impl Renewals {
    /// A lease known to live until `known_until` (its grant instant + its TTL).
    pub(crate) fn new(known_until: tokio::time::Instant) -> Renewals {
        Renewals { unanswered: std::collections::VecDeque::with_capacity(RENEWALS_IN_FLIGHT), known_until }
    }

    /// A keep-alive went out at `at`.
    pub(crate) fn sent(&mut self, at: tokio::time::Instant) {
        self.unanswered.push_back(at);
    }

    /// Whether as many keep-alives as are worth sending wait for their answers.
    pub(crate) fn is_full(&self) -> bool {
        self.unanswered.len() >= RENEWALS_IN_FLIGHT
    }

    pub(crate) fn unanswered(&self) -> usize {
        self.unanswered.len()
    }

    /// etcd answered the oldest keep-alive with `ttl`: the lease lives at least until that
    /// keep-alive's send instant + `ttl` (etcd renewed it after the send). The instant the lease is
    /// now known to live until (never earlier than before), or `None` for an answer to nothing.
    pub(crate) fn answered(&mut self, ttl: Duration) -> Option<tokio::time::Instant> {
        let sent = self.unanswered.pop_front()?;
        self.known_until = self.known_until.max(sent + ttl);
        Some(self.known_until)
    }

    /// When the lease is no longer known alive, unless an answer comes first.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        self.known_until
    }
}

/// One holding as read from etcd.
#[derive(Debug)]
pub struct Stored {
    pub key: String,
    /// Its mod revision: what a fenced write over it expects.
    pub revision: i64,
    pub record: FleetRecord,
}

/// A change the watch saw under the holdings.
#[derive(Debug)]
pub enum Change {
    Put(Stored),
    /// A holding that could not be taken (named, never shown).
    Unreadable(RecordError),
    Deleted {
        key: String,
    },
}

/// This node's connection to the fleet's etcd.
pub struct EtcdFleet {
    client: Client,
    keys: Keys,
    node: String,
    sealer: Option<Arc<Sealer>>,
    lease: i64,
    endpoints: String,
}

impl std::fmt::Debug for EtcdFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdFleet")
            .field("endpoints", &self.endpoints)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl EtcdFleet {
    /// Connect to one of `spec`'s etcd endpoints with what [`crate::cluster::prepare::preflight`]
    /// read (password, sealing key, TLS files): the first, in an order of this node's own, to answer
    /// a linearizable read (`cluster/endpoint.rs`); and grant this node's lease of `lease_ttl` there.
    pub async fn connect(spec: &ClusterSpec, prepared: &Prepared) -> Result<EtcdFleet, FleetError> {
        let (interval, timeout) = http2_keep_alive(spec.lease_ttl);
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(interval, timeout)
            // etcd 3.4 refuses pings on a connection without streams (PermitWithoutStream false).
            .with_keep_alive_while_idle(false);
        if let Some(auth) = &spec.auth {
            let password =
                prepared.password.as_ref().ok_or_else(|| FleetError::NoPassword(auth.password_env.clone()))?;
            // etcd-client keeps the password as a String (its API); ticketd's allocator wipes it when freed.
            options = options.with_user(auth.username.clone(), password.expose());
        }
        if spec.tls() {
            let mut tls = TlsOptions::new();
            tls = match &prepared.ca {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(ca)),
                // Review F6: no ca_file, the system's trusted roots.
                None => tls.with_native_roots(),
            };
            if let Some((cert, key)) = &prepared.identity {
                tls = tls.identity(Identity::from_pem(cert, key.as_slice()));
            }
            options = options.with_tls(tls);
        }
        let sealer = prepared.sealer.clone();
        let keys = Keys::new(&spec.prefix);
        // Issue #19: one member that answers, never a channel balanced over all of them (it sent
        // requests to a dead member too, and each error ended the session).
        let (step, budget) = (endpoint::probe_timeout(spec.lease_ttl), endpoint::probe_budget(spec.lease_ttl));
        let (endpoints, mut client) =
            endpoint::first_live(&spec.endpoints, &spec.node, &options, step, budget, &keys.members())
                .await
                .map_err(|tried| FleetError::NoEndpoint { tried: tried.to_string() })?;
        tracing::info!(endpoint = %endpoints, "this fleet session uses this etcd endpoint");
        let etcd = |source| FleetError::Etcd { endpoints: endpoints.clone(), source };
        let ttl = i64::try_from(spec.lease_ttl.as_secs()).unwrap_or(i64::MAX);
        let lease = client.lease_grant(ttl, None).await.map_err(etcd)?.id();
        Ok(EtcdFleet { client, keys, node: spec.node.clone(), sealer, lease, endpoints })
    }

    /// The endpoint this session uses, as errors name it.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    fn etcd(&self, source: etcd_client::Error) -> FleetError {
        FleetError::Etcd { endpoints: self.endpoints.clone(), source }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// This node's lease.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Keep the lease alive until it is no longer known alive (review G6): one keep-alive every
    /// third of `ttl`, no other traffic. A slow answer ends nothing: the session ends only when no
    /// answer has confirmed the lease up to now (`known_until`, at first the grant instant + the
    /// TTL, then each answer's send instant + the TTL etcd answered), when etcd says the lease is
    /// gone, or when the stream fails. Returns why it ended.
    /// `alive(until)` is told after each answer how long the lease is known to live at least.
    pub async fn keep_alive(
        &self,
        ttl: Duration,
        known_until: tokio::time::Instant,
        alive: &(dyn Fn(tokio::time::Instant) + Sync),
    ) -> FleetError {
        let mut client = self.client.clone();
        let mut book = Renewals::new(known_until);
        let lapsed = |book: &Renewals| FleetError::Lapsed {
            endpoints: self.endpoints.clone(),
            unanswered: book.unanswered(),
            ttl,
        };
        let opened = tokio::time::timeout_at(book.deadline(), client.lease_keep_alive(self.lease)).await;
        let (mut keeper, mut answers) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return self.etcd(e),
            Err(_) => return lapsed(&book),
        };
        let mut tick = tokio::time::interval(ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(book.deadline()) => return lapsed(&book),
                _ = tick.tick() => {
                    // etcd answers each request of the stream, in order; past the bound, the
                    // answers already owed say as much as a new request would.
                    if book.is_full() {
                        continue;
                    }
                    let at = tokio::time::Instant::now();
                    match tokio::time::timeout_at(book.deadline(), keeper.keep_alive()).await {
                        Ok(Ok(())) => book.sent(at),
                        Ok(Err(e)) => return self.etcd(e),
                        Err(_) => return lapsed(&book),
                    }
                }
                answer = answers.message() => match answer {
                    Ok(Some(answer)) if answer.ttl() > 0 => {
                        match book.answered(Duration::from_secs(answer.ttl().unsigned_abs())) {
                            Some(until) => alive(until),
                            None => return FleetError::KeepAliveUnasked { endpoints: self.endpoints.clone() },
                        }
                    }
                    // etcd answers a TTL of 0 (or less) for a lease it no longer holds.
                    Ok(Some(_)) => return FleetError::Refused(Refused::Deposed),
                    Ok(None) => return FleetError::KeepAliveEnded { endpoints: self.endpoints.clone() },
                    Err(e) => return self.etcd(e),
                },
            }
        }
    }

    /// Give up the lease now (a clean stop): the leadership and membership go at once.
    pub async fn revoke(&self) -> Result<(), FleetError> {
        self.client.clone().lease_revoke(self.lease).await.map_err(|e| self.etcd(e))?;
        Ok(())
    }

    /// Campaign for the leadership; returns once this node holds it.
    pub async fn campaign(&self) -> Result<Leadership, FleetError> {
        let mut client = self.client.clone();
        let answer =
            client.campaign(self.keys.election(), self.node.clone(), self.lease).await.map_err(|e| self.etcd(e))?;
        let leader = answer.leader().ok_or(FleetError::Refused(Refused::Deposed))?;
        Ok(Leadership { key: leader.key().to_vec(), create_revision: leader.rev(), lease: leader.lease() })
    }

    /// The current leader's node name, if there is one.
    pub async fn leader(&self) -> Result<Option<String>, FleetError> {
        let mut client = self.client.clone();
        match client.leader(self.keys.election()).await {
            Ok(answer) => Ok(answer.kv().map(|kv| String::from_utf8_lossy(kv.value()).into_owned())),
            // etcd answers "election: no leader" as an error.
            Err(etcd_client::Error::GRpcStatus(s)) if s.message().contains("no leader") => Ok(None),
            Err(e) => Err(self.etcd(e)),
        }
    }

    /// The leader's node name at each change, as etcd's election proclaims it (no polling).
    pub async fn observe(&self) -> Result<Leaders, FleetError> {
        let stream = self.client.clone().observe(self.keys.election()).await.map_err(|e| self.etcd(e))?;
        Ok(Leaders { stream, endpoints: self.endpoints.clone() })
    }

    /// Record this node's last sync (unix seconds) under its membership key, on its lease.
    pub async fn put_member(&self, last_sync: u64, applied: i64) -> Result<(), FleetError> {
        let value =
            serde_json::json!({ "node": self.node, "last_sync": last_sync, "applied_revision": applied }).to_string();
        let options = PutOptions::new().with_lease(self.lease);
        self.client.clone().put(self.keys.member(&self.node), value, Some(options)).await.map_err(|e| self.etcd(e))?;
        Ok(())
    }

    /// Ticket `name`'s holding for `identity`, if etcd has one.
    pub async fn read(&self, name: &str, identity: &str) -> Result<Option<Stored>, FleetError> {
        let key = self.keys.ticket(name, identity);
        let answer = self.client.clone().get(key.as_bytes(), None).await.map_err(|e| self.etcd(e))?;
        match answer.kvs().first() {
            None => Ok(None),
            Some(kv) => {
                let record = FleetRecord::decode(&key, name, kv.value(), self.sealer.as_deref())?;
                Ok(Some(Stored { key, revision: kv.mod_revision(), record }))
            }
        }
    }

    /// The holdings etcd has for `wanted` (those it has, by key and mod revision, readable or not):
    /// one read each for a few, one read of the prefix for many.
    pub async fn read_many(&self, wanted: &[Wanted]) -> Result<Vec<ReadAgain>, FleetError> {
        let keys: HashSet<String> = wanted.iter().map(|w| self.keys.ticket(&w.ticket, &w.identity)).collect();
        let mut client = self.client.clone();
        let mut held = Vec::new();
        if keys.len() <= READ_ONE_BY_ONE {
            for key in &keys {
                let answer = client.get(key.as_bytes(), None).await.map_err(|e| self.etcd(e))?;
                held.extend(answer.kvs().iter().filter_map(|kv| self.read_again(kv)));
            }
        } else {
            let prefix = self.keys.tickets();
            let answer =
                client.get(prefix.as_bytes(), Some(GetOptions::new().with_prefix())).await.map_err(|e| self.etcd(e))?;
            let wanted = answer.kvs().iter().filter(|kv| kv.key_str().is_ok_and(|k| keys.contains(k)));
            held.extend(wanted.filter_map(|kv| self.read_again(kv)));
        }
        Ok(held)
    }

    /// Write `record` as its ticket's holding, fenced by `leadership`: it commits only while this
    /// node leads and nothing was written over `expect`. When etcd holds `expect`'s revision, a
    /// record older than the one stored there is refused (`Stale`); a stored value this node
    /// cannot read does not block the write (review F3: the revision compare decides). Returns
    /// the new mod revision.
    pub async fn write(
        &self,
        leadership: &Leadership,
        record: &FleetRecord,
        expect: Expect,
    ) -> Result<i64, FleetError> {
        let key = self.keys.ticket(&record.ticket, &record.stored.identity);
        let answer = self.client.clone().get(key.as_bytes(), None).await.map_err(|e| self.etcd(e))?;
        let expected = match expect {
            Expect::Absent => 0,
            Expect::At(revision) => revision,
        };
        // The generation read is the one the transaction compares (review F10): a holding read at
        // another revision than `expect` leaves the verdict to the compares (raced or deposed).
        if let Some(kv) = answer.kvs().first().filter(|kv| kv.mod_revision() == expected) {
            match FleetRecord::decode(&key, &record.ticket, kv.value(), self.sealer.as_deref()) {
                Ok(stored) => fence::check_generation(Some(stored.generation()), record.generation())?,
                Err(e) => tracing::warn!(error = %e, "the holding in etcd cannot be read; this write replaces it"),
            }
        }
        let compares: Vec<Compare> = fence::guards(leadership, &key, expect)
            .into_iter()
            .map(|guard| match guard {
                Guard::CreateRevision { key, equals } => Compare::create_revision(key, CompareOp::Equal, equals),
                Guard::ModRevision { key, equals } => Compare::mod_revision(key, CompareOp::Equal, equals),
            })
            .collect();
        let value = record.encode(&key, self.sealer.as_deref());
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::put(key.as_bytes(), value.as_slice(), None)])
            .or_else([TxnOp::get(leadership.key.clone(), None)]);
        let answer = self.client.clone().txn(txn).await.map_err(|e| self.etcd(e))?;
        if answer.succeeded() {
            return Ok(answer.header().map_or(0, |h| h.revision()));
        }
        let leader_now = answer.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(got) => Some(got.kvs().first().map(|kv| kv.create_revision())),
            _ => None,
        });
        Err(fence::refused(leader_now.flatten(), leadership).into())
    }

    /// Every holding etcd has now, and a watch from just after them (no event missed between the
    /// read and the watch, none seen twice).
    pub async fn load_and_watch(&self) -> Result<(Vec<Result<Stored, RecordError>>, Watch), FleetError> {
        let prefix = self.keys.tickets();
        let mut client = self.client.clone();
        let answer =
            client.get(prefix.as_bytes(), Some(GetOptions::new().with_prefix())).await.map_err(|e| self.etcd(e))?;
        let revision = answer.header().map_or(0, |h| h.revision());
        let held = answer.kvs().iter().filter_map(|kv| self.stored(kv)).collect();
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let stream = client.watch(prefix.as_bytes(), Some(options)).await.map_err(|e| self.etcd(e))?;
        Ok((held, self.watch(stream, prefix, revision)))
    }

    /// The mod revision of `key` now (0: absent).
    pub async fn revision(&self, key: &str) -> Result<i64, FleetError> {
        let answer = self.client.clone().get(key.as_bytes(), None).await.map_err(|e| self.etcd(e))?;
        Ok(answer.kvs().first().map_or(0, |kv| kv.mod_revision()))
    }

    /// The watch of the holdings resumed after `revision` (the last one applied): every change
    /// since, in order. [`FleetError::Compacted`] when etcd no longer has them: load again.
    pub async fn watch_from(&self, revision: i64) -> Result<Watch, FleetError> {
        let prefix = self.keys.tickets();
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let stream = self.client.clone().watch(prefix.as_bytes(), Some(options)).await.map_err(|e| self.etcd(e))?;
        Ok(self.watch(stream, prefix, revision))
    }

    fn watch(&self, stream: WatchStream, prefix: String, revision: i64) -> Watch {
        let (keys, sealer, endpoints) = (self.keys.clone(), self.sealer.clone(), self.endpoints.clone());
        Watch { stream, keys, sealer, prefix, endpoints, revision }
    }

    /// Every member now (name and last sync, unix seconds), and a watch of the members from just
    /// after them.
    pub async fn members(&self) -> Result<(Vec<MemberChange>, Members), FleetError> {
        let prefix = self.keys.members();
        let mut client = self.client.clone();
        let answer =
            client.get(prefix.as_bytes(), Some(GetOptions::new().with_prefix())).await.map_err(|e| self.etcd(e))?;
        let revision = answer.header().map_or(0, |h| h.revision());
        let now = answer.kvs().iter().filter_map(|kv| member(&self.keys, kv)).collect();
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let stream = client.watch(prefix.as_bytes(), Some(options)).await.map_err(|e| self.etcd(e))?;
        Ok((now, Members { stream, keys: self.keys.clone(), endpoints: self.endpoints.clone(), prefix }))
    }

    fn stored(&self, kv: &etcd_client::KeyValue) -> Option<Result<Stored, RecordError>> {
        decode_kv(&self.keys, self.sealer.as_deref(), kv)
    }

    fn read_again(&self, kv: &etcd_client::KeyValue) -> Option<ReadAgain> {
        let key = std::str::from_utf8(kv.key()).ok()?;
        let record = decode_kv(&self.keys, self.sealer.as_deref(), kv)?.map(|stored| stored.record);
        Some(ReadAgain { key: key.to_string(), revision: kv.mod_revision(), record })
    }
}

fn decode_kv(keys: &Keys, sealer: Option<&Sealer>, kv: &etcd_client::KeyValue) -> Option<Result<Stored, RecordError>> {
    let key = std::str::from_utf8(kv.key()).ok()?;
    let name = keys.ticket_name(key)?;
    Some(FleetRecord::decode(key, name, kv.value(), sealer).map(|record| Stored {
        key: key.to_string(),
        revision: kv.mod_revision(),
        record,
    }))
}

/// A holding read again ([`EtcdFleet::read_many`]): its key and mod revision even when this node
/// cannot read it (a write there then expects that revision).
pub struct ReadAgain {
    pub key: String,
    pub revision: i64,
    pub record: Result<FleetRecord, RecordError>,
}

/// The streams of a session (leaders, members, holdings), in their own file.
#[path = "etcd_streams.rs"]
mod streams;
use streams::member;
pub use streams::{Leaders, MemberChange, Members, Watch};

#[cfg(test)]
mod tests {
    use super::*;

    /// Review F10: the HTTP/2 keep-alive was a third of the lease TTL (3.3 s at the default 10 s,
    /// 0.67 s at 2 s), more often than etcd 3.4's `--grpc-keepalive-min-time` of 5 s: etcd answers
    /// GOAWAY `too_many_pings` and drops the connection with its lease keep-alive and watches.
    #[test]
    fn issue_19_the_http2_keep_alive_never_pings_etcd_more_often_than_it_accepts() {
        for ttl in [2, 3, 10, 15, 30, 60, 300].map(Duration::from_secs) {
            let (interval, timeout) = http2_keep_alive(ttl);
            assert!(interval >= 2 * ETCD_MIN_PING_INTERVAL, "{ttl:?}: a ping every {interval:?}");
            assert!(interval >= ttl / 3, "{ttl:?}");
            assert!(timeout >= Duration::from_secs(1) && timeout <= interval, "{ttl:?}: {timeout:?}");
        }
        assert_eq!(http2_keep_alive(Duration::from_secs(60)).0, Duration::from_secs(20));
    }

    /// Review G6: one answer later than a third of the TTL ended the session, giving up a lease
    /// with two thirds of its time left. The lease is lost only when no answer confirms it up to now.
    #[test]
    fn issue_19_a_slow_keep_alive_answer_ends_nothing_while_the_lease_is_known_alive() {
        let t0 = tokio::time::Instant::now();
        let s = Duration::from_secs;
        let ttl = s(9);
        let mut book = Renewals::new(t0 + ttl);
        assert_eq!(book.deadline(), t0 + ttl, "granted at t0: alive for a TTL");
        book.sent(t0);
        book.sent(t0 + s(3));
        // The first answer comes 5 s after its request (later than ttl / 3): the lease lives on.
        assert_eq!(book.answered(ttl), Some(t0 + ttl), "known from the first send");
        book.sent(t0 + s(6));
        // Answers in order: the second confirms its own send instant, not the latest.
        assert_eq!(book.answered(ttl), Some(t0 + s(3) + ttl));
        assert_eq!(book.deadline(), t0 + s(12));
        assert_eq!(book.unanswered(), 1);
        assert_eq!(book.answered(ttl), Some(t0 + s(15)));
        // An answer to nothing is said, not counted.
        assert_eq!(book.answered(ttl), None);
        assert_eq!(book.deadline(), t0 + s(15));
        // A shorter answered TTL never moves what is known back.
        book.sent(t0 + s(1));
        assert_eq!(book.answered(s(2)), Some(t0 + s(15)));
    }

    #[test]
    fn issue_19_the_keep_alives_waiting_for_an_answer_are_bounded() {
        let t0 = tokio::time::Instant::now();
        let mut book = Renewals::new(t0 + Duration::from_secs(3));
        for i in 0..RENEWALS_IN_FLIGHT {
            assert!(!book.is_full(), "{i} unanswered");
            book.sent(t0 + Duration::from_secs(i as u64));
        }
        assert!(book.is_full());
        assert_eq!(book.answered(Duration::from_secs(3)), Some(t0 + Duration::from_secs(3)));
        assert!(!book.is_full());
        assert_eq!(book.deadline(), t0 + Duration::from_secs(3), "no answer past the grant's TTL yet");
    }
}
