//! A small client of the socket API (for `ticketd status`, `ticketd get`, the credential
//! helpers): one bounded round trip per call.

use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// The largest answer the client reads.
const MAX_ANSWER: usize = 1024 * 1024;

/// How long one round trip (connect, request, the whole answer) may take: a daemon that accepts
/// but does not answer (stopped, wedged) is given up on, never waited for.
pub const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source} (is ticketd running with `socket` set?)")]
    Connect { path: String, source: std::io::Error },
    #[error("talking to ticketd: {0}")]
    Http(String),
    #[error("ticketd at {path} did not answer within {}", humantime::format_duration(*after))]
    Timeout { path: String, after: Duration },
}

/// `GET path` on the socket: the status and body, however long the answer takes (a long poll,
/// `?wait=…&timeout=…`, is answered when the daemon says). Bounded: [`get_within`].
pub async fn get(socket: &Path, path: &str) -> Result<(u16, Vec<u8>), ClientError> {
    round_trip(socket, path).await
}

/// [`get`], the whole round trip bounded by `after` (e.g. [`ROUND_TRIP_TIMEOUT`]).
pub async fn get_within(socket: &Path, path: &str, after: Duration) -> Result<(u16, Vec<u8>), ClientError> {
    tokio::time::timeout(after, round_trip(socket, path))
        .await
        .unwrap_or_else(|_| Err(ClientError::Timeout { path: socket.display().to_string(), after }))
}

async fn round_trip(socket: &Path, path: &str) -> Result<(u16, Vec<u8>), ClientError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect { path: socket.display().to_string(), source })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "ticketd")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ClientError::Http(e.to_string()))?;
    let response = sender.send_request(request).await.map_err(|e| ClientError::Http(e.to_string()))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| ClientError::Http(e.to_string()))?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok((status, body))
}
