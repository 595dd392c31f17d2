//! Why the daemon stopped, or refused a reload: its errors, typed, with the texts users see.

use crate::config::Problems;
use crate::credentials::CredentialError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    #[error("{0}")]
    Config(#[from] Problems),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Credentials(Vec<CredentialError>),
    #[error("{0}")]
    State(#[from] StoreError),
    #[error("{0}")]
    Reload(#[from] ReloadError),
    #[error("{0}")]
    Api(#[from] crate::api::ApiError),
    #[error("{0}")]
    Sink(#[from] crate::sinks::SinkError),
    #[error("cannot listen for metrics on {addr}: {source}")]
    Metrics { addr: std::net::SocketAddr, source: std::io::Error },
    /// A `[cluster]` config given to a build without the fleet backend (the config check refuses
    /// it at its line first; this is for a config made in code).
    #[cfg(not(feature = "etcd"))]
    #[error("[cluster]: {}", crate::config::cluster::NO_ETCD_FEATURE)]
    NoEtcdFeature,
    /// `[cluster]` names something this node cannot use (password, key, TLS file).
    #[cfg(feature = "etcd")]
    #[error("{0}")]
    Fleet(crate::cluster::prepare::PrepareError),
    #[error(
        "the {0} task stopped unexpectedly (a bug: it panicked); stopping, so the service manager starts ticketd again"
    )]
    TaskDied(&'static str),
}

/// Why a reload was refused before anything changed (besides the config's own problems).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    #[error("this configuration was not read from a file")]
    NotFromFile,
    /// A blocking step's task ended without an answer.
    #[error("{step} failed: {how}")]
    TaskFailed { step: &'static str, how: TaskEnd },
    #[error("state_dir cannot change on reload ({} -> {}); restart to move it", .from.display(), .to.display())]
    StateDirChanged { from: std::path::PathBuf, to: std::path::PathBuf },
    #[error("the scheduler has stopped")]
    SchedulerStopped,
    #[error("[cluster] cannot change on reload; restart ticketd to apply it (the running configuration stays)")]
    ClusterChanged,
}

/// How a task ended without an answer (its panic's message is never kept: it may quote a secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TaskEnd {
    #[error("it panicked")]
    Panicked,
    #[error("it was cancelled")]
    Cancelled,
}

impl From<&tokio::task::JoinError> for TaskEnd {
    fn from(e: &tokio::task::JoinError) -> TaskEnd {
        if e.is_panic() { TaskEnd::Panicked } else { TaskEnd::Cancelled }
    }
}
