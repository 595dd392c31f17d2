//! The validated configuration as a whole ([`Config`]): its top-level settings (state directory,
//! socket, metrics listener, rate limits, core dumps), its credential sets and its tickets.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::credential::{CredentialSpec, SourceSpec};
use super::defaults::{DEFAULT_ALIBABA_RATE_LIMIT, DEFAULT_TENCENT_RATE_LIMIT};
use super::ticket::TicketSpec;

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
    /// Optional. Default: [`DEFAULT_METRICS_TICKET_SERIES`](crate::config::DEFAULT_METRICS_TICKET_SERIES).
    /// `/metrics` shows series per ticket while the board holds at most this many tickets; above it
    /// only the aggregate series (0: never per ticket).
    pub metrics_ticket_series: usize,
    /// Optional. Default: [`RateLimits::default`]. API calls per second, per endpoint.
    pub rate_limits: RateLimits,
    /// Optional. Default: [`DEFAULT_CORE_DUMPS`](crate::config::DEFAULT_CORE_DUMPS) (off). Whether the
    /// kernel may write ticketd's memory, live tokens included, to a core file (`PR_SET_DUMPABLE`).
    pub core_dumps: bool,
    pub credentials: BTreeMap<String, CredentialSpec>,
    pub tickets: Vec<TicketSpec>,
    /// Optional. Default: none (this host alone). The fleet this node belongs to (`[cluster]`).
    pub cluster: Option<super::cluster::ClusterSpec>,
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
