//! TCR `POST /` with `X-TC-Action: CreateInstanceToken` or `DeleteInstanceToken`, TC3-HMAC-SHA256
//! checked from the request as received. Long-term tokens are live until deleted. Errors are HTTP 200 with `Response.Error`, as the real API answers.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::response::{IntoResponse, Response};

use crate::call::Received;
use crate::key::Vendor;
use crate::shared::Shared;
use crate::shared::unix_seconds;
use crate::verify::{mac, tc3};

/// `X-TC-Timestamp` must be within this of the server's clock.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
const TEMP_LIFETIME: Duration = Duration::from_secs(3_600);
/// The life of the long-term tokens it issues, unless a test sets another
/// ([`crate::Emulator::set_tcr_longterm_lifetime`]).
pub(super) const LONGTERM_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// The account id the emulator issues registry user names for.
pub(super) const USERNAME: &str = "100012345678";

struct TcError {
    code: &'static str,
    message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> TcError {
    TcError { code, message: message.into() }
}

fn request_id() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn authenticate(shared: &Shared, action: &str, call: &Received) -> Result<(), TcError> {
    let Received { method, uri, headers, body } = call;
    let header = |name: &str| call.header(name);
    if header("x-tc-action") != Some(action) {
        return Err(err("InvalidAction", "the requested action does not exist"));
    }
    if header("x-tc-version") != Some("2019-09-24") {
        return Err(err("NoSuchVersion", "the requested version does not exist"));
    }
    if header("x-tc-region").is_none_or(str::is_empty) {
        return Err(err("MissingParameter", "X-TC-Region is required"));
    }
    let auth =
        header("authorization").ok_or_else(|| err("AuthFailure.InvalidAuthorization", "Authorization is missing"))?;
    let auth = tc3::parse(auth)
        .map_err(|e| err("AuthFailure.InvalidAuthorization", format!("Authorization is malformed: {e}")))?;
    let timestamp = header("x-tc-timestamp")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .ok_or_else(|| err("MissingParameter", "X-TC-Timestamp is missing or invalid"))?;
    let now = unix_seconds((shared.clock)());
    if now.abs_diff(timestamp) > MAX_SKEW.as_secs() {
        return Err(err(
            "AuthFailure.SignatureExpire",
            format!("the signature expired: X-TC-Timestamp {timestamp}, server time {now}"),
        ));
    }
    if auth.service != "tcr" {
        return Err(err("AuthFailure.SignatureFailure", format!("service {} is not tcr", auth.service)));
    }
    let key = shared
        .key(&auth.secret_id, Vendor::Tencent)
        .ok_or_else(|| err("AuthFailure.SecretIdNotFound", "the SecretId does not exist"))?;
    if let Some(expected) = &key.security_token {
        match header("x-tc-token") {
            Some(t) if mac::same(expected.expose(), t) => {}
            _ => return Err(err("AuthFailure.TokenFailure", "the session token is missing or invalid")),
        }
    }
    tc3::verify(method, uri, headers, body, &auth, key.access_key_secret.expose())
        .map_err(|e| err("AuthFailure.SignatureFailure", format!("the signature does not match ({e})")))
}

pub(super) fn create_instance_token(shared: &Shared, call: &Received) -> Response {
    let result = (|| {
        let params = params(shared, "CreateInstanceToken", call)?;
        let registry = required(&params, "RegistryId")?;
        let (lifetime, token_id) = match params.get("TokenType").and_then(|v| v.as_str()) {
            None | Some("temp") => (TEMP_LIFETIME, String::new()),
            Some("longterm") => {
                let id = format!("tcr-token-{}", shared.next_serial());
                let lifetime = *shared.tcr_longterm_lifetime.lock().expect("longterm lifetime lock");
                shared.tcr_live.lock().expect("live tokens lock").insert(id.clone(), registry.to_string());
                (lifetime, id)
            }
            Some(other) => return Err(err("InvalidParameterValue", format!("TokenType {other} is invalid"))),
        };
        let now = (shared.clock)();
        let expires = now + lifetime;
        let token = shared.jwt(serde_json::json!({
            "iss": "tcr-emulator", "sub": USERNAME, "registry": registry,
            "iat": unix_seconds(now), "exp": unix_seconds(expires), "jti": shared.next_serial(),
        }));
        let exp_ms = expires.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        shared.stats.create_instance_token.fetch_add(1, Ordering::Relaxed);
        Ok(serde_json::json!({"Response": {
            "Username": USERNAME, "Token": token, "ExpTime": exp_ms, "TokenId": token_id, "RequestId": request_id(),
        }}))
    })();
    respond(shared, result)
}

/// The JSON parameters of an `action` request, once its signature checks out.
fn params(shared: &Shared, action: &str, call: &Received) -> Result<serde_json::Value, TcError> {
    authenticate(shared, action, call)?;
    serde_json::from_slice(&call.body).map_err(|_| err("InvalidParameter", "the body is not JSON"))
}

/// A required string parameter.
fn required<'a>(params: &'a serde_json::Value, name: &str) -> Result<&'a str, TcError> {
    params
        .get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err("MissingParameter", format!("{name} is required")))
}

/// The answer: the success body, or the error in the vendor's shape
/// (`{"Response":{"Error":{"Code","Message"},"RequestId"}}`, HTTP 200).
fn respond(shared: &Shared, result: Result<serde_json::Value, TcError>) -> Response {
    let body = result.unwrap_or_else(|e: TcError| {
        shared.rejected("a TCR call", e.code);
        serde_json::json!({"Response": {"Error": {"Code": e.code, "Message": e.message}, "RequestId": request_id()}})
    });
    axum::Json(body).into_response()
}

/// `DeleteInstanceToken` (`RegistryId`, `TokenId`): deletes a live long-term token of that
/// registry; `ResourceNotFound` for an id it does not know (never issued, a temp token's, another
/// registry's, or deleted already).
pub(super) fn delete_instance_token(shared: &Shared, call: &Received) -> Response {
    let result = (|| {
        let params = params(shared, "DeleteInstanceToken", call)?;
        shared.stats.delete_instance_token.fetch_add(1, Ordering::Relaxed);
        let registry = required(&params, "RegistryId")?;
        let token_id = required(&params, "TokenId")?;
        if let Some(unknown) = params.as_object().and_then(|o| o.keys().find(|k| *k != "RegistryId" && *k != "TokenId"))
        {
            return Err(err("UnknownParameter", format!("the parameter {unknown} is not known")));
        }
        let mut live = shared.tcr_live.lock().expect("live tokens lock");
        if live.get(token_id).is_none_or(|r| r != registry) {
            return Err(err("ResourceNotFound", format!("the token {token_id} of {registry} does not exist")));
        }
        live.remove(token_id);
        shared.tcr_deleted.lock().expect("deleted tokens lock").push(token_id.to_string());
        Ok(serde_json::json!({"Response": {"RequestId": request_id()}}))
    })();
    respond(shared, result)
}
