//! Alibaba Cloud `ACS3-HMAC-SHA256` (the OpenAPI "V3" signature), client side: signs requests.
//! (The server side, in the emulator, is `crates/emulator/src/verify/acs3.rs`.)
//!
//! Implements `shared/spec/cloud-apis.md` §2.2 as the official SDK (`alibabacloud_tea_openapi`)
//! does it; §2.3 lists the errors a real server answers with. Used for PAI-DSW `GetToken`, and
//! usable for any Alibaba OpenAPI ROA or RPC call.
//!
//! Stages, each public so it can be checked on its own: [`canonical_query`] and
//! [`canonical_headers`] → [`canonical_request`] → [`string_to_sign`] → [`signature`] →
//! [`authorization`]. [`sign`] runs them all over an explicit header list (this replays the full
//! SDK form); [`build_headers`] builds the complete "minimal" header set to send.
//!
//! Everything is pure: the time and the nonce are arguments. The AccessKey secret and the STS
//! security token are taken as `&str` and never appear in `Debug` output or in errors.

use std::fmt;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name, first word of the `Authorization` value and first line of the string to sign.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// RFC 3986: unreserved `A-Za-z0-9-_.~` kept, everything else `%XX` (space → `%20`, `*` → `%2A`).
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
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

    #[test]
    fn encoding_and_canonical_forms() {
        assert_eq!(percent_encode("a b*~-_.+/é"), "a%20b%2A~-_.%2B%2F%C3%A9");
        let query = canonical_query(&[("b", "x y"), ("a", ""), ("A", "*")]);
        assert_eq!(query, "A=%2A&a=&b=x%20y");
        let (canonical, signed) = canonical_headers(&[("X-A", " 1 "), ("host", "h"), ("x-a", "2")]);
        assert_eq!([canonical, signed], ["host:h\nx-a:1,2\n", "host;x-a"]);
    }

    #[test]
    fn secrets_never_leak_into_debug() {
        let (secret, token) = ("SECRET-KEY-VALUE", "SECURITY-TOKEN-VALUE");
        let (body, content_type) = (b"{}".as_slice(), Some("application/json"));
        let (method, host, path) = ("POST", "h:8443", "/x");
        let (action, version, nonce, date) = ("A", "1", "n", UNIX_EPOCH);
        let query = &[("q", "1")];
        let req = Request { method, host, path, query, action, version, date, nonce, body, content_type };
        let headers = build_headers(&req, "ak", secret, Some(token));
        assert_eq!(headers.get("x-acs-security-token"), Some(token));
        let signed = sign(method, path, "", headers.as_slice(), "", "ak", secret);
        let shown = format!("{headers:?} {signed:?} {req:?}");
        assert!(!shown.contains(secret) && !shown.contains(token), "{shown}");
    }

    /// A POST with a body, a content type and a query, signed here and checked by the emulator's
    /// verifier (written independently from the spec): it verifies, a changed body or query does
    /// not, and neither the key nor the session token shows in any `Debug` or error on the way,
    /// the server's error included when the token is tried as the key (review F6).
    #[test]
    fn a_signed_post_verifies_and_no_debug_or_error_shows_a_secret() {
        use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
        use emulator::verify::{VerifyError, acs3 as server};

        let (secret, token) = ("SECRET-KEY-VALUE", "SECURITY-TOKEN-VALUE");
        let (body, content_type) = (br#"{"Name":"x y"}"#.as_slice(), Some("application/json"));
        let (method, host, path) = ("POST", "h:8443", "/x");
        let (action, version, nonce, date) = ("A", "1", "n", UNIX_EPOCH);
        let query = &[("q", "1"), ("b", "x y*")];
        let req = Request { method, host, path, query, action, version, date, nonce, body, content_type };
        let headers = build_headers(&req, "ak", secret, Some(token));
        let mut received = HeaderMap::new();
        for (name, value) in headers.as_slice() {
            let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap();
            received.append(name, HeaderValue::from_str(value).unwrap());
        }
        let uri: Uri = format!("{path}?{}", canonical_query(query)).parse().unwrap();
        let auth = server::parse(headers.get("authorization").unwrap()).unwrap();
        let check = |uri: &Uri, body: &[u8], key: &str| server::verify(&Method::POST, uri, &received, body, &auth, key);
        assert_eq!(check(&uri, body, secret), Ok(()));
        assert_eq!(check(&uri, b"{}", secret), Err(VerifyError::BodyHashMismatch));
        let other_query: Uri = format!("{path}?b=x%20y%2A&q=2").parse().unwrap();
        assert_eq!(check(&other_query, body, secret), Err(VerifyError::SignatureMismatch));
        let err = check(&uri, body, token).unwrap_err();
        assert_eq!(err, VerifyError::SignatureMismatch);
        let signed = sign(method, path, &canonical_query(query), headers.as_slice(), "", "ak", secret);
        let shown = format!("{headers:?} {signed:?} {req:?} {auth:?} {err} {err:?}");
        assert!(!shown.contains(secret) && !shown.contains(token), "{shown}");
    }
}
