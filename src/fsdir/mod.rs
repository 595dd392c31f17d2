//! Paths that ticketd opens as root, made safe against other users: the StrictModes [`walk()`] of a
//! path, directories held open as fds so that later work is relative to them ([`Dir`]), and
//! guarded reads of config and credential files ([`read`]).
//!
//! Running as root, a path that a user other than root or ticketd's own could change is refused;
//! running unprivileged (a sidecar writing into a Kubernetes `emptyDir`, mode 0777), it is only
//! warned about ([`Policy`]).

pub(crate) mod dir;
pub(crate) mod policy;
pub(crate) mod read;
pub(crate) mod walk;

pub(crate) use dir::Dir;
pub(crate) use policy::Policy;
pub(crate) use read::{Follow, MAX_FILE_BYTES, open_regular, read_regular_string};
pub(crate) use walk::{Concern, Trusted, walk};
