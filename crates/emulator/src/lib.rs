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
mod call;
mod dsw;
pub mod faults;
mod inject;
mod jwt;
mod key;
pub mod metadata;
mod shared;
mod sls;
mod sts;
mod tcr;
pub mod verify;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing::{get, post, put};
use tokio_util::sync::CancellationToken;

pub use key::{EmulatorKey, Secret, Vendor, generate_key, generate_tencent_key};
pub use shared::{DEFAULT_STS_LIFETIME, MAX_RECORDED, StatsSnapshot};
use shared::{Shared, WallClock};

/// The path of PAI-DSW `GetToken`.
pub const DSW_PATH: &str = dsw::PATH;
/// The username TCR `CreateInstanceToken` answers with.
pub const TCR_USERNAME: &str = tcr::USERNAME;

/// A running emulator. Dropping it does not stop it; call [`Emulator::stop`].
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Emulator {
    /// Listen on `addr` (use port 0 for any free port) and serve until stopped.
    pub async fn start(
        addr: SocketAddr,
        keys: Vec<EmulatorKey>,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> std::io::Result<Emulator> {
        let clock: WallClock = Arc::new(clock);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(keys, clock, tcr::LONGTERM_LIFETIME));
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
            .layer(axum::middleware::from_fn_with_state(shared.clone(), inject::inject))
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
    call: call::Received,
) -> axum::response::Response {
    let action = call.header("x-tc-action");
    if action == Some("AssumeRoleWithWebIdentity") {
        return sts::tencent_assume_role(&shared, &call.headers, &call.body);
    }
    if action == Some("AssumeRole") {
        return assume_role::tencent(&shared, &call.uri, &call.headers, &call.body);
    }
    // Alibaba RPC calls POSTed with their Action in the query (STS AssumeRole).
    if call.uri.query().is_some_and(|q| q.split('&').any(|p| p == "Action=AssumeRole")) {
        return assume_role::alibaba(&shared, &call.uri, &call.body);
    }
    if action == Some("DeleteInstanceToken") {
        return tcr::delete_instance_token(&shared, &call);
    }
    tcr::create_instance_token(&shared, &call)
}

async fn stats(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> axum::Json<StatsSnapshot> {
    axum::Json(shared.stats.snapshot())
}
