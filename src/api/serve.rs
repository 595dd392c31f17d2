//! The HTTP/1.1 server loop both listeners share (the socket API, `metrics_listen`): a cap on
//! connections, limits on requests, timeouts that close idle connections.
//!
//! A connection beyond the cap is accepted and closed at once (after a best-effort `503` written
//! without waiting), not left in the kernel's backlog: a client learns at once that it was
//! refused, the backlog never fills with connections that pin their peers' descriptors and wait
//! to be served, and the daemon holds the refused descriptor for an instant only (one at a time
//! per listener, counted in [`crate::fd_budget::BASELINE`]). The daemon's own work (sinks, state,
//! cloud calls) draws on the reserve the caps leave ([`crate::fd_budget`]).
//!
//! Timeouts: a request's headers must arrive within [`HEADER_READ_TIMEOUT`] of the connection
//! waiting for them (a new connection, or a kept-alive one between requests); and a connection
//! that makes no progress (no byte read or written) for [`IDLE_TIMEOUT`] while no request is being
//! answered (a stalled body, a client that stops reading its answer) is closed. A long-poll is a
//! request being answered, so it is bounded by its own timeout instead.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A request's headers must arrive within this long (also the next request on a kept-alive
/// connection, and the first on a new one).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no request being answered that reads and writes nothing for this long closes.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many request headers.
pub(crate) const MAX_HEADERS: usize = 32;
/// At most this many bytes of buffered request (headers and body).
pub(crate) const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// A refused client may read this before the connection closes.
const REFUSED: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 24\r\n\r\ntoo many connections now";
/// Refusals are logged at most this often (with how many there were), not once each.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// One listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The listener's name in log lines.
    pub(crate) listener: &'static str,
    pub(crate) max_connections: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

impl Limits {
    pub(crate) fn new(listener: &'static str, max_connections: usize) -> Limits {
        Limits { listener, max_connections, header_read_timeout: HEADER_READ_TIMEOUT, idle_timeout: IDLE_TIMEOUT }
    }
}

/// Something that accepts connections (a unix or TCP listener).
pub(crate) trait Listener: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_stream(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Listener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_stream(&self) -> io::Result<Self::Stream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_stream(&self) -> io::Result<Self::Stream> {
        self.accept().await.map(|(stream, _)| stream)
    }
}

/// Serve `app` on `listener` until `stop`. `identify` names each connection's caller once, when
/// it is accepted; its answer is in every request's extensions (a connection it fails on closes).
pub(crate) async fn serve<L, E>(
    listener: L,
    limits: Limits,
    app: axum::Router,
    identify: impl Fn(&L::Stream) -> io::Result<E> + Send + 'static,
    stop: CancellationToken,
) where
    L: Listener,
    E: Clone + Send + Sync + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut refused: u64 = 0;
    let mut refusal_logged: Option<Instant> = None;
    let (mut failed_accepts, mut accept_failure_logged): (u64, Option<Instant>) = (0, None);
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept_stream() => match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    // Out of descriptors (EMFILE) this repeats every 50 ms: logged once a minute.
                    failed_accepts += 1;
                    if accept_failure_logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
                        tracing::warn!(listener = limits.listener, error = %e, failed = failed_accepts, "cannot accept a connection");
                        accept_failure_logged = Some(Instant::now());
                        failed_accepts = 0;
                    }
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refuse(stream);
            refused += 1;
            if refusal_logged.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
                tracing::warn!(
                    listener = limits.listener,
                    max_connections = limits.max_connections,
                    refused,
                    "at the connection cap: closing new connections as they arrive"
                );
                refusal_logged = Some(Instant::now());
                refused = 0;
            }
            continue;
        };
        let caller = match identify(&stream) {
            Ok(caller) => caller,
            Err(e) => {
                tracing::warn!(listener = limits.listener, error = %e, "cannot identify the caller; closing");
                continue;
            }
        };
        tokio::spawn(connection(stream, caller, app.clone(), limits, permit, stop.clone()));
    }
}

/// Write the refusal if the socket takes it now (it never waits), then close.
fn refuse<S: AsyncWrite + Unpin>(mut stream: S) {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let _ = Pin::new(&mut stream).poll_write(&mut cx, REFUSED);
}

async fn connection<S, E>(
    stream: S,
    caller: E,
    app: axum::Router,
    limits: Limits,
    permit: tokio::sync::OwnedSemaphorePermit,
    stop: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Clone + Send + Sync + 'static,
{
    let _permit = permit;
    let activity = Arc::new(Activity::new());
    let io = Tracked { inner: stream, activity: activity.clone() };
    let answering = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(caller.clone());
        let mut app = app.clone();
        let busy = Busy::start(answering.clone());
        async move {
            let _busy = busy;
            tower_call(&mut app, request).await
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_REQUEST_BYTES.max(8192))
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(listener = limits.listener, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled() => {
                connection.as_mut().graceful_shutdown();
                return;
            }
            () = tokio::time::sleep_until(activity.idle_deadline(limits.idle_timeout)) => {
                if activity.answering() {
                    activity.touch();
                } else if activity.idle_deadline(limits.idle_timeout) <= Instant::now() {
                    tracing::debug!(listener = limits.listener, "closing a connection idle for the idle timeout");
                    return;
                }
            }
        }
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

/// When a connection last made progress, and how many of its requests are being answered.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last: AtomicU64,
    answering: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: Instant::now(), last: AtomicU64::new(0), answering: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle
    }

    fn answering(&self) -> bool {
        self.answering.load(Ordering::Relaxed) > 0
    }
}

/// A request being answered (held by its handler's future).
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        activity.answering.fetch_add(1, Ordering::Relaxed);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.answering.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A stream that records each byte read or written as progress.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{UnixListener, UnixStream};

    const BOUND: Duration = Duration::from_secs(10);

    /// A server on a fresh socket: `/healthz`, `/big` (8 MiB), `/slow` (answers after 600 ms).
    fn start(limits: Limits) -> (tempfile::TempDir, std::path::PathBuf, CancellationToken) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(|| async { "ok\n" }))
            .route("/big", axum::routing::get(|| async { vec![b'x'; 8 << 20] }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    "done"
                }),
            );
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, limits, app, |_: &UnixStream| Ok(()), stop.clone()));
        (dir, path, stop)
    }

    /// `GET path` on a new connection: the whole answer (empty if the connection was closed unanswered).
    async fn get(path: &std::path::Path, target: &str) -> String {
        let mut stream = UnixStream::connect(path).await.unwrap();
        let request = format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(BOUND, stream.read_to_end(&mut answer)).await.expect("answered or closed");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_closed_at_once_and_served_again_below_it() {
        let (_dir, path, stop) = start(Limits::new("test", 2));
        let held = [UnixStream::connect(&path).await.unwrap(), UnixStream::connect(&path).await.unwrap()];
        // The two held connections take both slots once accepted: then a third is refused.
        let start = Instant::now();
        let refused = loop {
            let answer = get(&path, "/healthz").await;
            if !answer.starts_with("HTTP/1.1 200") {
                break answer;
            }
            assert!(start.elapsed() < BOUND, "never refused");
        };
        assert!(refused.is_empty() || refused.starts_with("HTTP/1.1 503"), "{refused:?}");
        drop(held);
        let start = Instant::now();
        while !get(&path, "/healthz").await.starts_with("HTTP/1.1 200") {
            assert!(start.elapsed() < BOUND, "not served again below the cap");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
    }

    #[tokio::test]
    async fn a_connection_that_stops_reading_its_answer_is_closed_but_a_slow_answer_is_not() {
        let limits = Limits { idle_timeout: Duration::from_millis(300), ..Limits::new("test", 1) };
        let (_dir, path, stop) = start(limits);
        // A slow answer (600 ms, twice the idle timeout) is a request being answered: it arrives.
        assert!(get(&path, "/slow").await.ends_with("done"));
        // A client that asks for 8 MiB and reads none of it holds the only slot until the idle
        // timeout closes its connection; meanwhile new connections are refused.
        let mut stalled = UnixStream::connect(&path).await.unwrap();
        stalled.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let start = Instant::now();
        let mut refusals = 0;
        while !get(&path, "/healthz").await.starts_with("HTTP/1.1 200") {
            refusals += 1;
            assert!(start.elapsed() < BOUND, "the stalled connection was never closed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refusals > 0, "the stalled connection held the slot for a while");
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(BOUND, stalled.read_to_end(&mut rest)).await.expect("closed");
        assert!(rest.len() < 8 << 20, "the stalled answer was cut off, not delivered whole");
        stop.cancel();
    }
}
