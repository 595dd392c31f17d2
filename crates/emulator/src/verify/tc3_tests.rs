//! The TC3 verifier against the vendors' TCR vectors, as received or tampered with.

use super::*;
use crate::verify::v3::VerifyError::{MustSign, ScopeDateMismatch, SignatureMismatch};
use crate::verify::vectors::{Changes, load, replay, text};

const VECTORS: [&str; 4] = [
    "tcr_create_instance_token",
    "tcr_create_instance_token_sts",
    "tcr_create_instance_token_get",
    "tcr_create_instance_token_longterm",
];

fn body(v: &serde_json::Value) -> Vec<u8> {
    text(v, "/request/body").as_bytes().to_vec()
}

fn check(name: &str, query: Option<&str>, body: &[u8], key: &str, changes: Changes) -> Result<(), VerifyError> {
    let r = replay(&load(name), query, changes);
    let auth = parse(r.authorization()).unwrap();
    assert_eq!((auth.secret_id.as_str(), auth.service.as_str()), ("testid", "tcr"));
    verify(&r.method, &r.uri, &r.headers, body, &auth, key)
}

#[test]
fn accepts_every_vendor_vector_and_ignores_the_token() {
    for name in VECTORS {
        let b = body(&load(name));
        assert_eq!(check(name, None, &b, "testsecret", &[]), Ok(()), "{name}");
        // X-TC-Token is not signed: changing it does not change the signature.
        assert_eq!(check(name, None, &b, "testsecret", &[("x-tc-token", "another-token")]), Ok(()), "{name}");
    }
}

#[test]
fn rejects_tampered_requests() {
    let sk = "testsecret";
    for name in VECTORS {
        let v = load(name);
        let b = body(&v);
        let query = text(&v, "/request/path_and_query").split_once('?').map_or("", |(_, q)| q);
        let bad_query = format!("{query}&TokenType=longterm");
        assert_eq!(check(name, Some(&bad_query), &b, sk, &[]), Err(SignatureMismatch), "{name}");
        assert_eq!(check(name, None, &[b.as_slice(), b" "].concat(), sk, &[]), Err(SignatureMismatch), "{name}");
        assert_eq!(check(name, None, &b, "badsecret", &[]), Err(SignatureMismatch), "{name}");
        let changes = [("x-tc-timestamp", "1704164646")];
        assert_eq!(check(name, None, &b, sk, &changes), Err(SignatureMismatch), "{name}");
        let changes = [("x-tc-timestamp", "1704000000")];
        assert_eq!(check(name, None, &b, sk, &changes), Err(ScopeDateMismatch), "{name}");
        let changes = [("x-tc-timestamp", "soon")];
        assert_eq!(check(name, None, &b, sk, &changes), Err(VerifyError::BadTimestamp), "{name}");
        let changes = [("content-type", "text/plain")];
        assert_eq!(check(name, None, &b, sk, &changes), Err(SignatureMismatch), "{name}");
    }
}

#[test]
fn content_type_and_host_must_be_signed() {
    let v = load("tcr_create_instance_token");
    let forged = text(&v, "/authorization").replace("SignedHeaders=content-type;host", "SignedHeaders=host");
    let r = replay(&v, None, &[("authorization", &forged)]);
    let auth = parse(&forged).unwrap();
    assert_eq!(verify(&r.method, &r.uri, &r.headers, &body(&v), &auth, "testsecret"), Err(MustSign("content-type")));
}

#[test]
fn parse_rejects_malformed_authorization() {
    use AuthorizationError as E;
    let sig = format!("Signature={}", "0".repeat(64));
    let fix = |v: &str| {
        v.replace("TC3 ", "TC3-HMAC-SHA256 ").replace("SIG", &sig).replace("SCOPE", "2024-01-02/tcr/tc3_request")
    };
    let ok = parse(&fix("TC3 Credential=a/b/SCOPE,SignedHeaders=content-type;host,SIG")).unwrap();
    assert_eq!((ok.secret_id.as_str(), ok.date.as_str(), ok.service.as_str()), ("a/b", "2024-01-02", "tcr"));
    let cases = [
        ("ACS3-HMAC-SHA256 Credential=a/SCOPE, SignedHeaders=host, SIG", E::WrongAlgorithm("TC3-HMAC-SHA256")),
        ("TC3 Credential=a/SCOPE, SignedHeaders=host", E::MissingField("Signature")),
        ("TC3 Credential=a/SCOPE, Credential=a/SCOPE, SIG", E::DuplicateField("Credential")),
        ("TC3 Credential=a/SCOPE, Region=x, SIG", E::UnknownField),
        ("TC3 Credential=a/2024-1-02/tcr/tc3_request, SignedHeaders=host, SIG", E::BadCredential),
        ("TC3 Credential=a/2024-13-02/tcr/tc3_request, SignedHeaders=host, SIG", E::BadCredential),
        ("TC3 Credential=a/2024-01-02/tcr/aws4_request, SignedHeaders=host, SIG", E::BadCredential),
        ("TC3 Credential=2024-01-02/tcr/tc3_request, SignedHeaders=host, SIG", E::BadCredential),
        ("TC3 Credential=a/SCOPE, SignedHeaders=host;content-type, SIG", E::BadSignedHeaders),
        ("TC3 Credential=a/SCOPE, SignedHeaders=host, Signature=00", E::BadSignature),
    ];
    for (value, err) in cases {
        assert_eq!(parse(&fix(value)), Err(err), "{value}");
    }
}

#[test]
fn the_day_of_a_timestamp() {
    assert_eq!(day_of(0).as_deref(), Some("1970-01-01"));
    assert_eq!(day_of(1_704_164_645).as_deref(), Some("2024-01-02"));
    assert_eq!(day_of(YEAR_10000 - 1).as_deref(), Some("9999-12-31"));
    assert_eq!(day_of(YEAR_10000), None);
}

#[test]
fn errors_and_the_parsed_header_carry_no_secret() {
    // Verified with the wrong key, the session token standing in for it: neither the key nor the
    // token may appear in the error (Display or Debug) or in the parsed Authorization's Debug.
    let name = "tcr_create_instance_token_sts";
    let v = load(name);
    let token = v["inputs"]["token"].as_str().expect("the vector's session token");
    let err = check(name, None, &body(&v), token, &[]).unwrap_err();
    let auth = parse(replay(&v, None, &[]).authorization()).unwrap();
    let shown = format!("{err} {err:?} {auth:?}");
    assert!(!shown.contains(token) && !shown.contains("testsecret"), "{shown}");
}
