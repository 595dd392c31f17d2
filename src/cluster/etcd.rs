//! The etcd side of a fleet ([`EtcdFleet`]): one connection (endpoints, TLS, auth), this node's
//! lease kept alive, the election campaign, membership, fenced writes of holdings, and the
//! initial read + watch of the holdings with no gap between them.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity, PutOptions, TlsOptions,
    Txn, TxnOp, TxnOpResponse, WatchOptions, WatchStream,
};

use crate::cluster::fence::{self, Expect, Guard, Leadership, Refused};
use crate::cluster::keys::Keys;
use crate::cluster::record::{FleetRecord, RecordError};
use crate::cluster::seal::Sealer;
use crate::config::ClusterSpec;

/// Why an etcd operation failed. Holds etcd's message (never a holding or the password).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("etcd at {endpoints}: {source}")]
    Etcd { endpoints: String, source: etcd_client::Error },
    #[error("[cluster] password_env: environment variable {0} is not set")]
    NoPassword(String),
    #[error("[cluster] {key}: cannot read {path}: {source}")]
    File { key: &'static str, path: String, source: std::io::Error },
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("etcd's watch of {0} ended")]
    WatchEnded(String),
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
    /// Connect to `spec`'s etcd (the password, if any, from `password`: the daemon reads
    /// `password_env`), and grant this node's lease of `lease_ttl`.
    pub async fn connect(
        spec: &ClusterSpec,
        password: Option<&str>,
        sealer: Option<Arc<Sealer>>,
    ) -> Result<EtcdFleet, FleetError> {
        let endpoints = spec.endpoints.join(", ");
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(spec.lease_ttl / 3, spec.lease_ttl / 3);
        if let Some(auth) = &spec.auth {
            let password = password.ok_or_else(|| FleetError::NoPassword(auth.password_env.clone()))?;
            options = options.with_user(auth.username.clone(), password.to_string());
        }
        if spec.tls() {
            let read = |key: &'static str, path: &std::path::Path| {
                std::fs::read(path).map_err(|source| FleetError::File { key, path: path.display().to_string(), source })
            };
            let mut tls = TlsOptions::new();
            if let Some(ca) = &spec.ca_file {
                tls = tls.ca_certificate(Certificate::from_pem(read("ca_file", ca)?));
            }
            if let Some(cert) = &spec.client_cert {
                let key = zeroize::Zeroizing::new(read("key_file", &cert.key_file)?);
                tls = tls.identity(Identity::from_pem(read("cert_file", &cert.cert_file)?, key.as_slice()));
            }
            options = options.with_tls(tls);
        }
        let etcd = |source| FleetError::Etcd { endpoints: endpoints.clone(), source };
        let mut client = Client::connect(&spec.endpoints, Some(options)).await.map_err(etcd)?;
        let ttl = i64::try_from(spec.lease_ttl.as_secs()).unwrap_or(i64::MAX);
        let lease = client.lease_grant(ttl, None).await.map_err(etcd)?.id();
        Ok(EtcdFleet { client, keys: Keys::new(&spec.prefix), node: spec.node.clone(), sealer, lease, endpoints })
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

    /// Keep the lease alive until it is lost (etcd unreachable past the TTL, or revoked): one
    /// keep-alive every third of `ttl`, no other traffic. Returns why it ended.
    pub async fn keep_alive(&self, ttl: Duration) -> FleetError {
        let mut client = self.client.clone();
        let (mut keeper, mut answers) = match client.lease_keep_alive(self.lease).await {
            Ok(pair) => pair,
            Err(e) => return self.etcd(e),
        };
        let mut tick = tokio::time::interval(ttl / 3);
        loop {
            tick.tick().await;
            if let Err(e) = keeper.keep_alive().await {
                return self.etcd(e);
            }
            match answers.message().await {
                Ok(Some(answer)) if answer.ttl() > 0 => {}
                Ok(_) => return FleetError::Refused(Refused::Deposed),
                Err(e) => return self.etcd(e),
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

    /// Record this node's last sync (unix seconds) under its membership key, on its lease.
    pub async fn put_member(&self, last_sync: u64) -> Result<(), FleetError> {
        let value = serde_json::json!({ "node": self.node, "last_sync": last_sync }).to_string();
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

    /// Write `record` as its ticket's holding, fenced by `leadership`: it commits only while this
    /// node leads and nothing was written over `expect`; a record older than etcd's is refused.
    /// Returns the new mod revision.
    pub async fn write(
        &self,
        leadership: &Leadership,
        record: &FleetRecord,
        expect: Expect,
    ) -> Result<i64, FleetError> {
        let key = self.keys.ticket(&record.ticket, &record.stored.identity);
        if let Some(stored) = self.read(&record.ticket, &record.stored.identity).await? {
            fence::check_generation(Some(stored.record.generation()), record.generation())?;
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
        Ok((held, Watch { stream, keys: self.keys.clone(), sealer: self.sealer.clone(), prefix, revision }))
    }

    fn stored(&self, kv: &etcd_client::KeyValue) -> Option<Result<Stored, RecordError>> {
        decode_kv(&self.keys, self.sealer.as_deref(), kv)
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

/// The watch of the holdings.
pub struct Watch {
    stream: WatchStream,
    keys: Keys,
    sealer: Option<Arc<Sealer>>,
    prefix: String,
    /// The last revision seen: a new watch after a reconnect starts after it.
    pub revision: i64,
}

impl Watch {
    /// The next changes, in etcd's order.
    pub async fn next(&mut self) -> Result<Vec<Change>, FleetError> {
        loop {
            let answer = self
                .stream
                .message()
                .await
                .map_err(|source| FleetError::Etcd { endpoints: self.prefix.clone(), source })?
                .ok_or_else(|| FleetError::WatchEnded(self.prefix.clone()))?;
            if answer.canceled() {
                return Err(FleetError::WatchEnded(self.prefix.clone()));
            }
            let mut changes = Vec::new();
            for event in answer.events() {
                let Some(kv) = event.kv() else { continue };
                self.revision = self.revision.max(kv.mod_revision());
                match event.event_type() {
                    EventType::Put => match decode_kv(&self.keys, self.sealer.as_deref(), kv) {
                        Some(Ok(stored)) => changes.push(Change::Put(stored)),
                        Some(Err(e)) => changes.push(Change::Unreadable(e)),
                        None => {}
                    },
                    EventType::Delete => {
                        changes.push(Change::Deleted { key: String::from_utf8_lossy(kv.key()).into_owned() })
                    }
                }
            }
            if !changes.is_empty() {
                return Ok(changes);
            }
        }
    }
}
