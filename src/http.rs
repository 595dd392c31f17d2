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

/// A response body as text, refused when it is larger than `MAX_BODY`.
pub(crate) async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(format!("answer is larger than {MAX_BODY} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("answer is larger than {MAX_BODY} bytes"));
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
