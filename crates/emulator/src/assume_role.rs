//! STS `AssumeRole` stand-ins, signatures checked as the vendors do: Alibaba `POST /?Action=AssumeRole`
//! (RPC signature, HMAC-SHA1 over the query and the form body together, `SignatureNonce` used
//! once) and Tencent `POST /` with `X-TC-Action: AssumeRole` (TC3-HMAC-SHA256, service `sts`).
//! The keys that sign may be long-term or temporary (an instance role, another assumed role);
//! the keys issued are temporary and remembered as issued by AssumeRole for that role, so tests
//! can tell which keys signed each token call. Also the credentials URI stand-in.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::key::Vendor;
use crate::shared::Shared;
use crate::shared::{rfc3339, unix_seconds};
use crate::verify::mac::same as signatures_match;
use crate::verify::{rpc, tc3};

/// A request time further than this from the server's clock is refused.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// The path of the credentials URI stand-in.
/// The API version of Alibaba STS (`AssumeRole`).
const ALIBABA_STS_VERSION: &str = "2015-04-01";
/// The API version of Tencent STS (`AssumeRole`).
const TENCENT_STS_VERSION: &str = "2018-08-13";

pub const CREDENTIALS_URI_PATH: &str = "/latest/credentials-uri";

struct PopError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn pop(status: u16, code: &'static str, message: impl Into<String>) -> PopError {
    PopError { status: StatusCode::from_u16(status).expect("a status"), code, message: message.into() }
}

/// What the origin of temporary keys is recorded as.
pub(super) fn origin(role_arn: &str) -> String {
    format!("AssumeRole {role_arn}")
}

/// `POST /?Action=AssumeRole&...`, form body `RoleArn=...&RoleSessionName=...&DurationSeconds=...`.
pub(super) fn alibaba(shared: &Shared, uri: &Uri, body: &Bytes) -> Response {
    match alibaba_checked(shared, uri, body) {
        Ok(answer) => {
            shared.stats.assume_role.fetch_add(1, Ordering::Relaxed);
            Json(answer).into_response()
        }
        Err(e) => {
            shared.rejected("an STS AssumeRole call", e.code);
            let body = serde_json::json!({
                "RequestId": crate::shared::request_id(), "HostId": "sts.aliyuncs.com", "Code": e.code, "Message": e.message,
                "Recommend": "https://api.aliyun.com/troubleshoot?q=".to_string() + e.code,
            });
            (e.status, Json(body)).into_response()
        }
    }
}

fn alibaba_checked(shared: &Shared, uri: &Uri, body: &Bytes) -> Result<serde_json::Value, PopError> {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let all: Vec<(&str, &str)> = query.iter().chain(&form).map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let p = |k: &str| all.iter().find(|(key, _)| *key == k).map(|(_, v)| *v).filter(|v| !v.is_empty());
    for key in [
        "Version",
        "Format",
        "Timestamp",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "AccessKeyId",
        "Signature",
    ] {
        if p(key).is_none() {
            return Err(pop(
                400,
                "MissingParameter",
                format!("The input parameter \"{key}\" that is mandatory for processing this request is not supplied."),
            ));
        }
    }
    if p("Version") != Some(ALIBABA_STS_VERSION) || p("Format") != Some("JSON") {
        return Err(pop(400, "InvalidParameter", "Version 2015-04-01 and Format JSON are expected."));
    }
    if p("SignatureMethod") != Some(rpc::SIGNATURE_METHOD) || p("SignatureVersion") != Some(rpc::SIGNATURE_VERSION) {
        return Err(pop(400, "InvalidSignatureMethod.Malformed", "SignatureMethod HMAC-SHA1, SignatureVersion 1.0."));
    }
    let stamp = p("Timestamp").unwrap_or_default();
    let at = humantime::parse_rfc3339(stamp)
        .map_err(|_| pop(400, "InvalidTimeStamp.Format", format!("Timestamp {stamp} is not YYYY-MM-DDTHH:MM:SSZ.")))?;
    let now = (shared.clock)();
    let skew = now.duration_since(at).or_else(|e| Ok::<_, ()>(e.duration())).unwrap_or_default();
    if skew > MAX_SKEW {
        return Err(pop(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."));
    }
    let id = p("AccessKeyId").unwrap_or_default();
    let key = shared
        .lookup(id, Vendor::Alibaba)
        .ok_or_else(|| pop(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))?;
    match (&key.security_token, p("SecurityToken")) {
        (None, None) => {}
        (Some(expected), Some(t)) if signatures_match(expected.expose(), t) => {}
        (Some(_), None) => return Err(pop(400, "MissingSecurityToken", "STS credentials need SecurityToken.")),
        _ => return Err(pop(400, "InvalidSecurityToken.Mismatch", "Specified SecurityToken is invalid.")),
    }
    let signed: Vec<(&str, &str)> = all.iter().copied().filter(|(k, _)| *k != "Signature").collect();
    let expected = rpc::expected("POST", &signed, key.access_key_secret.expose());
    if !signatures_match(&expected, p("Signature").unwrap_or_default()) {
        return Err(pop(400, "SignatureDoesNotMatch", "Specified signature does not match our calculation."));
    }
    // Consumed only by a request that verifies, so nobody can burn another's nonce.
    if !shared.nonces.lock().expect("nonce lock").insert(p("SignatureNonce").unwrap_or_default().to_string()) {
        return Err(pop(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    let role = p("RoleArn").ok_or_else(|| pop(400, "MissingRoleArn", "RoleArn is mandatory for this action."))?;
    let session = p("RoleSessionName")
        .ok_or_else(|| pop(400, "MissingRoleSessionName", "RoleSessionName is mandatory for this action."))?;
    let duration = match p("DurationSeconds") {
        None => 3600,
        Some(d) => d
            .parse::<u64>()
            .ok()
            .filter(|d| (900..=43_200).contains(d))
            .ok_or_else(|| pop(400, "InvalidParameter.DurationSeconds", "DurationSeconds is 900 to 43200."))?,
    };
    if p("Policy").is_some_and(|policy| serde_json::from_str::<serde_json::Value>(policy).is_err()) {
        return Err(pop(400, "InvalidParameter.PolicyGrammar", "The parameter Policy has not passed grammar check."));
    }
    if shared.denied_roles.lock().expect("denied roles lock").contains(role) {
        return Err(pop(
            403,
            "NoPermission",
            "You are not authorized to do this action. You should be authorized by RAM.",
        ));
    }
    *shared.last_assume_role.lock().expect("assume role lock") = all
        .iter()
        .filter(|(k, _)| ["RoleArn", "RoleSessionName", "ExternalId", "Policy", "DurationSeconds"].contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lifetime = Duration::from_secs(duration).min(shared.sts_lifetime());
    let (issued, expires) = shared.issue_temporary(Vendor::Alibaba, "STS.", lifetime);
    shared.mark_origin(&issued.access_key_id, origin(role));
    Ok(serde_json::json!({
        "RequestId": crate::shared::request_id(),
        "AssumedRoleUser": {"Arn": format!("{role}/{session}"), "AssumedRoleId": format!("3{}:{session}", shared.next_serial())},
        "Credentials": {
            "AccessKeyId": issued.access_key_id,
            "AccessKeySecret": issued.access_key_secret.expose(),
            "SecurityToken": issued.security_token.as_ref().map(|t| t.expose().to_string()),
            "Expiration": rfc3339(expires),
        }
    }))
}

/// `POST /`, `X-TC-Action: AssumeRole`, TC3-signed for service `sts`.
pub(super) fn tencent(shared: &Shared, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let answer = tencent_checked(shared, uri, headers, body);
    let body = match answer {
        Ok(a) => {
            shared.stats.tencent_assume_role.fetch_add(1, Ordering::Relaxed);
            a
        }
        Err((code, message)) => {
            shared.rejected("a Tencent STS AssumeRole call", code);
            serde_json::json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": crate::shared::request_id()}})
        }
    };
    Json(body).into_response()
}

fn tencent_checked(
    shared: &Shared,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<serde_json::Value, (&'static str, String)> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let e = |code: &'static str, m: &str| (code, m.to_string());
    if header("x-tc-version") != Some(TENCENT_STS_VERSION) {
        return Err(e("NoSuchVersion", "the requested version does not exist"));
    }
    if header("x-tc-region").is_none_or(str::is_empty) {
        return Err(e("MissingParameter", "X-TC-Region is required"));
    }
    let auth =
        header("authorization").ok_or_else(|| e("AuthFailure.InvalidAuthorization", "Authorization is missing"))?;
    let auth = tc3::parse(auth)
        .map_err(|x| e("AuthFailure.InvalidAuthorization", &format!("Authorization is malformed: {x}")))?;
    let timestamp = header("x-tc-timestamp")
        .and_then(|t| t.trim().parse::<u64>().ok())
        .ok_or_else(|| e("MissingParameter", "X-TC-Timestamp is missing or invalid"))?;
    if unix_seconds((shared.clock)()).abs_diff(timestamp) > 300 {
        return Err(e("AuthFailure.SignatureExpire", "the signature expired"));
    }
    if auth.service != "sts" {
        return Err(e("AuthFailure.SignatureFailure", &format!("service {} is not sts", auth.service)));
    }
    let key = shared
        .lookup(&auth.secret_id, Vendor::Tencent)
        .ok_or_else(|| e("AuthFailure.SecretIdNotFound", "the SecretId does not exist"))?;
    match (&key.security_token, header("x-tc-token")) {
        (None, _) => {}
        (Some(expected), Some(t)) if signatures_match(expected.expose(), t) => {}
        _ => return Err(e("AuthFailure.TokenFailure", "the session token is missing or invalid")),
    }
    tc3::verify(&axum::http::Method::POST, uri, headers, body, &auth, key.access_key_secret.expose())
        .map_err(|x| e("AuthFailure.SignatureFailure", &format!("the signature does not match ({x})")))?;
    let params: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| e("InvalidParameter", "the body is not JSON"))?;
    let text = |k: &str| params.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let role = text("RoleArn").ok_or_else(|| e("MissingParameter", "RoleArn is required"))?;
    text("RoleSessionName").ok_or_else(|| e("MissingParameter", "RoleSessionName is required"))?;
    let duration = params.get("DurationSeconds").and_then(|v| v.as_u64()).unwrap_or(7200);
    if !(1..=43_200).contains(&duration) {
        return Err(e("InvalidParameter.DurationSeconds", "DurationSeconds is 1 to 43200"));
    }
    if shared.denied_roles.lock().expect("denied roles lock").contains(role) {
        return Err(e("AuthFailure.UnauthorizedOperation", "the caller may not assume this role"));
    }
    *shared.last_assume_role.lock().expect("assume role lock") =
        ["RoleArn", "RoleSessionName", "ExternalId", "Policy", "DurationSeconds"]
            .iter()
            .filter_map(|k| {
                params.get(*k).map(|v| (k.to_string(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            })
            .collect();
    let lifetime = Duration::from_secs(duration).min(shared.sts_lifetime());
    let (issued, expires) = shared.issue_temporary(Vendor::Tencent, "AKIDrole", lifetime);
    shared.mark_origin(&issued.access_key_id, origin(role));
    Ok(serde_json::json!({"Response": {
        "Credentials": {
            "TmpSecretId": issued.access_key_id,
            "TmpSecretKey": issued.access_key_secret.expose(),
            "Token": issued.security_token.as_ref().map(|t| t.expose().to_string()),
        },
        "ExpiredTime": unix_seconds(expires),
        "Expiration": rfc3339(expires),
        "RequestId": crate::shared::request_id(),
    }}))
}

/// `GET /latest/credentials-uri`: temporary Alibaba keys, as a credentials URI serves them.
pub(super) async fn credentials_uri(State(shared): State<Arc<Shared>>) -> Response {
    let (issued, expires) = shared.issue_temporary(Vendor::Alibaba, "STS.", shared.sts_lifetime());
    shared.mark_origin(&issued.access_key_id, "credentials URI".into());
    shared.stats.credentials_uri.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({
        "Code": "Success",
        "AccessKeyId": issued.access_key_id,
        "AccessKeySecret": issued.access_key_secret.expose(),
        "SecurityToken": issued.security_token.as_ref().map(|t| t.expose().to_string()),
        "Expiration": rfc3339(expires),
    }))
    .into_response()
}
