//! STS `AssumeRole` on top of another credential set: Alibaba `source = "ram_role_arn"` (RPC
//! signature, HMAC-SHA1, as `aliyun/credentials-go` `providers/ram_role_arn.go` sends it) and
//! Tencent `source = "role_arn"` (TC3-HMAC-SHA256, service `sts`, as the Go SDK's
//! `common/role_arn_provider.go` sends it). The base set's keys come from the credential store,
//! where their own refresher keeps them fresh: an ECS instance role under a cross-account role is
//! renewed on its own schedule, and each AssumeRole is signed with what the base holds then.

use crate::config::{AssumeRoleSpec, Endpoint, Vendor};
use crate::credentials::keys::Credentials;
use crate::secret::Secret;
use crate::signing::{rpc, tc3};

use super::answer::{Fetched, SourceError};
use super::context::Context;
use super::source::{Fetching, Source};

/// Alibaba STS API version.
pub(crate) const ALIBABA_VERSION: &str = "2015-04-01";
/// Tencent STS API version.
pub(crate) const TENCENT_VERSION: &str = "2018-08-13";
/// The region the Tencent SDK signs STS calls for (STS is global; the Go SDK uses Guangzhou).
pub(crate) const TENCENT_STS_REGION: &str = "ap-guangzhou";
/// The TC3 service name of Tencent STS.
pub(crate) const TENCENT_SERVICE: &str = "sts";

/// The session name: the configured one, else (Alibaba) `ALIBABA_CLOUD_ROLE_SESSION_NAME`, else
/// `ticketd-<unix seconds>`.
fn session_name(spec: &AssumeRoleSpec, ctx: &Context, env_var: Option<&str>) -> String {
    spec.role_session_name
        .clone()
        .or_else(|| env_var.and_then(|v| ctx.var(v)))
        .unwrap_or_else(|| format!("ticketd-{}", crate::clock::unix_seconds(ctx.clock.now())))
}

/// The base set's keys, as the credential store holds them now (waiting for a fetch under way).
pub(crate) async fn base_keys(spec: &AssumeRoleSpec, ctx: &Context) -> Result<Credentials, SourceError> {
    let Some(store) = &ctx.store else {
        return Err(SourceError::Failed(format!("base credentials `{}` are not available here", spec.base)));
    };
    store
        .fresh(&spec.base, ctx.clock.as_ref(), crate::credentials::store::FRESH_WAIT)
        .await
        .map_err(|e| SourceError::Failed(format!("base credentials: {e}")))
}

/// Resolve a `ram_role_arn` / `role_arn` set: the base keys, then one AssumeRole.
pub(crate) async fn fetch(spec: &AssumeRoleSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let base = base_keys(spec, ctx).await?;
    let mut fetched = match spec.vendor {
        crate::config::Vendor::Alibaba => {
            let url = super::alibaba::sts_url(spec.sts_endpoint.as_ref(), None, false, &|v| ctx.var(v));
            alibaba(spec, url, &base, ctx).await?
        }
        crate::config::Vendor::Tencent => tencent(spec, &base, ctx).await?,
    };
    fetched.description = format!("{} on top of `{}`", fetched.description, spec.base);
    Ok(fetched)
}

/// Request parameters, in the order sent.
pub(crate) type Params = Vec<(&'static str, String)>;

/// The request credentials-go sends: `POST /?<signed query>` with the role in a form body.
/// Returned as (query pairs with `Signature` last, form body pairs).
pub(crate) fn alibaba_request(
    spec: &AssumeRoleSpec,
    session: &str,
    base: &Credentials,
    timestamp: &str,
    nonce: &str,
) -> (Params, Params) {
    let mut query: Params = vec![
        ("Version", ALIBABA_VERSION.into()),
        ("Action", "AssumeRole".into()),
        ("Format", "JSON".into()),
        ("Timestamp", timestamp.into()),
        ("SignatureMethod", rpc::SIGNATURE_METHOD.into()),
        ("SignatureVersion", rpc::SIGNATURE_VERSION.into()),
        ("SignatureNonce", nonce.into()),
        ("AccessKeyId", base.access_key_id.expose().into()),
    ];
    if let Some(token) = &base.security_token {
        query.push(("SecurityToken", token.expose().into()));
    }
    let mut form: Params = vec![("RoleArn", spec.role_arn.clone())];
    if let Some(policy) = &spec.policy {
        form.push(("Policy", policy.clone()));
    }
    if let Some(id) = &spec.external_id {
        form.push(("ExternalId", id.clone()));
    }
    form.push(("RoleSessionName", session.into()));
    form.push(("DurationSeconds", spec.duration.as_secs().to_string()));
    let all: Vec<(&str, &str)> = query.iter().chain(&form).map(|(k, v)| (*k, v.as_str())).collect();
    let signature = rpc::sign("POST", &all, base.access_key_secret.expose());
    query.push(("Signature", signature));
    (query, form)
}

/// Alibaba `AssumeRole` at `url`, signed with `base`.
pub(super) async fn alibaba(
    spec: &AssumeRoleSpec,
    mut url: reqwest::Url,
    base: &Credentials,
    ctx: &Context,
) -> Result<Fetched, SourceError> {
    let session = session_name(spec, ctx, Some("ALIBABA_CLOUD_ROLE_SESSION_NAME"));
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let timestamp = crate::clock::rfc3339(ctx.clock.now());
    let (query, form) = alibaba_request(spec, &session, base, &timestamp, &nonce);
    url.set_query(Some(&rpc::canonicalized(&query)));
    let host = url.host_str().unwrap_or_default().to_string();
    let body = zeroize::Zeroizing::new(rpc::canonicalized(&form));
    let response = ctx
        .http
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept-Encoding", "identity")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| SourceError::Failed(format!("STS {host}: {}", e.without_url())))?;
    let secrets = secrets_of(base);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let credentials = super::alibaba::sts_answer(response, &host, "AssumeRole", &spec.role_arn, &secrets).await?;
    Ok(Fetched { credentials, description: format!("ram_role_arn (role {})", spec.role_arn) })
}

fn secrets_of(base: &Credentials) -> Vec<String> {
    let mut out = vec![base.access_key_secret.expose().to_string()];
    out.extend(base.security_token.as_ref().map(|t| t.expose().to_string()));
    out
}

/// The JSON body the Tencent SDK sends (`RoleArn`, `RoleSessionName`, `DurationSeconds`; `Policy`
/// and `ExternalId` when set).
pub(crate) fn tencent_body(spec: &AssumeRoleSpec, session: &str) -> Vec<u8> {
    let mut params = serde_json::Map::new();
    params.insert("RoleArn".into(), spec.role_arn.clone().into());
    params.insert("RoleSessionName".into(), session.into());
    params.insert("DurationSeconds".into(), spec.duration.as_secs().into());
    if let Some(policy) = &spec.policy {
        params.insert("Policy".into(), policy.clone().into());
    }
    if let Some(id) = &spec.external_id {
        params.insert("ExternalId".into(), id.clone().into());
    }
    serde_json::to_vec(&params).expect("a JSON map serializes")
}

/// Tencent `AssumeRole`, TC3-signed with `base`.
async fn tencent(spec: &AssumeRoleSpec, base: &Credentials, ctx: &Context) -> Result<Fetched, SourceError> {
    let endpoint = match &spec.sts_endpoint {
        Some(e) => e.clone(),
        None => Endpoint { base: reqwest::Url::parse(super::tencent::STS_ENDPOINT).expect("static URL") },
    };
    let session = session_name(spec, ctx, None);
    let body = tencent_body(spec, &session);
    let host = endpoint.host_header();
    let request = tc3::Request {
        method: "POST",
        host: &host,
        service: TENCENT_SERVICE,
        action: "AssumeRole",
        version: TENCENT_VERSION,
        region: TENCENT_STS_REGION,
        timestamp: ctx.clock.now(),
        query: "",
        body: &body,
        content_type: "application/json",
    };
    let token = base.security_token.as_ref().map(Secret::expose);
    let headers = tc3::build_headers(&request, base.access_key_id.expose(), base.access_key_secret.expose(), token);
    let mut builder = ctx.http.post(endpoint.url("/"));
    for (name, value) in headers.as_slice() {
        builder = builder.header(*name, value);
    }
    let response = builder
        .body(body)
        .send()
        .await
        .map_err(|e| SourceError::Failed(format!("STS {endpoint}: {}", e.without_url())))?;
    let secrets = secrets_of(base);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let credentials =
        super::tencent::sts_answer(response, &endpoint.to_string(), "AssumeRole", &spec.role_arn, &secrets).await?;
    Ok(Fetched { credentials, description: format!("role_arn (role {})", spec.role_arn) })
}

/// `source = "ram_role_arn"` (Alibaba) / `"role_arn"` (Tencent): AssumeRole on top of another set.
pub(crate) struct AssumeRole<'a> {
    pub spec: &'a AssumeRoleSpec,
    /// The source's name in the config (`ram_role_arn` or `role_arn`).
    pub name: &'static str,
}

impl Source for AssumeRole<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(fetch(self.spec, ctx))
    }

    /// The role and its base, named (the base set is described on its own).
    fn describe(&self, _: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        Ok(format!("{} (role {} on top of `{}`)", self.name, self.spec.role_arn, self.spec.base))
    }

    /// Alibaba: the session name and STS host variables; Tencent reads none.
    fn vars(&self) -> Vec<&str> {
        match self.spec.vendor {
            Vendor::Alibaba => [&[super::alibaba::SESSION_VAR][..], &super::alibaba::STS_VARS].concat(),
            Vendor::Tencent => Vec::new(),
        }
    }
}
