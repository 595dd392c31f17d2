//! The unix-socket API: HTTP/1.1 (hyper + axum) on a `UnixListener`, with each caller identified
//! by `SO_PEERCRED` for per-ticket access control.
//!
//! Limits keep a slow or hostile client from stalling anyone: a cap on connections, on header
//! count and size, a timeout for reading a request's headers (also between keep-alive requests),
//! and bounded long-polls. The accept loop and every connection run as their own tasks; the
//! scheduler never waits on a client.

pub mod client;
pub(crate) mod routes;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::board::Board;
use crate::clock::Clock;
use crate::config::SocketSpec;

/// At most this many connections are served at once; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// A request's headers must arrive within this long (and an idle keep-alive connection closes).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// At most this many request headers.
pub const MAX_HEADERS: usize = 32;
/// At most this many bytes of buffered request (headers and body).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// The longest long-poll (`?wait=` with `timeout=`); the default is [`DEFAULT_WAIT`].
pub const MAX_WAIT: Duration = Duration::from_secs(300);
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// Who is calling, from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

pub(crate) struct ApiState {
    pub board: Arc<Board>,
    pub clock: Arc<dyn Clock>,
    /// ticketd's own uid, always allowed.
    pub own_uid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot create the socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: std::io::Error },
    #[error("{} is in use by a running process; is another ticketd serving it?", path.display())]
    InUse { path: PathBuf },
}

/// A running API server; [`ApiServer::stop`] closes the listener and removes the socket file.
pub struct ApiServer {
    path: PathBuf,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Bind `spec.path` (with its mode and group set before anyone can connect) and serve.
    pub async fn start(spec: &SocketSpec, board: Arc<Board>, clock: Arc<dyn Clock>) -> Result<ApiServer, ApiError> {
        let listener = bind(spec).await?;
        // SAFETY: getuid has no preconditions and cannot fail.
        let own_uid = unsafe { libc::getuid() };
        let state = Arc::new(ApiState { board, clock, own_uid });
        let app = routes::router(state);
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, app, stop.clone()));
        tracing::info!(socket = %spec.path.display(), mode = format!("{:o}", spec.mode), "serving the API");
        Ok(ApiServer { path: spec.path.clone(), stop, task })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bind under a temporary name, set mode and group, then rename into place: the socket is never
/// reachable with looser permissions than configured.
async fn bind(spec: &SocketSpec) -> Result<UnixListener, ApiError> {
    let path = &spec.path;
    let err = |source| ApiError::Bind { path: path.clone(), source };
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ApiError::InUse { path: path.clone() });
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    let temp = temp_path(path);
    let _ = std::fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp).map_err(err)?;
    let prepared = (|| {
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(spec.mode))?;
        if let Some(gid) = spec.group {
            std::os::unix::fs::chown(&temp, None, Some(gid))?;
        }
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = prepared {
        let _ = std::fs::remove_file(&temp);
        return Err(err(e));
    }
    Ok(listener)
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

async fn accept_loop(listener: UnixListener, app: axum::Router, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept an API connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let peer = match stream.peer_cred() {
            Ok(c) => Peer { uid: c.uid(), gid: c.gid(), pid: c.pid() },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the caller's credentials; closing");
                continue;
            }
        };
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(peer);
                let mut app = app.clone();
                async move { tower_call(&mut app, request).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_headers(MAX_HEADERS)
                .max_buf_size(MAX_REQUEST_BYTES.max(8192))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, uid = peer.uid, "API connection ended with an error");
                    }
                }
                () = stop.cancelled() => connection.as_mut().graceful_shutdown(),
            }
        });
    }
}

async fn tower_call(
    app: &mut axum::Router,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    use tower_service::Service;
    let request = request.map(axum::body::Body::new);
    app.call(request).await
}
