//! The fleet's place in the daemon: the checks of `[cluster]` before anything connects.
//!
//! `run` and `check-config` both call [`check`]; [`no_key_warning`] is the loud warning for a
//! fleet without `encryption_key_file`.

use std::path::Path;

use crate::config::Config;
use crate::credentials::Environment;
use crate::daemon::error::DaemonError;

/// What `[cluster]` needs, read and checked; `None` without `[cluster]`. `run` refuses to start
/// and `check-config` refuses the file on exactly these errors (review F1).
#[cfg(feature = "etcd")]
pub(crate) fn check(
    config: &Config,
    env: &dyn Environment,
) -> Result<Option<crate::cluster::prepare::Prepared>, DaemonError> {
    let Some(spec) = &config.cluster else { return Ok(None) };
    if not_wired_yet() {
        let file = config.source.clone().unwrap_or_else(|| "the configuration".into());
        return Err(DaemonError::FleetNotRunnable(file));
    }
    let prepared = crate::cluster::prepare::preflight(spec, env).map_err(DaemonError::Fleet)?;
    Ok(Some(prepared))
}

/// Without the `etcd` feature the config refuses `[cluster]` at its line; a config made in code
/// with one is refused here.
#[cfg(not(feature = "etcd"))]
pub(crate) fn check(config: &Config, _env: &dyn Environment) -> Result<Option<()>, DaemonError> {
    match &config.cluster {
        None => Ok(None),
        Some(_) => {
            let file = config.source.clone().unwrap_or_else(|| "the configuration".into());
            Err(DaemonError::FleetNotRunnable(file))
        }
    }
}

/// Whether the scheduler half of the fleet is still missing (the daemon then refuses `[cluster]`).
#[cfg(feature = "etcd")]
fn not_wired_yet() -> bool {
    true
}

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
