//! Who is calling: the kernel's record of the process that connected, read once when the
//! connection is accepted.
//!
//! `SO_PEERCRED` (uid, gid, pid) and `SO_PEERGROUPS` (supplementary groups) are what the caller's
//! credentials were at `connect()`. They cannot be borrowed later: a connection handed to another
//! process, or a pid recycled by a group member, does not change them. Nothing here reads
//! `/proc/<pid>` (which also works under systemd's `ProtectProc=invisible`, where other users'
//! `/proc` entries are hidden).
//!
//! `SO_PEERCRED` comes from tokio ([`UnixStream::peer_cred`]). `SO_PEERGROUPS` has no safe
//! wrapper in rustix, nix, tokio or std, so its one `getsockopt` is the single `unsafe` block of
//! this module (issue #18: see `peer_groups`).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;

use tokio::net::UnixStream;

/// A caller's credentials, fixed when its connection was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// For log lines only: a pid can be reused, so it never decides access.
    pub(crate) pid: Option<i32>,
    /// Supplementary groups (`SO_PEERGROUPS`), sorted.
    pub(crate) groups: Arc<[u32]>,
}

impl Peer {
    /// The credentials of the process at the other end of `socket` (a connected unix socket).
    pub(crate) fn of(socket: &UnixStream) -> std::io::Result<Peer> {
        let cred = socket.peer_cred()?;
        let mut groups = peer_groups(socket.as_fd())?;
        groups.sort_unstable();
        groups.dedup();
        // The kernel reports pid 0 for a peer in a pid namespace ticketd cannot see (a sibling
        // container sharing the socket): no pid then.
        let pid = cred.pid().filter(|&pid| pid > 0);
        Ok(Peer { uid: cred.uid(), gid: cred.gid(), pid, groups: groups.into() })
    }

    /// A peer with no supplementary groups (tests).
    #[cfg(test)]
    pub(crate) fn without_groups(uid: u32, gid: u32) -> Peer {
        Peer { uid, gid, pid: None, groups: Arc::from([]) }
    }

    /// Whether the caller was in `gid`, as its primary or a supplementary group.
    pub(crate) fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.binary_search(&gid).is_ok()
    }
}

/// `SO_PEERGROUPS` (Linux 4.13 and later): the connecting process's supplementary groups, as the
/// kernel recorded them at `connect()`. No well-kept crate wraps it on Linux (rustix 1.1, nix 0.31,
/// tokio, std and uds have `SO_PEERCRED` at most), and no other source is as sound: the pidfd of
/// `SO_PEERPIDFD` leads only to `/proc/<pid>/status`, hidden under `ProtectProc=invisible` and
/// read at request time rather than at `connect()`; the group database is what an administrator
/// declared, not what the process holds.
fn peer_groups(fd: BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    const GID: usize = std::mem::size_of::<libc::gid_t>();
    // Most callers are in a few groups; a longer list (at most NGROUPS_MAX, 65,536) is asked for
    // again at the size the kernel reports.
    let mut groups: Vec<libc::gid_t> = vec![0; 32];
    // The list is fixed for the connection's life, so the second try fits; the bound is a guard.
    for _ in 0..3 {
        let mut len = libc::socklen_t::try_from(groups.len() * GID).map_err(std::io::Error::other)?;
        // SAFETY: `groups` is a live, writable buffer of exactly `len` bytes that outlives the
        // call; the kernel writes at most `len` bytes into it and stores the length it wrote (or,
        // failing with ERANGE, the length it needs) in `len`, a live `socklen_t`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast::<libc::c_void>(),
                &mut len,
            )
        };
        if rc == 0 {
            groups.truncate(len as usize / GID);
            return Ok(groups);
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ERANGE) {
            return Err(error);
        }
        groups.resize((len as usize).div_ceil(GID).max(groups.len() + 1), 0);
    }
    Err(std::io::Error::other("SO_PEERGROUPS: the group list did not fit the size the kernel asked for"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected tokio stream from a std one (made where credentials may differ).
    fn tokio_stream(s: std::os::unix::net::UnixStream) -> UnixStream {
        s.set_nonblocking(true).unwrap();
        UnixStream::from_std(s).unwrap()
    }

    #[tokio::test]
    async fn a_socket_pair_reports_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = Peer::of(&a).unwrap();
        assert_eq!(peer.uid, rustix::process::geteuid().as_raw());
        assert_eq!(peer.gid, rustix::process::getegid().as_raw());
        assert_eq!(peer.pid, Some(std::process::id() as i32));
        let mut ours: Vec<u32> = rustix::process::getgroups().unwrap().iter().map(|g| g.as_raw()).collect();
        ours.sort_unstable();
        ours.dedup();
        assert_eq!(&*peer.groups, ours.as_slice());
    }

    #[test]
    fn group_membership_is_primary_or_supplementary() {
        let peer = Peer { uid: 5, gid: 10, pid: None, groups: Arc::from([20, 30]) };
        assert!(peer.in_group(10) && peer.in_group(20) && peer.in_group(30));
        assert!(!peer.in_group(25));
    }

    /// More groups than the first buffer holds: the ERANGE retry reads them all.
    #[tokio::test]
    #[cfg_attr(not(have_root), ignore = "needs root to set a thread's groups")]
    async fn a_long_group_list_is_read_whole() {
        let groups: Vec<rustix::process::Gid> = (0..100).map(|n| rustix::process::Gid::from_raw(70_000 + n)).collect();
        // A thread of its own: credentials set by a raw system call are that thread's alone.
        let (a, _b) = std::thread::spawn(move || {
            rustix::thread::set_thread_groups(&groups).unwrap();
            std::os::unix::net::UnixStream::pair().unwrap()
        })
        .join()
        .unwrap();
        let peer = Peer::of(&tokio_stream(a)).unwrap();
        assert_eq!(peer.groups.len(), 100);
        assert_eq!((peer.groups[0], peer.groups[99]), (70_000, 70_099));
    }
}
