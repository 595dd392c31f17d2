//! Alibaba `ACS3-HMAC-SHA256` (OpenAPI V3) checked as the server does (spec §2.2): `host`,
//! `content-type` and every `x-acs-*` header sent must be signed, the body must match
//! `x-acs-content-sha256`, the query is decoded then re-encoded and sorted, and the MAC is keyed
//! by the AccessKey secret itself.

use axum::http::{HeaderMap, Method, Uri};

use crate::verify::v3::{self, Arrived, Authorization, AuthorizationError, Scheme, VerifyError};
use crate::verify::{mac, pct};

const SCHEME: Scheme = Scheme { algorithm: "ACS3-HMAC-SHA256", lowercase_values: false };

/// Reads an `Authorization` value; its credential is the AccessKeyId.
pub fn parse(value: &str) -> Result<Authorization, AuthorizationError> {
    v3::parse(SCHEME, value)
}

/// The query as received, each pair decoded (`+` is a space), then re-encoded and sorted.
fn canonical_query(raw: &str) -> String {
    let decoded: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    pct::sorted_pairs(decoded.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Checks a received request against `auth` and `secret`. The date's freshness and the nonce's
/// uniqueness are the caller's.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    auth: &Authorization,
    secret: &str,
) -> Result<(), VerifyError> {
    let must_sign = |name: &str| name == "host" || name == "content-type" || name.starts_with("x-acs-");
    if let Some(name) =
        headers.keys().map(|n| n.as_str()).find(|n| must_sign(n) && !auth.signed_headers.iter().any(|s| s == n))
    {
        return Err(VerifyError::UnsignedHeader(name.to_owned()));
    }
    let body_hash = mac::sha256_hex(body);
    let claimed = headers.get("x-acs-content-sha256").ok_or(VerifyError::MissingHeader("x-acs-content-sha256"))?;
    if claimed.to_str().map(str::trim).ok() != Some(body_hash.as_str()) {
        return Err(VerifyError::BodyHashMismatch);
    }
    let query = canonical_query(uri.query().unwrap_or(""));
    let path = if uri.path().is_empty() { "/" } else { uri.path() };
    let arrived = Arrived { method: method.as_str(), path, query: &query, headers, payload_hash: &body_hash };
    let hashed = v3::hashed_canonical_request(SCHEME, &arrived, auth)?;
    v3::check(secret.as_bytes(), &format!("{}\n{hashed}", SCHEME.algorithm), auth)
}

#[cfg(test)]
#[path = "acs3_tests.rs"]
mod tests;
