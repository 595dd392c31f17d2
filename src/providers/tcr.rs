//! Tencent Cloud TCR 2019-09-24 `CreateInstanceToken`, TC3-HMAC-SHA256 signed (spec §3).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::{ProviderError, error::ApiErrorKind, error::scrub, nonempty, parse, transport, username};
use crate::clock::Clock;
use crate::config::{TcrSpec, TcrTokenType};
use crate::credentials::Credentials;
use crate::secret::Secret;
use crate::signing::tc3;
use crate::token::{Issued, TokenPart};

pub const CREATE_INSTANCE_TOKEN: &str = "TCR CreateInstanceToken";
pub const ACTION: &str = "CreateInstanceToken";
pub const VERSION: &str = "2019-09-24";
/// The signing service name (the first label of the real host; loopback endpoints have none).
pub const SERVICE: &str = "tcr";
/// A temp token's documented life, used only when the answer has no `ExpTime` and no JWT `exp`.
pub const TEMP_TOKEN_LIFETIME: Duration = Duration::from_secs(3_600);

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Option<Answer>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    #[serde(rename = "Username")]
    username: Option<String>,
    #[serde(rename = "Token")]
    token: Option<String>,
    #[serde(rename = "ExpTime")]
    exp_time: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code")]
    code: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// The JSON body sent.
pub fn body(spec: &TcrSpec) -> Vec<u8> {
    let mut params = serde_json::Map::new();
    params.insert("RegistryId".into(), spec.registry_id.clone().into());
    params.insert("TokenType".into(), spec.token_type.as_str().into());
    if let Some(desc) = &spec.description {
        params.insert("Desc".into(), desc.clone().into());
    }
    serde_json::to_vec(&params).expect("a JSON map serializes")
}

/// Make one CreateInstanceToken call (the caller applies the rate limit).
pub async fn call(
    http: &reqwest::Client,
    clock: &dyn Clock,
    spec: &TcrSpec,
    credentials: &Credentials,
) -> Result<Issued, ProviderError> {
    let api = CREATE_INSTANCE_TOKEN;
    let body = body(spec);
    let host = spec.endpoint.host_header();
    let sent_at = clock.now();
    let request = tc3::Request {
        method: "POST",
        host: &host,
        service: SERVICE,
        action: ACTION,
        version: VERSION,
        region: &spec.region,
        timestamp: sent_at,
        query: "",
        body: &body,
        content_type: "application/json",
    };
    let secret = credentials.access_key_secret.expose();
    let token = credentials.security_token.as_ref().map(Secret::expose);
    let headers = tc3::build_headers(&request, credentials.access_key_id.expose(), secret, token);
    let mut builder = http.post(spec.endpoint.url("/")).body(body);
    for (name, value) in headers.as_slice() {
        builder = builder.header(*name, value);
    }
    let endpoint = spec.endpoint.to_string();
    let response = builder.send().await.map_err(|e| transport(api, &endpoint, e))?;
    let status = response.status().as_u16();
    let bytes = crate::http::read_limited(response).await.map_err(|detail| ProviderError::Malformed { api, detail })?;
    let mut secrets = vec![secret];
    secrets.extend(token);
    let (username, value, exp_time) = answer(status, &bytes, &secrets)?;
    let fallback = match spec.token_type {
        TcrTokenType::Temp => Some(sent_at + TEMP_TOKEN_LIFETIME),
        TcrTokenType::LongTerm => None,
    };
    let expires_at = [exp_time, crate::jwt::expiry(&value), fallback].into_iter().flatten().min().ok_or_else(|| {
        ProviderError::Malformed { api, detail: "no `ExpTime` and no JWT `exp` in the answer".into() }
    })?;
    Ok(Issued::Token(TokenPart {
        value: Secret::new(value),
        username: Some(username.into()),
        issued_at: sent_at.into(),
        expires_at: expires_at.into(),
    }))
}

/// `(Username, Token, ExpTime)` of an answer, or the error it is. Errors come as HTTP 200 with
/// `Response.Error`; any other status is a server/network failure (as the SDK treats it).
pub fn answer(
    status: u16,
    body: &[u8],
    secrets: &[&str],
) -> Result<(String, String, Option<SystemTime>), ProviderError> {
    let api = CREATE_INSTANCE_TOKEN;
    if status != 200 {
        let text = if body.is_empty() { "(empty answer)".into() } else { String::from_utf8_lossy(body).into_owned() };
        return Err(ProviderError::Api {
            api,
            status,
            code: "-".into(),
            message: scrub(&text, secrets),
            request_id: None,
            kind: ApiErrorKind::Transient,
            retry_after: None,
        });
    }
    let envelope: Envelope = parse(api, body)?;
    let answer = envelope
        .response
        .ok_or_else(|| ProviderError::Malformed { api, detail: "no `Response` in the answer".into() })?;
    if let Some(error) = answer.error {
        let code = error.code.unwrap_or_default();
        return Err(ProviderError::Api {
            api,
            status,
            kind: classify(&code),
            code: scrub(if code.is_empty() { "-" } else { &code }, secrets),
            message: scrub(error.message.as_deref().unwrap_or(""), secrets),
            request_id: answer.request_id.map(|r| scrub(&r, secrets)),
            retry_after: None,
        });
    }
    let token = nonempty(api, answer.token, "Token")?;
    let username = username(api, answer.username, "Username")?;
    Ok((username, token, answer.exp_time.as_ref().and_then(exp_time)))
}

/// `ExpTime` is epoch **milliseconds** (spec §3.1). A value too small to be milliseconds of this
/// century is read as seconds, defensively.
pub fn exp_time(value: &serde_json::Value) -> Option<SystemTime> {
    let n = value.as_u64().or_else(|| value.as_f64().filter(|f| *f > 0.0).map(|f| f as u64))?;
    if n == 0 {
        return None;
    }
    let millis = if n < 100_000_000_000 { n.saturating_mul(1000) } else { n };
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

/// Tencent error codes (spec §3.3).
pub fn classify(code: &str) -> ApiErrorKind {
    match code {
        "AuthFailure.SignatureExpire" => ApiErrorKind::ClockSkew,
        "RequestLimitExceeded" => ApiErrorKind::Transient,
        c if c.starts_with("InternalError") || c.starts_with("RequestLimitExceeded") => ApiErrorKind::Transient,
        c if c.starts_with("AuthFailure")
            || c.starts_with("InvalidParameter")
            || c.starts_with("ResourceNotFound")
            || c.starts_with("UnauthorizedOperation")
            || c.starts_with("MissingParameter") =>
        {
            ApiErrorKind::Permanent
        }
        _ => ApiErrorKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;

    fn kind(e: &ProviderError) -> ApiErrorKind {
        e.api_kind().unwrap_or_else(|| panic!("not an API error: {e}"))
    }

    #[test]
    fn exp_time_is_milliseconds() {
        let t = exp_time(&serde_json::json!(1735880997750u64)).unwrap();
        assert_eq!(t, from_unix_seconds(1735880997) + Duration::from_millis(750));
        let t = exp_time(&serde_json::json!(2051237057817u64)).unwrap();
        assert_eq!(crate::clock::unix_seconds(t), 2051237057);
        // Seconds, defensively.
        assert_eq!(exp_time(&serde_json::json!(1735880997u64)).unwrap(), from_unix_seconds(1735880997));
        assert_eq!(exp_time(&serde_json::json!(0)), None);
        assert_eq!(exp_time(&serde_json::json!("soon")), None);
    }

    #[test]
    fn a_success_answer_gives_username_token_and_expiry() {
        let body = br#"{"Response":{"Username":"100036950234","Token":"eyJa.eyJb.c","ExpTime":1735880997750,"TokenId":"","RequestId":"r"}}"#;
        let (user, token, exp) = answer(200, body, &[]).unwrap();
        assert_eq!((user.as_str(), token.as_str()), ("100036950234", "eyJa.eyJb.c"));
        assert_eq!(crate::clock::unix_seconds(exp.unwrap()), 1735880997);
        let e = answer(200, br#"{"Response":{"Username":"u","RequestId":"r"}}"#, &[]).unwrap_err();
        assert!(matches!(e, ProviderError::Malformed { .. }));
    }

    /// Issue #16 item 14: a token with a control character, or a user name with a `:` (which
    /// would break the docker `auth` entry), is a malformed answer, named by field only.
    #[test]
    fn issue_16_control_characters_and_a_colon_in_the_username_are_malformed() {
        for (user, token, expected) in [
            (
                "100036950234",
                "eyJa.eyJb\n.c",
                "`Token` in the answer holds a control character (U+000A) at character 10",
            ),
            (
                "100036950234",
                "eyJa\u{0}.eyJb.c",
                "`Token` in the answer holds a control character (U+0000) at character 5",
            ),
            ("1000:36950234", "eyJa.eyJb.c", "`Username` in the answer holds a `:` at character 5"),
            ("1000\r36950234", "eyJa.eyJb.c", "`Username` in the answer holds a control character (U+000D)"),
        ] {
            let body = serde_json::json!({"Response": {"Username": user, "Token": token, "ExpTime": 1735880997750u64}});
            let e = answer(200, body.to_string().as_bytes(), &[]).unwrap_err();
            assert!(matches!(e, ProviderError::Malformed { .. }), "{e}");
            let text = e.to_string();
            assert!(text.contains(expected), "{text}");
            assert!(!text.contains("eyJa") && !text.contains("3695"), "{text}");
            assert_eq!(e.retry_class(), crate::scheduler::timing::RetryClass::Transient { after: None });
        }
    }

    #[test]
    fn error_answers_on_http_200_are_classified() {
        let err = |code: &str| {
            let body = format!(r#"{{"Response":{{"Error":{{"Code":"{code}","Message":"m"}},"RequestId":"rid"}}}}"#);
            answer(200, body.as_bytes(), &[]).unwrap_err()
        };
        assert_eq!(kind(&err("RequestLimitExceeded")), ApiErrorKind::Transient);
        assert_eq!(kind(&err("InternalError")), ApiErrorKind::Transient);
        assert_eq!(kind(&err("InternalError.DbError")), ApiErrorKind::Transient);
        assert!(err("AuthFailure.SignatureExpire").is_clock_skew());
        assert_eq!(kind(&err("AuthFailure.SignatureFailure")), ApiErrorKind::Permanent);
        assert_eq!(kind(&err("AuthFailure.SecretIdNotFound")), ApiErrorKind::Permanent);
        assert_eq!(kind(&err("InvalidParameterValue")), ApiErrorKind::Permanent);
        assert_eq!(kind(&err("ResourceNotFound")), ApiErrorKind::Permanent);
        assert_eq!(kind(&err("UnauthorizedOperation")), ApiErrorKind::Permanent);
        assert_eq!(
            err("ResourceNotFound").to_string(),
            "TCR CreateInstanceToken: HTTP 200 ResourceNotFound: m (request id rid)"
        );
        let e = answer(502, b"bad gateway", &[]).unwrap_err();
        assert_eq!(kind(&e), ApiErrorKind::Transient);
    }

    #[test]
    fn server_text_is_scrubbed() {
        let body = br#"{"Response":{"Error":{"Code":"AuthFailure.TokenFailure","Message":"token SESSIONtok123 bad"},"RequestId":"r"}}"#;
        let e = answer(200, body, &["SESSIONtok123"]).unwrap_err().to_string();
        assert!(!e.contains("SESSIONtok123"), "{e}");
    }

    #[test]
    fn the_body_carries_registry_type_and_description() {
        let spec = TcrSpec {
            endpoint: crate::config::Endpoint { base: url::Url::parse("https://tcr.tencentcloudapi.com").unwrap() },
            region: "ap-guangzhou".into(),
            registry_id: "tcr-abcd1234".into(),
            token_type: TcrTokenType::LongTerm,
            description: Some("ci".into()),
            registry: None,
        };
        assert_eq!(body(&spec), br#"{"Desc":"ci","RegistryId":"tcr-abcd1234","TokenType":"longterm"}"#);
    }
}
