//! Credential sources: where the keys of a `[credentials.NAME]` set come from, resolved the way the
//! vendors' SDKs do (spec section 4). [`fetch`] turns a [`CredentialSpec`] into [`Credentials`]
//! (temporary ones always carry `expires_at`); [`refresher`] keeps them fresh.
//!
//! Vendor files: [`alibaba`] (env, RRSA OIDC, CLI/INI profiles, ECS RAM role) and [`tencent`]
//! (env, profile, CVM role, TKE OIDC); [`assume_role`] (Alibaba `ram_role_arn`, Tencent
//! `role_arn`: STS AssumeRole on top of another set) and [`uri`] (Alibaba `credentials_uri`);
//! [`ini`] is the small INI reader both profile formats share.

pub mod alibaba;
pub mod assume_role;
mod chain;
pub mod cli_profile;
pub mod ini;
pub mod refresher;
pub mod tencent;
pub mod uri;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::Clock;
use crate::config::{Config, CredentialSpec, SourceSpec, Vendor};
use crate::credentials::{CredentialError, Credentials, Environment};
use crate::secret::Secret;
pub use chain::chain_members;
use zeroize::Zeroizing;

/// Metadata services answer within this or are taken as absent (the SDKs' 1 s).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(1);
/// Alibaba SDKs treat temporary keys as stale this long before they expire.
pub const ALIBABA_RENEW_BEFORE: Duration = Duration::from_secs(15 * 60);
/// Tencent SDKs refresh this long before `ExpiredTime`.
pub const TENCENT_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Files (profiles, static keys) are re-read at least this often, so a rotated secret is picked up.
pub const FILE_RECHECK: Duration = Duration::from_secs(60);
/// The most jitter added in front of a refresh point.
pub const MAX_JITTER: Duration = Duration::from_secs(60);

/// What a source needs from outside.
#[derive(Clone)]
pub struct Context {
    pub http: reqwest::Client,
    /// Metadata services: 1 s timeouts.
    pub metadata_http: reqwest::Client,
    pub env: Arc<dyn Environment + Send + Sync>,
    pub clock: Arc<dyn Clock>,
    /// The keys of every set, for a source that assumes a role on top of another set (the
    /// refresher sets it; without it such a source fails).
    pub store: Option<crate::credentials::CredentialStore>,
}

impl Context {
    pub fn new(env: Arc<dyn Environment + Send + Sync>, clock: Arc<dyn Clock>) -> Context {
        // Builds the shared client first: it installs the crypto provider the metadata client needs.
        let http = crate::http::client();
        let metadata_http = reqwest::Client::builder()
            .connect_timeout(METADATA_TIMEOUT)
            .timeout(METADATA_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the metadata client builds with static settings");
        Context { http, metadata_http, env, clock, store: None }
    }

    /// This context, reading base sets' keys from `store`.
    pub fn with_store(mut self, store: crate::credentials::CredentialStore) -> Context {
        self.store = Some(store);
        self
    }

    /// A context for `config`: the variables its sources may read, copied from `env` once.
    pub fn for_config(config: &Config, env: &dyn Environment, clock: Arc<dyn Clock>) -> Context {
        Context::new(Arc::new(snapshot_env(config, env)), clock)
    }

    pub(crate) fn var(&self, name: &str) -> Option<String> {
        self.env.var(name).filter(|v| !v.is_empty())
    }
}

/// Keys and where they came from (for logs and `check-config`; never a value).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub credentials: Credentials,
    pub description: String,
}

/// Why one source gave nothing: `Absent` lets a chain move on quietly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The source is not set up here (variables unset, no file).
    Absent(String),
    /// The source is set up but failed.
    Failed(String),
}

impl SourceError {
    pub fn detail(&self) -> &str {
        match self {
            SourceError::Absent(d) | SourceError::Failed(d) => d,
        }
    }
}

/// Besides their expiry, what can change a set's keys while ticketd runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// Keys from the environment or the config file: only a restart or reload changes them.
    Nothing,
    /// Keys from profile files: a rewritten file brings new keys.
    Files(Vec<PathBuf>),
    /// Keys from a service (STS, metadata): fetched again before they expire.
    Service,
}

fn watch_of(vendor: Vendor, source: &SourceSpec, ctx: &Context) -> Watch {
    match source {
        SourceSpec::Env { .. } | SourceSpec::InMemory(_) | SourceSpec::Static(_) => Watch::Nothing,
        SourceSpec::Profile { file, .. } => Watch::Files(profile_files(vendor, file.as_ref(), ctx)),
        _ => Watch::Service,
    }
}

/// Resolve `spec` once.
pub async fn fetch(spec: &CredentialSpec, ctx: &Context) -> Result<Fetched, CredentialError> {
    fetch_watched(spec, ctx).await.map(|(fetched, _)| fetched)
}

/// Resolve `spec` once, and say what could change the keys (the source that gave them).
pub async fn fetch_watched(spec: &CredentialSpec, ctx: &Context) -> Result<(Fetched, Watch), CredentialError> {
    let fail = |source: &SourceSpec, e: SourceError| CredentialError::Source {
        set: spec.name.clone(),
        source_name: source.name(),
        detail: e.detail().to_string(),
    };
    match &spec.source {
        SourceSpec::Chain(chain) => {
            let mut tried = Vec::new();
            for member in &chain_members(spec.vendor, chain) {
                match fetch_one(spec.vendor, member, ctx).await {
                    Ok(f) => return Ok((f, watch_of(spec.vendor, member, ctx))),
                    Err(e) => tried.push(format!("{}: {}", member.name(), e.detail())),
                }
            }
            Err(CredentialError::ChainExhausted { set: spec.name.clone(), tried: tried.join("; ") })
        }
        other => fetch_one(spec.vendor, other, ctx)
            .await
            .map(|f| (f, watch_of(spec.vendor, other, ctx)))
            .map_err(|e| fail(other, e)),
    }
}

async fn fetch_one(vendor: Vendor, source: &SourceSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let fetched = fetch_unchecked(vendor, source, ctx).await?;
    // Every source's keys (files, STS and metadata answers too) are checked before use: a key
    // that holds a character no vendor issues is a broken file or a hostile answer.
    match fetched.credentials.text_problem(key_names(vendor)) {
        Some(problem) => Err(SourceError::Failed(format!("{}: {problem}", fetched.description))),
        None => Ok(fetched),
    }
}

async fn fetch_unchecked(vendor: Vendor, source: &SourceSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let plain = |credentials: Credentials, description: String| Fetched { credentials, description };
    match (vendor, source) {
        (_, SourceSpec::InMemory(keys)) => Ok(plain(keys.into(), "in-memory".into())),
        (_, SourceSpec::Static(keys)) => Ok(plain(keys.into(), "static (keys in the config file)".into())),
        (_, SourceSpec::Env { id_var, secret_var, token_var }) => {
            let c = env_keys(ctx.env.as_ref(), id_var, secret_var, token_var)?;
            Ok(plain(c, format!("env ({id_var})")))
        }
        (_, SourceSpec::Chain(_)) => Err(SourceError::Failed("a chain inside a chain".into())),
        (Vendor::Alibaba, SourceSpec::Oidc(o)) => alibaba::oidc(o, ctx).await,
        (Vendor::Alibaba, SourceSpec::Profile { profile, file, sts_endpoint, metadata_endpoint }) => {
            let overrides = cli_profile::Overrides {
                sts_endpoint: sts_endpoint.as_ref(),
                metadata_endpoint: metadata_endpoint.as_ref(),
            };
            alibaba::profile(profile.as_deref(), file.as_ref(), overrides, ctx).await
        }
        (Vendor::Alibaba, SourceSpec::EcsRamRole(m)) => alibaba::ecs_ram_role(m, ctx).await,
        (Vendor::Tencent, SourceSpec::Oidc(o)) => tencent::oidc(o, ctx).await,
        (Vendor::Tencent, SourceSpec::Profile { profile, file, .. }) => {
            tencent::profile(profile.as_deref(), file.as_ref(), ctx)
        }
        (Vendor::Tencent, SourceSpec::CvmRole(m)) => tencent::cvm_role(m, ctx).await,
        (_, SourceSpec::AssumeRole(a)) => assume_role::fetch(a, ctx).await,
        (Vendor::Alibaba, SourceSpec::CredentialsUri(u)) => uri::fetch(u.as_ref(), ctx).await,
        (v, s) => Err(SourceError::Failed(format!("source {} is not available for vendor {}", s.name(), v.as_str()))),
    }
}

/// Keys from environment variables; `token_var` is optional.
pub fn env_keys(
    env: &dyn Environment,
    id_var: &str,
    secret_var: &str,
    token_var: &str,
) -> Result<Credentials, SourceError> {
    // The values are wiped once copied into the secrets.
    let get = |var: &str| -> Result<Option<Zeroizing<String>>, SourceError> {
        let Some(value) = env.var(var).map(Zeroizing::new).filter(|v| !v.is_empty()) else { return Ok(None) };
        match crate::credentials::key_text_problem(&value) {
            Some(problem) => Err(SourceError::Failed(format!("environment variable {var} {problem}"))),
            None => Ok(Some(value)),
        }
    };
    let id = get(id_var)?.ok_or_else(|| SourceError::Absent(format!("environment variable {id_var} is not set")))?;
    let secret =
        get(secret_var)?.ok_or_else(|| SourceError::Absent(format!("environment variable {secret_var} is not set")))?;
    let token = get(token_var)?;
    Ok(Credentials {
        access_key_id: Secret::new(&*id),
        access_key_secret: Secret::new(&*secret),
        security_token: token.as_deref().map(Secret::new),
        expires_at: None,
    })
}

/// The names of a vendor's id, secret and token, as its APIs spell them (for errors).
pub fn key_names(vendor: Vendor) -> [&'static str; 3] {
    match vendor {
        Vendor::Alibaba => ["AccessKeyId", "AccessKeySecret", "SecurityToken"],
        Vendor::Tencent => ["SecretId", "SecretKey", "Token"],
    }
}

/// How a set would resolve, from variables and files only (no network): for `check-config`.
pub fn describe(spec: &CredentialSpec, env: &dyn Environment) -> String {
    fn one(vendor: Vendor, source: &SourceSpec, env: &dyn Environment) -> Result<String, SourceError> {
        let set = |v: &str| env.var(v).filter(|x| !x.is_empty());
        match (vendor, source) {
            (_, SourceSpec::Env { id_var, secret_var, token_var }) => {
                env_keys(env, id_var, secret_var, token_var).map(|_| format!("env ({id_var})"))
            }
            (_, SourceSpec::Static(_)) => Ok("static (keys in the config file)".into()),
            (_, SourceSpec::InMemory(_)) => Ok("in-memory".into()),
            (Vendor::Alibaba, SourceSpec::Oidc(_)) => {
                alibaba::oidc_vars(&|v| set(v)).map(|v| format!("oidc (role {})", v.role_arn))
            }
            (Vendor::Tencent, SourceSpec::Oidc(_)) => {
                tencent::oidc_vars(&|v| set(v)).map(|v| format!("oidc (role {})", v.role_arn))
            }
            (Vendor::Alibaba, SourceSpec::Profile { profile, file, .. }) => {
                alibaba::resolve_profile(profile.as_deref(), file.as_ref(), &|v| set(v)).map(|r| match r {
                    alibaba::Resolved::Keys(f) => f.description,
                    alibaba::Resolved::Cli(_, description) => description,
                })
            }
            (Vendor::Tencent, SourceSpec::Profile { profile, file, .. }) => {
                tencent::read_profile(profile.as_deref(), file.as_ref(), &|v| set(v)).map(|f| f.description)
            }
            (Vendor::Alibaba, SourceSpec::EcsRamRole(m)) => {
                if set("ALIBABA_CLOUD_ECS_METADATA_DISABLED").as_deref() == Some("true") {
                    return Err(SourceError::Absent("ALIBABA_CLOUD_ECS_METADATA_DISABLED=true".into()));
                }
                Ok(format!(
                    "ecs_ram_role ({})",
                    m.role_name
                        .clone()
                        .or_else(|| set("ALIBABA_CLOUD_ECS_METADATA"))
                        .unwrap_or_else(|| "role discovered at run time".into())
                ))
            }
            (Vendor::Tencent, SourceSpec::CvmRole(m)) => Ok(format!(
                "cvm_role ({})",
                m.role_name.clone().unwrap_or_else(|| "role discovered at run time".into())
            )),
            (_, SourceSpec::AssumeRole(a)) => {
                Ok(format!("{} (role {} on top of `{}`)", source.name(), a.role_arn, a.base))
            }
            (Vendor::Alibaba, SourceSpec::CredentialsUri(u)) => {
                uri::uri_of(u.as_ref(), &|v| set(v)).map(|u| format!("credentials_uri ({})", uri::shown(&u)))
            }
            (_, s) => Err(SourceError::Failed(format!("{} is not available", s.name()))),
        }
    }
    match &spec.source {
        SourceSpec::Chain(chain) => {
            let mut tried = Vec::new();
            for m in &chain_members(spec.vendor, chain) {
                match one(spec.vendor, m, env) {
                    Ok(d) => return format!("chain -> {d}"),
                    Err(e) => tried.push(format!("{}: {}", m.name(), e.detail())),
                }
            }
            format!("chain -> nothing found ({})", tried.join("; "))
        }
        s => match one(spec.vendor, s, env) {
            Ok(d) => d,
            Err(e) => format!("{} -> not usable: {}", s.name(), e.detail()),
        },
    }
}

/// How long before expiry the vendor's SDK renews temporary keys.
pub fn renew_before(vendor: Vendor) -> Duration {
    match vendor {
        Vendor::Alibaba => ALIBABA_RENEW_BEFORE,
        Vendor::Tencent => TENCENT_RENEW_BEFORE,
    }
}

/// When to fetch temporary keys again: `renew_before` ahead of `expires_at` (at most half their
/// lifetime, for short-lived keys), minus up to [`MAX_JITTER`] (at most a tenth of the lifetime)
/// scaled by `jitter` in [0, 1); never sooner than a second after `fetched_at`.
pub fn next_refresh(fetched_at: SystemTime, expires_at: SystemTime, renew_before: Duration, jitter: f64) -> SystemTime {
    let lifetime = expires_at.duration_since(fetched_at).unwrap_or_default();
    let ahead = renew_before.min(lifetime / 2);
    let spread = MAX_JITTER.min(lifetime / 10).mul_f64(jitter.clamp(0.0, 1.0));
    let at = expires_at - ahead - spread;
    at.max(fetched_at + Duration::from_secs(1))
}

/// The files a profile source reads (an explicit `profile_file`, else the vendor's defaults).
fn profile_files(vendor: Vendor, file: Option<&PathBuf>, ctx: &Context) -> Vec<PathBuf> {
    if let Some(f) = file {
        return vec![f.clone()];
    }
    let home = home(&|v| ctx.var(v));
    let mut out = Vec::new();
    match vendor {
        Vendor::Alibaba => {
            out.extend(home.as_ref().map(|h| h.join(".aliyun/config.json")));
            match ctx.var("ALIBABA_CLOUD_CREDENTIALS_FILE") {
                Some(f) => out.push(PathBuf::from(f)),
                None => out.extend(home.map(|h| h.join(".alibabacloud/credentials.ini"))),
            }
        }
        Vendor::Tencent => match ctx.var("TENCENTCLOUD_CREDENTIALS_FILE") {
            Some(f) => out.push(PathBuf::from(f)),
            None => {
                out.extend(home.map(|h| h.join(".tencentcloud/credentials")));
                out.push(PathBuf::from("/etc/tencentcloud/credentials"));
            }
        },
    }
    out
}

/// The user's home directory (`HOME`).
pub(crate) fn home(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("HOME").map(PathBuf::from)
}

/// Every variable a source may read, copied once so refresh tasks need no process environment.
pub fn snapshot_env(config: &Config, env: &dyn Environment) -> EnvSnapshot {
    let mut names: Vec<String> = [
        "HOME",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        "ALIBABA_CLOUD_ROLE_SESSION_NAME",
        "ALIBABA_CLOUD_STS_REGION",
        "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
        "ALIBABA_CLOUD_PROFILE",
        "ALIBABA_CLOUD_CREDENTIALS_FILE",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
        "ALIBABA_CLOUD_ECS_METADATA",
        "ALIBABA_CLOUD_IMDSV1_DISABLED",
        uri::CREDENTIALS_URI_ENV,
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
        "TENCENTCLOUD_CREDENTIALS_FILE",
        "TKE_REGION",
        "TKE_PROVIDER_ID",
        "TKE_WEB_IDENTITY_TOKEN_FILE",
        "TKE_ROLE_ARN",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fn env_names(source: &SourceSpec, names: &mut Vec<String>) {
        match source {
            SourceSpec::Env { id_var, secret_var, token_var } => {
                names.extend([id_var.clone(), secret_var.clone(), token_var.clone()])
            }
            SourceSpec::Chain(chain) => env_names(&chain.env, names),
            _ => {}
        }
    }
    for spec in config.credentials.values() {
        env_names(&spec.source, &mut names);
    }
    EnvSnapshot(names.into_iter().filter_map(|n| env.var(&n).map(|v| (n, Secret::new(Zeroizing::new(v))))).collect())
}

/// The variables a config's sources may read, copied once. The values (keys among them) are
/// held as [`Secret`]s: in the secret pool, left out of core dumps, wiped when dropped.
pub struct EnvSnapshot(HashMap<String, Secret>);

impl Environment for EnvSnapshot {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|value| value.expose().to_string())
    }
}

/// A file's text, or what is wrong with it (naming the variable that pointed to it, if any).
/// A regular file (symlinks followed: Kubernetes projects token and secret files through them) of
/// at most [`crate::fsdir::MAX_FILE_BYTES`], opened non-blocking: a FIFO or a device is refused.
pub(crate) fn read_file(what: &str, path: &std::path::Path) -> Result<String, SourceError> {
    use crate::fsdir::{Follow, MAX_FILE_BYTES, read_regular_string};
    match read_regular_string(path, Follow::Symlinks, MAX_FILE_BYTES) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(SourceError::Absent(format!("{what}={} not found", path.display())))
        }
        Err(e) => Err(SourceError::Failed(format!("{what}={} not readable ({e})", path.display()))),
    }
}

/// Parse an STS/metadata expiry: `2024-01-01T00:00:00Z`.
pub(crate) fn parse_expiration(text: &str) -> Result<SystemTime, SourceError> {
    humantime::parse_rfc3339(text.trim())
        .map_err(|e| SourceError::Failed(format!("the answer's Expiration `{text}` is not a date ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_points_keep_the_vendor_margin_and_stay_inside_short_lifetimes() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = t0 + Duration::from_secs(3600);
        // One hour of Alibaba keys: 15 minutes before, minus up to a minute of jitter.
        assert_eq!(next_refresh(t0, hour, ALIBABA_RENEW_BEFORE, 0.0), hour - ALIBABA_RENEW_BEFORE);
        assert_eq!(
            next_refresh(t0, hour, ALIBABA_RENEW_BEFORE, 0.5),
            hour - ALIBABA_RENEW_BEFORE - Duration::from_secs(30)
        );
        assert_eq!(next_refresh(t0, hour, TENCENT_RENEW_BEFORE, 0.0), hour - TENCENT_RENEW_BEFORE);
        // 30 s keys: half their life ahead, a tenth of it as jitter at most.
        let short = t0 + Duration::from_secs(30);
        assert_eq!(next_refresh(t0, short, ALIBABA_RENEW_BEFORE, 0.0), t0 + Duration::from_secs(15));
        assert_eq!(next_refresh(t0, short, ALIBABA_RENEW_BEFORE, 0.999_999).duration_since(t0).unwrap().as_secs(), 12);
        // Already expired: not sooner than a second later (no spinning).
        assert_eq!(next_refresh(t0, t0, ALIBABA_RENEW_BEFORE, 0.3), t0 + Duration::from_secs(1));
        for j in [0.0, 0.25, 0.5, 0.75, 0.99] {
            for life in [2u64, 30, 900, 3600, 43_200] {
                let exp = t0 + Duration::from_secs(life);
                let at = next_refresh(t0, exp, ALIBABA_RENEW_BEFORE, j);
                assert!(at > t0 && at < exp, "life {life} jitter {j}");
            }
        }
    }

    #[test]
    fn expirations_parse_as_utc() {
        let t = parse_expiration("2024-01-01T00:00:30Z").unwrap();
        assert_eq!(crate::clock::unix_seconds(t), 1_704_067_230);
        assert!(parse_expiration("tomorrow").is_err());
    }
}

#[cfg(test)]
mod source_tests;

#[cfg(test)]
mod assume_role_tests;
