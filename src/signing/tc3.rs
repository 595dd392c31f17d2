//! Tencent Cloud `TC3-HMAC-SHA256` (API 3.0 "signature v3"), client side: signs requests.
//! (The server side, in the emulator, is `crates/emulator/src/verify/tc3.rs`.)
//!
//! Implements `shared/spec/cloud-apis.md` §3.2 as the official Python SDK does it
//! (`abstract_client.py _build_req_with_tc3_signature`, `sign.py sign_tc3`); §3.3 lists the errors
//! a real server answers with. Used for TCR `CreateInstanceToken`.
//!
//! Stages, each public so it can be checked on its own: [`canonical_headers`] →
//! [`canonical_request`] → [`credential_scope`] and [`string_to_sign`] → [`signing_keys`] →
//! [`signature`] → [`authorization`]. [`sign`] runs them all (signing `content-type;host`, as the
//! SDK does); [`build_headers`] returns the complete header list to send.
//!
//! Everything is pure: the time is an argument. The SecretKey and the session token are taken as
//! `&str` and never appear in `Debug` output or in errors. `X-TC-Token` is not signed (§3.2 item 6).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name, first word of the `Authorization` value and first line of the string to sign.
pub(crate) const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The last element of the credential scope.
pub(crate) const TERMINATOR: &str = "tc3_request";

/// Seconds from 1970 to 10000-01-01: later dates do not fit `YYYY-MM-DD`.
const MAX_SECONDS: u64 = 253_402_300_800;

/// `hex(sha256(payload))`: the body for POST, empty for GET.
pub(crate) fn hashed_payload(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The `X-TC-Timestamp` value: whole seconds since 1970.
///
/// # Panics
/// If `time` is before 1970.
pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).expect("time is before 1970").as_secs()
}

/// The UTC date `YYYY-MM-DD` of a unix timestamp, or `None` after year 9999.
pub(crate) fn utc_date(unix_seconds: u64) -> Option<String> {
    if unix_seconds >= MAX_SECONDS {
        return None;
    }
    let time = UNIX_EPOCH + Duration::from_secs(unix_seconds);
    let stamp = humantime::format_rfc3339_seconds(time).to_string();
    stamp.split_once('T').map(|(date, _)| date.to_owned())
}

/// `<date>/<service>/tc3_request` (§3.2 item 2).
pub(crate) fn credential_scope(date: &str, service: &str) -> String {
    format!("{date}/{service}/{TERMINATOR}")
}

/// `(CanonicalHeaders, SignedHeaders)`: names and values lower-cased and trimmed, sorted by name,
/// each line ending in `\n` (§3.2 item 1; the SDK signs just `content-type` and `host`).
pub(crate) fn canonical_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> (String, String) {
    let lower = |(n, v): &(N, V)| (n.as_ref().trim().to_ascii_lowercase(), v.as_ref().trim().to_ascii_lowercase());
    let mut sorted: Vec<(String, String)> = headers.iter().map(lower).collect();
    sorted.sort();
    let lines: String = sorted.iter().flat_map(|(n, v)| [n, ":", v, "\n"]).collect();
    let names: Vec<&str> = sorted.iter().map(|(n, _)| n.as_str()).collect();
    (lines, names.join(";"))
}

/// `CanonicalRequest` (§3.2 item 1). `path` is `/` for API 3.0; `canonical_query` is the query
/// string exactly as sent (empty for POST).
pub(crate) fn canonical_request(
    method: &str,
    path: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    hashed_payload: &str,
) -> String {
    let (query, headers, signed) = (canonical_query, canonical_headers, signed_headers);
    format!("{method}\n{path}\n{query}\n{headers}\n{signed}\n{hashed_payload}")
}

/// `TC3-HMAC-SHA256\n<timestamp>\n<scope>\nhex(sha256(CanonicalRequest))` (§3.2 item 3).
pub(crate) fn string_to_sign(timestamp: u64, credential_scope: &str, canonical_request: &str) -> String {
    let hashed = hex::encode(Sha256::digest(canonical_request.as_bytes()));
    format!("{ALGORITHM}\n{timestamp}\n{credential_scope}\n{hashed}")
}

fn hmac(key: &[u8], data: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data.as_bytes());
    mac
}

/// The derived keys of §3.2 item 4. `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SigningKeys {
    pub(crate) k_date: [u8; 32],
    pub(crate) k_service: [u8; 32],
    pub(crate) k_signing: [u8; 32],
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKeys(<redacted>)")
    }
}

/// `kDate = HMAC("TC3"+SK, date)`, `kService = HMAC(kDate, service)`,
/// `kSigning = HMAC(kService, "tc3_request")`.
pub(crate) fn signing_keys(secret_key: &str, date: &str, service: &str) -> SigningKeys {
    let k_date: [u8; 32] = hmac(format!("TC3{secret_key}").as_bytes(), date).finalize().into_bytes().into();
    let k_service: [u8; 32] = hmac(&k_date, service).finalize().into_bytes().into();
    let k_signing: [u8; 32] = hmac(&k_service, TERMINATOR).finalize().into_bytes().into();
    SigningKeys { k_date, k_service, k_signing }
}

/// `hex(HMAC(kSigning, StringToSign))`.
pub(crate) fn signature(k_signing: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac(k_signing, string_to_sign).finalize().into_bytes())
}

/// The `Authorization` value (§3.2 item 5; a comma **and a space** between the fields).
pub(crate) fn authorization(secret_id: &str, credential_scope: &str, signed_headers: &str, signature: &str) -> String {
    format!(
        "{ALGORITHM} Credential={secret_id}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

/// What to sign. Holds no secret.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    /// `POST` (JSON body, the SDK default) or `GET` (params in the query).
    pub(crate) method: &'a str,
    /// The `Host` header as sent.
    pub(crate) host: &'a str,
    /// The service, e.g. `tcr` (the first label of the vendor's host).
    pub(crate) service: &'a str,
    pub(crate) action: &'a str,
    pub(crate) version: &'a str,
    pub(crate) region: &'a str,
    pub(crate) timestamp: SystemTime,
    /// The query string exactly as sent, without `?`; `""` for POST. For TC3 any encoding works
    /// as long as the string signed is the string sent.
    pub(crate) query: &'a str,
    /// The exact body bytes sent; empty for GET.
    pub(crate) body: &'a [u8],
    /// E.g. `application/json` (POST) or `application/x-www-form-urlencoded` (GET).
    pub(crate) content_type: &'a str,
}

/// Every stage of one signature (the derived keys are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    pub(crate) canonical_request: String,
    pub(crate) credential_scope: String,
    pub(crate) string_to_sign: String,
    pub(crate) signature: String,
    pub(crate) authorization: String,
}

/// Signs `req` the way the SDK does: path `/`, signed headers `content-type;host`.
///
/// # Panics
/// If `req.timestamp` is before 1970 or after year 9999.
pub(crate) fn sign(req: &Request<'_>, secret_id: &str, secret_key: &str) -> Signed {
    let timestamp = unix_seconds(req.timestamp);
    let date = utc_date(timestamp).expect("timestamp after year 9999");
    let (headers, signed) = canonical_headers(&[("content-type", req.content_type), ("host", req.host)]);
    let payload = hashed_payload(req.body);
    let canonical_request = canonical_request(req.method, "/", req.query, &headers, &signed, &payload);
    let credential_scope = credential_scope(&date, req.service);
    let string_to_sign = string_to_sign(timestamp, &credential_scope, &canonical_request);
    let keys = signing_keys(secret_key, &date, req.service);
    let signature = signature(&keys.k_signing, &string_to_sign);
    let authorization = authorization(secret_id, &credential_scope, &signed, &signature);
    Signed { canonical_request, credential_scope, string_to_sign, signature, authorization }
}

/// The headers to send, in order, `Authorization` last. `Debug` hides `X-TC-Token`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RequestHeaders(Vec<(&'static str, String)>);

impl RequestHeaders {
    pub(crate) fn as_slice(&self) -> &[(&'static str, String)] {
        &self.0
    }
    /// The value of a header, by case-insensitive name.
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.iter().map(|(n, v)| {
            let hide = n.eq_ignore_ascii_case("x-tc-token");
            (n, if hide { "<redacted>" } else { v.as_str() })
        });
        f.debug_list().entries(shown).finish()
    }
}

/// The complete headers for `req`: `Content-Type`, `Host`, `X-TC-Action`, `X-TC-Timestamp`,
/// `X-TC-Version`, `X-TC-Region`, `X-TC-Token` (only with a token), `Authorization`.
///
/// # Panics
/// As [`sign`].
pub(crate) fn build_headers(
    req: &Request<'_>,
    secret_id: &str,
    secret_key: &str,
    token: Option<&str>,
) -> RequestHeaders {
    let mut headers: Vec<(&'static str, String)> = vec![
        ("Content-Type", req.content_type.to_owned()),
        ("Host", req.host.to_owned()),
        ("X-TC-Action", req.action.to_owned()),
        ("X-TC-Timestamp", unix_seconds(req.timestamp).to_string()),
        ("X-TC-Version", req.version.to_owned()),
        ("X-TC-Region", req.region.to_owned()),
    ];
    headers.extend(token.map(|t| ("X-TC-Token", t.to_owned())));
    headers.push(("Authorization", sign(req, secret_id, secret_key).authorization));
    RequestHeaders(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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

    fn all() -> [Value; 4] {
        [
            vector!("tcr_create_instance_token"),
            vector!("tcr_create_instance_token_sts"),
            vector!("tcr_create_instance_token_get"),
            vector!("tcr_create_instance_token_longterm"),
        ]
    }
    fn s<'v>(v: &'v Value, pointer: &str) -> &'v str {
        v.pointer(pointer).and_then(Value::as_str).expect(pointer)
    }
    fn query(v: &Value) -> &str {
        s(v, "/request/path_and_query").split_once('?').map_or("", |(_, q)| q)
    }
    fn request(v: &Value) -> Request<'_> {
        let sdk = |name: &str| s(v, &format!("/request/headers_signed_by_sdk/{name}"));
        let seconds = v["inputs"]["fixed_unix_time"].as_u64().unwrap();
        Request {
            method: s(v, "/request/method"),
            host: s(v, "/request/host"),
            service: "tcr",
            action: sdk("X-TC-Action"),
            version: sdk("X-TC-Version"),
            region: s(v, "/inputs/region"),
            timestamp: UNIX_EPOCH + Duration::from_secs(seconds),
            query: query(v),
            body: s(v, "/request/body").as_bytes(),
            content_type: sdk("Content-Type"),
        }
    }

    #[test]
    fn replays_every_vector_stage_by_stage() {
        for v in all() {
            let req = request(&v);
            let stage = |name: &str| s(&v["intermediate"], &format!("/{name}")).to_owned();
            let payload = hashed_payload(req.body);
            assert_eq!(payload, stage("payload_sha256"));
            let (headers, signed) = canonical_headers(&[("Content-Type", req.content_type), ("Host", req.host)]);
            let canonical = canonical_request(req.method, "/", req.query, &headers, &signed, &payload);
            assert_eq!(canonical, stage("canonical_request"));
            let date = utc_date(unix_seconds(req.timestamp)).unwrap();
            let scope = credential_scope(&date, "tcr");
            assert_eq!(scope, stage("credential_scope"));
            let to_sign = string_to_sign(1_704_164_645, &scope, &canonical);
            assert_eq!(to_sign, stage("string_to_sign"));
            let keys = signing_keys(s(&v, "/inputs/secret_key"), &date, "tcr");
            assert_eq!(hex::encode(keys.k_date), stage("k_date_hex"));
            assert_eq!(hex::encode(keys.k_service), stage("k_service_hex"));
            assert_eq!(hex::encode(keys.k_signing), stage("k_signing_hex"));
            let sig = signature(&keys.k_signing, &to_sign);
            assert_eq!(sig, stage("signature"));
            assert_eq!(authorization("testid", &scope, &signed, &sig), s(&v, "/authorization"));
            let all_at_once = sign(&req, "testid", "testsecret");
            assert_eq!(all_at_once.canonical_request, canonical);
            assert_eq!(all_at_once.string_to_sign, to_sign);
            assert_eq!(all_at_once.authorization, s(&v, "/request/headers_signed_by_sdk/Authorization"));
        }
    }

    #[test]
    fn builder_reproduces_every_vector_on_the_wire() {
        for v in all() {
            let token = v["inputs"]["token"].as_str();
            let headers = build_headers(&request(&v), "testid", "testsecret", token);
            let names: Vec<&str> = headers.as_slice().iter().map(|h| h.0).collect();
            let wire = v["request"]["wire_headers_in_order"].as_array().unwrap();
            let expected: Vec<&Value> = wire.iter().filter(|h| names.contains(&s(h, "/0"))).collect();
            let got: Vec<Value> = headers.as_slice().iter().map(|h| json!([h.0, h.1])).collect();
            assert_eq!(got.iter().collect::<Vec<_>>(), expected);
            assert_eq!(headers.get("x-tc-token"), token);
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(utc_date(0).as_deref(), Some("1970-01-01"));
        assert_eq!(utc_date(253_402_300_799).as_deref(), Some("9999-12-31"));
        assert_eq!(utc_date(253_402_300_800), None);
        let (headers, signed) = canonical_headers(&[("Host", " H "), ("X-TC-Action", "CreateX")]);
        assert_eq!([headers, signed], ["host:h\nx-tc-action:createx\n", "host;x-tc-action"]);
    }

    #[test]
    fn secrets_never_leak_into_debug() {
        let (secret, token) = ("SECRET-KEY-VALUE", "SESSION-TOKEN-VALUE");
        let v = vector!("tcr_create_instance_token_sts");
        let req = request(&v);
        let headers = build_headers(&req, "testid", secret, Some(token));
        let keys = signing_keys(secret, "2024-01-02", "tcr");
        let shown = format!("{headers:?} {keys:?} {req:?} {:?}", sign(&req, "testid", secret));
        assert!(!shown.contains(secret) && !shown.contains(token), "{shown}");
        assert!(!shown.contains(&hex::encode(keys.k_signing)), "{shown}");
    }
}
