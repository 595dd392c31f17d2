//! The unix-socket API: HTTP/1.1 (hyper + axum) on a `UnixListener`, with each caller identified
//! by the kernel's record of its credentials at `connect()` ([`Peer`]: `SO_PEERCRED` and
//! `SO_PEERGROUPS`) for per-ticket access control.
//!
//! Limits keep a slow or hostile client from stalling anyone: a cap on connections (from the
//! [`crate::fd_budget`]; more are closed as they arrive), on header count and size, timeouts for
//! reading a request's headers and for idle connections ([`crate::api::serve`]), and bounded
//! long-polls. The accept loop and every connection run as their own tasks; the scheduler never
//! waits on a client.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;

use crate::api::peer::Peer;
use crate::api::routes::{self, ApiState};
use crate::api::serve::Limits;
use crate::board::Board;
use crate::clock::Clock;
use crate::cluster::view::ClusterView;
use crate::config::SocketSpec;
use crate::fsdir::{Dir, Policy};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot create the socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: std::io::Error },
    #[error("{} is in use by a running process; is another ticketd serving it?", path.display())]
    InUse { path: PathBuf },
}

/// A running API server; [`ApiServer::stop`] closes the listener and removes the socket file.
pub(crate) struct ApiServer {
    /// The socket's directory, held, and the socket's name in it.
    dir: Dir,
    name: OsString,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// `task` has ended (see [`ApiServer::ended`]).
    ended: bool,
}

impl ApiServer {
    /// Bind `spec.path` (with its mode and group set before anyone can connect) and serve, within
    /// `limits` (its connection cap comes from the [`crate::fd_budget::FdBudget`]).
    pub(crate) async fn start(
        spec: &SocketSpec,
        board: Arc<Board>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        ticket_series: Arc<AtomicUsize>,
        cluster: Option<Arc<ClusterView>>,
    ) -> Result<ApiServer, ApiError> {
        let (listener, dir, name) = bind(spec).await?;
        let own_uid = rustix::process::getuid().as_raw();
        let state = Arc::new(ApiState { board, clock, own_uid, ticket_series, cluster });
        let app = routes::router(state);
        let stop = CancellationToken::new();
        // Each caller's credentials are fixed here, once: what it was at connect(), whoever sends
        // the requests later.
        let task =
            tokio::spawn(crate::api::serve::serve(listener, limits, app, |s: &UnixStream| Peer::of(s), stop.clone()));
        tracing::info!(
            socket = %spec.path.display(),
            mode = format!("{:o}", spec.mode),
            max_connections = limits.max_connections,
            "serving the API"
        );
        Ok(ApiServer { dir, name, stop, task, ended: false })
    }

    /// Resolves only if serving stopped before [`stop`](Self::stop) was called (a bug: it
    /// panicked), so the daemon can report it rather than run on without it.
    pub(crate) async fn ended(&mut self) {
        if self.ended {
            return std::future::pending().await;
        }
        let _ = (&mut self.task).await;
        self.ended = true;
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        if !self.ended {
            let _ = self.task.await;
        }
        let _ = self.dir.remove(&self.name);
    }
}

/// Bind `spec.path` in its held directory ([`Dir::bind_unix`]): the socket is never reachable with
/// looser permissions than configured, and no path is followed by name after the directory is
/// resolved. As root, a socket directory another user could change is refused.
async fn bind(spec: &SocketSpec) -> Result<(UnixListener, Dir, OsString), ApiError> {
    let path = &spec.path;
    let err = |source| ApiError::Bind { path: path.clone(), source };
    let (dir, name) =
        Dir::open_parent(path, "socket directory", SOCKET_DIR_MODE, Policy::of_process()).map_err(|e| err(e.into()))?;
    use rustix::fs::FileType;
    let there = rustix::fs::statat(dir.fd(), &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .map(|stat| FileType::from_raw_mode(stat.st_mode));
    if there == Ok(FileType::Directory) {
        return Err(err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a directory is in the way")));
    }
    if there == Ok(FileType::Socket) && tokio::net::UnixStream::connect(dir.proc_path(&name)).await.is_ok() {
        return Err(ApiError::InUse { path: path.clone() });
    }
    // Anything else there (a stale socket, a file) is replaced by the rename.
    // A group name is looked up now (the config holds it as written); the check at load named
    // a missing one already, this covers a group removed since.
    let group = match &spec.group {
        None => None,
        Some(crate::config::SocketGroup::Id(gid)) => Some(*gid),
        Some(crate::config::SocketGroup::Name(group)) => {
            Some(crate::credentials::group_id(group).ok_or_else(|| {
                err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no group named `{group}` in /etc/group"),
                ))
            })?)
        }
    };
    let listener = dir.bind_unix(&name, spec.mode, group).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    Ok((UnixListener::from_std(listener).map_err(err)?, dir, name))
}

/// The mode of a socket directory ticketd creates.
pub(crate) const SOCKET_DIR_MODE: u32 = 0o755;

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream as StdStream;
    use std::path::Path;
    use std::time::Duration;

    use rustix::process::{Gid, Uid};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Connect to `socket` from a thread of its own whose effective uid and gid are 65534 and whose
    /// supplementary groups are `groups`: credentials changed by a raw system call are that
    /// thread's alone, so the test process (and `/proc/<pid>/status`) keep theirs.
    fn connect_as_nobody_in(socket: &Path, groups: &'static [u32]) -> StdStream {
        let socket = socket.to_path_buf();
        std::thread::spawn(move || {
            let groups: Vec<Gid> = groups.iter().map(|&g| Gid::from_raw(g)).collect();
            rustix::thread::set_thread_groups(&groups).expect("setgroups (root)");
            rustix::thread::set_thread_res_gid(Gid::from_raw(65534), Gid::from_raw(65534), Gid::ROOT).unwrap();
            rustix::thread::set_thread_res_uid(Uid::ROOT, Uid::from_raw(65534), Uid::ROOT).unwrap();
            StdStream::connect(&socket).expect("connect as 65534")
        })
        .join()
        .unwrap()
    }

    /// The status code of `GET path` on an open connection.
    async fn status_of(stream: StdStream, path: &str) -> u16 {
        stream.set_nonblocking(true).unwrap();
        let mut stream = tokio::net::UnixStream::from_std(stream).unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: ticketd\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
        let answer = String::from_utf8_lossy(&answer);
        answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status in {answer:?}"))
    }

    /// Issue #16 item 6: `allow_gids` matches the supplementary groups the caller connected with
    /// (`SO_PEERGROUPS`), not what `/proc/<its pid>/status` says at request time. The connecting
    /// thread is in group 4242; the process its pid names is not, so a check by pid denies it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(have_root), ignore = "needs root to connect with another uid and other groups")]
    async fn allow_gids_match_the_groups_fixed_at_connect() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let groups = status.lines().find_map(|l| l.strip_prefix("Groups:")).unwrap_or_default();
        assert!(!groups.split_whitespace().any(|g| g == "4242"), "the test process itself must not be in 4242");

        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let board = Arc::new(Board::default());
        let hour = Duration::from_secs(3600);
        let mut spec = crate::scheduler::tests::sls_ticket("t", 24 * hour, hour);
        spec.consumers.allow_gids = vec![4242];
        board.write().insert(crate::board::Ticket::new(spec, crate::token::Holding::default(), 0, 1 << 15));
        let socket = dir.path().join("ticketd.sock");
        let spec = SocketSpec { path: socket.clone(), mode: 0o666, group: None };
        let limits = Limits::new("socket", 16);
        let server = ApiServer::start(&spec, board, Arc::new(crate::clock::SystemClock), limits, Arc::default(), None)
            .await
            .unwrap();

        // In 4242 at connect: allowed (503: no token yet, rather than 403).
        let member = connect_as_nobody_in(&socket, &[4242]);
        assert_eq!(status_of(member, "/v1/tickets/t").await, 503);
        // Not in it: denied.
        let outsider = connect_as_nobody_in(&socket, &[4243]);
        assert_eq!(status_of(outsider, "/v1/tickets/t").await, 403);
        server.stop().await;
    }
}
