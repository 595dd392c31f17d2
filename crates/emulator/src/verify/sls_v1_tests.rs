//! The SLS v1 verifier against the vendors' SLS vectors.

use super::*;
use crate::verify::vectors::{load, replay, text};

const VECTORS: [&str; 5] = [
    "sls_create_ticket",
    "sls_create_ticket_sts",
    "sls_refresh_token",
    "sls_refresh_token_sts",
    "sls_create_ticket_classic_sdk_sha1",
];

/// The signature the server computes for a vector's request as sent, with `changes` applied.
fn server(name: &str, secret: &str, changes: &[(&str, &str)]) -> (String, String) {
    let v = load(name);
    let r = replay(&v, None, changes);
    let header = |n: &str| r.headers.get(n).map(|h| h.to_str().unwrap());
    let date = header("date").or_else(|| header("x-log-date")).unwrap();
    let mac = V1Mac::named(header("x-log-signaturemethod")).unwrap();
    let (id, signature) = parse(header("authorization").unwrap()).unwrap();
    assert_eq!(id, text(&v, "/inputs/access_key_id"));
    (expected(r.method.as_str(), &r.uri, &r.headers, date, secret, mac), signature)
}

#[test]
fn accepts_every_vendor_vector() {
    for name in VECTORS {
        let secret = text(&load(name), "/inputs/access_key_secret").to_owned();
        let (expected, sent) = server(name, &secret, &[]);
        assert_eq!(expected, sent, "{name}");
    }
}

#[test]
fn a_changed_signed_part_changes_the_signature() {
    for name in VECTORS {
        let secret = text(&load(name), "/inputs/access_key_secret").to_owned();
        for change in [("x-log-bodyrawsize", "1"), ("content-type", "text/plain"), ("x-acs-security-token", "other")] {
            let (expected, sent) = server(name, &secret, &[change]);
            assert_ne!(expected, sent, "{name} {change:?}");
        }
        let (expected, sent) = server(name, "badsecret", &[]);
        assert_ne!(expected, sent, "{name}");
        // Unsigned: x-log-date and x-log-meta-* headers.
        let (expected, sent) = server(name, &secret, &[("x-log-meta-a", "1")]);
        assert_eq!(expected, sent, "{name}");
    }
}

#[test]
fn authorization_mac_and_md5() {
    assert_eq!(parse("LOG a:b:c"), Some(("a:b".into(), "c".into())));
    assert_eq!(parse("LOG :sig"), None);
    assert_eq!(parse("SLS4-HMAC-SHA256 x"), None);
    assert_eq!(V1Mac::named(None), Some(V1Mac::HmacSha1));
    assert_eq!(V1Mac::named(Some("HMAC-SHA256")), Some(V1Mac::HmacSha256));
    assert_eq!(V1Mac::named(Some("hmac-md5")), None);
    assert_eq!(content_md5(b""), "");
    assert_eq!(content_md5(b"abc"), "900150983CD24FB0D6963F7D28E17F72");
}
