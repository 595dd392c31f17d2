//! Tencent `TC3-HMAC-SHA256` (API 3.0) checked as the server does (spec §3.2).
//!
//! `content-type` and `host` must be signed, the scope date must be X-TC-Timestamp's, the payload is
//! the body (or the literal `UNSIGNED-PAYLOAD`), and the MAC is keyed by a key derived from the
//! SecretKey through the scope. `X-TC-Token` is not signed.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Uri};

use crate::verify::mac;
use crate::verify::v3::{self, Arrived, Authorization, AuthorizationError, Scheme, VerifyError};

const SCHEME: Scheme = Scheme { algorithm: "TC3-HMAC-SHA256", lowercase_values: true };

/// The last element of the credential scope.
const TERMINATOR: &str = "tc3_request";

/// A TC3 `Authorization` with its credential read: `SecretId/date/service/tc3_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tc3Authorization {
    pub(crate) secret_id: String,
    /// `YYYY-MM-DD`.
    pub(crate) date: String,
    /// e.g. `tcr`, `sts`.
    pub(crate) service: String,
    fields: Authorization,
}

/// Reads an `Authorization` value and its credential scope.
pub(crate) fn parse(value: &str) -> Result<Tc3Authorization, AuthorizationError> {
    let fields = v3::parse(SCHEME, value)?;
    let mut scope = fields.credential.rsplitn(4, '/');
    let [terminator, service, date, secret_id] = [(); 4].map(|()| scope.next().unwrap_or_default());
    let is_date = date.len() == 10 && humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).is_ok();
    if terminator != TERMINATOR || service.is_empty() || secret_id.is_empty() || !is_date {
        return Err(AuthorizationError::BadCredential);
    }
    let (secret_id, date, service) = (secret_id.to_owned(), date.to_owned(), service.to_owned());
    Ok(Tc3Authorization { secret_id, date, service, fields })
}

/// The first second of year 10000, whose date does not fit `YYYY-MM-DD`.
const YEAR_10000: u64 = 253_402_300_800;

/// The UTC day of a unix time, `YYYY-MM-DD` (`None` from year 10000).
fn day_of(seconds: u64) -> Option<String> {
    if seconds >= YEAR_10000 {
        return None;
    }
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string();
    Some(stamp[..10].to_owned())
}

/// Checks a received request against `auth` and `secret_key`. The timestamp's freshness and the
/// service expected are the caller's.
pub(crate) fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    auth: &Tc3Authorization,
    secret_key: &str,
) -> Result<(), VerifyError> {
    let signed = &auth.fields.signed_headers;
    if let Some(name) = ["content-type", "host"].into_iter().find(|n| !signed.iter().any(|s| s == n)) {
        return Err(VerifyError::MustSign(name));
    }
    let text = headers.get("x-tc-timestamp").ok_or(VerifyError::MissingHeader("x-tc-timestamp"))?;
    let timestamp: u64 = text.to_str().ok().and_then(|t| t.trim().parse().ok()).ok_or(VerifyError::BadTimestamp)?;
    if day_of(timestamp).ok_or(VerifyError::BadTimestamp)? != auth.date {
        return Err(VerifyError::ScopeDateMismatch);
    }
    let unsigned =
        headers.get("x-tc-content-sha256").is_some_and(|v| v.to_str().map(str::trim).ok() == Some("UNSIGNED-PAYLOAD"));
    let payload_hash = mac::sha256_hex(if unsigned { b"UNSIGNED-PAYLOAD".as_slice() } else { body });
    let query = uri.query().unwrap_or("");
    let arrived = Arrived { method: method.as_str(), path: uri.path(), query, headers, payload_hash: &payload_hash };
    let hashed = v3::hashed_canonical_request(SCHEME, &arrived, &auth.fields)?;
    let scope = [auth.date.as_str(), &auth.service, TERMINATOR];
    let to_sign = format!("{}\n{timestamp}\n{}\n{hashed}", SCHEME.algorithm, scope.join("/"));
    let key = scope
        .iter()
        .fold(format!("TC3{secret_key}").into_bytes(), |key, part| mac::hmac_sha256(&key, part.as_bytes()).to_vec());
    v3::check(&key, &to_sign, &auth.fields)
}

#[cfg(test)]
#[path = "tc3_tests.rs"]
mod tests;
