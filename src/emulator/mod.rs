//! A local stand-in for the cloud APIs (SLS tickets, PAI-DSW GetToken, TCR CreateInstanceToken),
//! for `ticketd dev` and the end-to-end tests.
//!
//! It listens on loopback, checks every signature exactly as the spec says (rejecting what the
//! real service would reject, with the vendor's error shapes), issues JWT-shaped tickets and tokens
//! with real `exp` claims, and honours the requested lifetimes. `GET /_emulator/stats` counts calls.

mod dsw;
mod sls;
mod tcr;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::routing::{get, post};
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
    pub rejected: AtomicU64,
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
    pub rejected: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            create_ticket: self.create_ticket.load(Ordering::Relaxed),
            refresh_token: self.refresh_token.load(Ordering::Relaxed),
            get_token: self.get_token.load(Ordering::Relaxed),
            create_instance_token: self.create_instance_token.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
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
}

impl Shared {
    /// The key with this id, if it belongs to `vendor`.
    fn key(&self, id: &str, vendor: Vendor) -> Option<&EmulatorKey> {
        self.keys.get(id).filter(|k| k.vendor == vendor)
    }

    fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn jwt(&self, claims: serde_json::Value) -> String {
        let payload = claims.to_string();
        let sig = crate::signing::hmac_sha256(&self.jwt_key, payload.as_bytes());
        crate::jwt::encode(&claims, &sig)
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
        });
        let app = Router::new()
            .route("/tickets", post(sls::create_ticket))
            .route("/token/refresh", post(sls::refresh_token))
            .route(dsw::PATH, get(dsw::get_token))
            .route("/", post(tcr::create_instance_token))
            .route("/_emulator/stats", get(stats))
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

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
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
