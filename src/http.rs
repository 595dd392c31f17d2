//! The HTTP client every provider shares: rustls with the ring provider, timeouts on every call,
//! and response bodies read with a size limit.

use std::fmt;
use std::time::Duration;

/// Connecting to an API may take this long.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole API call (connect, send, read the answer) may take this long.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest API answer read; token answers are a few kilobytes.
pub(crate) const MAX_BODY: usize = 256 * 1024;

/// Build the shared client.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("ticketd/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds with static settings")
}

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Larger than [`MAX_BODY`] (by its `Content-Length`, or as it arrived).
    #[error("answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection failed while the body arrived (the error holds no URL: it may carry a token).
    #[error("{0}")]
    Read(reqwest::Error),
}

/// A response body as text, refused when it is larger than `MAX_BODY`.
pub(crate) async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(BodyError::TooLarge { limit: MAX_BODY });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| BodyError::Read(e.without_url()))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BodyError::TooLarge { limit: MAX_BODY });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Where an API lives: `https://host` for a bare host, or a full URL (http only on loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub base: reqwest::Url,
}

impl Endpoint {
    /// The `Host` header value as sent (with the port when it is not the scheme's default).
    pub(crate) fn host_header(&self) -> String {
        let host = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// The URL of `path` on this endpoint.
    pub(crate) fn url(&self, path: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        url
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str().trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server on 127.0.0.1 port 0 that answers one request with `head` then `body`.
    async fn answering(head: String, body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request).await;
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(&body).await;
        });
        format!("http://{addr}/")
    }

    /// A body over the limit is refused, by its `Content-Length` or as it arrives (chunked), in
    /// the words the `String` error had.
    #[tokio::test]
    async fn a_body_over_the_limit_is_too_large_either_way_it_is_sent() {
        let big = vec![b'x'; MAX_BODY + 1];
        let declared = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", big.len());
        let chunked = format!("{:x}\r\n", big.len());
        let mut chunked_body = chunked.into_bytes();
        chunked_body.extend_from_slice(&big);
        chunked_body.extend_from_slice(b"\r\n0\r\n\r\n");
        let cases = [
            (declared, big.clone()),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_string(), chunked_body),
        ];
        for (head, body) in cases {
            let url = answering(head, body).await;
            let response = client().get(url).send().await.unwrap();
            let e = read_limited(response).await.unwrap_err();
            assert!(matches!(e, BodyError::TooLarge { limit: MAX_BODY }), "{e:?}");
            assert_eq!(e.to_string(), format!("answer is larger than {MAX_BODY} bytes"));
        }
        let url = answering("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".into(), Vec::new()).await;
        assert_eq!(read_limited(client().get(url).send().await.unwrap()).await.unwrap(), b"ok");
    }
}
