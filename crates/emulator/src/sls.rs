//! The SLS ticket API (`POST /tickets`, `POST /token/refresh`): v1 signatures (hmac-sha256,
//! hmac-sha1) checked from the request as received.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::call::Received;
use crate::shared::Shared;
use crate::shared::unix_seconds;
use crate::verify::mac;
use crate::verify::sls_v1::{self, V1Mac};

/// SLS rejects requests whose `Date` is further than this from its clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
const MAX_TICKET_SECS: u64 = 2_592_000;
const MAX_TOKEN_SECS: u64 = 86_400;

struct SlsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> SlsError {
    SlsError { status: StatusCode::from_u16(status).expect("valid status"), code, message: message.into() }
}

impl IntoResponse for SlsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"errorCode": self.code, "errorMessage": self.message});
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert("x-log-requestid", request_id().parse().expect("hex is a header value"));
        response
    }
}

fn request_id() -> String {
    hex::encode_upper(rand::random::<[u8; 12]>())
}

fn ok(body: serde_json::Value) -> Response {
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert("x-log-requestid", request_id().parse().expect("hex is a header value"));
    response
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Check a v1 request's date, key, STS token and signature.
fn authenticate(shared: &Shared, call: &Received) -> Result<(), SlsError> {
    let Received { method, uri, headers, body } = call;
    let header = |name: &str| call.header(name);
    if header("x-log-apiversion").is_none() {
        return Err(err(400, "MissingAPIVersion", "x-log-apiversion is missing"));
    }
    let date_text =
        header("date").or_else(|| header("x-log-date")).ok_or_else(|| err(400, "MissingDate", "date is missing"))?;
    let date = httpdate::parse_http_date(date_text)
        .map_err(|_| err(400, "InvalidDateFormat", format!("date {date_text} is invalid")))?;
    let now = (shared.clock)();
    let skew = now.duration_since(date).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(err(
            400,
            "RequestTimeExpired",
            format!("request time {date_text} is expired, server time is {}", httpdate::fmt_http_date(now)),
        ));
    }
    if header("x-log-bodyrawsize").and_then(|v| v.parse::<usize>().ok()) != Some(body.len()) {
        return Err(err(400, "PostBodyInvalid", "x-log-bodyrawsize does not match the body"));
    }
    let content_md5 = header("content-md5").unwrap_or("");
    if !body.is_empty() && content_md5 != sls_v1::content_md5(body) {
        return Err(err(400, "InvalidContentMD5", "content-md5 does not match the body"));
    }
    let auth = header("authorization").ok_or_else(|| err(401, "Unauthorized", "authorization is missing"))?;
    let Some((access_key_id, signature)) = sls_v1::parse(auth) else {
        return Err(err(
            401,
            "Unauthorized",
            "authorization is not `LOG <AccessKeyId>:<Signature>` (the emulator checks v1 only)",
        ));
    };
    let mac = V1Mac::named(header("x-log-signaturemethod"))
        .ok_or_else(|| err(400, "ParameterInvalid", "x-log-signaturemethod must be hmac-sha1 or hmac-sha256"))?;
    let key = shared
        .key(&access_key_id, crate::key::Vendor::Alibaba)
        .ok_or_else(|| err(401, "InvalidAccessKeyId", "the AccessKeyId does not exist"))?;
    if let Some(expected) = &key.security_token {
        match header("x-acs-security-token") {
            Some(t) if mac::same(expected.expose(), t) => {}
            Some(_) => return Err(err(401, "SecurityTokenExpired", "the security token is invalid or expired")),
            None => return Err(err(401, "Unauthorized", "temporary credentials need x-acs-security-token")),
        }
    }
    let expected = sls_v1::expected(method.as_str(), uri, headers, date_text, key.access_key_secret.expose(), mac);
    if !mac::same(&expected, &signature) {
        return Err(err(401, "SignatureNotMatch", format!("signature {signature} not match")));
    }
    Ok(())
}

fn seconds_param(query: &[(String, String)], key: &str, max: u64) -> Result<u64, SlsError> {
    match param(query, key) {
        None => Ok(86_400.min(max)),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(err(400, "ParameterInvalid", format!("{key} must be an integer from 0 to {max}"))),
        },
    }
}

fn reject(shared: &Shared, e: SlsError) -> Response {
    shared.rejected("an SLS call", e.code);
    e.into_response()
}

pub(super) async fn create_ticket(State(shared): State<Arc<Shared>>, call: Received) -> Response {
    let result = (|| {
        authenticate(&shared, &call)?;
        let q = call.query();
        let ticket_secs = seconds_param(&q, "expirationTime", MAX_TICKET_SECS)?;
        let token_secs = seconds_param(&q, "accessTokenExpirationTime", MAX_TOKEN_SECS)?;
        let now = (shared.clock)();
        let expires = now + Duration::from_secs(ticket_secs);
        let ticket = shared.jwt(serde_json::json!({
            "iss": "sls-emulator", "typ": "ticket", "iat": unix_seconds(now), "exp": unix_seconds(expires),
            "ate": token_secs, "jti": shared.next_serial(),
        }));
        shared.tickets.lock().expect("ticket lock").insert(ticket.clone(), expires);
        shared.stats.create_ticket.fetch_add(1, Ordering::Relaxed);
        Ok(ok(serde_json::json!({ "ticket": ticket })))
    })();
    result.unwrap_or_else(|e| reject(&shared, e))
}

pub(super) async fn refresh_token(State(shared): State<Arc<Shared>>, call: Received) -> Response {
    let result = (|| {
        authenticate(&shared, &call)?;
        let q = call.query();
        let token_secs = seconds_param(&q, "accessTokenExpirationTime", MAX_TOKEN_SECS)?;
        let ticket = param(&q, "ticket").ok_or_else(|| err(400, "ParameterInvalid", "ticket is missing"))?;
        let now = (shared.clock)();
        let ticket_expires = shared.tickets.lock().expect("ticket lock").get(ticket).copied();
        let ticket_expires: SystemTime = match ticket_expires {
            Some(t) if t > now => t,
            Some(_) => return Err(err(401, "Unauthorized", "the ticket has expired")),
            None => return Err(err(401, "Unauthorized", "the ticket is invalid")),
        };
        let expires = (now + Duration::from_secs(token_secs)).min(ticket_expires);
        let token = shared.jwt(serde_json::json!({
            "iss": "sls-emulator", "typ": "access", "iat": unix_seconds(now), "exp": unix_seconds(expires), "jti": shared.next_serial(),
        }));
        shared.stats.refresh_token.fetch_add(1, Ordering::Relaxed);
        Ok(ok(serde_json::json!({ "accessToken": token })))
    })();
    result.unwrap_or_else(|e| reject(&shared, e))
}
