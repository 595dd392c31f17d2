//! The fleet's place in the daemon: the checks of `[cluster]` before anything connects.
//!
//! `run` and `check-config` both call [`check`]; [`no_key_warning`] is the loud warning for a
//! fleet without `encryption_key_file`.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::link::FleetLink;
use crate::cluster::view::ClusterView;
use crate::config::Config;
use crate::credentials::Environment;
use crate::daemon::error::DaemonError;
use crate::scheduler::Command;

/// What `[cluster]` needs, read and checked; `None` without `[cluster]`. `run` refuses to start
/// and `check-config` refuses the file on exactly these errors (review F1).
#[cfg(feature = "etcd")]
pub(crate) fn check(
    config: &Config,
    env: &dyn Environment,
) -> Result<Option<crate::cluster::prepare::Prepared>, DaemonError> {
    let Some(spec) = &config.cluster else { return Ok(None) };
    let prepared = crate::cluster::prepare::preflight(spec, env).map_err(DaemonError::Fleet)?;
    Ok(Some(prepared))
}

/// Without the `etcd` feature the config refuses `[cluster]` at its line; a config made in code
/// with one is refused here.
#[cfg(not(feature = "etcd"))]
pub(crate) fn check(config: &Config, _env: &dyn Environment) -> Result<Option<()>, DaemonError> {
    match &config.cluster {
        None => Ok(None),
        Some(_) => Err(DaemonError::NoEtcdFeature),
    }
}

/// This node's fleet, made before the scheduler (which gets its link) and run beside it.
pub(crate) struct Fleet {
    #[cfg(feature = "etcd")]
    node: Arc<crate::cluster::node::FleetNode>,
}

/// The fleet task, running.
pub(crate) struct Running {
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl Fleet {
    /// The fleet of `config` (`None` without `[cluster]`), checked by [`check`]; warns without a key.
    pub(crate) fn prepare(config: &Config, env: &dyn Environment) -> Result<Option<Fleet>, DaemonError> {
        let Some(prepared) = check(config, env)? else { return Ok(None) };
        if let Some(warning) = no_key_warning(config) {
            tracing::warn!("{warning}");
        }
        #[cfg(feature = "etcd")]
        {
            let spec = config.cluster.clone().expect("check found [cluster]");
            let view = ClusterView::new(&spec.node);
            Ok(Some(Fleet { node: crate::cluster::node::FleetNode::new(spec, view, prepared) }))
        }
        #[cfg(not(feature = "etcd"))]
        {
            let () = prepared;
            Err(DaemonError::NoEtcdFeature)
        }
    }

    /// The scheduler's handle on the fleet.
    pub(crate) fn link(&self) -> Arc<dyn FleetLink> {
        #[cfg(feature = "etcd")]
        return self.node.clone();
        #[cfg(not(feature = "etcd"))]
        unreachable!("no Fleet without the etcd feature")
    }

    /// The view `GET /v1/cluster`, the metrics and `ticketd status` show.
    pub(crate) fn view(&self) -> Arc<ClusterView> {
        #[cfg(feature = "etcd")]
        return self.node.view().clone();
        #[cfg(not(feature = "etcd"))]
        unreachable!("no Fleet without the etcd feature")
    }

    /// Start the fleet task: its events go to the scheduler through `commands`.
    pub(crate) fn start(&self, commands: mpsc::UnboundedSender<Command>) -> Running {
        let stop = CancellationToken::new();
        #[cfg(feature = "etcd")]
        let task = {
            let send = Box::new(move |event| {
                // Refused only once the scheduler has stopped: the daemon is stopping too.
                let _ = commands.send(Command::Fleet(event));
            });
            tokio::spawn(self.node.clone().run(send, stop.clone()))
        };
        #[cfg(not(feature = "etcd"))]
        let task = {
            drop(commands);
            tokio::spawn(std::future::pending())
        };
        Running { task, stop }
    }
}

impl Running {
    /// Returns only if the task ended on its own (it runs until stopped: a panic).
    pub(crate) async fn ended(&mut self) {
        let _ = (&mut self.task).await;
    }

    /// Stop it: the lease is revoked (bounded), so another node leads at once.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        if tokio::time::timeout(STOP_LIMIT, self.task).await.is_err() {
            tracing::warn!("the fleet task did not stop in time");
        }
    }
}

/// How long a stop waits for the fleet task (its revoke is bounded at 2 s).
const STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The warning for a `[cluster]` without `encryption_key_file`, as `file:line: warning: ...`
/// (the `[cluster]` line), or `None` when there is a key or no `[cluster]`.
pub(crate) fn no_key_warning(config: &Config) -> Option<String> {
    let spec = config.cluster.as_ref()?;
    if spec.encryption_key_file.is_some() {
        return None;
    }
    let text = NO_KEY_WARNING;
    Some(match &config.source {
        Some(path) => match section_line(path) {
            Some(line) => format!("{}:{line}: warning: {text}", path.display()),
            None => format!("{}: warning: {text}", path.display()),
        },
        None => format!("warning: {text}"),
    })
}

/// The warning's words (after `file:line: warning: `).
pub(crate) const NO_KEY_WARNING: &str = "[cluster] has no encryption_key_file: every ticket and token the fleet \
     shares is stored in etcd in plain text, readable by anyone who can read etcd (its data directory, snapshots, \
     backups); set encryption_key_file (make one with: head -c 32 /dev/urandom | base64 > cluster.key; chmod 600 \
     cluster.key)";

/// The line of the `[cluster]` header in the file at `path` (read again: the checked config
/// keeps no positions).
fn section_line(path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            line.strip_prefix("[cluster]").is_some_and(|rest| {
                let rest = rest.trim_start();
                rest.is_empty() || rest.starts_with('#')
            })
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_19_the_no_key_warning_names_the_cluster_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "state_dir = \"/x\"\n\n  [cluster]   # the fleet\nbackend = \"etcd\"\n").unwrap();
        assert_eq!(section_line(&path), Some(3));
        std::fs::write(&path, "[clusters]\n").unwrap();
        assert_eq!(section_line(&path), None);
    }
}
