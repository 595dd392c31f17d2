//! Alibaba Cloud PAI-DSW 2022-01-01 `GetToken`, ACS3-HMAC-SHA256 signed (spec §2).

use std::time::Duration;

use serde::Deserialize;

use crate::apis::answer::{nonce, parse, transport};
use crate::apis::dsw::spec::DswSpec;
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::clock::Clock;
use crate::credentials::Credentials;
use crate::secret::{Secret, scrub};
use crate::signing::acs3;
use crate::token::{Issued, TokenPart};

pub const GET_TOKEN: &str = "DSW GetToken";
pub const PATH: &str = "/api/v2/tokens";
pub const ACTION: &str = "GetToken";
pub const VERSION: &str = "2022-01-01";

/// The 200 answer, and the POP error body (upper- or lower-case keys).
#[derive(Deserialize, Default)]
struct Body {
    #[serde(rename = "RequestId", alias = "requestId")]
    request_id: Option<String>,
    #[serde(rename = "Success", alias = "success")]
    success: Option<bool>,
    #[serde(rename = "Code", alias = "code")]
    code: Option<serde_json::Value>,
    #[serde(rename = "Message", alias = "message")]
    message: Option<String>,
    #[serde(rename = "Token", alias = "token")]
    token: Option<String>,
}

/// Make one GetToken call. The token's expiry counts from when the request was sent: the answer
/// carries none.
pub async fn call(
    http: &reqwest::Client,
    clock: &dyn Clock,
    spec: &DswSpec,
    credentials: &Credentials,
) -> Result<Issued, ProviderError> {
    let api = GET_TOKEN;
    let expire = spec.token_lifetime.as_secs().to_string();
    let query = query(spec, &expire);
    let mut url = spec.endpoint.url(PATH);
    url.set_query(Some(&acs3::canonical_query(&query)));
    let host = spec.endpoint.host_header();
    let nonce = nonce();
    let sent_at = clock.now();
    let request = acs3::Request {
        method: "GET",
        host: &host,
        path: url.path(),
        query: &query,
        action: ACTION,
        version: VERSION,
        date: sent_at,
        nonce: &nonce,
        body: b"",
        content_type: None,
    };
    let secret = credentials.access_key_secret.expose();
    let token = credentials.security_token.as_ref().map(Secret::expose);
    let headers = acs3::build_headers(&request, credentials.access_key_id.expose(), secret, token);
    let mut builder = http.get(url.clone()).header("accept", "application/json");
    for (name, value) in headers.as_slice() {
        builder = builder.header(*name, value);
    }
    let endpoint = spec.endpoint.to_string();
    let response = builder.send().await.map_err(|e| transport(api, &endpoint, e))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("x-acs-retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs);
    let body = crate::http::read_limited(response)
        .await
        .map_err(|e| ProviderError::Malformed { api, detail: e.to_string() })?;
    let mut secrets = vec![secret];
    secrets.extend(token);
    answer(status, retry_after, &body, &secrets).map(|value| {
        Issued::Token(TokenPart {
            value: Secret::new(value),
            username: None,
            token_id: None,
            issued_at: sent_at.into(),
            expires_at: (sent_at + spec.token_lifetime).into(),
        })
    })
}

/// The query parameters of a GetToken call (`docs/wire.md`): `InstanceId` (required) and `ExpireTime`
/// always (the answer carries no expiry, so ticketd fixes the token's life itself), `Type` and `Audience`
/// only when the config sets them, as the SDK omits a field nobody set. `expire` is the lifetime in seconds.
pub fn query<'a>(spec: &'a DswSpec, expire: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut query: Vec<(&str, &str)> = vec![("InstanceId", &spec.instance_id), ("ExpireTime", expire)];
    if let Some(kind) = spec.token_type {
        query.push(("Type", kind.as_str()));
    }
    if let Some(audience) = &spec.audience {
        query.push(("Audience", audience));
    }
    query
}

/// The token in a GetToken answer, or the error it is: `Success=false` or a POP error body is an
/// error even on HTTP 200.
pub fn answer(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    secrets: &[&str],
) -> Result<String, ProviderError> {
    let api = GET_TOKEN;
    let parsed: Option<Body> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        let parsed: Body = match parsed {
            Some(p) => p,
            None => parse(api, body)?,
        };
        let code = code_text(&parsed.code);
        let is_error_code = !code.is_empty() && code != "200" && !code.eq_ignore_ascii_case("ok");
        if parsed.success == Some(true) && !is_error_code {
            return crate::apis::answer::nonempty(api, parsed.token, "Token");
        }
        if parsed.success.is_none() && !is_error_code {
            return Err(ProviderError::Malformed { api, detail: "no `Success` in the answer".into() });
        }
        return Err(error(status, retry_after, Some(parsed), body, secrets));
    }
    Err(error(status, retry_after, parsed, body, secrets))
}

fn code_text(code: &Option<serde_json::Value>) -> String {
    match code {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn error(
    status: u16,
    retry_after: Option<Duration>,
    parsed: Option<Body>,
    body: &[u8],
    secrets: &[&str],
) -> ProviderError {
    let parsed = parsed.unwrap_or_default();
    let mut code = code_text(&parsed.code);
    if code.is_empty() && parsed.success == Some(false) {
        code = "Success=false".into();
    }
    let message = parsed.message.clone().filter(|m| !m.is_empty()).unwrap_or_else(|| {
        if body.is_empty() { "(empty answer)".to_string() } else { String::from_utf8_lossy(body).into_owned() }
    });
    let mut kind = classify(status, &code);
    // A server-given retry-after makes it throttling, as the SDK does.
    if retry_after.is_some() && kind == ApiErrorKind::Permanent {
        kind = ApiErrorKind::Transient;
    }
    ProviderError::Api {
        api: GET_TOKEN,
        status,
        code: scrub(if code.is_empty() { "-" } else { &code }, secrets),
        message: scrub(&message, secrets),
        request_id: parsed.request_id.map(|r| scrub(&r, secrets)),
        kind,
        retry_after,
    }
}

/// POP error codes (spec §2.3).
pub fn classify(status: u16, code: &str) -> ApiErrorKind {
    match code {
        "InvalidTimeStamp.Expired" => ApiErrorKind::ClockSkew,
        "ServiceUnavailable" | "InternalError" | "SignatureNonceUsed" => ApiErrorKind::Transient,
        c if c.starts_with("Throttling") => ApiErrorKind::Transient,
        "SignatureDoesNotMatch" | "IncompleteSignature" | "MissingParameter" | "NoPermission" => {
            ApiErrorKind::Permanent
        }
        c if c.starts_with("InvalidAccessKeyId")
            || c.starts_with("Forbidden")
            || c.starts_with("InvalidParameter")
            || c.starts_with("InvalidSecurityToken")
            || c.starts_with("InvalidAction") =>
        {
            ApiErrorKind::Permanent
        }
        _ if status >= 500 || status == 429 || status == 408 => ApiErrorKind::Transient,
        _ => ApiErrorKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &ProviderError) -> ApiErrorKind {
        e.api_kind().unwrap_or_else(|| panic!("not an API error: {e}"))
    }

    #[test]
    fn a_success_answer_gives_the_token() {
        let body = br#"{"RequestId":"r1","Success":true,"Code":"200","Message":"","Token":"eyJa.eyJb.c"}"#;
        assert_eq!(answer(200, None, body, &[]).unwrap(), "eyJa.eyJb.c");
        let body = br#"{"RequestId":"r1","Success":true,"Token":"tok"}"#;
        assert_eq!(answer(200, None, body, &[]).unwrap(), "tok");
    }

    /// Issue #16 item 14: a token with a control character is a malformed answer.
    #[test]
    fn issue_16_a_token_with_a_control_character_is_malformed() {
        for token in ["eyJa.eyJb.c\n", "eyJa\r\nX-Evil: 1", "eyJa\u{0}b", "eyJa\u{7f}b", "eyJa\u{85}b"] {
            let body = serde_json::json!({"RequestId": "r", "Success": true, "Token": token});
            let e = answer(200, None, body.to_string().as_bytes(), &[]).unwrap_err();
            assert!(matches!(e, ProviderError::Malformed { .. }), "{e}");
            assert!(e.to_string().contains("`Token` in the answer holds a control character"), "{e}");
            assert!(!e.to_string().contains("eyJa"), "{e}");
        }
        let body = br#"{"RequestId":"r","Success":true,"Token":"eyJ\u00e9a.b"}"#;
        assert_eq!(answer(200, None, body, &[]).unwrap(), "eyJ\u{e9}a.b", "non-ASCII is not a control character");
    }

    #[test]
    fn success_false_and_pop_bodies_on_http_200_are_errors() {
        let body = br#"{"RequestId":"r2","Success":false,"Code":"ValidationError","Message":"bad instance"}"#;
        let e = answer(200, None, body, &[]).unwrap_err();
        assert_eq!(kind(&e), ApiErrorKind::Permanent);
        assert_eq!(e.to_string(), "DSW GetToken: HTTP 200 ValidationError: bad instance (request id r2)");
        let body = br#"{"RequestId":"r3","HostId":"h","Code":"Throttling.User","Message":"slow down","Recommend":"x"}"#;
        let e = answer(200, None, body, &[]).unwrap_err();
        assert_eq!(kind(&e), ApiErrorKind::Transient);
        let e = answer(200, None, br#"{"Success":false}"#, &[]).unwrap_err();
        assert!(e.to_string().contains("Success=false"), "{e}");
        let e = answer(200, None, br#"{"Success":true,"Token":""}"#, &[]).unwrap_err();
        assert!(matches!(e, ProviderError::Malformed { .. }));
        let e = answer(200, None, b"<html>", &[]).unwrap_err();
        assert!(matches!(e, ProviderError::Malformed { .. }));
    }

    #[test]
    fn pop_errors_are_classified_and_retry_after_is_honoured() {
        let pop = |status, code: &str| {
            let body = format!(r#"{{"RequestId":"r","HostId":"h","Code":"{code}","Message":"m","Recommend":"u"}}"#);
            answer(status, None, body.as_bytes(), &[]).unwrap_err()
        };
        assert_eq!(kind(&pop(400, "SignatureDoesNotMatch")), ApiErrorKind::Permanent);
        assert_eq!(kind(&pop(404, "InvalidAccessKeyId.NotFound")), ApiErrorKind::Permanent);
        assert_eq!(kind(&pop(403, "Forbidden.RAM")), ApiErrorKind::Permanent);
        assert_eq!(kind(&pop(400, "MissingParameter")), ApiErrorKind::Permanent);
        assert_eq!(kind(&pop(400, "InvalidParameter.InstanceId")), ApiErrorKind::Permanent);
        assert_eq!(kind(&pop(400, "Throttling")), ApiErrorKind::Transient);
        assert_eq!(kind(&pop(503, "ServiceUnavailable")), ApiErrorKind::Transient);
        assert_eq!(kind(&pop(500, "InternalError")), ApiErrorKind::Transient);
        assert_eq!(kind(&pop(502, "Whatever")), ApiErrorKind::Transient);
        assert!(pop(400, "InvalidTimeStamp.Expired").is_clock_skew());
        let body = br#"{"Code":"Throttling.User","Message":"m"}"#;
        let e = answer(400, Some(Duration::from_secs(7)), body, &[]).unwrap_err();
        assert_eq!(e.class(), crate::apis::error::ErrorClass::Transient { after: Some(Duration::from_secs(7)) });
        let e = answer(502, None, b"", &[]).unwrap_err();
        assert_eq!(kind(&e), ApiErrorKind::Transient);
    }

    #[test]
    fn server_text_is_scrubbed_of_the_request_secrets() {
        let body = br#"{"Code":"SignatureDoesNotMatch","Message":"string to sign used key SKsecret123 and token STStoken456"}"#;
        let e = answer(400, None, body, &["SKsecret123", "STStoken456"]).unwrap_err().to_string();
        assert!(!e.contains("SKsecret123") && !e.contains("STStoken456"), "{e}");
    }
}
