//! ticketd's DSW and TCR clients against the emulator in-process: the checks the emulator makes
//! (date, STS token, nonce replay, timestamp, key vendor), the parameters GetToken sends, and TCR
//! long-term tokens deleted.

mod common;

use std::time::{Duration, SystemTime};

use common::credentials;
use emulator::{DSW_PATH, Emulator, TCR_USERNAME, generate_key, generate_tencent_key};
use ticketd::apis::{ApiErrorKind, ProviderError, dsw, tcr};
use ticketd::clock::{Clock, SystemClock};
use ticketd::config::{DswSpec, DswTokenType, Endpoint, TcrSpec, TcrTokenType};
use ticketd::signing::acs3;
use ticketd::token::Issued;

/// The system clock, shifted.
struct Shifted(Duration, bool);

impl Clock for Shifted {
    fn now(&self) -> SystemTime {
        if self.1 { SystemTime::now() + self.0 } else { SystemTime::now() - self.0 }
    }
}

fn kind(e: &ProviderError) -> ApiErrorKind {
    match e {
        ProviderError::Api { kind, .. } => *kind,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn dsw_checks_date_sts_token_and_nonce_replay() {
    let mut sts = generate_key("STS.");
    sts.security_token = Some(emulator::Secret::new("CAIStoken"));
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), vec![sts.clone()], SystemTime::now).await.unwrap();
    let spec = DswSpec {
        endpoint: Endpoint { base: url::Url::parse(&emulator.url()).unwrap() },
        instance_id: "dsw-1".into(),
        token_lifetime: Duration::from_secs(60),
        token_type: Some(DswTokenType::Access),
        audience: Some("ThirdParty".into()),
    };
    let http = ticketd::http::client();
    let ok = dsw::call(&http, &SystemClock, &spec, &credentials(&sts)).await.unwrap();
    let Issued::Token(token) = ok else { panic!("not a token") };
    let exp = ticketd::jwt::expiry(token.value.expose()).unwrap();
    assert!(exp <= token.expires_at + Duration::from_secs(1));
    // A date 20 minutes off is InvalidTimeStamp.Expired: clock skew.
    let e = dsw::call(&http, &Shifted(Duration::from_secs(1200), false), &spec, &credentials(&sts)).await.unwrap_err();
    assert!(e.is_clock_skew(), "{e}");
    // STS keys without their token.
    let mut no_token = credentials(&sts);
    no_token.security_token = None;
    let e = dsw::call(&http, &SystemClock, &spec, &no_token).await.unwrap_err();
    assert_eq!(kind(&e), ApiErrorKind::Permanent, "{e}");
    // The same nonce twice: the second is refused.
    let url = format!("{}{}?InstanceId=dsw-1", emulator.url(), DSW_PATH);
    let host = emulator.addr().to_string();
    let request = acs3::Request {
        method: "GET",
        host: &host,
        path: DSW_PATH,
        query: &[("InstanceId", "dsw-1")],
        action: "GetToken",
        version: "2022-01-01",
        date: SystemTime::now(),
        nonce: "0123456789abcdef0123456789abcdef",
        body: b"",
        content_type: None,
    };
    let headers = acs3::build_headers(&request, &sts.access_key_id, sts.access_key_secret.expose(), Some("CAIStoken"));
    let send = || {
        let mut b = http.get(&url);
        for (n, v) in headers.as_slice() {
            b = b.header(*n, v);
        }
        b.send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let again = send().await.unwrap();
    assert_eq!(again.status(), 400);
    let body: serde_json::Value = again.json().await.unwrap();
    assert_eq!(body["Code"], "SignatureNonceUsed");
    for key in ["RequestId", "HostId", "Message", "Recommend"] {
        assert!(body[key].is_string(), "{body}");
    }
    emulator.stop();
}

/// Issue 17 item 4: GetToken carries `InstanceId` and `ExpireTime`, and `Type` and `Audience` only
/// when the config sets them; the emulator refuses a parameter the SDK's request model lacks.
#[tokio::test]
async fn issue_17_get_token_sends_only_what_the_config_sets() {
    let key = generate_key("LTAI");
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), vec![key.clone()], SystemTime::now).await.unwrap();
    let mut spec = DswSpec {
        endpoint: Endpoint { base: url::Url::parse(&emulator.url()).unwrap() },
        instance_id: "dsw-1".into(),
        token_lifetime: Duration::from_secs(600),
        token_type: None,
        audience: None,
    };
    let http = ticketd::http::client();
    let sent = |params: Option<Vec<(String, String)>>| {
        let mut params = params.expect("a GetToken call was received");
        params.sort();
        params.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
    };
    dsw::call(&http, &SystemClock, &spec, &credentials(&key)).await.unwrap();
    assert_eq!(sent(emulator.last_get_token_params()), "ExpireTime=600&InstanceId=dsw-1");
    spec.token_type = Some(DswTokenType::View);
    spec.audience = Some("ThirdParty".into());
    dsw::call(&http, &SystemClock, &spec, &credentials(&key)).await.unwrap();
    assert_eq!(sent(emulator.last_get_token_params()), "Audience=ThirdParty&ExpireTime=600&InstanceId=dsw-1&Type=View");
    // A name the request model lacks, a name in the wrong case, a name given twice: all refused.
    for query in [
        &[("InstanceId", "dsw-1"), ("Kind", "Access")][..],
        &[("InstanceId", "dsw-1"), ("type", "Access")][..],
        &[("InstanceId", "dsw-1"), ("InstanceId", "dsw-2")][..],
    ] {
        let url = format!("{}{}?{}", emulator.url(), DSW_PATH, acs3::canonical_query(query));
        let host = emulator.addr().to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let request = acs3::Request {
            method: "GET",
            host: &host,
            path: DSW_PATH,
            query,
            action: "GetToken",
            version: "2022-01-01",
            date: SystemTime::now(),
            nonce: &nonce,
            body: b"",
            content_type: None,
        };
        let headers = acs3::build_headers(&request, &key.access_key_id, key.access_key_secret.expose(), None);
        let mut b = http.get(&url);
        for (n, v) in headers.as_slice() {
            b = b.header(*n, v);
        }
        let answer = b.send().await.unwrap();
        assert_eq!(answer.status(), 400, "{query:?}");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["Code"], "InvalidParameter", "{query:?}: {body}");
    }
    emulator.stop();
}

#[tokio::test]
async fn tcr_checks_timestamp_key_and_issues_millisecond_expiries() {
    let key = generate_tencent_key("AKID");
    let alibaba = generate_key("LTAI");
    let keys = vec![key.clone(), alibaba.clone()];
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), keys, SystemTime::now).await.unwrap();
    let mut spec = TcrSpec {
        endpoint: Endpoint { base: url::Url::parse(&emulator.url()).unwrap() },
        region: "ap-guangzhou".into(),
        registry_id: "tcr-1".into(),
        token_type: TcrTokenType::Temp,
        token_type_written: true,
        description: None,
        registry: None,
    };
    let http = ticketd::http::client();
    let Issued::Token(t) = tcr::call(&http, &SystemClock, &spec, &credentials(&key)).await.unwrap() else { panic!() };
    assert_eq!(t.username.as_deref(), Some(TCR_USERNAME));
    let life = t.expires_at.time().duration_since(t.issued_at.time()).unwrap();
    assert!(life > Duration::from_secs(3590) && life <= Duration::from_secs(3601), "{life:?}");
    spec.token_type = TcrTokenType::LongTerm;
    let Issued::Token(t) = tcr::call(&http, &SystemClock, &spec, &credentials(&key)).await.unwrap() else { panic!() };
    assert!(t.expires_at.time().duration_since(t.issued_at.time()).unwrap() > Duration::from_secs(300 * 86_400));
    let e = tcr::call(&http, &Shifted(Duration::from_secs(400), true), &spec, &credentials(&key)).await.unwrap_err();
    assert!(e.is_clock_skew(), "{e}");
    // An Alibaba key is not a Tencent key.
    let e = tcr::call(&http, &SystemClock, &spec, &credentials(&alibaba)).await.unwrap_err();
    assert!(e.to_string().contains("AuthFailure.SecretIdNotFound"), "{e}");
    assert_eq!(kind(&e), ApiErrorKind::Permanent);
    let stats = emulator.stats();
    assert_eq!((stats.create_instance_token, stats.rejected), (2, 2));
    emulator.stop();
}

/// Issue 17 item 2: long-term tokens are live until `DeleteInstanceToken`; an unknown id (or
/// one deleted already, or another registry's) is `ResourceNotFound` in the vendor's shape.
#[tokio::test]
async fn tcr_delete_instance_token_deletes_live_long_term_tokens() {
    let key = generate_tencent_key("AKID");
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), vec![key.clone()], SystemTime::now).await.unwrap();
    let endpoint = Endpoint { base: url::Url::parse(&emulator.url()).unwrap() };
    let spec = TcrSpec {
        endpoint: endpoint.clone(),
        region: "ap-guangzhou".into(),
        registry_id: "tcr-1".into(),
        token_type: TcrTokenType::LongTerm,
        token_type_written: true,
        description: None,
        registry: None,
    };
    let http = ticketd::http::client();
    let Issued::Token(t) = tcr::call(&http, &SystemClock, &spec, &credentials(&key)).await.unwrap() else { panic!() };
    let id = t.token_id.expect("a long-term token has a TokenId").to_string();
    assert_eq!(emulator.live_tcr_tokens(), [id.as_str()]);
    let temp = TcrSpec { token_type: TcrTokenType::Temp, ..spec.clone() };
    let Issued::Token(t) = tcr::call(&http, &SystemClock, &temp, &credentials(&key)).await.unwrap() else { panic!() };
    assert_eq!(t.token_id, None, "a temp token has none");
    assert_eq!(emulator.live_tcr_tokens().len(), 1, "temp tokens are not tracked");
    let revocation = |registry: &str, token_id: &str| tcr::Revocation {
        endpoint: endpoint.clone(),
        region: "ap-guangzhou".into(),
        registry_id: registry.into(),
        token_id: token_id.into(),
    };
    let delete = |r: tcr::Revocation| {
        let http = http.clone();
        let key = key.clone();
        async move { tcr::delete(&http, &SystemClock, &r, &credentials(&key)).await }
    };
    assert_eq!(delete(revocation("tcr-2", &id)).await, Ok(tcr::Deleted::AlreadyGone), "another registry's");
    assert_eq!(emulator.live_tcr_tokens(), [id.as_str()]);
    assert_eq!(delete(revocation("tcr-1", &id)).await, Ok(tcr::Deleted::Now));
    assert!(emulator.live_tcr_tokens().is_empty());
    assert_eq!(emulator.deleted_tcr_tokens(), [id.as_str()]);
    assert_eq!(delete(revocation("tcr-1", &id)).await, Ok(tcr::Deleted::AlreadyGone), "deleted already");
    let e = delete(revocation("tcr-1", "")).await.unwrap_err();
    assert!(e.to_string().contains("MissingParameter: TokenId is required"), "{e}");
    // Signed like any TC3 call: a wrong key is refused.
    let other = generate_tencent_key("AKID");
    let e = tcr::delete(&http, &SystemClock, &revocation("tcr-1", "x"), &credentials(&other)).await.unwrap_err();
    assert!(e.to_string().contains("AuthFailure.SecretIdNotFound"), "{e}");
    assert_eq!(emulator.stats().delete_instance_token, 4);
    emulator.stop();
}
