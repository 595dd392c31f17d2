//! Tencent Cloud TCR 2019-09-24 `CreateInstanceToken`, TC3-HMAC-SHA256 signed (spec §3).

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::apis::answer::{nonempty, parse, transport, username};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::tcr::spec::{TcrSpec, TcrTokenType};
use crate::clock::Clock;
use crate::credentials::Credentials;
use crate::secret::{Secret, scrub};
use crate::signing::tc3;
use crate::token::{Issued, ThinStr, TokenPart};

pub const CREATE_INSTANCE_TOKEN: &str = "TCR CreateInstanceToken";
pub const ACTION: &str = "CreateInstanceToken";
pub const VERSION: &str = "2019-09-24";
/// The signing service name (the first label of the real host; loopback endpoints have none).
pub const SERVICE: &str = "tcr";
/// A temp token's documented life, used only when the answer has no `ExpTime` and no JWT `exp`.
pub const TEMP_TOKEN_LIFETIME: Duration = Duration::from_secs(3_600);

/// A TC3 signature is accepted within this of the server's clock (spec §3.3,
/// `AuthFailure.SignatureExpire`): a server that took the request reads its clock at most this far
/// from ours, so an `ExpTime` earlier than this before the request was sent is no expiry it meant.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// An `ExpTime` at least this is epoch milliseconds (as seconds it would be past the year 5138);
/// a smaller one is read as seconds.
pub const MILLIS_FROM: u64 = 100_000_000_000;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Option<RawAnswer>,
}

/// The answer's fields as sent: the document types them in a table, and its own examples send
/// other JSON types (`"Username": 12345678`, `"ExpTime": "33987631"`), so each is read as any JSON
/// value and converted by [`text`] or [`exp_time`].
#[derive(Deserialize)]
struct RawAnswer {
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    #[serde(rename = "RequestId")]
    request_id: Option<serde_json::Value>,
    #[serde(rename = "Username")]
    username: Option<serde_json::Value>,
    #[serde(rename = "Token")]
    token: Option<serde_json::Value>,
    #[serde(rename = "ExpTime")]
    exp_time: Option<serde_json::Value>,
    #[serde(rename = "TokenId")]
    token_id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code")]
    code: Option<serde_json::Value>,
    #[serde(rename = "Message")]
    message: Option<serde_json::Value>,
}

/// A success answer, its fields read to one meaning whatever JSON type they came in.
pub struct Answer {
    pub username: String,
    pub token: String,
    /// `ExpTime` as sent (`None` when absent, `null` or `""`); see [`exp_time`] for its meaning.
    pub exp_time: Option<serde_json::Value>,
    /// `TokenId` (long-term tokens; `None` when absent, `null` or `""`).
    pub token_id: Option<String>,
    pub request_id: Option<String>,
}

/// The token is never shown.
impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("username", &self.username)
            .field("token", &"<redacted>")
            .field("exp_time", &self.exp_time)
            .field("token_id", &self.token_id)
            .field("request_id", &self.request_id)
            .finish()
    }
}

/// The JSON body sent (`docs/wire.md`): `RegistryId` (required); `TokenType` and `Desc` only when the
/// config sets `token_type` and `description`, as the SDK omits a field nobody set.
pub fn body(spec: &TcrSpec) -> Vec<u8> {
    let mut params = serde_json::Map::new();
    params.insert("RegistryId".into(), spec.registry_id.clone().into());
    if spec.token_type_written {
        params.insert("TokenType".into(), spec.token_type.as_str().into());
    }
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
    let sent_at = clock.now();
    let (status, bytes) = post(http, sent_at, &spec.endpoint, &spec.region, ACTION, body(spec), credentials)
        .await
        .map_err(|e| e.for_api(CREATE_INSTANCE_TOKEN, &spec.endpoint))?;
    let answer = answer(status, &bytes, &secrets_of(credentials))?;
    let expires_at = expires_at(spec.token_type, &answer, sent_at, |sent, why| {
        tracing::warn!(
            registry = %spec.registry_id,
            exp_time = %sent,
            request_id = answer.request_id.as_deref().unwrap_or("-"),
            why,
            "ignoring the answer's ExpTime: it cannot be the token's expiry"
        );
    })?;
    Ok(Issued::Token(TokenPart {
        value: Secret::new(answer.token),
        username: Some(answer.username.into()),
        token_id: match spec.token_type {
            TcrTokenType::LongTerm => answer.token_id.map(ThinStr::from),
            TcrTokenType::Temp => None,
        },
        issued_at: sent_at.into(),
        expires_at: expires_at.into(),
    }))
}

/// A failed send, before it is named for the operation.
enum SendError {
    Transport(reqwest::Error),
    Body(crate::http::BodyError),
}

impl SendError {
    fn for_api(self, api: &'static str, endpoint: &crate::config::Endpoint) -> ProviderError {
        match self {
            SendError::Transport(e) => transport(api, &endpoint.to_string(), e),
            SendError::Body(e) => ProviderError::Malformed { api, detail: e.to_string() },
        }
    }
}

/// One TC3-signed `POST /` of `action` with the JSON `body`: the status and the answer's bytes
/// (read within the size limit).
async fn post(
    http: &reqwest::Client,
    sent_at: SystemTime,
    endpoint: &crate::config::Endpoint,
    region: &str,
    action: &str,
    body: Vec<u8>,
    credentials: &Credentials,
) -> Result<(u16, Vec<u8>), SendError> {
    let host = endpoint.host_header();
    let request = tc3::Request {
        method: "POST",
        host: &host,
        service: SERVICE,
        action,
        version: VERSION,
        region,
        timestamp: sent_at,
        query: "",
        body: &body,
        content_type: "application/json",
    };
    let secret = credentials.access_key_secret.expose();
    let token = credentials.security_token.as_ref().map(Secret::expose);
    let headers = tc3::build_headers(&request, credentials.access_key_id.expose(), secret, token);
    let mut builder = http.post(endpoint.url("/")).body(body);
    for (name, value) in headers.as_slice() {
        builder = builder.header(*name, value);
    }
    let response = builder.send().await.map_err(SendError::Transport)?;
    let status = response.status().as_u16();
    let bytes = crate::http::read_limited(response).await.map_err(SendError::Body)?;
    Ok((status, bytes))
}

/// The secrets a request with `credentials` carried, to scrub from server text.
fn secrets_of(credentials: &Credentials) -> Vec<&str> {
    let mut secrets = vec![credentials.access_key_secret.expose()];
    secrets.extend(credentials.security_token.as_ref().map(Secret::expose));
    secrets
}

pub const DELETE_INSTANCE_TOKEN: &str = "TCR DeleteInstanceToken";
pub const DELETE_ACTION: &str = "DeleteInstanceToken";

/// The long-term token to revoke: where, and which.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    pub endpoint: crate::config::Endpoint,
    /// `X-TC-Region`.
    pub region: String,
    pub registry_id: String,
    pub token_id: String,
}

/// What a `DeleteInstanceToken` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The token is deleted now.
    Now,
    /// The API knows no such token (`ResourceNotFound*`): it was deleted before (a delete whose
    /// success was not saved before a restart) or never existed. Nothing is left to revoke.
    AlreadyGone,
}

/// The JSON body of a `DeleteInstanceToken`: exactly the SDK's `DeleteInstanceTokenRequest`
/// (`RegistryId`, `TokenId`).
pub fn delete_body(revocation: &Revocation) -> Vec<u8> {
    let mut params = serde_json::Map::new();
    params.insert("RegistryId".into(), revocation.registry_id.clone().into());
    params.insert("TokenId".into(), revocation.token_id.clone().into());
    serde_json::to_vec(&params).expect("a JSON map serializes")
}

/// Make one `DeleteInstanceToken` call: revoke the long-term token `revocation` names.
pub async fn delete(
    http: &reqwest::Client,
    clock: &dyn Clock,
    revocation: &Revocation,
    credentials: &Credentials,
) -> Result<Deleted, ProviderError> {
    let body = delete_body(revocation);
    let (status, bytes) =
        post(http, clock.now(), &revocation.endpoint, &revocation.region, DELETE_ACTION, body, credentials)
            .await
            .map_err(|e| e.for_api(DELETE_INSTANCE_TOKEN, &revocation.endpoint))?;
    delete_answer(status, &bytes, &secrets_of(credentials))
}

/// What a `DeleteInstanceToken` answer says: `{"Response":{"RequestId":…}}` on success; an error
/// in the same shape as CreateInstanceToken's (`ResourceNotFound*`: the token is gone already).
pub fn delete_answer(status: u16, body: &[u8], secrets: &[&str]) -> Result<Deleted, ProviderError> {
    match envelope(DELETE_INSTANCE_TOKEN, status, body, secrets) {
        Ok(_) => Ok(Deleted::Now),
        Err(ProviderError::Api { code, .. }) if code.starts_with("ResourceNotFound") => Ok(Deleted::AlreadyGone),
        Err(e) => Err(e),
    }
}

/// The success answer of a reply, or the error it is. Errors come as HTTP 200 with
/// `Response.Error` (`Code`, `Message` and `RequestId` read as text whatever their JSON type);
/// any other status is a server/network failure (as the SDK treats it).
fn envelope(api: &'static str, status: u16, body: &[u8], secrets: &[&str]) -> Result<RawAnswer, ProviderError> {
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
    let Some(error) = answer.error else { return Ok(answer) };
    // Only diagnostic: a `RequestId` of an unexpected type is left out, not fatal.
    let request_id = text(api, answer.request_id.as_ref(), "RequestId").ok().flatten();
    let code = text(api, error.code.as_ref(), "Code").ok().flatten().unwrap_or_default();
    let message = text(api, error.message.as_ref(), "Message").ok().flatten().unwrap_or_default();
    Err(ProviderError::Api {
        api,
        status,
        kind: classify(&code),
        code: scrub(if code.is_empty() { "-" } else { &code }, secrets),
        message: scrub(&message, secrets),
        request_id: request_id.map(|r| scrub(&r, secrets)),
        retry_after: None,
    })
}

/// When the token of `answer` expires: the earliest of its `ExpTime` (when plausible), its JWT
/// `exp`, and for a temp token the documented hour from `sent_at`. An `ExpTime` that cannot be an
/// expiry is passed to `ignored` (the value as sent, and why) and left out, as if absent.
pub fn expires_at(
    token_type: TcrTokenType,
    answer: &Answer,
    sent_at: SystemTime,
    ignored: impl FnOnce(&serde_json::Value, &str),
) -> Result<SystemTime, ProviderError> {
    let exp_time = match answer.exp_time.as_ref().map(|v| (v, exp_time(v, sent_at))) {
        None => None,
        Some((_, Ok(t))) => Some(t),
        Some((sent, Err(why))) => {
            ignored(sent, &why);
            None
        }
    };
    let fallback = match token_type {
        TcrTokenType::Temp => Some(sent_at + TEMP_TOKEN_LIFETIME),
        TcrTokenType::LongTerm => None,
    };
    [exp_time, crate::jwt::expiry(&answer.token), fallback].into_iter().flatten().min().ok_or_else(|| {
        let (api, detail) =
            (CREATE_INSTANCE_TOKEN, "no usable `ExpTime` and no JWT `exp` in the answer for a long-term token");
        match &answer.token_id {
            // The token exists at the vendor: revoked, or every retry would leave one more active.
            Some(token_id) => ProviderError::Unusable { api, detail: detail.into(), token_id: token_id.clone() },
            None => ProviderError::Malformed { api, detail: detail.into() },
        }
    })
}

/// The [`Answer`] of a reply, or the error it is. Errors come as HTTP 200 with `Response.Error`;
/// any other status is a server/network failure (as the SDK treats it).
pub fn answer(status: u16, body: &[u8], secrets: &[&str]) -> Result<Answer, ProviderError> {
    let api = CREATE_INSTANCE_TOKEN;
    let answer = envelope(api, status, body, secrets)?;
    let request_id = text(api, answer.request_id.as_ref(), "RequestId").ok().flatten();
    let token = nonempty(api, text(api, answer.token.as_ref(), "Token")?, "Token")?;
    let username = username(api, text(api, answer.username.as_ref(), "Username")?, "Username")?;
    let token_id = text(api, answer.token_id.as_ref(), "TokenId")?.filter(|id| !id.is_empty());
    let token_id = token_id.map(|id| nonempty(api, Some(id), "TokenId")).transpose()?;
    let exp_time = answer.exp_time.filter(|v| !v.is_null() && v.as_str() != Some(""));
    Ok(Answer { username, token, exp_time, token_id, request_id })
}

/// A text field of an answer: a JSON string as it is, or a whole number as its decimal digits
/// (the document's table types `Username` as a string and its examples send `12345678`).
/// `None` for an absent field or `null`. Any other type is malformed, named by field and type
/// only (the value may be a secret).
fn text(api: &'static str, value: Option<&serde_json::Value>, field: &str) -> Result<Option<String>, ProviderError> {
    use serde_json::Value;
    let kind = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => return Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => return Ok(Some(n.to_string())),
        Some(Value::Number(_)) => "a number with a fraction or exponent",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    };
    Err(ProviderError::Malformed {
        api,
        detail: format!("`{field}` in the answer is {kind}, not a string or a number"),
    })
}

/// What an `ExpTime` means: a whole number (a JSON integer, or a string of digits, as the
/// document's examples send it) of epoch **milliseconds** (spec §3.1, tccli's examples), or of
/// seconds below [`MILLIS_FROM`]. A value that cannot be the expiry of a token just issued (zero,
/// not a whole number, or earlier than [`MAX_CLOCK_SKEW`] before `sent_at`, such as the
/// document's `"33987631"`, which reads as 1971) is an error saying why; the caller ignores it.
pub fn exp_time(value: &serde_json::Value, sent_at: SystemTime) -> Result<SystemTime, String> {
    use serde_json::Value;
    let n = match value {
        Value::Number(n) => {
            n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19).map(|f| f as u64))
        }
        Value::String(s) => {
            let digits = s.trim();
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
        }
        _ => None,
    };
    let n = n.ok_or("it is not a whole number of seconds or milliseconds")?;
    if n == 0 {
        return Err("it is zero".into());
    }
    let (at, unit) = if n >= MILLIS_FROM {
        (SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(n)), "milliseconds")
    } else {
        (SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(n)), "seconds")
    };
    let at = at.ok_or("it is beyond any representable time")?;
    if at < sent_at.checked_sub(MAX_CLOCK_SKEW).unwrap_or(SystemTime::UNIX_EPOCH) {
        return Err(format!(
            "as epoch {unit} it is {}, before the request was sent at {}",
            crate::clock::rfc3339(at),
            crate::clock::rfc3339(sent_at)
        ));
    }
    Ok(at)
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

    /// An instant in the seed's time frame: a request sent on 2026-12-01.
    fn sent() -> SystemTime {
        from_unix_seconds(1_796_083_200)
    }

    fn parsed(body: &[u8]) -> Answer {
        answer(200, body, &[]).unwrap_or_else(|e| panic!("refused: {e}"))
    }

    /// The expiry `call` would give `answer`, and the `ExpTime` warnings it would log.
    fn expiry_of(token_type: TcrTokenType, answer: &Answer) -> (Result<SystemTime, ProviderError>, Vec<String>) {
        let mut warnings = Vec::new();
        let at = expires_at(token_type, answer, sent(), |value, why| warnings.push(format!("{value}: {why}")));
        (at, warnings)
    }

    #[test]
    fn exp_time_is_milliseconds_or_seconds_as_a_number_or_a_string_of_digits() {
        let at = from_unix_seconds(1735880997) + Duration::from_millis(750);
        let sent = from_unix_seconds(1735877397);
        for value in [
            serde_json::json!(1735880997750u64),
            serde_json::json!("1735880997750"),
            serde_json::json!(" 1735880997750 "),
            serde_json::json!(1735880997750.0),
        ] {
            assert_eq!(exp_time(&value, sent), Ok(at), "{value}");
        }
        let t = exp_time(&serde_json::json!(2051237057817u64), sent).unwrap();
        assert_eq!(crate::clock::unix_seconds(t), 2051237057);
        // Seconds, defensively.
        for value in [serde_json::json!(1735880997u64), serde_json::json!("1735880997")] {
            assert_eq!(exp_time(&value, sent), Ok(from_unix_seconds(1735880997)), "{value}");
        }
        // A server clock up to MAX_CLOCK_SKEW behind ours is believed.
        assert!(exp_time(&serde_json::json!("1735877097"), sent).is_ok());
    }

    /// Issue #17 item 1: an `ExpTime` that cannot be the expiry of a token just issued is an
    /// error saying why (the caller ignores it), never a token that expired in 1971.
    #[test]
    fn issue_17_an_implausible_exp_time_is_refused_with_a_reason() {
        let sent = sent();
        for (value, why) in [
            (serde_json::json!("33987631"), "as epoch seconds it is 1971-01-29T09:00:31Z, before the request was sent"),
            (serde_json::json!(33987631), "as epoch seconds it is 1971-01-29T09:00:31Z"),
            (serde_json::json!(1735880997750u64), "as epoch milliseconds it is 2025-01-03T05:09:57"),
            (serde_json::json!(0), "it is zero"),
            (serde_json::json!("0"), "it is zero"),
            (serde_json::json!("soon"), "not a whole number"),
            (serde_json::json!("-5"), "not a whole number"),
            (serde_json::json!(-5), "not a whole number"),
            (serde_json::json!(1.5), "not a whole number"),
            (serde_json::json!(true), "not a whole number"),
            (serde_json::json!({"ms": 1}), "not a whole number"),
            (serde_json::json!("99999999999999999999999"), "not a whole number"),
        ] {
            let e = exp_time(&value, sent).unwrap_err();
            assert!(e.contains(why), "{value}: {e}");
        }
    }

    /// Issue #17 item 1: the document's own example answers (pasted byte for byte from
    /// `../shared/seeds/003_9910a835ffaabec4.txt`, "Example1" and "Example2"): `Username` a number,
    /// `ExpTime` a string that reads as 1971, `TokenId` on a temp token too.
    #[test]
    fn issue_17_the_documents_example_answers_are_read() {
        // seeds/003_9910a835ffaabec4.txt, Example1 (temp), Output Example, byte for byte.
        let example1 = br#"    {
        "Response": {
            "Username": 12345678,
            "Token": "XXXX",
            "ExpTime": "33987631",
            "RequestId": "xx",
            "TokenId": "xx"
        }
    }
"#;
        let a = parsed(example1);
        assert_eq!((a.username.as_str(), a.token.as_str()), ("12345678", "XXXX"));
        assert_eq!((a.token_id.as_deref(), a.request_id.as_deref()), (Some("xx"), Some("xx")));
        assert_eq!(a.exp_time, Some(serde_json::json!("33987631")));
        // The ExpTime reads as 1971: ignored with a warning; the temp token gets its documented hour.
        let (at, warnings) = expiry_of(TcrTokenType::Temp, &a);
        assert_eq!(at, Ok(sent() + TEMP_TOKEN_LIFETIME));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("\"33987631\": as epoch seconds it is 1971-01-29"), "{warnings:?}");

        // seeds/003_9910a835ffaabec4.txt, Example2 (longterm), Output Example, byte for byte.
        let example2 = br#"    {
        "Response": {
            "Username": 12345678,
            "Token": "XXXX",
            "ExpTime": "33987631",
            "RequestId": "xx",
            "TokenId": "1456976"
        }
    }
"#;
        let a = parsed(example2);
        assert_eq!((a.username.as_str(), a.token.as_str()), ("12345678", "XXXX"));
        assert_eq!((a.token_id.as_deref(), a.request_id.as_deref()), (Some("1456976"), Some("xx")));
        // A long-term token with no usable expiry (and no JWT `exp`) is refused, as one with no
        // `ExpTime` at all: never a token that expired in 1971.
        let (at, warnings) = expiry_of(TcrTokenType::LongTerm, &a);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // The token exists at the vendor: the error names its `TokenId`, to be revoked.
        let e = at.unwrap_err();
        assert!(matches!(&e, ProviderError::Unusable { token_id, .. } if token_id == "1456976"), "{e}");
        assert!(e.to_string().contains("no usable `ExpTime` and no JWT `exp`"), "{e}");
        assert!(!e.to_string().contains("XXXX"), "{e}");
    }

    /// Issue #17 item 1: every field in the type the document's table gives it and in the type
    /// its examples send reads to the same meaning.
    #[test]
    fn issue_17_each_field_reads_the_same_in_the_tables_type_and_the_examples() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjIwNTEyMzcwNTd9.c"; // {"exp":2051237057}
        // The table's types: Username String, Token String, ExpTime Integer, TokenId String, RequestId String.
        let table = format!(
            r#"{{"Response":{{"Username":"12345678","Token":"{jwt}","ExpTime":2051237057817,"TokenId":"1456976","RequestId":"xx"}}}}"#
        );
        // The examples' types: Username a number, ExpTime a string of digits; and a number for
        // each other field, which the table types as a string of digits too.
        let examples = format!(
            r#"{{"Response":{{"Username":12345678,"Token":"{jwt}","ExpTime":"2051237057817","TokenId":1456976,"RequestId":7}}}}"#
        );
        let (a, b) = (parsed(table.as_bytes()), parsed(examples.as_bytes()));
        assert_eq!((a.username.as_str(), b.username.as_str()), ("12345678", "12345678"));
        assert_eq!((a.token.as_str(), b.token.as_str()), (jwt, jwt));
        assert_eq!((a.token_id.as_deref(), b.token_id.as_deref()), (Some("1456976"), Some("1456976")));
        assert_eq!((a.request_id.as_deref(), b.request_id.as_deref()), (Some("xx"), Some("7")));
        let (ta, wa) = expiry_of(TcrTokenType::LongTerm, &a);
        let (tb, wb) = expiry_of(TcrTokenType::LongTerm, &b);
        assert_eq!(ta, tb);
        assert_eq!(crate::clock::unix_seconds(ta.unwrap()), 2051237057);
        assert!(wa.is_empty() && wb.is_empty(), "{wa:?} {wb:?}");
        // `null` (the table: "this field may return null") and `""` are absent; a temp token
        // with no ExpTime and no JWT `exp` gets its documented hour, without a warning.
        let body = br#"{"Response":{"Username":"u","Token":"t","ExpTime":null,"TokenId":null,"RequestId":null}}"#;
        let a = parsed(body);
        assert!(a.exp_time.is_none() && a.token_id.is_none() && a.request_id.is_none());
        assert_eq!(expiry_of(TcrTokenType::Temp, &a), (Ok(sent() + TEMP_TOKEN_LIFETIME), vec![]));
        let a = parsed(br#"{"Response":{"Username":"u","Token":"t","ExpTime":"","TokenId":""}}"#);
        assert!(a.exp_time.is_none() && a.token_id.is_none());
        // A type no document shows is malformed, named by field and type, never by value.
        for (body, detail) in [
            (r#"{"Response":{"Username":true,"Token":"t"}}"#, "`Username` in the answer is a boolean"),
            (r#"{"Response":{"Username":"u","Token":["SECRETtok"]}}"#, "`Token` in the answer is an array"),
            (r#"{"Response":{"Username":1.5,"Token":"t"}}"#, "`Username` in the answer is a number with a fraction"),
            (r#"{"Response":{"Username":"u","Token":"t","TokenId":{"id":1}}}"#, "`TokenId` in the answer is an object"),
            (r#"{"Response":{"Username":"u","RequestId":"r"}}"#, "no `Token` in the answer"),
            (r#"{"Response":{"Username":null,"Token":"t"}}"#, "no `Username` in the answer"),
        ] {
            let e = answer(200, body.as_bytes(), &[]).unwrap_err();
            assert!(matches!(e, ProviderError::Malformed { .. }), "{e}");
            assert!(e.to_string().contains(detail), "{body}: {e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
        // An error's fields in other types are read too.
        let e = answer(200, br#"{"Response":{"Error":{"Code":"InternalError","Message":500},"RequestId":42}}"#, &[]);
        assert_eq!(
            e.err().map(|e| e.to_string()).as_deref(),
            Some("TCR CreateInstanceToken: HTTP 200 InternalError: 500 (request id 42)")
        );
    }

    #[test]
    fn a_success_answer_gives_username_token_and_expiry() {
        let body = br#"{"Response":{"Username":"100036950234","Token":"eyJa.eyJb.c","ExpTime":1735880997750,"TokenId":"","RequestId":"r"}}"#;
        let a = parsed(body);
        assert_eq!((a.username.as_str(), a.token.as_str()), ("100036950234", "eyJa.eyJb.c"));
        let at = exp_time(a.exp_time.as_ref().unwrap(), from_unix_seconds(1735877397)).unwrap();
        assert_eq!(crate::clock::unix_seconds(at), 1735880997);
        assert_eq!(a.token_id, None);
        let e = answer(200, br#"{"Response":{"Username":"u","RequestId":"r"}}"#, &[]).err().unwrap();
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
            assert_eq!(e.class(), crate::apis::error::ErrorClass::Transient { after: None });
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

    /// Issue 17 item 2: `DeleteInstanceToken` sends exactly the SDK's request fields, reads a
    /// success, and takes `ResourceNotFound` as "already gone".
    #[test]
    fn issue_17_delete_instance_token_body_and_answers() {
        let revocation = Revocation {
            endpoint: crate::config::Endpoint { base: url::Url::parse("https://tcr.tencentcloudapi.com").unwrap() },
            region: "ap-guangzhou".into(),
            registry_id: "tcr-abcd1234".into(),
            token_id: "1456976".into(),
        };
        assert_eq!(delete_body(&revocation), br#"{"RegistryId":"tcr-abcd1234","TokenId":"1456976"}"#);
        assert_eq!(delete_answer(200, br#"{"Response":{"RequestId":"r"}}"#, &[]), Ok(Deleted::Now));
        assert_eq!(delete_answer(200, br#"{"Response":{"RequestId":7}}"#, &[]), Ok(Deleted::Now));
        let gone = br#"{"Response":{"Error":{"Code":"ResourceNotFound","Message":"no such token"},"RequestId":"r"}}"#;
        assert_eq!(delete_answer(200, gone, &[]), Ok(Deleted::AlreadyGone));
        let e = delete_answer(
            200,
            br#"{"Response":{"Error":{"Code":"InternalError.DbError","Message":"m"},"RequestId":"r"}}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "TCR DeleteInstanceToken: HTTP 200 InternalError.DbError: m (request id r)");
        assert_eq!(kind(&e), ApiErrorKind::Transient);
        let e = delete_answer(200, br#"{"Response":{"Error":{"Code":"UnauthorizedOperation","Message":"m"}}}"#, &[]);
        assert_eq!(e.map_err(|e| kind(&e)), Err(ApiErrorKind::Permanent));
        assert_eq!(delete_answer(502, b"bad gateway", &[]).map_err(|e| kind(&e)), Err(ApiErrorKind::Transient));
        assert!(matches!(delete_answer(200, b"<html>", &[]), Err(ProviderError::Malformed { .. })));
    }

    #[test]
    fn the_body_carries_registry_type_and_description() {
        let spec = TcrSpec {
            endpoint: crate::config::Endpoint { base: url::Url::parse("https://tcr.tencentcloudapi.com").unwrap() },
            region: "ap-guangzhou".into(),
            registry_id: "tcr-abcd1234".into(),
            token_type: TcrTokenType::LongTerm,
            token_type_written: true,
            description: Some("ci".into()),
            registry: None,
        };
        assert_eq!(body(&spec), br#"{"Desc":"ci","RegistryId":"tcr-abcd1234","TokenType":"longterm"}"#);
    }

    /// Issue 17 item 4: a field the config does not set is not sent (the SDK omits unset fields).
    #[test]
    fn issue_17_the_body_carries_only_what_the_config_sets() {
        let mut spec = TcrSpec {
            endpoint: crate::config::Endpoint { base: url::Url::parse("https://tcr.tencentcloudapi.com").unwrap() },
            region: "ap-guangzhou".into(),
            registry_id: "tcr-abcd1234".into(),
            token_type: TcrTokenType::Temp,
            token_type_written: false,
            description: None,
            registry: None,
        };
        assert_eq!(body(&spec), br#"{"RegistryId":"tcr-abcd1234"}"#);
        spec.token_type_written = true;
        assert_eq!(body(&spec), br#"{"RegistryId":"tcr-abcd1234","TokenType":"temp"}"#);
    }
}
