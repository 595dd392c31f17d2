//! The SLS v1 signature (`Authorization: LOG <AccessKeyId>:<signature>`) checked as the server
//! does: base64 of an HMAC (SHA-1 unless `x-log-signaturemethod` says SHA-256) of the verb, the
//! body's MD5, the content type, the date, the `x-log-`/`x-acs-` headers and the resource.

use axum::http::{HeaderMap, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use md5::{Digest, Md5};

use crate::verify::mac;

/// The MAC a v1 signature uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V1Mac {
    HmacSha1,
    HmacSha256,
}

impl V1Mac {
    /// The MAC `x-log-signaturemethod` names; without the header, SHA-1 (the classic default).
    pub(crate) fn named(header: Option<&str>) -> Option<V1Mac> {
        let Some(name) = header else { return Some(V1Mac::HmacSha1) };
        [("hmac-sha1", V1Mac::HmacSha1), ("hmac-sha256", V1Mac::HmacSha256)]
            .into_iter()
            .find_map(|(known, m)| name.eq_ignore_ascii_case(known).then_some(m))
    }
}

/// `LOG <AccessKeyId>:<signature>` read; `None` when the value is not of that shape.
pub(crate) fn parse(value: &str) -> Option<(String, String)> {
    let (id, signature) = value.strip_prefix("LOG ")?.rsplit_once(':')?;
    (!id.is_empty() && !signature.is_empty()).then(|| (id.to_owned(), signature.to_owned()))
}

/// `Content-MD5` as SLS wants it: upper-case hex, empty for an empty body.
pub(crate) fn content_md5(body: &[u8]) -> String {
    match body {
        [] => String::new(),
        _ => hex::encode_upper(Md5::digest(body)),
    }
}

/// The signature the request should carry. `date` is the header the date was read from.
pub(crate) fn expected(method: &str, uri: &Uri, headers: &HeaderMap, date: &str, secret: &str, mac: V1Mac) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut log_headers: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| {
            let n = n.as_str();
            (n.starts_with("x-log-") || n.starts_with("x-acs-")) && n != "x-log-date" && !n.starts_with("x-log-meta-")
        })
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    log_headers.sort_unstable();
    let mut resource = uri.path().to_owned();
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    params.sort_unstable();
    for (i, (k, v)) in params.iter().enumerate() {
        resource.push(if i == 0 { '?' } else { '&' });
        resource.push_str(k);
        if !v.is_empty() {
            resource.push('=');
            resource.push_str(v);
        }
    }
    let mut to_sign = [method, text("content-md5"), text("content-type"), date, ""].join("\n");
    for (n, v) in log_headers {
        to_sign += &format!("{n}:{v}\n");
    }
    to_sign += &resource;
    let key = secret.as_bytes();
    match mac {
        V1Mac::HmacSha1 => B64.encode(mac::hmac_sha1(key, to_sign.as_bytes())),
        V1Mac::HmacSha256 => B64.encode(mac::hmac_sha256(key, to_sign.as_bytes())),
    }
}

#[cfg(test)]
#[path = "sls_v1_tests.rs"]
mod tests;
