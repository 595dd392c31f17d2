//! PAI-DSW `GET /api/v2/tokens` (GetToken), ACS3-HMAC-SHA256 checked from the request as received,
//! with POP error bodies.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::call::Received;
use crate::key::Vendor;
use crate::shared::Shared;
use crate::shared::rfc3339;
use crate::shared::unix_seconds;
use crate::verify::{acs3, mac};

pub(super) const PATH: &str = "/api/v2/tokens";
/// `x-acs-date` must be within this of the server's clock.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
const MAX_EXPIRE_SECS: u64 = 7 * 86_400;

struct PopError {
    status: u16,
    code: &'static str,
    message: String,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> PopError {
    PopError { status, code, message: message.into() }
}

fn request_id() -> String {
    let b = rand::random::<[u8; 16]>();
    let h = hex::encode_upper(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl IntoResponse for PopError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "RequestId": request_id(),
            "HostId": "pai-dsw.emulator.aliyuncs.com",
            "Code": self.code,
            "Message": self.message,
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}", self.code),
        });
        (StatusCode::from_u16(self.status).expect("valid status"), axum::Json(body)).into_response()
    }
}

fn authenticate(shared: &Shared, call: &Received) -> Result<(), PopError> {
    let Received { method, uri, headers, body } = call;
    let header = |name: &str| call.header(name);
    if header("x-acs-action") != Some("GetToken") || header("x-acs-version") != Some("2022-01-01") {
        return Err(err(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ));
    }
    let auth = header("authorization").ok_or_else(|| err(400, "IncompleteSignature", "Authorization is missing."))?;
    let auth = acs3::parse(auth)
        .map_err(|e| err(400, "IncompleteSignature", format!("The request signature does not conform: {e}")))?;
    let date_text = header("x-acs-date").ok_or_else(|| err(400, "MissingParameter", "x-acs-date is missing."))?;
    let date = humantime::parse_rfc3339(date_text).map_err(|_| {
        err(400, "InvalidTimeStamp.Format", format!("x-acs-date {date_text} is not YYYY-MM-DDTHH:MM:SSZ"))
    })?;
    let now = (shared.clock)();
    let skew = now.duration_since(date).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(err(
            400,
            "InvalidTimeStamp.Expired",
            format!(
                "Specified time stamp or date value is expired. x-acs-date {date_text}, server time {}",
                rfc3339(now)
            ),
        ));
    }
    let key = shared
        .key(&auth.credential, Vendor::Alibaba)
        .ok_or_else(|| err(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))?;
    if let Some(expected) = &key.security_token {
        match header("x-acs-security-token") {
            Some(t) if mac::same(expected.expose(), t) => {}
            Some(_) => return Err(err(400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken is invalid.")),
            None => return Err(err(400, "MissingSecurityToken", "STS credentials need x-acs-security-token.")),
        }
    }
    acs3::verify(method, uri, headers, body, &auth, key.access_key_secret.expose()).map_err(|e| {
        err(400, "SignatureDoesNotMatch", format!("Specified signature does not match our calculation ({e})."))
    })?;
    // The nonce is consumed only by a request that verifies, so nobody can burn another's nonce.
    let nonce = header("x-acs-signature-nonce")
        .ok_or_else(|| err(400, "MissingParameter", "x-acs-signature-nonce is missing."))?;
    if !shared.nonces.lock().expect("nonce lock").insert(nonce.to_string()) {
        return Err(err(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    Ok(())
}

/// The parameters of `GetTokenRequest` (the SDK's request model), with the names' case as sent.
pub(super) const PARAMETERS: [&str; 4] = ["InstanceId", "ExpireTime", "Type", "Audience"];

/// Each parameter is one the request model has, named with its case, and given at most once. The real
/// API's answer to an unknown name is not documented; the emulator refuses it so that a misspelt or
/// extra parameter fails a test instead of passing unseen.
fn check_names(query: &[(String, String)]) -> Result<(), PopError> {
    for (i, (name, _)) in query.iter().enumerate() {
        if !PARAMETERS.contains(&name.as_str()) {
            return Err(err(400, "InvalidParameter", format!("The parameter {name} is not valid for GetToken.")));
        }
        if query[..i].iter().any(|(earlier, _)| earlier == name) {
            return Err(err(400, "InvalidParameter", format!("The parameter {name} is given twice.")));
        }
    }
    Ok(())
}

pub(super) async fn get_token(State(shared): State<Arc<Shared>>, call: Received) -> Response {
    let result = (|| {
        authenticate(&shared, &call)?;
        let query = call.query();
        *shared.dsw_params.lock().expect("dsw params lock") = Some(query.clone());
        check_names(&query)?;
        let param = |k: &str| query.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let instance = param("InstanceId").ok_or_else(|| err(400, "MissingParameter", "InstanceId is mandatory."))?;
        let expire = match param("ExpireTime") {
            None => 3600,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_EXPIRE_SECS).contains(n))
                .ok_or_else(|| err(400, "InvalidParameter.ExpireTime", format!("ExpireTime {v} is invalid.")))?,
        };
        let kind = match param("Type") {
            None | Some("Access") => "Access",
            Some("View") => "View",
            Some(other) => return Err(err(400, "InvalidParameter.Type", format!("Type {other} is invalid."))),
        };
        let now = (shared.clock)();
        let token = shared.jwt(serde_json::json!({
            "iss": "pai-dsw-emulator", "sub": instance, "typ": kind, "aud": param("Audience").unwrap_or(""),
            "iat": unix_seconds(now), "exp": unix_seconds(now + Duration::from_secs(expire)), "jti": shared.next_serial(),
        }));
        shared.stats.get_token.fetch_add(1, Ordering::Relaxed);
        Ok(axum::Json(serde_json::json!({
            "RequestId": request_id(), "Success": true, "Code": "200", "Message": "", "Token": token,
        }))
        .into_response())
    })();
    result.unwrap_or_else(|e: PopError| {
        shared.rejected("a DSW call", e.code);
        e.into_response()
    })
}
