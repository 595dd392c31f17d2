//! Instance metadata stand-ins: Alibaba ECS (IMDSv2 token required unless v1 is allowed), Tencent
//! CVM role credentials. Paths do not collide (`ram` vs `cam`), so they share the emulator's listener.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::key::Vendor;
use crate::shared::Shared;
use crate::shared::{rfc3339, unix_seconds};

/// The RAM role attached to the emulated ECS instance.
pub const ECS_ROLE: &str = "ticketd-ecs-role";
/// The CAM role attached to the emulated CVM instance.
pub const CVM_ROLE: &str = "ticketd-cvm-role";

/// `PUT /latest/api/token`.
pub(super) async fn ecs_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let ttl = headers.get("x-aliyun-ecs-metadata-token-ttl-seconds").and_then(|v| v.to_str().ok());
    if ttl.and_then(|t| t.parse::<u64>().ok()).is_none_or(|t| !(1..=21_600).contains(&t)) {
        return (StatusCode::BAD_REQUEST, "X-aliyun-ecs-metadata-token-ttl-seconds must be 1..21600").into_response();
    }
    let token = hex::encode(rand::random::<[u8; 16]>());
    shared.imds_tokens.lock().expect("imds lock").insert(token.clone());
    token.into_response()
}

fn ecs_token_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    match headers.get("x-aliyun-ecs-metadata-token").and_then(|v| v.to_str().ok()) {
        Some(t) => shared.imds_tokens.lock().expect("imds lock").contains(t),
        None => !shared.imdsv2_required.load(Ordering::Relaxed),
    }
}

/// `GET /latest/meta-data/ram/security-credentials/`: the role name.
pub(super) async fn ecs_roles(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !ecs_token_ok(&shared, &headers) {
        return (StatusCode::UNAUTHORIZED, "a valid X-aliyun-ecs-metadata-token is required").into_response();
    }
    ECS_ROLE.into_response()
}

/// `GET /latest/meta-data/ram/security-credentials/<role>`.
pub(super) async fn ecs_credentials(
    State(shared): State<Arc<Shared>>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !ecs_token_ok(&shared, &headers) {
        return (StatusCode::UNAUTHORIZED, "a valid X-aliyun-ecs-metadata-token is required").into_response();
    }
    if role != ECS_ROLE {
        return (StatusCode::NOT_FOUND, "no such role").into_response();
    }
    let (key, expires) = shared.issue_temporary(Vendor::Alibaba, "STS.", shared.sts_lifetime());
    shared.stats.ecs_credentials.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({
        "Code": "Success",
        "AccessKeyId": key.access_key_id,
        "AccessKeySecret": key.access_key_secret.expose(),
        "SecurityToken": key.security_token.as_ref().map(|t| t.expose().to_string()),
        "Expiration": rfc3339(expires),
        "LastUpdated": rfc3339((shared.clock)()),
    }))
    .into_response()
}

/// `GET /latest/meta-data/cam/security-credentials/`.
pub(super) async fn cvm_roles() -> Response {
    CVM_ROLE.into_response()
}

/// `GET /latest/meta-data/cam/security-credentials/<role>`.
pub(super) async fn cvm_credentials(State(shared): State<Arc<Shared>>, Path(role): Path<String>) -> Response {
    if role != CVM_ROLE {
        return (StatusCode::NOT_FOUND, "no such role").into_response();
    }
    let (key, expires) = shared.issue_temporary(Vendor::Tencent, "AKIDcvm", shared.sts_lifetime());
    shared.stats.cvm_credentials.fetch_add(1, Ordering::Relaxed);
    Json(serde_json::json!({
        "TmpSecretId": key.access_key_id,
        "TmpSecretKey": key.access_key_secret.expose(),
        "Token": key.security_token.as_ref().map(|t| t.expose().to_string()),
        "ExpiredTime": unix_seconds(expires),
        "Expiration": rfc3339(expires),
        "Code": "Success",
    }))
    .into_response()
}
