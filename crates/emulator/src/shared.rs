//! The emulator's state, shared by every handler: the keys it accepts, what it issued, its
//! counters and the settings tests change while it runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::faults::Faults;
use crate::jwt;
use crate::key::{EmulatorKey, Secret, Vendor, generate_vendor_key};

/// The emulator's wall clock: `SystemTime::now`, or a test's clock (`move || clock.now()`).
pub(crate) type WallClock = std::sync::Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Call counters.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub create_ticket: AtomicU64,
    pub refresh_token: AtomicU64,
    pub get_token: AtomicU64,
    pub create_instance_token: AtomicU64,
    /// DeleteInstanceToken calls that passed the signature check.
    pub delete_instance_token: AtomicU64,
    pub rejected: AtomicU64,
    pub faults_injected: AtomicU64,
    pub assume_role_with_oidc: AtomicU64,
    pub assume_role_with_web_identity: AtomicU64,
    pub ecs_credentials: AtomicU64,
    pub cvm_credentials: AtomicU64,
    /// Calls signed with temporary keys that had expired.
    pub expired_key: AtomicU64,
    /// Alibaba STS AssumeRole calls answered with keys.
    pub assume_role: AtomicU64,
    /// Tencent STS AssumeRole calls answered with keys.
    pub tencent_assume_role: AtomicU64,
    /// Credentials URI answers.
    pub credentials_uri: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    pub create_ticket: u64,
    pub refresh_token: u64,
    #[serde(default)]
    pub get_token: u64,
    #[serde(default)]
    pub create_instance_token: u64,
    #[serde(default)]
    pub delete_instance_token: u64,
    pub rejected: u64,
    #[serde(default)]
    pub faults_injected: u64,
    #[serde(default)]
    pub assume_role_with_oidc: u64,
    #[serde(default)]
    pub assume_role_with_web_identity: u64,
    #[serde(default)]
    pub ecs_credentials: u64,
    #[serde(default)]
    pub cvm_credentials: u64,
    #[serde(default)]
    pub expired_key: u64,
    #[serde(default)]
    pub assume_role: u64,
    #[serde(default)]
    pub tencent_assume_role: u64,
    #[serde(default)]
    pub credentials_uri: u64,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            create_ticket: self.create_ticket.load(Ordering::Relaxed),
            refresh_token: self.refresh_token.load(Ordering::Relaxed),
            get_token: self.get_token.load(Ordering::Relaxed),
            create_instance_token: self.create_instance_token.load(Ordering::Relaxed),
            delete_instance_token: self.delete_instance_token.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            faults_injected: self.faults_injected.load(Ordering::Relaxed),
            assume_role_with_oidc: self.assume_role_with_oidc.load(Ordering::Relaxed),
            assume_role_with_web_identity: self.assume_role_with_web_identity.load(Ordering::Relaxed),
            ecs_credentials: self.ecs_credentials.load(Ordering::Relaxed),
            cvm_credentials: self.cvm_credentials.load(Ordering::Relaxed),
            expired_key: self.expired_key.load(Ordering::Relaxed),
            assume_role: self.assume_role.load(Ordering::Relaxed),
            tencent_assume_role: self.tencent_assume_role.load(Ordering::Relaxed),
            credentials_uri: self.credentials_uri.load(Ordering::Relaxed),
        }
    }
}

pub(crate) struct Shared {
    pub(crate) clock: WallClock,
    pub(crate) keys: HashMap<String, EmulatorKey>,
    pub(crate) stats: Stats,
    /// Tickets issued, by value, with their expiry.
    pub(crate) tickets: Mutex<HashMap<String, SystemTime>>,
    /// ACS3 signature nonces seen (replays are rejected).
    pub(crate) nonces: Mutex<HashSet<String>>,
    /// Signs the JWTs it issues (nobody verifies them; they only need to look real).
    pub(crate) jwt_key: [u8; 32],
    pub(crate) serial: AtomicU64,
    /// The latest tickets and tokens issued, so tests can check none of them reached a log.
    pub(crate) issued: Mutex<VecDeque<String>>,
    pub(crate) faults: Faults,
    /// Temporary keys issued by the STS and metadata stand-ins, with their expiry.
    pub(crate) temporary: Mutex<HashMap<String, (EmulatorKey, SystemTime)>>,
    /// The longest life of issued temporary keys.
    pub(crate) sts_lifetime: Mutex<Duration>,
    /// IMDSv2 tokens handed out.
    pub(crate) imds_tokens: Mutex<HashSet<String>>,
    /// ECS metadata refuses requests without an IMDSv2 token.
    pub(crate) imdsv2_required: AtomicBool,
    /// The OIDC / web identity token of the last STS call.
    pub(crate) last_oidc_token: Mutex<Option<String>>,
    /// The query parameters of the last signed DSW GetToken call, in the order sent.
    pub(crate) dsw_params: Mutex<Option<Vec<(String, String)>>>,
    /// Who issued each temporary key (e.g. `AssumeRole <role arn>`), by AccessKeyId / SecretId.
    pub(crate) origins: Mutex<HashMap<String, String>>,
    /// The AccessKeyIds / SecretIds that token calls (SLS, DSW, TCR) were signed with, in order.
    pub(crate) signers: Mutex<VecDeque<String>>,
    /// Roles STS AssumeRole refuses to let anyone assume.
    pub(crate) denied_roles: Mutex<HashSet<String>>,
    /// The role parameters of the last AssumeRole call that got keys.
    pub(crate) last_assume_role: Mutex<Vec<(String, String)>>,
    /// TCR long-term tokens issued and not deleted: `TokenId` to registry.
    pub(crate) tcr_live: Mutex<HashMap<String, String>>,
    /// TCR long-term tokens deleted, in order.
    pub(crate) tcr_deleted: Mutex<Vec<String>>,
    pub(crate) tcr_longterm_lifetime: Mutex<Duration>,
}

/// How many issued tickets and tokens the emulator remembers for [`crate::Emulator::issued_secrets`].
pub const MAX_RECORDED: usize = 100_000;

/// Default life of temporary keys the emulator issues.
pub const DEFAULT_STS_LIFETIME: Duration = Duration::from_secs(3_600);

impl Shared {
    pub(crate) fn new(keys: Vec<EmulatorKey>, clock: WallClock, tcr_longterm_lifetime: Duration) -> Shared {
        Shared {
            clock,
            keys: keys.into_iter().map(|k| (k.access_key_id.clone(), k)).collect(),
            stats: Stats::default(),
            tickets: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashSet::new()),
            jwt_key: rand::random(),
            serial: AtomicU64::new(0),
            issued: Mutex::new(VecDeque::new()),
            faults: Faults::default(),
            temporary: Mutex::new(HashMap::new()),
            sts_lifetime: Mutex::new(DEFAULT_STS_LIFETIME),
            imds_tokens: Mutex::new(HashSet::new()),
            imdsv2_required: AtomicBool::new(true),
            last_oidc_token: Mutex::new(None),
            dsw_params: Mutex::new(None),
            origins: Mutex::new(HashMap::new()),
            signers: Mutex::new(VecDeque::new()),
            denied_roles: Mutex::new(HashSet::new()),
            last_assume_role: Mutex::new(Vec::new()),
            tcr_live: Mutex::new(HashMap::new()),
            tcr_deleted: Mutex::new(Vec::new()),
            tcr_longterm_lifetime: Mutex::new(tcr_longterm_lifetime),
        }
    }

    /// The key a token call (SLS, DSW, TCR) is signed with: [`Shared::lookup`], recorded as a signer.
    pub(crate) fn key(&self, id: &str, vendor: Vendor) -> Option<EmulatorKey> {
        let key = self.lookup(id, vendor)?;
        let mut signers = self.signers.lock().expect("signers lock");
        if signers.len() == MAX_RECORDED {
            signers.pop_front();
        }
        signers.push_back(id.to_string());
        Some(key)
    }

    /// Record who issued the temporary key `id`.
    pub(crate) fn mark_origin(&self, id: &str, origin: String) {
        self.origins.lock().expect("origins lock").insert(id.to_string(), origin);
    }

    /// The key with this id, if it belongs to `vendor` (temporary keys only until they expire).
    pub(crate) fn lookup(&self, id: &str, vendor: Vendor) -> Option<EmulatorKey> {
        if let Some(k) = self.keys.get(id) {
            return Some(k.clone()).filter(|k| k.vendor == vendor);
        }
        let (key, expires) = self.temporary.lock().expect("temporary keys lock").get(id).cloned()?;
        if expires <= (self.clock)() {
            self.stats.expired_key.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(key = %id, "emulator refused expired temporary keys");
            return None;
        }
        Some(key).filter(|k| k.vendor == vendor)
    }

    pub(crate) fn sts_lifetime(&self) -> Duration {
        *self.sts_lifetime.lock().expect("sts lifetime lock")
    }

    /// New temporary keys (with an STS token) valid for `lifetime`.
    pub(crate) fn issue_temporary(
        &self,
        vendor: Vendor,
        prefix: &str,
        lifetime: Duration,
    ) -> (EmulatorKey, SystemTime) {
        let mut key = generate_vendor_key(vendor, prefix);
        key.security_token = Some(Secret::new(format!("CAIS{}", hex::encode(rand::random::<[u8; 24]>()))));
        let expires = (self.clock)() + lifetime;
        self.record(key.access_key_secret.expose());
        if let Some(token) = &key.security_token {
            self.record(token.expose());
        }
        self.temporary.lock().expect("temporary keys lock").insert(key.access_key_id.clone(), (key.clone(), expires));
        (key, expires)
    }

    /// Counts a rejected call and logs its error code (`what`: "an SLS call").
    pub(crate) fn rejected(&self, what: &str, code: &str) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(code, "emulator rejected {what}");
    }

    pub(crate) fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn jwt(&self, claims: serde_json::Value) -> String {
        let token = jwt::encode(&claims, &self.jwt_key);
        self.record(&token);
        token
    }

    /// Remember a secret the emulator handed out (see [`Emulator::issued_secrets`]).
    pub(crate) fn record(&self, secret: &str) {
        let mut issued = self.issued.lock().expect("issued lock");
        if issued.len() == MAX_RECORDED {
            issued.pop_front();
        }
        issued.push_back(secret.to_string());
    }
}

/// A request id in the vendors' UUID shape.
pub(crate) fn request_id() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Whole seconds since 1970 (0 before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// RFC 3339 in UTC with second precision, e.g. `2024-01-02T03:04:05Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
