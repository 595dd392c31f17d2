//! One API call as the emulator received it (method, URI, headers, body), extracted once for the
//! handlers that check a signature over all four.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

/// A received call. Its body is read as axum's `Bytes` extractor reads it (the same size limit).
pub(crate) struct Received {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    /// A header's value, when it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query pairs, decoded, in the order sent.
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.uri.query().unwrap_or("").as_bytes()).into_owned().collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Received {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Received, Response> {
        let (method, uri, headers) = (request.method().clone(), request.uri().clone(), request.headers().clone());
        let body = Bytes::from_request(request, state).await.map_err(IntoResponse::into_response)?;
        Ok(Received { method, uri, headers, body })
    }
}
