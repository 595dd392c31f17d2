//! The configuration's constants: where ticketd looks by default, every optional key's default,
//! the limits values are checked against, and the vendors' standard variable names.

use std::time::Duration;

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

/// Optional. Default of `metrics_ticket_series`: per-ticket series up to 1,000 tickets (about
/// 500 kB of metrics), aggregates only above.
pub const DEFAULT_METRICS_TICKET_SERIES: usize = 1000;

/// Optional. Default of `rate_limits.alibaba`.
pub const DEFAULT_ALIBABA_RATE_LIMIT: u32 = 50;
/// Optional. Default of `rate_limits.tencent`: TCR's published limit per API.
pub const DEFAULT_TENCENT_RATE_LIMIT: u32 = 100;
/// The highest rate `[rate_limits]` accepts (for loopback benchmarks; no cloud allows it).
pub const MAX_RATE_LIMIT: u32 = 1_000_000;

/// Optional. Default `session_duration` of Alibaba `ram_role_arn` (credentials-go's 3600 s).
pub const DEFAULT_ALIBABA_ASSUME_ROLE_DURATION: Duration = Duration::from_secs(3_600);
/// Optional. Default `session_duration` of Tencent `role_arn` (the Go SDK's 7200 s).
pub const DEFAULT_TENCENT_ASSUME_ROLE_DURATION: Duration = Duration::from_secs(7_200);

/// Optional. Default `duration` of Alibaba `AssumeRoleWithOIDC` (the SDK's `DurationSeconds`).
pub const DEFAULT_ALIBABA_OIDC_DURATION: Duration = Duration::from_secs(3_600);
/// Optional. Default `duration` of Tencent `AssumeRoleWithWebIdentity`.
pub const DEFAULT_TENCENT_OIDC_DURATION: Duration = Duration::from_secs(7_200);
/// The shortest STS duration Alibaba accepts.
pub const MIN_STS_DURATION: Duration = Duration::from_secs(900);
/// The longest STS duration ticketd asks for.
pub const MAX_STS_DURATION: Duration = Duration::from_secs(43_200);

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

/// Optional. Default `env_prefix` of the `env` file format.
pub const DEFAULT_ENV_PREFIX: &str = "TICKETD_";
