//! Alibaba Cloud `ACS3-HMAC-SHA256` (the OpenAPI "V3" signature), client and server side.
//!
//! Implements `shared/spec/cloud-apis.md` §2.2 as the official SDK (`alibabacloud_tea_openapi`)
//! does it; §2.3 lists the errors a real server answers with. Used for PAI-DSW `GetToken`, and
//! usable for any Alibaba OpenAPI ROA or RPC call.
//!
//! Stages, each public so it can be checked on its own: [`canonical_query`] and
//! [`canonical_headers`] → [`canonical_request`] → [`string_to_sign`] → [`signature`] →
//! [`authorization`]. [`sign`] runs them all over an explicit header list (this replays the full
//! SDK form); [`build_headers`] builds the complete "minimal" header set to send. Server side (for
//! the local emulator): [`parse_authorization`], then [`expected_signature`] or [`verify`].
//!
//! Everything is pure: the time and the nonce are arguments. The AccessKey secret and the STS
//! security token are taken as `&str` and never appear in `Debug` output or in errors.

use std::fmt;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name, first word of the `Authorization` value and first line of the string to sign.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// RFC 3986: unreserved `A-Za-z0-9-_.~` kept, everything else `%XX` (space → `%20`, `*` → `%2A`).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Headers that must be signed whenever they are sent (§2.2 step 4) and that the server checks.
const MUST_SIGN: [&str; 9] = [
    "host",
    "content-type",
    "x-acs-accesskey-id",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-security-token",
    "x-acs-signature-nonce",
    "x-acs-version",
];

/// RFC 3986 percent-encoding of a query key or value (§2.2 step 2).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// `hex(sha256(body))`: the `x-acs-content-sha256` value and the last line of the canonical request.
pub fn hashed_payload(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The `x-acs-date` value, UTC `YYYY-MM-DDTHH:MM:SSZ`.
///
/// # Panics
/// If `time` is before 1970 or after year 9999 (not representable in this format).
pub fn format_date(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `CanonicalQueryString` from unsorted, unencoded pairs: `pct(key)=pct(value)` sorted and joined
/// by `&`. This string is also a valid query to put on the wire.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let encode = |(k, v): &(K, V)| (percent_encode(k.as_ref()), percent_encode(v.as_ref()));
    let mut encoded: Vec<(String, String)> = pairs.iter().map(encode).collect();
    encoded.sort();
    let parts: Vec<String> = encoded.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join("&")
}

/// `CanonicalQueryString` from a query string as received (without `?`): each pair is decoded
/// (`%XX`, and `+` as a space, as form encoding does), then re-encoded by [`canonical_query`].
pub fn canonical_query_from_raw(raw: &str) -> String {
    let decode = |s: &str| percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    let pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect();
    canonical_query(&pairs)
}

/// `(CanonicalHeaders, SignedHeaders)` for the headers to sign (§2.2 steps 3-4): names
/// lower-cased and sorted, values trimmed, repeated names joined with `,`; every line ends in `\n`.
pub fn canonical_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> (String, String) {
    let lower = |(n, v): &(N, V)| (n.as_ref().to_ascii_lowercase(), v.as_ref().trim().to_owned());
    let mut sorted: Vec<(String, String)> = headers.iter().map(lower).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated headers keep their order
    let (mut canonical, mut names) = (String::new(), Vec::<&str>::new());
    for (name, value) in &sorted {
        if names.last() == Some(&name.as_str()) {
            canonical.pop(); // the previous '\n'
            canonical.push(',');
        } else {
            names.push(name);
            canonical.push_str(name);
            canonical.push(':');
        }
        canonical.push_str(value);
        canonical.push('\n');
    }
    (canonical, names.join(";"))
}

/// `CanonicalRequest` (§2.2 step 5). `path` (the CanonicalURI) is the path exactly as sent (the SDK does not
/// re-encode it; an empty path is `/`).
pub fn canonical_request(
    method: &str,
    path: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    hashed_payload: &str,
) -> String {
    let uri = if path.is_empty() { "/" } else { path };
    let (query, headers, signed) = (canonical_query, canonical_headers, signed_headers);
    format!("{method}\n{uri}\n{query}\n{headers}\n{signed}\n{hashed_payload}")
}

/// `StringToSign` = `ACS3-HMAC-SHA256\n` + `hex(sha256(CanonicalRequest))` (§2.2 step 6).
pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", hex::encode(Sha256::digest(canonical_request.as_bytes())))
}

fn mac(secret: &str, string_to_sign: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    mac
}

/// `hex(HMAC-SHA256(secret, StringToSign))` (§2.2 step 7).
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    hex::encode(mac(secret, string_to_sign).finalize().into_bytes())
}

/// The `Authorization` value (§2.2 step 8; no spaces after the commas).
pub fn authorization(access_key_id: &str, signed_headers: &str, signature: &str) -> String {
    format!("{ALGORITHM} Credential={access_key_id},SignedHeaders={signed_headers},Signature={signature}")
}

/// Every stage of one signature. `Debug` leaves out the canonical request, which holds the
/// security token when STS credentials are used.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    pub canonical_request: String,
    pub signed_headers: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

impl fmt::Debug for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signed")
            .field("canonical_request", &"<redacted>")
            .field("signed_headers", &self.signed_headers)
            .field("string_to_sign", &self.string_to_sign)
            .field("signature", &self.signature)
            .field("authorization", &self.authorization)
            .finish()
    }
}

/// Signs exactly `headers` (all of them; e.g. the SDK's full set with `accept` and `user-agent`).
pub fn sign<N: AsRef<str>, V: AsRef<str>>(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(N, V)],
    hashed_payload: &str,
    access_key_id: &str,
    secret: &str,
) -> Signed {
    let (canonical, signed_headers) = canonical_headers(headers);
    let (query, payload) = (canonical_query, hashed_payload);
    let canonical_request = canonical_request(method, path, query, &canonical, &signed_headers, payload);
    let string_to_sign = string_to_sign(&canonical_request);
    let signature = signature(secret, &string_to_sign);
    let authorization = authorization(access_key_id, &signed_headers, &signature);
    Signed { canonical_request, signed_headers, string_to_sign, signature, authorization }
}

/// What to sign for [`build_headers`]. Holds no secret.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header as sent, `:port` included when not the default.
    pub host: &'a str,
    /// The path as sent (already percent-encoded).
    pub path: &'a str,
    /// Unsorted, unencoded; put `canonical_query(query)` on the wire as the query string.
    pub query: &'a [(&'a str, &'a str)],
    pub action: &'a str,
    pub version: &'a str,
    pub date: SystemTime,
    /// Unique per request, e.g. 32 random hex digits.
    pub nonce: &'a str,
    pub body: &'a [u8],
    /// Sent and signed only when `Some`.
    pub content_type: Option<&'a str>,
}

/// The headers to send, in order, `Authorization` last. `Debug` hides the security token.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestHeaders(Vec<(&'static str, String)>);

impl RequestHeaders {
    pub fn as_slice(&self) -> &[(&'static str, String)] {
        &self.0
    }
    /// The value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn into_vec(self) -> Vec<(&'static str, String)> {
        self.0
    }
}

impl fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.iter().map(|(n, v)| {
            let hide = n.eq_ignore_ascii_case("x-acs-security-token");
            (n, if hide { "<redacted>" } else { v.as_str() })
        });
        f.debug_list().entries(shown).finish()
    }
}

/// The complete headers for `req`, signing `host`, every `x-acs-*` header set and `content-type`
/// when present. With a `security_token`, `x-acs-accesskey-id` and `x-acs-security-token` are added.
///
/// # Panics
/// As [`format_date`].
pub fn build_headers(
    req: &Request<'_>,
    access_key_id: &str,
    secret: &str,
    security_token: Option<&str>,
) -> RequestHeaders {
    let body_hash = hashed_payload(req.body);
    let mut headers: Vec<(&'static str, String)> = vec![
        ("host", req.host.to_owned()),
        ("x-acs-action", req.action.to_owned()),
        ("x-acs-version", req.version.to_owned()),
        ("x-acs-date", format_date(req.date)),
        ("x-acs-signature-nonce", req.nonce.to_owned()),
        ("x-acs-content-sha256", body_hash.clone()),
    ];
    if let Some(token) = security_token {
        headers.push(("x-acs-accesskey-id", access_key_id.to_owned()));
        headers.push(("x-acs-security-token", token.to_owned()));
    }
    if let Some(ct) = req.content_type {
        headers.push(("content-type", ct.to_owned()));
    }
    let query = canonical_query(req.query);
    let (method, path) = (req.method, req.path);
    let signed = sign(method, path, &query, &headers, &body_hash, access_key_id, secret);
    headers.push(("Authorization", signed.authorization));
    RequestHeaders(headers)
}

/// The fields of a received `Authorization` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    pub access_key_id: String,
    /// Lower-case, sorted, without duplicates (checked by [`parse_authorization`]).
    pub signed_headers: Vec<String>,
    /// 64 lower-case hex digits.
    pub signature: String,
}

/// Why an `Authorization` value could not be parsed. Carries no header value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizationError {
    #[error("authorization scheme is not ACS3-HMAC-SHA256")]
    WrongAlgorithm,
    #[error("authorization field is not one of Credential, SignedHeaders, Signature")]
    UnknownField,
    #[error("authorization field {0} is missing or empty")]
    MissingField(&'static str),
    #[error("authorization field {0} is repeated")]
    DuplicateField(&'static str),
    #[error("SignedHeaders is not a sorted, lower-case, duplicate-free list of names")]
    BadSignedHeaders,
    #[error("Signature is not 64 lower-case hex digits")]
    BadSignature,
}

/// Parses `ACS3-HMAC-SHA256 Credential=<AK>,SignedHeaders=<a;b>,Signature=<hex>` (fields in any
/// order; spaces around the commas are tolerated).
pub fn parse_authorization(value: &str) -> Result<ParsedAuthorization, AuthorizationError> {
    use AuthorizationError as E;
    let rest = value.strip_prefix("ACS3-HMAC-SHA256 ").ok_or(E::WrongAlgorithm)?;
    let (mut credential, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (key, val) = part.trim().split_once('=').ok_or(E::UnknownField)?;
        let (slot, name) = match key {
            "Credential" => (&mut credential, "Credential"),
            "SignedHeaders" => (&mut signed, "SignedHeaders"),
            "Signature" => (&mut sig, "Signature"),
            _ => return Err(E::UnknownField),
        };
        if slot.replace(val).is_some() {
            return Err(E::DuplicateField(name));
        }
    }
    let names: Vec<String> = field(signed, "SignedHeaders")?.split(';').map(str::to_owned).collect();
    let lower = names.iter().all(|n| !n.is_empty() && !n.bytes().any(|b| b.is_ascii_uppercase()));
    if !lower || !names.windows(2).all(|w| w[0] < w[1]) {
        return Err(E::BadSignedHeaders);
    }
    Ok(ParsedAuthorization {
        access_key_id: field(credential, "Credential")?.to_owned(),
        signed_headers: names,
        signature: lower_hex_64(field(sig, "Signature")?).ok_or(E::BadSignature)?,
    })
}

fn field<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, AuthorizationError> {
    value.filter(|v| !v.is_empty()).ok_or(AuthorizationError::MissingField(name))
}

fn lower_hex_64(s: &str) -> Option<String> {
    let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then(|| s.to_owned())
}

/// A request as the emulator received it.
pub struct ReceivedRequest<'a> {
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub path: &'a str,
    /// The query string as received, without `?` (`""` when none).
    pub raw_query: &'a str,
    /// A header's value by lower-case name; repeated headers joined with `,`.
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a received request does not verify. Carries no secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("required header {0} is missing")]
    MissingHeader(&'static str),
    #[error("signed header {0} is not in the request")]
    MissingSignedHeader(String),
    #[error("header {0} is sent but not signed")]
    UnsignedHeader(&'static str),
    #[error("x-acs-content-sha256 does not match the body")]
    BodyHashMismatch,
    #[error("signature does not match")]
    SignatureMismatch,
}

fn received_string_to_sign(req: &ReceivedRequest<'_>, auth: &ParsedAuthorization) -> Result<String, VerifyError> {
    if let Some(name) =
        MUST_SIGN.iter().find(|n| (req.header)(n).is_some() && !auth.signed_headers.iter().any(|s| s == *n))
    {
        return Err(VerifyError::UnsignedHeader(name));
    }
    let claimed = (req.header)("x-acs-content-sha256").ok_or(VerifyError::MissingHeader("x-acs-content-sha256"))?;
    let body_hash = hashed_payload(req.body);
    if claimed.trim() != body_hash {
        return Err(VerifyError::BodyHashMismatch);
    }
    let mut headers = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let value = (req.header)(name).ok_or_else(|| VerifyError::MissingSignedHeader(name.clone()))?;
        headers.push((name.as_str(), value));
    }
    let (canonical, signed) = canonical_headers(&headers);
    let query = canonical_query_from_raw(req.raw_query);
    Ok(string_to_sign(&canonical_request(req.method, req.path, &query, &canonical, &signed, &body_hash)))
}

/// The signature the sender should have computed, from the request as received.
pub fn expected_signature(
    req: &ReceivedRequest<'_>,
    auth: &ParsedAuthorization,
    secret: &str,
) -> Result<String, VerifyError> {
    Ok(signature(secret, &received_string_to_sign(req, auth)?))
}

/// Checks the request against `auth` in constant time. Freshness of `x-acs-date` and uniqueness of
/// the nonce are for the caller to check.
pub fn verify(req: &ReceivedRequest<'_>, auth: &ParsedAuthorization, secret: &str) -> Result<(), VerifyError> {
    let sts = received_string_to_sign(req, auth)?;
    let claimed = hex::decode(&auth.signature).map_err(|_| VerifyError::SignatureMismatch)?;
    let result = mac(secret, &sts).verify_slice(&claimed);
    result.map_err(|_| VerifyError::SignatureMismatch)
}

#[cfg(test)]
mod tests {
    use super::VerifyError::{BodyHashMismatch, SignatureMismatch, UnsignedHeader};
    use super::*;
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    macro_rules! vector {
        ($name:literal) => {
            serde_json::from_str::<Value>(include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/vectors/",
                $name,
                ".json"
            )))
            .unwrap()
        };
    }

    const MINIMAL: usize = 2; // all()[MINIMAL..] are the minimal-headers vectors
    fn all() -> [Value; 4] {
        [
            vector!("dsw_get_token"),
            vector!("dsw_get_token_sts"),
            vector!("dsw_get_token_minimal_headers"),
            vector!("dsw_get_token_minimal_headers_sts"),
        ]
    }
    fn s<'v>(v: &'v Value, pointer: &str) -> &'v str {
        v.pointer(pointer).and_then(Value::as_str).expect(pointer)
    }
    fn params(v: &Value) -> Vec<(&str, String)> {
        let obj = v["inputs"]["params"].as_object().unwrap();
        let text = |x: &Value| x.as_str().map_or_else(|| x.to_string(), str::to_owned);
        obj.iter().map(|(k, x)| (k.as_str(), text(x))).collect()
    }
    fn path_query(v: &Value) -> (&str, &str) {
        s(v, "/request/path_and_query").split_once('?').unwrap()
    }

    #[test]
    fn replays_every_vector_stage_by_stage() {
        for v in all() {
            let sdk = v["request"]["headers_signed_by_sdk"].as_object().unwrap();
            let headers: Vec<(&String, &str)> =
                sdk.iter().filter(|(k, _)| *k != "Authorization").map(|(k, x)| (k, x.as_str().unwrap())).collect();
            let query = canonical_query(&params(&v));
            let payload = hashed_payload(s(&v, "/request/body").as_bytes());
            let (ak, sk) = (s(&v, "/inputs/access_key_id"), "testsecret");
            let signed = sign("GET", path_query(&v).0, &query, &headers, &payload, ak, sk);
            let stage = |name: &str| s(&v["intermediate"], &format!("/{name}")).to_owned();
            assert_eq!(signed.signed_headers, stage("signed_headers"));
            assert_eq!(signed.canonical_request, stage("canonical_request"));
            assert_eq!(signed.string_to_sign, stage("string_to_sign"));
            assert_eq!(signed.signature, stage("signature"));
            assert_eq!(signed.authorization, s(&v, "/authorization"));
            let sent = s(&v, "/request/headers_signed_by_sdk/Authorization");
            assert_eq!(signed.authorization, sent);
        }
    }

    #[test]
    fn builder_reproduces_minimal_vectors_on_the_wire() {
        for v in &all()[MINIMAL..] {
            let owned = params(v);
            let query: Vec<(&str, &str)> = owned.iter().map(|(k, x)| (*k, x.as_str())).collect();
            let sdk = |name: &str| s(v, &format!("/request/headers_signed_by_sdk/{name}"));
            let req = Request {
                method: s(v, "/request/method"),
                host: s(v, "/request/host"),
                path: path_query(v).0,
                query: &query,
                action: sdk("x-acs-action"),
                version: sdk("x-acs-version"),
                date: UNIX_EPOCH + Duration::from_secs(1_704_164_645),
                nonce: s(v, "/inputs/fixed_nonce"),
                body: b"",
                content_type: None,
            };
            let token = v["inputs"]["security_token"].as_str();
            let headers = build_headers(&req, "testid", "testsecret", token);
            let got: Vec<Value> = headers.as_slice().iter().map(|h| json!([h.0, h.1])).collect();
            assert_eq!(Value::Array(got), v["request"]["wire_headers_in_order"]);
            assert_eq!(headers.get("AUTHORIZATION"), Some(s(v, "/authorization")));
            assert_eq!(format_date(req.date), s(v, "/inputs/fixed_time_iso8601"));
        }
    }

    /// Replays a vector's wire headers (with `changes` applied) through the server side.
    type Changes<'c> = &'c [(&'c str, &'c str)];
    fn server(v: &Value, query: &str, body: &[u8], sk: &str, changes: Changes) -> Result<String, VerifyError> {
        let mut map = HashMap::new();
        for h in v["request"]["wire_headers_in_order"].as_array().unwrap() {
            map.insert(s(h, "/0").to_ascii_lowercase(), s(h, "/1").to_owned());
        }
        map.extend(changes.iter().map(|(k, x)| (k.to_string(), x.to_string())));
        let auth = parse_authorization(&map["authorization"]).unwrap();
        assert_eq!(auth.access_key_id, "testid");
        let lookup = |n: &str| map.get(n).map(String::as_str);
        let path = path_query(v).0;
        let (method, raw_query) = ("GET", query);
        let req = ReceivedRequest { method, path, raw_query, header: &lookup, body };
        verify(&req, &auth, sk)?;
        expected_signature(&req, &auth, sk)
    }

    #[test]
    fn server_accepts_every_vector() {
        for v in all() {
            let sig = server(&v, path_query(&v).1, b"", "testsecret", &[]);
            assert_eq!(sig.unwrap(), s(&v, "/intermediate/signature"));
        }
    }

    #[test]
    fn server_rejects_tampered_requests() {
        let sk = "testsecret";
        for v in all() {
            let query = path_query(&v).1;
            let bad_query = query.replace("ExpireTime=3600", "ExpireTime=3601");
            assert_eq!(server(&v, &bad_query, b"", sk, &[]), Err(SignatureMismatch));
            assert_eq!(server(&v, query, b"{}", sk, &[]), Err(BodyHashMismatch));
            let forged = hashed_payload(b"{}");
            let changes = [("x-acs-content-sha256", forged.as_str())];
            assert_eq!(server(&v, query, b"{}", sk, &changes), Err(SignatureMismatch));
            assert_eq!(server(&v, query, b"", "badsecret", &[]), Err(SignatureMismatch));
            let changes = [("x-acs-date", "2024-01-02T03:04:06Z")];
            assert_eq!(server(&v, query, b"", sk, &changes), Err(SignatureMismatch));
            let changes = [("content-type", "application/json")];
            let err = UnsignedHeader("content-type");
            assert_eq!(server(&v, query, b"", sk, &changes), Err(err));
        }
    }

    #[test]
    fn parse_rejects_malformed_authorization() {
        use AuthorizationError as E;
        let sig = format!("Signature={}", "0".repeat(64));
        let fix = |v: &str| v.replace("ACS3 ", "ACS3-HMAC-SHA256 ").replace("SIG", &sig);
        let ok = parse_authorization(&fix("ACS3 Credential=k, SignedHeaders=host;x-acs-date, SIG"));
        assert_eq!(ok.unwrap().signed_headers, ["host", "x-acs-date"]);
        let cases = [
            ("TC3-HMAC-SHA256 Credential=a,SignedHeaders=host,SIG", E::WrongAlgorithm),
            ("ACS3 Credential=a,SignedHeaders=host", E::MissingField("Signature")),
            ("ACS3 Credential=,SignedHeaders=host,SIG", E::MissingField("Credential")),
            ("ACS3 Credential=a,Credential=b,SIG", E::DuplicateField("Credential")),
            ("ACS3 Credential=a,Foo=b,SIG", E::UnknownField),
            ("ACS3 Credential=a,SignedHeaders=x-acs-date;host,SIG", E::BadSignedHeaders),
            ("ACS3 Credential=a,SignedHeaders=Host,SIG", E::BadSignedHeaders),
            ("ACS3 Credential=a,SignedHeaders=host,Signature=ABC", E::BadSignature),
        ];
        for (value, err) in cases {
            assert_eq!(parse_authorization(&fix(value)), Err(err), "{value}");
        }
    }

    #[test]
    fn encoding_and_canonical_forms() {
        assert_eq!(percent_encode("a b*~-_.+/é"), "a%20b%2A~-_.%2B%2F%C3%A9");
        let query = canonical_query(&[("b", "x y"), ("a", ""), ("A", "*")]);
        assert_eq!(query, "A=%2A&a=&b=x%20y");
        assert_eq!(canonical_query_from_raw("b=x%20y&a=1+2&c"), "a=1%202&b=x%20y&c=");
        let (canonical, signed) = canonical_headers(&[("X-A", " 1 "), ("host", "h"), ("x-a", "2")]);
        assert_eq!([canonical, signed], ["host:h\nx-a:1,2\n", "host;x-a"]);
    }

    #[test]
    fn secrets_never_leak_into_debug_or_errors() {
        let (secret, token) = ("SECRET-KEY-VALUE", "SECURITY-TOKEN-VALUE");
        let (body, content_type) = (b"{}".as_slice(), Some("application/json"));
        let (method, host, path) = ("POST", "h:8443", "/x");
        let (action, version, nonce, date) = ("A", "1", "n", UNIX_EPOCH);
        let query = &[("q", "1")];
        let req = Request { method, host, path, query, action, version, date, nonce, body, content_type };
        let headers = build_headers(&req, "ak", secret, Some(token));
        assert_eq!(headers.get("x-acs-security-token"), Some(token));
        let signed = sign(method, path, "", headers.as_slice(), "", "ak", secret);
        let auth = parse_authorization(headers.get("authorization").unwrap()).unwrap();
        let lookup = |n: &str| headers.get(n);
        let raw_query = "q=1";
        let received = ReceivedRequest { method, path, raw_query, header: &lookup, body };
        assert_eq!(verify(&received, &auth, secret), Ok(()));
        let err = verify(&received, &auth, token).unwrap_err();
        let shown = format!("{headers:?} {signed:?} {req:?} {auth:?} {err} {err:?}");
        assert!(!shown.contains(secret) && !shown.contains(token), "{shown}");
    }
}
