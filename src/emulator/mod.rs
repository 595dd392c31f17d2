//! A local stand-in for the cloud APIs (SLS tickets, PAI-DSW GetToken, TCR CreateInstanceToken),
//! for `ticketd dev` and the end-to-end tests.
//!
//! It listens on loopback, checks every signature exactly as the spec says (rejecting what the
//! real service would reject, with the vendor's error shapes), issues JWT-shaped tickets and tokens
//! with real `exp` claims, and honours the requested lifetimes. `GET /_emulator/stats` counts calls.
//!
//! It also stands in for the credential services (ECS and CVM instance metadata, Alibaba and
//! Tencent STS): the temporary keys they issue are accepted for API calls until they expire.

mod assume_role;
mod dsw;
pub mod faults;
pub mod metadata;
mod sls;
mod sts;
mod tcr;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::{get, post, put};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Vendor;
use crate::secret::Secret;

/// A key pair the emulator accepts, for one vendor's APIs.
#[derive(Clone)]
pub struct EmulatorKey {
    pub vendor: Vendor,
    /// AccessKeyId (Alibaba) or SecretId (Tencent).
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// When set, requests must carry this STS token.
    pub security_token: Option<Secret>,
}

/// Call counters.
#[derive(Debug, Default)]
pub struct Stats {
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
    pub fn snapshot(&self) -> StatsSnapshot {
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
    clock: Arc<dyn Clock>,
    keys: HashMap<String, EmulatorKey>,
    stats: Stats,
    /// Tickets issued, by value, with their expiry.
    tickets: Mutex<HashMap<String, SystemTime>>,
    /// ACS3 signature nonces seen (replays are rejected).
    nonces: Mutex<HashSet<String>>,
    /// Signs the JWTs it issues (nobody verifies them; they only need to look real).
    jwt_key: [u8; 32],
    serial: AtomicU64,
    /// The latest tickets and tokens issued, so tests can check none of them reached a log.
    issued: Mutex<std::collections::VecDeque<String>>,
    faults: faults::Faults,
    /// Temporary keys issued by the STS and metadata stand-ins, with their expiry.
    temporary: Mutex<HashMap<String, (EmulatorKey, SystemTime)>>,
    /// The longest life of issued temporary keys.
    sts_lifetime: Mutex<Duration>,
    /// IMDSv2 tokens handed out.
    imds_tokens: Mutex<HashSet<String>>,
    /// ECS metadata refuses requests without an IMDSv2 token.
    imdsv2_required: AtomicBool,
    /// The OIDC / web identity token of the last STS call.
    last_oidc_token: Mutex<Option<String>>,
    /// The query parameters of the last signed DSW GetToken call, in the order sent.
    dsw_params: Mutex<Option<Vec<(String, String)>>>,
    /// Who issued each temporary key (e.g. `AssumeRole <role arn>`), by AccessKeyId / SecretId.
    origins: Mutex<HashMap<String, String>>,
    /// The AccessKeyIds / SecretIds that token calls (SLS, DSW, TCR) were signed with, in order.
    signers: Mutex<std::collections::VecDeque<String>>,
    /// Roles STS AssumeRole refuses to let anyone assume.
    denied_roles: Mutex<HashSet<String>>,
    /// The role parameters of the last AssumeRole call that got keys.
    last_assume_role: Mutex<Vec<(String, String)>>,
    /// TCR long-term tokens issued and not deleted: `TokenId` to registry.
    tcr_live: Mutex<HashMap<String, String>>,
    /// TCR long-term tokens deleted, in order.
    tcr_deleted: Mutex<Vec<String>>,
    tcr_longterm_lifetime: Mutex<Duration>,
}

/// How many issued tickets and tokens the emulator remembers for [`Emulator::issued_secrets`].
pub const MAX_RECORDED: usize = 100_000;

/// Default life of temporary keys the emulator issues.
pub const DEFAULT_STS_LIFETIME: Duration = Duration::from_secs(3_600);

impl Shared {
    /// The key a token call (SLS, DSW, TCR) is signed with: [`Shared::lookup`], recorded as a signer.
    fn key(&self, id: &str, vendor: Vendor) -> Option<EmulatorKey> {
        let key = self.lookup(id, vendor)?;
        let mut signers = self.signers.lock().expect("signers lock");
        if signers.len() == MAX_RECORDED {
            signers.pop_front();
        }
        signers.push_back(id.to_string());
        Some(key)
    }

    /// Record who issued the temporary key `id`.
    fn mark_origin(&self, id: &str, origin: String) {
        self.origins.lock().expect("origins lock").insert(id.to_string(), origin);
    }

    /// The key with this id, if it belongs to `vendor` (temporary keys only until they expire).
    fn lookup(&self, id: &str, vendor: Vendor) -> Option<EmulatorKey> {
        if let Some(k) = self.keys.get(id) {
            return Some(k.clone()).filter(|k| k.vendor == vendor);
        }
        let (key, expires) = self.temporary.lock().expect("temporary keys lock").get(id).cloned()?;
        if expires <= self.clock.now() {
            self.stats.expired_key.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(key = %id, "emulator refused expired temporary keys");
            return None;
        }
        Some(key).filter(|k| k.vendor == vendor)
    }

    fn sts_lifetime(&self) -> Duration {
        *self.sts_lifetime.lock().expect("sts lifetime lock")
    }

    /// New temporary keys (with an STS token) valid for `lifetime`.
    fn issue_temporary(&self, vendor: Vendor, prefix: &str, lifetime: Duration) -> (EmulatorKey, SystemTime) {
        let mut key = generate_vendor_key(vendor, prefix);
        key.security_token = Some(Secret::new(format!("CAIS{}", hex::encode(rand::random::<[u8; 24]>()))));
        let expires = self.clock.now() + lifetime;
        self.record(key.access_key_secret.expose());
        if let Some(token) = &key.security_token {
            self.record(token.expose());
        }
        self.temporary.lock().expect("temporary keys lock").insert(key.access_key_id.clone(), (key.clone(), expires));
        (key, expires)
    }

    fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn jwt(&self, claims: serde_json::Value) -> String {
        let payload = claims.to_string();
        let sig = crate::signing::hmac_sha256(&self.jwt_key, payload.as_bytes());
        let token = crate::jwt::encode(&claims, &sig);
        self.record(&token);
        token
    }

    /// Remember a secret the emulator handed out (see [`Emulator::issued_secrets`]).
    fn record(&self, secret: &str) {
        let mut issued = self.issued.lock().expect("issued lock");
        if issued.len() == MAX_RECORDED {
            issued.pop_front();
        }
        issued.push_back(secret.to_string());
    }
}

/// A running emulator. Dropping it does not stop it; call [`Emulator::stop`].
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Emulator {
    /// Listen on `addr` (use port 0 for any free port) and serve until stopped.
    pub async fn start(addr: SocketAddr, keys: Vec<EmulatorKey>, clock: Arc<dyn Clock>) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            clock,
            keys: keys.into_iter().map(|k| (k.access_key_id.clone(), k)).collect(),
            stats: Stats::default(),
            tickets: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashSet::new()),
            jwt_key: rand::random(),
            serial: AtomicU64::new(0),
            issued: Mutex::new(std::collections::VecDeque::new()),
            faults: faults::Faults::default(),
            temporary: Mutex::new(HashMap::new()),
            sts_lifetime: Mutex::new(DEFAULT_STS_LIFETIME),
            imds_tokens: Mutex::new(HashSet::new()),
            imdsv2_required: AtomicBool::new(true),
            last_oidc_token: Mutex::new(None),
            dsw_params: Mutex::new(None),
            origins: Mutex::new(HashMap::new()),
            signers: Mutex::new(std::collections::VecDeque::new()),
            denied_roles: Mutex::new(HashSet::new()),
            last_assume_role: Mutex::new(Vec::new()),
            tcr_live: Mutex::new(HashMap::new()),
            tcr_deleted: Mutex::new(Vec::new()),
            tcr_longterm_lifetime: Mutex::new(tcr::LONGTERM_LIFETIME),
        });
        let app = Router::new()
            .route("/tickets", post(sls::create_ticket))
            .route("/token/refresh", post(sls::refresh_token))
            .route(dsw::PATH, get(dsw::get_token))
            .route("/", get(sts::alibaba_rpc).post(tencent_post))
            .route("/latest/api/token", put(metadata::ecs_token))
            .route("/latest/meta-data/ram/security-credentials/", get(metadata::ecs_roles))
            .route("/latest/meta-data/ram/security-credentials/{role}", get(metadata::ecs_credentials))
            .route("/latest/meta-data/cam/security-credentials/", get(metadata::cvm_roles))
            .route("/latest/meta-data/cam/security-credentials/{role}", get(metadata::cvm_credentials))
            .route(assume_role::CREDENTIALS_URI_PATH, get(assume_role::credentials_uri))
            .route("/_emulator/stats", get(stats))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), faults::inject))
            .with_state(shared.clone());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "the emulator stopped");
            }
        });
        Ok(Emulator { addr, shared, stop })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the endpoint to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Make calls to `service` fail as `plan` says (`None` clears it). Counting starts afresh.
    pub fn inject(&self, service: faults::Service, plan: Option<faults::FaultPlan>) {
        self.shared.faults.set(service, plan);
    }

    /// The tickets and tokens issued so far (the latest [`MAX_RECORDED`]).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.issued.lock().expect("issued lock").iter().cloned().collect()
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Temporary keys issued from now on live at most `lifetime`.
    pub fn set_sts_lifetime(&self, lifetime: Duration) {
        *self.shared.sts_lifetime.lock().expect("sts lifetime lock") = lifetime;
    }

    /// Let ECS metadata answer without an IMDSv2 token (IMDSv1).
    pub fn allow_imdsv1(&self, allow: bool) {
        self.shared.imdsv2_required.store(!allow, Ordering::Relaxed);
    }

    /// The TCR long-term tokens issued and not deleted, by `TokenId`, sorted.
    pub fn live_tcr_tokens(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.shared.tcr_live.lock().expect("live tokens lock").keys().cloned().collect();
        ids.sort_unstable();
        ids
    }

    /// The TCR long-term tokens deleted so far, in order.
    pub fn deleted_tcr_tokens(&self) -> Vec<String> {
        self.shared.tcr_deleted.lock().expect("deleted tokens lock").clone()
    }

    /// TCR long-term tokens issued from now on live `lifetime` (a year by default).
    pub fn set_tcr_longterm_lifetime(&self, lifetime: Duration) {
        *self.shared.tcr_longterm_lifetime.lock().expect("longterm lifetime lock") = lifetime;
    }

    /// The OIDC / web identity token the last STS call carried.
    pub fn last_oidc_token(&self) -> Option<String> {
        self.shared.last_oidc_token.lock().expect("oidc lock").clone()
    }

    /// The query parameters (name, value) of the last correctly signed DSW GetToken call, in the order
    /// sent, so a test can assert exactly what ticketd sends.
    pub fn last_get_token_params(&self) -> Option<Vec<(String, String)>> {
        self.shared.dsw_params.lock().expect("dsw params lock").clone()
    }

    /// STS AssumeRole refuses `role_arn` from now on (Alibaba 403 `NoPermission`, Tencent
    /// `AuthFailure.UnauthorizedOperation`).
    pub fn deny_role(&self, role_arn: &str) {
        self.shared.denied_roles.lock().expect("denied roles lock").insert(role_arn.to_string());
    }

    /// Who issued the temporary key `id` (`AssumeRole <role arn>`, `credentials URI`), if the
    /// emulator recorded it.
    pub fn issued_by(&self, id: &str) -> Option<String> {
        self.shared.origins.lock().expect("origins lock").get(id).cloned()
    }

    /// The AccessKeyIds / SecretIds token calls (SLS, DSW, TCR) were signed with, in order.
    pub fn token_call_signers(&self) -> Vec<String> {
        self.shared.signers.lock().expect("signers lock").iter().cloned().collect()
    }

    /// The role parameters (`RoleArn`, `RoleSessionName`, `ExternalId`, `Policy`,
    /// `DurationSeconds`) of the last AssumeRole that got keys.
    pub fn last_assume_role(&self) -> Vec<(String, String)> {
        self.shared.last_assume_role.lock().expect("assume role lock").clone()
    }

    /// The URL of the credentials URI stand-in.
    pub fn credentials_uri(&self) -> String {
        format!("{}{}", self.url(), assume_role::CREDENTIALS_URI_PATH)
    }
}

/// `POST /`: Tencent APIs, dispatched on `X-TC-Action`, and Alibaba STS AssumeRole (RPC).
async fn tencent_post(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    if headers.get("x-tc-action").is_some_and(|a| a == "AssumeRoleWithWebIdentity") {
        return sts::tencent_assume_role(&shared, &headers, &body);
    }
    if headers.get("x-tc-action").is_some_and(|a| a == "AssumeRole") {
        return assume_role::tencent(&shared, &uri, &headers, &body);
    }
    // Alibaba RPC calls POSTed with their Action in the query (STS AssumeRole).
    if uri.query().is_some_and(|q| q.split('&').any(|p| p == "Action=AssumeRole")) {
        return assume_role::alibaba(&shared, &uri, &body);
    }
    if headers.get("x-tc-action").is_some_and(|a| a == "DeleteInstanceToken") {
        return tcr::delete_instance_token(axum::extract::State(shared), method, uri, headers, body).await;
    }
    tcr::create_instance_token(axum::extract::State(shared), method, uri, headers, body).await
}

/// A request id in the vendors' UUID shape.
fn request_id() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

async fn stats(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> axum::Json<StatsSnapshot> {
    axum::Json(shared.stats.snapshot())
}

/// A random Alibaba key pair for `ticketd dev` and tests.
pub fn generate_key(prefix: &str) -> EmulatorKey {
    generate_vendor_key(Vendor::Alibaba, prefix)
}

/// A random Tencent key pair (SecretId, SecretKey) for `ticketd dev` and tests.
pub fn generate_tencent_key(prefix: &str) -> EmulatorKey {
    generate_vendor_key(Vendor::Tencent, prefix)
}

fn generate_vendor_key(vendor: Vendor, prefix: &str) -> EmulatorKey {
    let id: [u8; 8] = rand::random();
    let secret: [u8; 15] = rand::random();
    EmulatorKey {
        vendor,
        access_key_id: format!("{prefix}{}", hex::encode_upper(id)),
        access_key_secret: Secret::new(hex::encode(secret)),
        security_token: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apis::{ApiErrorKind, ProviderError, dsw, tcr};
    use crate::clock::SystemClock;
    use crate::config::{DswSpec, DswTokenType, Endpoint, TcrSpec, TcrTokenType};
    use crate::credentials::Credentials;
    use crate::signing::acs3;
    use crate::token::Issued;
    use std::time::Duration;

    /// The system clock, shifted.
    struct Shifted(Duration, bool);

    impl Clock for Shifted {
        fn now(&self) -> SystemTime {
            if self.1 { SystemTime::now() + self.0 } else { SystemTime::now() - self.0 }
        }
    }

    fn creds(key: &EmulatorKey) -> Credentials {
        Credentials {
            access_key_id: Secret::new(key.access_key_id.clone()),
            access_key_secret: key.access_key_secret.clone(),
            security_token: key.security_token.clone(),
            expires_at: None,
        }
    }

    fn kind(e: &ProviderError) -> ApiErrorKind {
        match e {
            ProviderError::Api { kind, .. } => *kind,
            other => panic!("not an API error: {other}"),
        }
    }

    #[tokio::test]
    async fn dsw_checks_date_sts_token_and_nonce_replay() {
        let mut sts = generate_key("STS.");
        sts.security_token = Some(Secret::new("CAIStoken"));
        let emulator =
            Emulator::start(([127, 0, 0, 1], 0).into(), vec![sts.clone()], Arc::new(SystemClock)).await.unwrap();
        let spec = DswSpec {
            endpoint: Endpoint { base: url::Url::parse(&emulator.url()).unwrap() },
            instance_id: "dsw-1".into(),
            token_lifetime: Duration::from_secs(60),
            token_type: Some(DswTokenType::Access),
            audience: Some("ThirdParty".into()),
        };
        let http = crate::http::client();
        let ok = dsw::call(&http, &SystemClock, &spec, &creds(&sts)).await.unwrap();
        let Issued::Token(token) = ok else { panic!("not a token") };
        let exp = crate::jwt::expiry(token.value.expose()).unwrap();
        assert!(exp <= token.expires_at + Duration::from_secs(1));
        // A date 20 minutes off is InvalidTimeStamp.Expired: clock skew.
        let e = dsw::call(&http, &Shifted(Duration::from_secs(1200), false), &spec, &creds(&sts)).await.unwrap_err();
        assert!(e.is_clock_skew(), "{e}");
        // STS keys without their token.
        let mut no_token = creds(&sts);
        no_token.security_token = None;
        let e = dsw::call(&http, &SystemClock, &spec, &no_token).await.unwrap_err();
        assert_eq!(kind(&e), ApiErrorKind::Permanent, "{e}");
        // The same nonce twice: the second is refused.
        let url = format!("{}{}?InstanceId=dsw-1", emulator.url(), dsw::PATH);
        let host = emulator.addr().to_string();
        let request = acs3::Request {
            method: "GET",
            host: &host,
            path: dsw::PATH,
            query: &[("InstanceId", "dsw-1")],
            action: "GetToken",
            version: "2022-01-01",
            date: SystemTime::now(),
            nonce: "0123456789abcdef0123456789abcdef",
            body: b"",
            content_type: None,
        };
        let headers =
            acs3::build_headers(&request, &sts.access_key_id, sts.access_key_secret.expose(), Some("CAIStoken"));
        let send = || {
            let mut b = http.get(&url);
            for (n, v) in headers.as_slice() {
                b = b.header(*n, v);
            }
            b.send()
        };
        assert_eq!(send().await.unwrap().status(), 200);
        let again = send().await.unwrap();
        assert_eq!(again.status(), 400);
        let body: serde_json::Value = again.json().await.unwrap();
        assert_eq!(body["Code"], "SignatureNonceUsed");
        for key in ["RequestId", "HostId", "Message", "Recommend"] {
            assert!(body[key].is_string(), "{body}");
        }
        emulator.stop();
    }

    /// Issue 17 item 4: GetToken carries `InstanceId` and `ExpireTime`, and `Type` and `Audience` only
    /// when the config sets them; the emulator refuses a parameter the SDK's request model lacks.
    #[tokio::test]
    async fn issue_17_get_token_sends_only_what_the_config_sets() {
        let key = generate_key("LTAI");
        let emulator =
            Emulator::start(([127, 0, 0, 1], 0).into(), vec![key.clone()], Arc::new(SystemClock)).await.unwrap();
        let mut spec = DswSpec {
            endpoint: Endpoint { base: url::Url::parse(&emulator.url()).unwrap() },
            instance_id: "dsw-1".into(),
            token_lifetime: Duration::from_secs(600),
            token_type: None,
            audience: None,
        };
        let http = crate::http::client();
        let sent = |params: Option<Vec<(String, String)>>| {
            let mut params = params.expect("a GetToken call was received");
            params.sort();
            params.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
        };
        dsw::call(&http, &SystemClock, &spec, &creds(&key)).await.unwrap();
        assert_eq!(sent(emulator.last_get_token_params()), "ExpireTime=600&InstanceId=dsw-1");
        spec.token_type = Some(DswTokenType::View);
        spec.audience = Some("ThirdParty".into());
        dsw::call(&http, &SystemClock, &spec, &creds(&key)).await.unwrap();
        assert_eq!(
            sent(emulator.last_get_token_params()),
            "Audience=ThirdParty&ExpireTime=600&InstanceId=dsw-1&Type=View"
        );
        // A name the request model lacks, a name in the wrong case, a name given twice: all refused.
        for query in [
            &[("InstanceId", "dsw-1"), ("Kind", "Access")][..],
            &[("InstanceId", "dsw-1"), ("type", "Access")][..],
            &[("InstanceId", "dsw-1"), ("InstanceId", "dsw-2")][..],
        ] {
            let url = format!("{}{}?{}", emulator.url(), dsw::PATH, acs3::canonical_query(query));
            let host = emulator.addr().to_string();
            let nonce = hex::encode(rand::random::<[u8; 16]>());
            let request = acs3::Request {
                method: "GET",
                host: &host,
                path: dsw::PATH,
                query,
                action: "GetToken",
                version: "2022-01-01",
                date: SystemTime::now(),
                nonce: &nonce,
                body: b"",
                content_type: None,
            };
            let headers = acs3::build_headers(&request, &key.access_key_id, key.access_key_secret.expose(), None);
            let mut b = http.get(&url);
            for (n, v) in headers.as_slice() {
                b = b.header(*n, v);
            }
            let answer = b.send().await.unwrap();
            assert_eq!(answer.status(), 400, "{query:?}");
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["Code"], "InvalidParameter", "{query:?}: {body}");
        }
        emulator.stop();
    }

    #[tokio::test]
    async fn tcr_checks_timestamp_key_and_issues_millisecond_expiries() {
        let key = generate_tencent_key("AKID");
        let alibaba = generate_key("LTAI");
        let keys = vec![key.clone(), alibaba.clone()];
        let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), keys, Arc::new(SystemClock)).await.unwrap();
        let mut spec = TcrSpec {
            endpoint: Endpoint { base: url::Url::parse(&emulator.url()).unwrap() },
            region: "ap-guangzhou".into(),
            registry_id: "tcr-1".into(),
            token_type: TcrTokenType::Temp,
            token_type_written: true,
            description: None,
            registry: None,
        };
        let http = crate::http::client();
        let Issued::Token(t) = tcr::call(&http, &SystemClock, &spec, &creds(&key)).await.unwrap() else { panic!() };
        assert_eq!(t.username.as_deref(), Some(super::tcr::USERNAME));
        let life = t.expires_at.time().duration_since(t.issued_at.time()).unwrap();
        assert!(life > Duration::from_secs(3590) && life <= Duration::from_secs(3601), "{life:?}");
        spec.token_type = TcrTokenType::LongTerm;
        let Issued::Token(t) = tcr::call(&http, &SystemClock, &spec, &creds(&key)).await.unwrap() else { panic!() };
        assert!(t.expires_at.time().duration_since(t.issued_at.time()).unwrap() > Duration::from_secs(300 * 86_400));
        let e = tcr::call(&http, &Shifted(Duration::from_secs(400), true), &spec, &creds(&key)).await.unwrap_err();
        assert!(e.is_clock_skew(), "{e}");
        // An Alibaba key is not a Tencent key.
        let e = tcr::call(&http, &SystemClock, &spec, &creds(&alibaba)).await.unwrap_err();
        assert!(e.to_string().contains("AuthFailure.SecretIdNotFound"), "{e}");
        assert_eq!(kind(&e), ApiErrorKind::Permanent);
        let stats = emulator.stats();
        assert_eq!((stats.create_instance_token, stats.rejected), (2, 2));
        emulator.stop();
    }

    /// Issue 17 item 2: long-term tokens are live until `DeleteInstanceToken`; an unknown id (or
    /// one deleted already, or another registry's) is `ResourceNotFound` in the vendor's shape.
    #[tokio::test]
    async fn tcr_delete_instance_token_deletes_live_long_term_tokens() {
        let key = generate_tencent_key("AKID");
        let emulator =
            Emulator::start(([127, 0, 0, 1], 0).into(), vec![key.clone()], Arc::new(SystemClock)).await.unwrap();
        let endpoint = Endpoint { base: url::Url::parse(&emulator.url()).unwrap() };
        let spec = TcrSpec {
            endpoint: endpoint.clone(),
            region: "ap-guangzhou".into(),
            registry_id: "tcr-1".into(),
            token_type: TcrTokenType::LongTerm,
            token_type_written: true,
            description: None,
            registry: None,
        };
        let http = crate::http::client();
        let Issued::Token(t) = tcr::call(&http, &SystemClock, &spec, &creds(&key)).await.unwrap() else { panic!() };
        let id = t.token_id.expect("a long-term token has a TokenId").to_string();
        assert_eq!(emulator.live_tcr_tokens(), [id.as_str()]);
        let temp = TcrSpec { token_type: TcrTokenType::Temp, ..spec.clone() };
        let Issued::Token(t) = tcr::call(&http, &SystemClock, &temp, &creds(&key)).await.unwrap() else { panic!() };
        assert_eq!(t.token_id, None, "a temp token has none");
        assert_eq!(emulator.live_tcr_tokens().len(), 1, "temp tokens are not tracked");
        let revocation = |registry: &str, token_id: &str| tcr::Revocation {
            endpoint: endpoint.clone(),
            region: "ap-guangzhou".into(),
            registry_id: registry.into(),
            token_id: token_id.into(),
        };
        let delete = |r: tcr::Revocation| {
            let http = http.clone();
            let key = key.clone();
            async move { tcr::delete(&http, &SystemClock, &r, &creds(&key)).await }
        };
        assert_eq!(delete(revocation("tcr-2", &id)).await, Ok(tcr::Deleted::AlreadyGone), "another registry's");
        assert_eq!(emulator.live_tcr_tokens(), [id.as_str()]);
        assert_eq!(delete(revocation("tcr-1", &id)).await, Ok(tcr::Deleted::Now));
        assert!(emulator.live_tcr_tokens().is_empty());
        assert_eq!(emulator.deleted_tcr_tokens(), [id.as_str()]);
        assert_eq!(delete(revocation("tcr-1", &id)).await, Ok(tcr::Deleted::AlreadyGone), "deleted already");
        let e = delete(revocation("tcr-1", "")).await.unwrap_err();
        assert!(e.to_string().contains("MissingParameter: TokenId is required"), "{e}");
        // Signed like any TC3 call: a wrong key is refused.
        let other = generate_tencent_key("AKID");
        let e = tcr::delete(&http, &SystemClock, &revocation("tcr-1", "x"), &creds(&other)).await.unwrap_err();
        assert!(e.to_string().contains("AuthFailure.SecretIdNotFound"), "{e}");
        assert_eq!(emulator.stats().delete_instance_token, 4);
        emulator.stop();
    }
}
