//! Alibaba Cloud SLS request signing, v1 `LOG` scheme (spec §1.2).
//!
//! `Authorization: LOG <AK>:b64(HMAC(SK, StringToSign))` where the MAC is HMAC-SHA256
//! (`x-log-signaturemethod: hmac-sha256`, what the 2020-12-30 SDK sends, and what ticketd sends) or
//! HMAC-SHA1 (the classic SDK and the docs). The optional v4 scheme (`SLS4-HMAC-SHA256`, spec §1.3)
//! is not implemented: ticketd never sends it and the emulator rejects it.
//!
//! Client side only: the server side (parsing `Authorization`, checking the signature) is the
//! emulator's, written independently (`crates/emulator/src/verify/sls_v1.rs`).

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

use super::hmac_sha256;

/// The API version header every SLS 2020-12-30 call carries.
pub const API_VERSION: &str = "0.6.0";
/// `x-log-signaturemethod` for HMAC-SHA256.
pub const HMAC_SHA256: &str = "hmac-sha256";
/// `x-log-signaturemethod` for HMAC-SHA1.
pub const HMAC_SHA1: &str = "hmac-sha1";

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
