//! Alibaba Cloud SLS request signing (spec §1.2 and §1.3).
//!
//! * **v1** (`LOG` scheme): `Authorization: LOG <AK>:b64(HMAC(SK, StringToSign))` where the MAC is
//!   HMAC-SHA256 (`x-log-signaturemethod: hmac-sha256`, what the 2020-12-30 SDK sends, and what
//!   ticketd sends) or HMAC-SHA1 (the classic SDK and the docs).
//! * **v4** (`SLS4-HMAC-SHA256`): a SigV4-like scheme with a derived, scoped key.
//!
//! Client and verifier share the canonicalization functions; the emulator feeds them the request
//! as received.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;

use super::{hmac_sha256, sha256_hex};

/// The API version header every SLS 2020-12-30 call carries.
pub const API_VERSION: &str = "0.6.0";
/// `x-log-signaturemethod` for HMAC-SHA256.
pub const HMAC_SHA256: &str = "hmac-sha256";
/// `x-log-signaturemethod` for HMAC-SHA1.
pub const HMAC_SHA1: &str = "hmac-sha1";
const V4_ALGORITHM: &str = "SLS4-HMAC-SHA256";
const V4_PRODUCT: &str = "sls";
const V4_TERMINATOR: &str = "aliyun_v4_request";

/// Which MAC a v1 signature uses; the server picks it from `x-log-signaturemethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Mac {
    HmacSha256,
    HmacSha1,
}

impl V1Mac {
    pub fn header_value(self) -> &'static str {
        match self {
            V1Mac::HmacSha256 => HMAC_SHA256,
            V1Mac::HmacSha1 => HMAC_SHA1,
        }
    }

    /// The MAC named by a received `x-log-signaturemethod` (absent means SHA-1, the classic default).
    pub fn from_header(value: Option<&str>) -> Option<V1Mac> {
        match value.map(str::to_ascii_lowercase).as_deref() {
            None | Some(HMAC_SHA1) => Some(V1Mac::HmacSha1),
            Some(HMAC_SHA256) => Some(V1Mac::HmacSha256),
            Some(_) => None,
        }
    }
}

/// Who signs. Not `Debug`: it holds the secret.
pub struct SigningKey<'a> {
    pub access_key_id: &'a str,
    pub access_key_secret: &'a str,
    pub security_token: Option<&'a str>,
}

/// An SLS call to sign. The query is in the order it goes on the wire (the SDK's order).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// `CanonicalizedLOGHeaders`: every `x-log-*` / `x-acs-*` header but `x-log-date`, by name.
pub fn canonical_log_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> String {
    let mut picked: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.as_ref()))
        .filter(|(n, _)| {
            (n.starts_with("x-log-") || n.starts_with("x-acs-")) && n != "x-log-date" && !n.starts_with("x-log-meta-")
        })
        .collect();
    picked.sort();
    picked.iter().map(|(n, v)| format!("{n}:{v}\n")).collect()
}

/// `CanonicalizedResource`: the path, then `?` and the raw (not encoded) params sorted by key.
pub fn canonical_resource<K: AsRef<str>, V: AsRef<str>>(path: &str, query: &[(K, V)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let mut pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    pairs.sort();
    let joined: Vec<String> =
        pairs.iter().map(|(k, v)| if v.is_empty() { k.to_string() } else { format!("{k}={v}") }).collect();
    format!("{path}?{}", joined.join("&"))
}

/// The v1 string to sign.
pub fn v1_string_to_sign(
    method: &str,
    content_md5: &str,
    content_type: &str,
    date: &str,
    canonical_headers: &str,
    canonical_resource: &str,
) -> String {
    format!("{method}\n{content_md5}\n{content_type}\n{date}\n{canonical_headers}{canonical_resource}")
}

/// The v1 signature: base64 of the MAC of the string to sign.
pub fn v1_signature(secret: &str, string_to_sign: &str, mac: V1Mac) -> String {
    match mac {
        V1Mac::HmacSha256 => B64.encode(hmac_sha256(secret.as_bytes(), string_to_sign.as_bytes())),
        V1Mac::HmacSha1 => {
            let mut m = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("any key length");
            m.update(string_to_sign.as_bytes());
            B64.encode(m.finalize().into_bytes())
        }
    }
}

/// `Content-MD5` as the SDK sends it: uppercase hex MD5 of the body, empty for an empty body.
pub fn content_md5(body: &[u8]) -> String {
    if body.is_empty() { String::new() } else { hex::encode_upper(Md5::digest(body)) }
}

/// The headers of a v1-signed call, in the SDK's wire order, `authorization` last.
/// `host`, `user-agent` and `content-length` are left to the HTTP client (none is signed).
pub fn v1_headers(
    request: &Request<'_>,
    key: &SigningKey<'_>,
    mac: V1Mac,
    date: SystemTime,
) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(&'static str, String)> =
        vec![("accept", "application/json".into()), ("x-log-apiversion", API_VERSION.into())];
    if let Some(token) = key.security_token {
        headers.push(("x-acs-security-token", token.into()));
    }
    let md5 = content_md5(request.body);
    let date = httpdate::fmt_http_date(date);
    headers.extend([
        ("content-type", "application/json".to_string()),
        ("x-log-bodyrawsize", request.body.len().to_string()),
        ("x-log-signaturemethod", mac.header_value().to_string()),
        ("date", date.clone()),
        ("content-md5", md5.clone()),
    ]);
    let to_sign = v1_string_to_sign(
        request.method,
        &md5,
        "application/json",
        &date,
        &canonical_log_headers(&headers),
        &canonical_resource(request.path, request.query),
    );
    let signature = v1_signature(key.access_key_secret, &to_sign, mac);
    headers.push(("authorization", format!("LOG {}:{signature}", key.access_key_id)));
    headers
}

/// A parsed v1 `Authorization: LOG <AK>:<signature>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Authorization {
    pub access_key_id: String,
    pub signature: String,
}

/// Parse a v1 Authorization value; `None` when it is not `LOG ak:sig`.
pub fn parse_v1_authorization(value: &str) -> Option<V1Authorization> {
    let rest = value.strip_prefix("LOG ")?;
    let (ak, sig) = rest.rsplit_once(':')?;
    (!ak.is_empty() && !sig.is_empty())
        .then(|| V1Authorization { access_key_id: ak.to_string(), signature: sig.to_string() })
}

// ---- v4 ----------------------------------------------------------------------------------

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// `x-log-date` for v4: `YYYYMMDDTHHMMSSZ`.
pub fn v4_date(t: SystemTime) -> String {
    let iso = crate::clock::rfc3339(t); // 2024-01-02T03:04:05Z
    iso.chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// v4 canonical query: sorted by key, values percent-encoded, a bare key for an empty value.
pub fn v4_canonical_query<K: AsRef<str>, V: AsRef<str>>(query: &[(K, V)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| {
            (utf8_percent_encode(k.as_ref(), RFC3986).to_string(), utf8_percent_encode(v.as_ref(), RFC3986).to_string())
        })
        .collect();
    pairs.sort();
    pairs.into_iter().map(|(k, v)| if v.is_empty() { k } else { format!("{k}={v}") }).collect::<Vec<_>>().join("&")
}

/// v4 signed header names: `host`, `content-type` and every `x-log-*`/`x-acs-*`, sorted.
pub fn v4_signed_header_names<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.as_ref().to_ascii_lowercase())
        .filter(|n| n == "host" || n == "content-type" || n.starts_with("x-log-") || n.starts_with("x-acs-"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The v4 canonical request. `headers` must include `host`.
pub fn v4_canonical_request<N: AsRef<str>, V: AsRef<str>>(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(N, V)],
    content_sha256: &str,
) -> String {
    let names = v4_signed_header_names(headers);
    let mut out = format!("{method}\n{path}\n{canonical_query}\n");
    for name in &names {
        let value = headers
            .iter()
            .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref().trim())
            .unwrap_or("");
        out.push_str(&format!("{name}:{value}\n"));
    }
    out.push('\n');
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(content_sha256);
    out
}

/// `<yyyymmdd>/<region>/sls/aliyun_v4_request`.
pub fn v4_scope(date: &str, region: &str) -> String {
    format!("{}/{region}/{V4_PRODUCT}/{V4_TERMINATOR}", v4_day(date))
}

/// The `yyyymmdd` that starts an `x-log-date`, cut between characters whatever it holds.
fn v4_day(log_date: &str) -> &str {
    log_date.get(..8).unwrap_or(log_date)
}

pub fn v4_string_to_sign(log_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{V4_ALGORITHM}\n{log_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The v4 signing key, derived from the secret, the day and the region.
pub fn v4_signing_key(secret: &str, day: &str, region: &str) -> [u8; 32] {
    let k = hmac_sha256(format!("aliyun_v4{secret}").as_bytes(), day.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, V4_PRODUCT.as_bytes());
    hmac_sha256(&k, V4_TERMINATOR.as_bytes())
}

/// The headers of a v4-signed call (no `Date`, no `x-log-signaturemethod`), `authorization` last.
/// `host` is needed for signing but not returned (the HTTP client sends it).
pub fn v4_headers(
    request: &Request<'_>,
    host: &str,
    region: &str,
    key: &SigningKey<'_>,
    date: SystemTime,
) -> Vec<(&'static str, String)> {
    let log_date = v4_date(date);
    let content_sha256 = sha256_hex(request.body);
    let mut headers: Vec<(&'static str, String)> =
        vec![("accept", "application/json".into()), ("x-log-apiversion", API_VERSION.into())];
    if let Some(token) = key.security_token {
        headers.push(("x-acs-security-token", token.into()));
    }
    headers.extend([
        ("content-type", "application/json".to_string()),
        ("x-log-bodyrawsize", request.body.len().to_string()),
        ("x-log-date", log_date.clone()),
        ("x-log-content-sha256", content_sha256.clone()),
    ]);
    let mut signed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    signed.push(("host", host));
    let canonical = v4_canonical_request(
        request.method,
        request.path,
        &v4_canonical_query(request.query),
        &signed,
        &content_sha256,
    );
    let scope = v4_scope(&log_date, region);
    let to_sign = v4_string_to_sign(&log_date, &scope, &canonical);
    let signing_key = v4_signing_key(key.access_key_secret, v4_day(&log_date), region);
    let signature = hex::encode(hmac_sha256(&signing_key, to_sign.as_bytes()));
    headers.push((
        "authorization",
        format!("{V4_ALGORITHM} Credential={}/{scope},Signature={signature}", key.access_key_id),
    ));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn issue_16_the_v4_scope_never_cuts_inside_a_character() {
        assert_eq!(v4_scope("20240101T000000Z", "cn-hangzhou"), "20240101/cn-hangzhou/sls/aliyun_v4_request");
        assert_eq!(v4_scope("2024010\u{e9}", "r"), "2024010\u{e9}/r/sls/aliyun_v4_request");
        assert_eq!(v4_scope("2024", "r"), "2024/r/sls/aliyun_v4_request");
    }

    fn vector(name: &str) -> Value {
        let path = format!("{}/tests/vectors/{name}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn vector_time(v: &Value) -> SystemTime {
        httpdate::parse_http_date(v["inputs"]["fixed_time_rfc1123"].as_str().unwrap()).unwrap()
    }

    /// The query pairs of the vector's URL, decoded, in wire order.
    fn query_of(v: &Value) -> Vec<(String, String)> {
        let url = reqwest::Url::parse(v["request"]["url"].as_str().unwrap()).unwrap();
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    fn replay_v1(name: &str) {
        let v = vector(name);
        let inputs = &v["inputs"];
        let query = query_of(&v);
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let url = reqwest::Url::parse(v["request"]["url"].as_str().unwrap()).unwrap();
        let request = Request { method: "POST", path: url.path(), query: &query, body: b"" };
        let key = SigningKey {
            access_key_id: inputs["access_key_id"].as_str().unwrap(),
            access_key_secret: inputs["access_key_secret"].as_str().unwrap(),
            security_token: inputs["security_token"].as_str(),
        };
        let headers = v1_headers(&request, &key, V1Mac::HmacSha256, vector_time(&v));

        // Stage 1: the string to sign, rebuilt from what we send.
        let get = |n: &str| headers.iter().find(|(h, _)| *h == n).map(|(_, v)| v.as_str()).unwrap();
        let to_sign = v1_string_to_sign(
            "POST",
            get("content-md5"),
            get("content-type"),
            get("date"),
            &canonical_log_headers(&headers),
            &canonical_resource(request.path, &query),
        );
        assert_eq!(to_sign, v["intermediate"]["string_to_sign"].as_str().unwrap(), "{name}");
        // Stage 2: the signature and the Authorization header.
        assert_eq!(
            v1_signature(key.access_key_secret, &to_sign, V1Mac::HmacSha256),
            v["intermediate"]["signature"].as_str().unwrap()
        );
        assert_eq!(get("authorization"), v["authorization"].as_str().unwrap(), "{name}");
        // Stage 3: every header the SDK signed and sent, with the same value and in the same order.
        let wire: Vec<(String, String)> = v["request"]["wire_headers_in_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()))
            .filter(|(n, _)| !["Accept-Encoding", "host", "user-agent", "Content-Length"].contains(&n.as_str()))
            .collect();
        let ours: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
        assert_eq!(ours, wire, "{name}");
        // The wire query keeps the SDK's order.
        assert_eq!(
            url.query().unwrap(),
            reqwest::Url::parse(v["request"]["url"].as_str().unwrap()).unwrap().query().unwrap()
        );
    }

    #[test]
    fn v1_create_ticket_matches_sdk_vector() {
        replay_v1("sls_create_ticket");
    }

    #[test]
    fn v1_create_ticket_sts_matches_sdk_vector() {
        replay_v1("sls_create_ticket_sts");
    }

    #[test]
    fn v1_refresh_token_matches_sdk_vector() {
        replay_v1("sls_refresh_token");
    }

    #[test]
    fn v1_refresh_token_sts_matches_sdk_vector() {
        replay_v1("sls_refresh_token_sts");
    }

    #[test]
    fn v1_sha1_matches_classic_sdk_vector() {
        let v = vector("sls_create_ticket_classic_sdk_sha1");
        let signed = &v["request"]["headers_signed_by_sdk"];
        // The classic SDK sends x-log-date after signing: it must stay out of the canonical headers.
        let headers: Vec<(String, String)> =
            signed.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
        let query = query_of(&v);
        let to_sign = v1_string_to_sign(
            "POST",
            "",
            "",
            signed["Date"].as_str().unwrap(),
            &canonical_log_headers(&headers),
            &canonical_resource("/tickets", &query),
        );
        assert_eq!(to_sign, v["intermediate"]["string_to_sign"].as_str().unwrap());
        let sig = v1_signature("testsecret", &to_sign, V1Mac::from_header(Some("hmac-sha1")).unwrap());
        assert_eq!(sig, v["intermediate"]["signature"].as_str().unwrap());
        assert_eq!(format!("LOG testid:{sig}"), v["authorization"].as_str().unwrap());
        let parsed = parse_v1_authorization(v["authorization"].as_str().unwrap()).unwrap();
        assert_eq!(parsed.access_key_id, "testid");
        assert_eq!(parsed.signature, sig);
    }

    #[test]
    fn v4_create_ticket_matches_sdk_vector() {
        let v = vector("sls_create_ticket_v4");
        let inputs = &v["inputs"];
        let query = query_of(&v);
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = Request { method: "POST", path: "/tickets", query: &query, body: b"" };
        let key = SigningKey { access_key_id: "testid", access_key_secret: "testsecret", security_token: None };
        let region = inputs["region_id"].as_str().unwrap();
        let host = inputs["endpoint"].as_str().unwrap();
        let headers = v4_headers(&request, host, region, &key, vector_time(&v));
        let im = &v["intermediate"];

        let mut signed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        signed.push(("host", host));
        signed.retain(|(n, _)| *n != "authorization");
        assert_eq!(v4_signed_header_names(&signed).join(";"), im["signed_headers"].as_str().unwrap());
        let canonical =
            v4_canonical_request("POST", "/tickets", &v4_canonical_query(&query), &signed, &sha256_hex(b""));
        assert_eq!(canonical, im["canonical_request"].as_str().unwrap());
        let log_date = v4_date(vector_time(&v));
        let scope = v4_scope(&log_date, region);
        assert_eq!(scope, im["scope"].as_str().unwrap());
        let to_sign = v4_string_to_sign(&log_date, &scope, &canonical);
        assert_eq!(to_sign, im["string_to_sign"].as_str().unwrap());
        assert_eq!(
            hex::encode(v4_signing_key("testsecret", &log_date[..8], region)),
            im["signing_key_hex"].as_str().unwrap()
        );
        let sdk = v["request"]["headers_signed_by_sdk"].as_object().unwrap();
        for (name, value) in &headers {
            assert_eq!(sdk[*name].as_str().unwrap(), value, "header {name}");
        }
        assert_eq!(headers.last().unwrap().1, v["authorization"].as_str().unwrap());
    }

    #[test]
    fn canonical_resource_sorts_raw_values_and_writes_bare_keys() {
        let q = [("b", "x y"), ("a", ""), ("c", "1=2")];
        assert_eq!(canonical_resource("/p", &q), "/p?a&b=x y&c=1=2");
        assert_eq!(canonical_resource::<&str, &str>("/p", &[]), "/p");
    }

    #[test]
    fn unknown_signature_method_is_rejected() {
        assert_eq!(V1Mac::from_header(Some("hmac-md5")), None);
        assert_eq!(V1Mac::from_header(None), Some(V1Mac::HmacSha1));
        assert_eq!(V1Mac::from_header(Some("HMAC-SHA256")), Some(V1Mac::HmacSha256));
    }
}
