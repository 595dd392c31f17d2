//! Paths that ticketd opens as root, made safe against other users: the StrictModes [`walk()`] of a
//! path, directories held open as fds so that later work is relative to them ([`Dir`]), and
//! guarded reads of config and credential files ([`read`]).
//!
//! Running as root, a path that a user other than root or ticketd's own could change is refused;
//! running unprivileged (a sidecar writing into a Kubernetes `emptyDir`, mode 0777), it is only
//! warned about ([`Policy`]).

pub mod dir;
pub mod read;
pub mod walk;

use std::path::{Path, PathBuf};

pub use dir::{Dir, DirError};
pub use read::{Follow, MAX_FILE_BYTES, read_regular, read_regular_string};
pub use walk::{Concern, Trusted, Walked, walk};

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
pub fn enforce(what: &str, path: &Path, concerns: &[Concern], policy: Policy) -> Result<(), Untrusted> {
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
