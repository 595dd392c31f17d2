//! The one server-side core of the two "V3" schemes, ACS3 (Alibaba) or TC3 (Tencent).
//!
//! It reads the `Authorization` value, rebuilds the canonical request from the request as it
//! arrived, and checks the MAC a scheme computes over it.

use axum::http::HeaderMap;

use crate::verify::mac;

/// What the two schemes do differently within the core.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scheme {
    /// The first word of `Authorization` and the first line of the string to sign.
    pub(crate) algorithm: &'static str,
    /// TC3 lower-cases the signed headers' values; ACS3 keeps them as sent.
    pub(crate) lowercase_values: bool,
}

/// `<algorithm> Credential=…, SignedHeaders=…, Signature=…`, fields in any order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The AccessKeyId (ACS3), or `SecretId/date/service/tc3_request` (TC3).
    pub(crate) credential: String,
    /// Lower-case names in strictly ascending order.
    pub(crate) signed_headers: Vec<String>,
    /// The claimed HMAC-SHA256.
    pub(crate) signature: Vec<u8>,
}

/// Why an `Authorization` value could not be read. Carries no header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    #[error("authorization scheme is not {0}")]
    WrongAlgorithm(&'static str),
    #[error("authorization field is not one of Credential, SignedHeaders, Signature")]
    UnknownField,
    #[error("authorization field {0} is missing or empty")]
    MissingField(&'static str),
    #[error("authorization field {0} is repeated")]
    DuplicateField(&'static str),
    #[error("Credential is not <SecretId>/<YYYY-MM-DD>/<service>/tc3_request")]
    BadCredential,
    #[error("SignedHeaders is not a sorted, lower-case, duplicate-free list of names")]
    BadSignedHeaders,
    #[error("Signature is not 64 lower-case hex digits")]
    BadSignature,
}

/// Why a request does not verify. Carries no secret and no header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("required header {0} is missing")]
    MissingHeader(&'static str),
    #[error("signed header {0} is not in the request")]
    MissingSignedHeader(String),
    #[error("header {0} is sent but not signed")]
    UnsignedHeader(String),
    #[error("header {0} must be signed")]
    MustSign(&'static str),
    #[error("x-acs-content-sha256 does not match the body")]
    BodyHashMismatch,
    #[error("X-TC-Timestamp is not a unix time in seconds")]
    BadTimestamp,
    #[error("credential scope date is not the UTC date of X-TC-Timestamp")]
    ScopeDateMismatch,
    #[error("signature does not match")]
    SignatureMismatch,
}

const FIELDS: [&str; 3] = ["Credential", "SignedHeaders", "Signature"];

/// Reads `value`; spaces after the commas are optional for both schemes.
pub(crate) fn parse(scheme: Scheme, value: &str) -> Result<Authorization, AuthorizationError> {
    use AuthorizationError as E;
    let rest = value.strip_prefix(scheme.algorithm).and_then(|r| r.strip_prefix(' '));
    let mut found: [Option<&str>; 3] = [None; 3];
    for part in rest.ok_or(E::WrongAlgorithm(scheme.algorithm))?.split(',') {
        let (name, text) = part.trim().split_once('=').ok_or(E::UnknownField)?;
        let at = FIELDS.iter().position(|f| *f == name).ok_or(E::UnknownField)?;
        if found[at].replace(text).is_some() {
            return Err(E::DuplicateField(FIELDS[at]));
        }
    }
    let given = |at: usize| found[at].filter(|t| !t.is_empty()).ok_or(E::MissingField(FIELDS[at]));
    let credential = given(0)?.to_owned();
    let signed_headers: Vec<String> = given(1)?.split(';').map(str::to_owned).collect();
    let well_formed = |n: &String| !n.is_empty() && n.bytes().all(|b| !b.is_ascii_uppercase());
    let ascending = signed_headers.iter().zip(signed_headers.iter().skip(1)).all(|(a, b)| a < b);
    if !ascending || !signed_headers.iter().all(well_formed) {
        return Err(E::BadSignedHeaders);
    }
    let hex_text = given(2)?;
    if hex_text.len() != 64 || hex_text.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(E::BadSignature);
    }
    let signature = hex::decode(hex_text).map_err(|_| E::BadSignature)?;
    Ok(Authorization { credential, signed_headers, signature })
}

/// A request as it arrived, with the parts each scheme canonicalises its own way already done.
pub(crate) struct Arrived<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    /// The canonical query string (ACS3 re-encodes and sorts; TC3 takes it as sent).
    pub(crate) query: &'a str,
    pub(crate) headers: &'a HeaderMap,
    /// The last line of the canonical request.
    pub(crate) payload_hash: &'a str,
}

/// `hex(sha256(CanonicalRequest))`: method, path, query, one `name:value` line per signed header
/// (values trimmed, repeated headers joined by `,`), a blank line, the names, the payload hash.
pub(crate) fn hashed_canonical_request(
    scheme: Scheme,
    arrived: &Arrived<'_>,
    auth: &Authorization,
) -> Result<String, VerifyError> {
    let mut text = [arrived.method, arrived.path, arrived.query, ""].join("\n");
    for name in &auth.signed_headers {
        let missing = || VerifyError::MissingSignedHeader(name.clone());
        let values: Result<Vec<&str>, _> = arrived.headers.get_all(name.as_str()).iter().map(|v| v.to_str()).collect();
        let values = values.ok().filter(|v| !v.is_empty()).ok_or_else(missing)?;
        let joined = values.iter().map(|v| v.trim()).collect::<Vec<_>>().join(",");
        let value = if scheme.lowercase_values { joined.to_ascii_lowercase() } else { joined };
        text += &format!("{name}:{value}\n");
    }
    text += &format!("\n{}\n{}", auth.signed_headers.join(";"), arrived.payload_hash);
    Ok(mac::sha256_hex(text.as_bytes()))
}

/// Compares the claimed signature with `HMAC-SHA256(key, string_to_sign)` in constant time.
pub(crate) fn check(key: &[u8], string_to_sign: &str, auth: &Authorization) -> Result<(), VerifyError> {
    let expected = mac::hmac_sha256(key, string_to_sign.as_bytes());
    if mac::same(expected, &auth.signature) { Ok(()) } else { Err(VerifyError::SignatureMismatch) }
}
