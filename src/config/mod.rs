//! The validated configuration.
//!
//! [`load`] reads a TOML file into `raw` structs mirroring the file, then `validate` builds a
//! [`Config`] with nothing left to fill in later, or returns every problem at once, each naming the
//! file, line and key.

pub(crate) mod check;
mod checked;
mod client;
mod lenient;
mod locate;
pub(crate) mod raw;
mod split;
mod validate;

use compact_str::CompactString;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use checked::Checked;
pub use client::{ClientConfig, RegistryTicket, load_client, parse_client};
pub use locate::{KeyPath, Locator};

// The API-specific parts of a ticket are the APIs' own (`src/apis/<kind>/spec.rs`, pure data):
// re-exported here so that a ticket's settings read as one shape.
pub use crate::apis::dsw::spec::{DEFAULT_DSW_TOKEN_LIFETIME, DswSpec, DswTokenType, MAX_DSW_TOKEN_LIFETIME};
pub use crate::apis::kinds::{ApiSpec, Kind};
pub use crate::apis::sls::spec::{
    DEFAULT_SLS_TICKET_LIFETIME, DEFAULT_SLS_TOKEN_LIFETIME, MAX_SLS_TICKET_LIFETIME, MAX_SLS_TOKEN_LIFETIME,
    SLS_TICKET_HOSTS, SLS_TICKET_REGIONS, SlsSpec,
};
pub use crate::apis::tcr::spec::{DEFAULT_TCR_ENDPOINT, TcrSpec, TcrTokenType};
pub use crate::http::Endpoint;

/// Where `run` and `check-config` look when no `-c` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ticketd/ticketd.toml";
/// Optional. Default: where `state.json` and its lock live.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/ticketd";
/// ticketd's memory holds live tokens: by default it is left out of core dumps, and processes of
/// its own user cannot read it through `/proc` or ptrace (`PR_SET_DUMPABLE` 0).
pub const DEFAULT_CORE_DUMPS: bool = false;
/// The shortest lifetime ticketd accepts: anything shorter cannot be refreshed reliably.
pub const MIN_LIFETIME: Duration = Duration::from_secs(10);
/// Optional. Default file mode of a sink file.
pub const DEFAULT_SINK_MODE: u32 = 0o600;
/// Alibaba standard environment variable names.
pub const ALIBABA_ACCESS_KEY_ID_ENV: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ALIBABA_ACCESS_KEY_SECRET_ENV: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const ALIBABA_SECURITY_TOKEN_ENV: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
/// Tencent standard environment variable names (the session token name is an extension).
pub const TENCENT_SECRET_ID_ENV: &str = "TENCENTCLOUD_SECRET_ID";
pub const TENCENT_SECRET_KEY_ENV: &str = "TENCENTCLOUD_SECRET_KEY";
pub const TENCENT_SESSION_TOKEN_ENV: &str = "TENCENTCLOUD_SESSION_TOKEN";

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from, when it came from one.
    pub source: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub socket: Option<SocketSpec>,
    /// Optional. Default: none (no TCP listener; `/metrics` on the socket still works). Where to
    /// serve Prometheus metrics over plain HTTP, e.g. `127.0.0.1:9464`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Optional. Default: [`DEFAULT_METRICS_TICKET_SERIES`]. `/metrics` shows series per ticket
    /// while the board holds at most this many tickets; above it only the aggregate series (0:
    /// never per ticket).
    pub metrics_ticket_series: usize,
    /// Optional. Default: [`RateLimits::default`]. API calls per second, per endpoint.
    pub rate_limits: RateLimits,
    /// Optional. Default: [`DEFAULT_CORE_DUMPS`] (off). Whether the kernel may write ticketd's
    /// memory, live tokens included, to a core file (`PR_SET_DUMPABLE`).
    pub core_dumps: bool,
    pub credentials: BTreeMap<String, CredentialSpec>,
    pub tickets: Vec<TicketSpec>,
}

/// How fast ticketd may call each endpoint (`[rate_limits]`). A burst of due tickets queues up
/// behind these; the defaults keep a large fleet polite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// SLS and PAI-DSW calls per second, per endpoint (the vendor publishes no limit).
    pub alibaba: u32,
    /// TCR calls per second, per endpoint (TCR allows 100).
    pub tencent: u32,
}

/// Optional. Default of `metrics_ticket_series`: per-ticket series up to 1,000 tickets (about
/// 500 kB of metrics), aggregates only above.
pub const DEFAULT_METRICS_TICKET_SERIES: usize = 1000;

/// Optional. Default of `rate_limits.alibaba`.
pub const DEFAULT_ALIBABA_RATE_LIMIT: u32 = 50;
/// Optional. Default of `rate_limits.tencent`: TCR's published limit per API.
pub const DEFAULT_TENCENT_RATE_LIMIT: u32 = 100;
/// The highest rate `[rate_limits]` accepts (for loopback benchmarks; no cloud allows it).
pub const MAX_RATE_LIMIT: u32 = 1_000_000;

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { alibaba: DEFAULT_ALIBABA_RATE_LIMIT, tencent: DEFAULT_TENCENT_RATE_LIMIT }
    }
}

impl Config {
    pub fn ticket(&self, name: &str) -> Option<&TicketSpec> {
        self.tickets.iter().find(|t| t.name == name)
    }

    /// A warning when keys are written in a config file that group or others may read, that
    /// another user owns, or that sits where another user could replace it (a directory on its
    /// path writable by others, or a symlink another user owns: the StrictModes walk).
    pub fn static_keys_warning(&self) -> Option<String> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let path = self.source.as_ref()?;
        let names: Vec<&str> = self
            .credentials
            .values()
            .filter(|c| matches!(c.source, SourceSpec::Static(_)))
            .map(|c| c.name.as_str())
            .collect();
        if names.is_empty() {
            return None;
        }
        let metadata = std::fs::metadata(path).ok()?;
        let mode = metadata.permissions().mode() & 0o777;
        let trusted = crate::fsdir::Trusted::of_process();
        let mut reasons = Vec::new();
        if mode & 0o077 != 0 {
            reasons.push(format!("readable by group or others (mode {mode:o}); chmod 600 it"));
        }
        if !trusted.uid(metadata.uid()) {
            reasons.push(format!(
                "owned by uid {}, not by ticketd's uid {} or root; chown it",
                metadata.uid(),
                trusted.uid
            ));
        }
        if let Ok(walked) = crate::fsdir::walk(path) {
            for concern in &walked.concerns {
                reasons.push(format!("where another user could replace it: {concern}"));
            }
        }
        (!reasons.is_empty()).then(|| {
            format!(
                "{}: credentials {} hold keys in a file {}",
                path.display(),
                names.join(", "),
                reasons.join("; and ")
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Alibaba,
    Tencent,
}

impl Vendor {
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Alibaba => "alibaba",
            Vendor::Tencent => "tencent",
        }
    }
}

/// A named credential set: which vendor, and where its keys come from.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialSpec {
    pub name: String,
    pub vendor: Vendor,
    pub source: SourceSpec,
}

/// Where keys come from. The values themselves never live in the config.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// Environment variables, read at start-up (and on reload).
    Env {
        id_var: String,
        secret_var: String,
        /// The variable holding an STS token; unset or empty means long-term keys.
        token_var: String,
    },
    /// Keys handed over in memory (`ticketd dev` and tests), never from a file.
    InMemory(StaticKeys),
    /// Keys written in the config file itself (`source = "static"`).
    Static(StaticKeys),
    /// A credentials file: Alibaba `~/.aliyun/config.json` then the INI file, Tencent
    /// `~/.tencentcloud/credentials`; re-read at a bounded interval.
    /// `sts_endpoint` and `metadata_endpoint` override the hosts the Alibaba CLI modes
    /// RamRoleArn, ChainableRamRoleArn, OIDC and EcsRamRole call.
    Profile {
        profile: Option<String>,
        file: Option<PathBuf>,
        sts_endpoint: Option<Endpoint>,
        metadata_endpoint: Option<Endpoint>,
    },
    /// Alibaba RRSA (`AssumeRoleWithOIDC`) or Tencent TKE (`AssumeRoleWithWebIdentity`), the
    /// role and token file named by the vendor's environment variables.
    Oidc(OidcSpec),
    /// Alibaba ECS instance RAM role (metadata service, IMDSv2 token).
    EcsRamRole(MetadataSpec),
    /// Tencent CVM instance role (metadata service).
    CvmRole(MetadataSpec),
    /// STS `AssumeRole` signed with the keys of another set (Alibaba `ram_role_arn`, Tencent
    /// `role_arn`), so chains such as ECS role -> cross-account role work.
    AssumeRole(AssumeRoleSpec),
    /// Alibaba `credentials_uri`: temporary keys from a local HTTP service (the URI set in the
    /// config, else `ALIBABA_CLOUD_CREDENTIALS_URI`).
    CredentialsUri(Option<reqwest::Url>),
    /// The vendor's default chain (spec section 4): the settings of its members; their order is
    /// the credential layer's (`credentials::sources::chain_members`), the first that yields keys wins.
    Chain(Box<ChainSpec>),
}

/// Keys given as they are (written in the file, or handed over in memory): the text of a key
/// pair, not yet credentials. Not printable: `Debug` shows only whether a token is present.
#[derive(Clone, PartialEq)]
pub struct StaticKeys {
    pub access_key_id: crate::secret::Secret,
    pub access_key_secret: crate::secret::Secret,
    /// An STS/session token: the keys are temporary.
    pub security_token: Option<crate::secret::Secret>,
    /// When keys handed over in memory stop working, when known (keys in the file: `None`).
    pub expires_at: Option<std::time::SystemTime>,
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys").field("temporary", &self.security_token.is_some()).finish_non_exhaustive()
    }
}

/// The settings of a default chain's members (`source = "chain"`, or no `source`): every
/// member's keys as written for that set; which members a vendor's chain has, and in which
/// order, the credential layer decides.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSpec {
    /// The variables (a [`SourceSpec::Env`]).
    pub env: SourceSpec,
    /// The credentials files (a [`SourceSpec::Profile`]).
    pub profile: SourceSpec,
    pub oidc: OidcSpec,
    /// The instance role (ECS RAM role or CVM role, by vendor).
    pub instance: MetadataSpec,
    /// Alibaba's `credentials_uri`, when written (else the variable, when set).
    pub credentials_uri: Option<reqwest::Url>,
}

/// An STS `AssumeRole` on top of another credential set.
#[derive(Debug, Clone, PartialEq)]
pub struct AssumeRoleSpec {
    pub vendor: Vendor,
    /// The `[credentials.NAME]` whose keys sign the call (`base_credentials`).
    pub base: String,
    pub role_arn: String,
    /// Overrides `ALIBABA_CLOUD_ROLE_SESSION_NAME` / the default `ticketd-<unix seconds>`.
    pub role_session_name: Option<String>,
    pub external_id: Option<String>,
    /// A JSON policy document narrowing the role's permissions.
    pub policy: Option<String>,
    /// `DurationSeconds` (`session_duration`).
    pub duration: Duration,
    /// Overrides the vendor's STS host; tests use a loopback URL.
    pub sts_endpoint: Option<Endpoint>,
}

/// Optional. Default `session_duration` of Alibaba `ram_role_arn` (credentials-go's 3600 s).
pub const DEFAULT_ALIBABA_ASSUME_ROLE_DURATION: Duration = Duration::from_secs(3_600);
/// Optional. Default `session_duration` of Tencent `role_arn` (the Go SDK's 7200 s).
pub const DEFAULT_TENCENT_ASSUME_ROLE_DURATION: Duration = Duration::from_secs(7_200);

/// An STS web-identity exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcSpec {
    /// Overrides the vendor's STS host (and the region/VPC variables); tests use a loopback URL.
    pub sts_endpoint: Option<Endpoint>,
    /// Overrides `ALIBABA_CLOUD_ROLE_SESSION_NAME` / the default session name.
    pub role_session_name: Option<String>,
    /// `DurationSeconds`.
    pub duration: Duration,
}

/// An instance metadata service.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataSpec {
    /// Overrides the metadata host (`http://100.100.100.200`, `http://metadata.tencentyun.com`).
    pub metadata_endpoint: Option<Endpoint>,
    /// The role; discovered from the metadata service when unset.
    pub role_name: Option<String>,
    /// Alibaba only: fall back to IMDSv1 when the IMDSv2 token cannot be fetched.
    pub imdsv1_fallback: bool,
}

/// Optional. Default `duration` of Alibaba `AssumeRoleWithOIDC` (the SDK's `DurationSeconds`).
pub const DEFAULT_ALIBABA_OIDC_DURATION: Duration = Duration::from_secs(3_600);
/// Optional. Default `duration` of Tencent `AssumeRoleWithWebIdentity`.
pub const DEFAULT_TENCENT_OIDC_DURATION: Duration = Duration::from_secs(7_200);
/// The shortest STS duration Alibaba accepts.
pub const MIN_STS_DURATION: Duration = Duration::from_secs(900);
/// The longest STS duration ticketd asks for.
pub const MAX_STS_DURATION: Duration = Duration::from_secs(43_200);

impl SourceSpec {
    /// The `source = ...` name.
    pub fn name(&self) -> &'static str {
        match self {
            SourceSpec::Env { .. } => "env",
            SourceSpec::InMemory(_) => "in-memory",
            SourceSpec::Static(_) => "static",
            SourceSpec::Profile { .. } => "profile",
            SourceSpec::Oidc(_) => "oidc",
            SourceSpec::EcsRamRole(_) => "ecs_ram_role",
            SourceSpec::CvmRole(_) => "cvm_role",
            SourceSpec::AssumeRole(a) => match a.vendor {
                Vendor::Alibaba => "ram_role_arn",
                Vendor::Tencent => "role_arn",
            },
            SourceSpec::CredentialsUri(_) => "credentials_uri",
            SourceSpec::Chain(_) => "chain",
        }
    }
}

/// One ticket to keep fresh: its name and its settings, which it reads through (`spec.api`).
///
/// Tickets configured alike share one [`TicketSettings`]: a fleet of 100,000 tickets that differ
/// only by name holds one copy of their settings, not 100,000.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSpec {
    /// Kept inline up to 24 bytes: 100,000 names cost no allocation of their own.
    pub name: CompactString,
    settings: Arc<TicketSettings>,
}

/// Everything about a ticket but its name.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSettings {
    pub credentials: String,
    pub api: ApiSpec,
    pub sinks: Vec<SinkSpec>,
    pub consumers: ConsumerSpec,
}

impl TicketSpec {
    pub fn new(name: impl Into<CompactString>, settings: TicketSettings) -> Self {
        TicketSpec::sharing(name, Arc::new(settings))
    }

    /// A ticket whose settings are shared with others.
    pub fn sharing(name: impl Into<CompactString>, settings: Arc<TicketSettings>) -> Self {
        TicketSpec { name: name.into(), settings }
    }
}

impl TicketSpec {
    /// Which API the ticket uses.
    pub fn kind(&self) -> Kind {
        self.api.kind()
    }
}

impl std::ops::Deref for TicketSpec {
    type Target = TicketSettings;

    fn deref(&self) -> &TicketSettings {
        &self.settings
    }
}

/// Changing a ticket's settings gives it a copy of its own (copy on write).
impl std::ops::DerefMut for TicketSpec {
    fn deref_mut(&mut self) -> &mut TicketSettings {
        Arc::make_mut(&mut self.settings)
    }
}

/// Who may read a ticket over the socket, whether readiness waits for it, and whom to tell when
/// it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Callers (by `SO_PEERCRED`) allowed to read the token; empty lists mean anyone who can open
    /// the socket. Root and ticketd's own uid are always allowed.
    pub allow_uids: Vec<u32>,
    pub allow_gids: Vec<u32>,
    /// `/readyz` fails while this ticket holds no valid token.
    pub required: bool,
    pub on_change: Option<HookSpec>,
}

impl Default for ConsumerSpec {
    fn default() -> Self {
        ConsumerSpec { allow_uids: Vec::new(), allow_gids: Vec::new(), required: true, on_change: None }
    }
}

impl ConsumerSpec {
    pub fn restricted(&self) -> bool {
        !self.allow_uids.is_empty() || !self.allow_gids.is_empty()
    }
}

/// What to run after all sinks of a ticket hold a new token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// A program and its arguments (no shell).
    pub exec: Option<Vec<String>>,
    /// A signal to send to the process whose pid is in `pid_file`.
    pub signal: Option<(i32, String)>,
    pub pid_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Changes closer together than this run the hook once.
    pub debounce: Duration,
    /// Optional. Default: none. Variables set for `exec`, besides [`HOOK_ENV_PASSED`] and the
    /// `TICKETD_*` ones (the hook gets nothing else of ticketd's environment).
    pub env: Vec<(String, String)>,
}

/// The variables of ticketd's own environment an `exec` hook gets (when set); nothing else of it
/// reaches a hook, so the cloud keys never do.
pub const HOOK_ENV_PASSED: &[&str] = &["PATH", "HOME", "LANG"];
/// The `PATH` a hook gets when ticketd has none.
pub const DEFAULT_HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Optional. Default hook timeout.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// Optional. Default hook debounce.
pub const DEFAULT_HOOK_DEBOUNCE: Duration = Duration::from_secs(1);
/// Optional. Default mode of the API socket.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// The unix socket API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSpec {
    pub path: PathBuf,
    pub mode: u32,
    /// The socket file's group (`socket_group`).
    pub group: Option<SocketGroup>,
}

/// A group as `socket_group` names it. A name is looked up where the system's groups are known
/// (checked with the environment, resolved when the socket is made), never by the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketGroup {
    Id(u32),
    Name(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SinkSpec {
    File(FileSink),
    DockerConfig(DockerConfigSink),
}

impl SinkSpec {
    /// The file this sink writes.
    pub fn path(&self) -> &Path {
        match self {
            SinkSpec::File(f) => &f.path,
            SinkSpec::DockerConfig(d) => &d.path,
        }
    }
}

/// A docker `config.json` whose `auths["<registry>"]` entry ticketd keeps current.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfigSink {
    pub path: PathBuf,
    /// The `auths` key: the ticket's `registry`.
    pub registry: String,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSink {
    pub path: PathBuf,
    pub format: FileFormat,
    pub mode: u32,
    /// Variable names of the `env` format.
    pub env_names: EnvNames,
}

/// The variable names the `env` file format writes (unset: that line is left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvNames {
    pub token: String,
    pub username: Option<String>,
    pub expires_at: Option<String>,
}

impl EnvNames {
    /// Optional. Default: `<PREFIX>TOKEN`, `<PREFIX>USERNAME` (tcr only), `<PREFIX>EXPIRES_AT`, with
    /// prefix `env_prefix` (default [`DEFAULT_ENV_PREFIX`]).
    pub fn defaults(prefix: &str, kind: Kind) -> EnvNames {
        EnvNames {
            token: format!("{prefix}TOKEN"),
            username: (kind == Kind::Tcr).then(|| format!("{prefix}USERNAME")),
            expires_at: Some(format!("{prefix}EXPIRES_AT")),
        }
    }
}

/// Optional. Default `env_prefix` of the `env` file format.
pub const DEFAULT_ENV_PREFIX: &str = "TICKETD_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Every field of the current token, as JSON.
    Json,
    /// The raw access token.
    Token,
    /// The SLS share URL.
    Url,
    /// `KEY=value` lines (systemd `EnvironmentFile=`, docker `--env-file`).
    Env,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Token => "token",
            FileFormat::Url => "url",
            FileFormat::Env => "env",
        }
    }
}

/// One problem with a config, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The key path, empty for whole-file problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key, self.message)
        }
    }
}

/// Every problem found in a config; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} problem{} in the configuration:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Read and validate the config file at `path` on its own: the file's problems only. What the
/// file asks of the environment (variables, groups) is checked by
/// [`crate::credentials::environment`], which the daemon and `check-config` load through.
pub fn load(path: &Path) -> Result<Config, Problems> {
    let text = read(path)?;
    parse_read(&text, path)
}

/// The text of the config file at `path`: a regular file (symlinks followed, as Kubernetes
/// ConfigMap volumes need) of at most [`crate::fsdir::MAX_FILE_BYTES`], opened non-blocking, so
/// that a FIFO or a device can neither hang the reader nor fill its memory.
pub fn read(path: &Path) -> Result<String, Problems> {
    use crate::fsdir::{Follow, MAX_FILE_BYTES, read_regular_string};
    read_regular_string(path, Follow::Symlinks, MAX_FILE_BYTES).map_err(|e| {
        Problems(vec![Problem {
            file: path.display().to_string(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
        }])
    })
}

/// Validate `text`, read from the config file at `path` by [`read`]. Relative paths in it are
/// resolved against the directory `path` names (made absolute against the current directory now,
/// its symlinks and `..` resolved, so neither a later `cd` nor a reload changes them);
/// [`Config::source`] is `path` made absolute, which a reload reads again.
pub fn parse_read(text: &str, path: &Path) -> Result<Config, Problems> {
    check_read(text, path).finish([])
}

/// [`parse_read`], keeping what the environment's checks need ([`Checked`]).
pub fn check_read<'t>(text: &'t str, path: &Path) -> Checked<'t> {
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = config_dir(&source);
    let mut checked = validate::parse(text, &path.display().to_string(), base);
    checked.set_source(source);
    checked
}

/// The directory relative paths of the config file at `path` (absolute) are resolved against.
pub fn config_dir(path: &Path) -> Option<PathBuf> {
    let dir = path.parent().filter(|dir| dir.is_absolute())?;
    Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// Validate config text that was not read from a file; `file` names it in messages. A relative
/// path in it is a problem (there is no file directory to resolve it against).
pub fn parse(text: &str, file: &str) -> Result<Config, Problems> {
    check(text, file).finish([])
}

/// [`parse`], keeping what the environment's checks need ([`Checked`]).
pub fn check<'t>(text: &'t str, file: &str) -> Checked<'t> {
    validate::parse(text, file, None)
}

/// A path key's value as ticketd uses it: absolute as written, else relative to `config_dir`, the
/// directory of the config file (leading `./` dropped). `None` for a relative path without one.
pub fn resolve_path(config_dir: Option<&Path>, value: &str) -> Option<PathBuf> {
    check::resolve_path(config_dir, value)
}
