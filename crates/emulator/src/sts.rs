//! STS web-identity stand-ins: Alibaba `GET /?Action=AssumeRoleWithOIDC` (unsigned RPC), Tencent
//! `POST /` with `X-TC-Action: AssumeRoleWithWebIdentity` (`Authorization: SKIP`). Both issue
//! short-lived keys that the emulator then accepts for SLS, DSW and TCR calls until they expire.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::key::Vendor;
use crate::shared::Shared;
use crate::shared::{rfc3339, unix_seconds};

fn alibaba_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"RequestId": crate::shared::request_id(), "Code": code, "Message": message, "HostId": "sts.aliyuncs.com"});
    (status, Json(body)).into_response()
}

/// `GET /?Action=AssumeRoleWithOIDC&...`.
pub(super) async fn alibaba_rpc(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let p = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if p("Action") != Some("AssumeRoleWithOIDC") {
        return alibaba_error(StatusCode::BAD_REQUEST, "InvalidAction.NotFound", "the action does not exist");
    }
    if p("Version") != Some("2015-04-01") || p("Format") != Some("JSON") {
        return alibaba_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "Version 2015-04-01 and Format JSON are expected",
        );
    }
    for key in ["RoleArn", "OIDCProviderArn", "OIDCToken", "RoleSessionName", "Timestamp"] {
        if p(key).is_none() {
            return alibaba_error(StatusCode::BAD_REQUEST, "MissingParameter", &format!("{key} is required"));
        }
    }
    let requested = p("DurationSeconds").and_then(|d| d.parse::<u64>().ok()).unwrap_or(3600);
    if requested < 900 {
        return alibaba_error(StatusCode::BAD_REQUEST, "InvalidParameter.DurationSeconds", "at least 900");
    }
    *shared.last_oidc_token.lock().expect("oidc lock") = p("OIDCToken").map(str::to_string);
    let lifetime = Duration::from_secs(requested).min(shared.sts_lifetime());
    let (key, expires) = shared.issue_temporary(Vendor::Alibaba, "STS.", lifetime);
    shared.stats.assume_role_with_oidc.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({
        "RequestId": crate::shared::request_id(),
        "AssumedRoleUser": {"Arn": format!("{}/{}", p("RoleArn").unwrap_or_default(), p("RoleSessionName").unwrap_or_default())},
        "Credentials": {
            "AccessKeyId": key.access_key_id,
            "AccessKeySecret": key.access_key_secret.expose(),
            "SecurityToken": key.security_token.as_ref().map(|t| t.expose().to_string()),
            "Expiration": rfc3339(expires),
        }
    }))
    .into_response()
}

/// `POST /`, `X-TC-Action: AssumeRoleWithWebIdentity`.
pub(super) fn tencent_assume_role(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let error = |code: &str, message: &str| {
        shared.rejected("a Tencent AssumeRoleWithWebIdentity call", code);
        Json(serde_json::json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": crate::shared::request_id()}}))
            .into_response()
    };
    if header("x-tc-version") != Some("2018-08-13") {
        return error("NoSuchVersion", "the requested version does not exist");
    }
    if header("authorization") != Some("SKIP") {
        return error(
            "AuthFailure.InvalidAuthorization",
            "AssumeRoleWithWebIdentity is called with Authorization: SKIP",
        );
    }
    if header("x-tc-region").is_none_or(str::is_empty) {
        return error("MissingParameter", "X-TC-Region is required");
    }
    let Ok(params) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error("InvalidParameter", "the body is not JSON");
    };
    for key in ["ProviderId", "WebIdentityToken", "RoleArn", "RoleSessionName"] {
        if params.get(key).and_then(|v| v.as_str()).is_none_or(str::is_empty) {
            return error("MissingParameter", &format!("{key} is required"));
        }
    }
    *shared.last_oidc_token.lock().expect("oidc lock") = params["WebIdentityToken"].as_str().map(str::to_string);
    let requested = params.get("DurationSeconds").and_then(|v| v.as_u64()).unwrap_or(7200);
    let lifetime = Duration::from_secs(requested).min(shared.sts_lifetime());
    let (key, expires) = shared.issue_temporary(Vendor::Tencent, "AKIDtmp", lifetime);
    shared.stats.assume_role_with_web_identity.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({"Response": {
        "Credentials": {
            "TmpSecretId": key.access_key_id,
            "TmpSecretKey": key.access_key_secret.expose(),
            "Token": key.security_token.as_ref().map(|t| t.expose().to_string()),
        },
        "ExpiredTime": unix_seconds(expires),
        "Expiration": rfc3339(expires),
        "RequestId": crate::shared::request_id(),
    }}))
    .into_response()
}
