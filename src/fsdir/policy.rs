//! What to do about a path another user could change: refuse it as root, warn unprivileged.

use std::path::{Path, PathBuf};

use super::walk::Concern;

/// What to do with a [`Concern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Refuse the path (ticketd runs as root).
    Refuse,
    /// Log a warning and go on (ticketd runs unprivileged).
    Warn,
}

impl Policy {
    /// [`Policy::Refuse`] as root, [`Policy::Warn`] otherwise.
    pub fn of_process() -> Policy {
        if rustix::process::geteuid().is_root() { Policy::Refuse } else { Policy::Warn }
    }
}

/// A path refused because someone else could change it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {}: {concern}; as root ticketd uses only paths that no user but root (or its own) can change; fix the owner or mode",
    path.display()
)]
pub struct Untrusted {
    pub what: String,
    pub path: PathBuf,
    pub concern: Concern,
}

/// Apply `policy` to the concerns of a walk of `path` (`what` names its role in messages).
pub(crate) fn enforce(what: &str, path: &Path, concerns: &[Concern], policy: Policy) -> Result<(), Untrusted> {
    for concern in concerns {
        match policy {
            Policy::Refuse => {
                return Err(Untrusted { what: what.to_string(), path: path.to_path_buf(), concern: concern.clone() });
            }
            Policy::Warn => {
                tracing::warn!(path = %path.display(), "{what}: {concern}; another user could redirect or replace it")
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_16_concerns_refuse_as_root_and_only_warn_unprivileged() {
        let concern =
            Concern { path: PathBuf::from("/k8s/emptydir"), why: "is writable by every user (mode 777)".into() };
        let path = Path::new("/k8s/emptydir/out");
        assert_eq!(enforce("sink directory", path, std::slice::from_ref(&concern), Policy::Warn), Ok(()));
        let e = enforce("sink directory", path, &[concern], Policy::Refuse).unwrap_err().to_string();
        assert_eq!(
            e,
            "sink directory /k8s/emptydir/out: /k8s/emptydir is writable by every user (mode 777); as root ticketd uses \
             only paths that no user but root (or its own) can change; fix the owner or mode"
        );
        assert_eq!(Policy::of_process() == Policy::Refuse, rustix::process::geteuid().is_root());
    }
}
