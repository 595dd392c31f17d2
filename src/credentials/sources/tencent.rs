//! Tencent Cloud sources (spec section 4.2): profile file, CVM role, TKE OIDC.

use std::path::PathBuf;

use serde::Deserialize;

use super::answer::{Fetched, SourceError, Watch, read_file};
use super::context::{Context, home};
use super::source::{Fetching, Source};
use crate::config::{Endpoint, MetadataSpec, OidcSpec};
use crate::credentials::keys::Credentials;
use crate::secret::{Secret, scrub};

/// The CVM metadata service (http by nature).
pub(crate) const CVM_METADATA: &str = "http://metadata.tencentyun.com";
/// The STS endpoint.
pub(crate) const STS_ENDPOINT: &str = "https://sts.tencentcloudapi.com";

/// `TENCENTCLOUD_CREDENTIALS_FILE`, `~/.tencentcloud/credentials`, `/etc/tencentcloud/credentials`;
/// `[default]` (or the chosen profile) with `secret_id` and `secret_key`.
pub(crate) fn profile(name: Option<&str>, file: Option<&PathBuf>, ctx: &Context) -> Result<Fetched, SourceError> {
    read_profile(name, file, &|n| ctx.var(n))
}

pub(crate) fn read_profile(
    name: Option<&str>,
    file: Option<&PathBuf>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Fetched, SourceError> {
    let mut candidates: Vec<(&str, PathBuf)> = Vec::new();
    match (file, var("TENCENTCLOUD_CREDENTIALS_FILE")) {
        (Some(f), _) => candidates.push(("profile_file", f.clone())),
        (None, Some(f)) => candidates.push(("TENCENTCLOUD_CREDENTIALS_FILE", PathBuf::from(f))),
        (None, None) => {
            if let Some(h) = home(var) {
                candidates.push(("credentials file", h.join(".tencentcloud/credentials")));
            }
            candidates.push(("credentials file", PathBuf::from("/etc/tencentcloud/credentials")));
        }
    }
    let mut absent = Vec::new();
    for (what, path) in candidates {
        let text = match read_file(what, &path) {
            Ok(t) => t,
            Err(SourceError::Absent(d)) => {
                absent.push(d);
                continue;
            }
            Err(e) => return Err(e),
        };
        let sections = super::ini::parse(&text);
        let section = name.unwrap_or("default");
        let s = sections
            .get(section)
            .ok_or_else(|| SourceError::Failed(format!("{}: no section [{section}]", path.display())))?;
        let get = |k: &str| {
            s.get(k)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| SourceError::Failed(format!("{}: [{section}] has no {k}", path.display())))
        };
        return Ok(Fetched {
            credentials: Credentials::long_term(get("secret_id")?, get("secret_key")?, s.get("token").cloned()),
            description: format!("profile ({}, section {section})", path.display()),
        });
    }
    Err(SourceError::Absent(absent.join("; ")))
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct CvmCredentials {
    Code: Option<String>,
    TmpSecretId: Option<String>,
    TmpSecretKey: Option<String>,
    Token: Option<String>,
    ExpiredTime: Option<u64>,
}

/// The CVM instance role: role name from the listing (or configured), then its keys.
pub(crate) async fn cvm_role(spec: &MetadataSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let base = match &spec.metadata_endpoint {
        Some(e) => e.clone(),
        None => Endpoint { base: reqwest::Url::parse(CVM_METADATA).expect("static URL") },
    };
    let get = |path: String| {
        let (http, base) = (ctx.metadata_http.clone(), base.clone());
        async move {
            match http.get(base.url(&path)).send().await {
                Ok(r) if r.status().is_success() => Ok(r.text().await.unwrap_or_default()),
                Ok(r) => Err(SourceError::Failed(format!("metadata {base}{path}: HTTP {}", r.status()))),
                Err(e) => Err(SourceError::Absent(format!("metadata {base} unreachable ({})", e.without_url()))),
            }
        }
    };
    let role = match &spec.role_name {
        Some(r) => r.clone(),
        None => get("/latest/meta-data/cam/security-credentials/".into())
            .await?
            .lines()
            .next()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .ok_or_else(|| SourceError::Failed(format!("metadata {base}: the instance has no CAM role")))?,
    };
    let text = get(format!("/latest/meta-data/cam/security-credentials/{role}")).await?;
    let c: CvmCredentials = serde_json::from_str(&text).map_err(|e| {
        SourceError::Failed(format!(
            "metadata {base}: not the expected JSON ({})",
            crate::secret::json_error_without_values(&e)
        ))
    })?;
    if c.Code.as_deref().is_some_and(|c| c != "Success") {
        return Err(SourceError::Failed(format!("metadata {base}: Code is {:?}, not Success", c.Code)));
    }
    let field = |v: Option<String>, f: &str| {
        v.filter(|s| !s.is_empty()).ok_or_else(|| SourceError::Failed(format!("metadata {base}: no {f} in the answer")))
    };
    let expired = c.ExpiredTime.ok_or_else(|| SourceError::Failed(format!("metadata {base}: no ExpiredTime")))?;
    Ok(Fetched {
        credentials: Credentials {
            access_key_id: Secret::new(field(c.TmpSecretId, "TmpSecretId")?),
            access_key_secret: Secret::new(field(c.TmpSecretKey, "TmpSecretKey")?),
            security_token: Some(Secret::new(field(c.Token, "Token")?)),
            expires_at: Some(crate::clock::from_unix_seconds(expired)),
        },
        description: format!("cvm_role (role {role})"),
    })
}

/// The four TKE variables.
pub(crate) struct OidcVars {
    pub region: String,
    pub provider_id: String,
    pub token_file: PathBuf,
    pub role_arn: String,
}

pub(crate) fn oidc_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<OidcVars, SourceError> {
    let get = |n: &str| var(n).ok_or_else(|| SourceError::Absent(format!("{n} is not set")));
    Ok(OidcVars {
        region: get("TKE_REGION")?,
        provider_id: get("TKE_PROVIDER_ID")?,
        token_file: PathBuf::from(get("TKE_WEB_IDENTITY_TOKEN_FILE")?),
        role_arn: get("TKE_ROLE_ARN")?,
    })
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct StsAnswer {
    Response: StsResponse,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct StsResponse {
    Credentials: Option<StsCredentials>,
    ExpiredTime: Option<u64>,
    Error: Option<StsError>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct StsCredentials {
    TmpSecretId: String,
    TmpSecretKey: String,
    Token: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct StsError {
    Code: String,
    Message: String,
}

/// TKE OIDC: `AssumeRoleWithWebIdentity` (2018-08-13), unsigned (`Authorization: SKIP`).
pub(crate) async fn oidc(spec: &OidcSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let vars = oidc_vars(&|n| ctx.var(n))?;
    let token = read_file("TKE_WEB_IDENTITY_TOKEN_FILE", &vars.token_file)
        .map_err(|e| SourceError::Failed(e.detail().replace("not found", "not readable (not found)")))?;
    let now = ctx.clock.now();
    let endpoint = match &spec.sts_endpoint {
        Some(e) => e.clone(),
        None => Endpoint { base: reqwest::Url::parse(STS_ENDPOINT).expect("static URL") },
    };
    let session =
        spec.role_session_name.clone().unwrap_or_else(|| format!("ticketd-{}", crate::clock::unix_seconds(now)));
    let body = serde_json::json!({
        "ProviderId": vars.provider_id,
        "WebIdentityToken": token.trim(),
        "RoleArn": vars.role_arn,
        "RoleSessionName": session,
        "DurationSeconds": spec.duration.as_secs(),
    });
    let response = ctx
        .http
        .post(endpoint.url("/"))
        .header("Authorization", "SKIP")
        .header("Content-Type", "application/json")
        .header("X-TC-Action", "AssumeRoleWithWebIdentity")
        .header("X-TC-Version", "2018-08-13")
        .header("X-TC-Region", &vars.region)
        .header("X-TC-Timestamp", crate::clock::unix_seconds(now).to_string())
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| SourceError::Failed(format!("STS {endpoint}: {}", e.without_url())))?;
    let credentials =
        sts_answer(response, &endpoint.to_string(), "AssumeRoleWithWebIdentity", &vars.role_arn, &[token.trim()])
            .await?;
    Ok(Fetched { credentials, description: format!("oidc (role {})", vars.role_arn) })
}

/// The keys in a Tencent STS answer (`Response.Credentials.{TmpSecretId, TmpSecretKey, Token}`,
/// `Response.ExpiredTime`), or an error naming `action`, the role and `Response.Error`'s `Code`
/// and `Message` (with `secrets` scrubbed out of them).
pub(super) async fn sts_answer(
    response: reqwest::Response,
    endpoint: &str,
    action: &str,
    role_arn: &str,
    secrets: &[&str],
) -> Result<Credentials, SourceError> {
    let body =
        crate::http::read_limited(response).await.map_err(|e| SourceError::Failed(format!("STS {endpoint}: {e}")))?;
    let body = zeroize::Zeroizing::new(body);
    let answer: StsAnswer = serde_json::from_slice(&body).map_err(|e| {
        SourceError::Failed(format!(
            "STS {endpoint}: not the expected JSON ({})",
            crate::secret::json_error_without_values(&e)
        ))
    })?;
    let r = answer.Response;
    if let Some(e) = r.Error {
        return Err(SourceError::Failed(format!(
            "STS {endpoint} {action} for role {role_arn}: {}: {}",
            scrub(&e.Code, secrets),
            scrub(&e.Message, secrets)
        )));
    }
    let (Some(c), Some(expired)) = (r.Credentials, r.ExpiredTime) else {
        return Err(SourceError::Failed(format!("STS {endpoint}: no Credentials or ExpiredTime in the answer")));
    };
    Ok(Credentials {
        access_key_id: Secret::new(c.TmpSecretId),
        access_key_secret: Secret::new(c.TmpSecretKey),
        security_token: Some(Secret::new(c.Token)),
        expires_at: Some(crate::clock::from_unix_seconds(expired)),
    })
}

/// The four TKE variables ([`oidc_vars`]).
pub(crate) const OIDC_VARS: [&str; 4] =
    ["TKE_REGION", "TKE_PROVIDER_ID", "TKE_WEB_IDENTITY_TOKEN_FILE", "TKE_ROLE_ARN"];
/// The variables the profile files are found by.
pub(crate) const PROFILE_VARS: [&str; 2] = ["HOME", "TENCENTCLOUD_CREDENTIALS_FILE"];

/// Tencent `source = "profile"`: the credentials file.
pub(crate) struct Profile<'a> {
    pub profile: Option<&'a str>,
    pub file: Option<&'a PathBuf>,
}

impl Profile<'_> {
    /// The files this profile reads: the configured one, else the SDK's candidates.
    fn files(&self, ctx: &Context) -> Vec<PathBuf> {
        if let Some(f) = self.file {
            return vec![f.clone()];
        }
        match ctx.var("TENCENTCLOUD_CREDENTIALS_FILE") {
            Some(f) => vec![PathBuf::from(f)],
            None => {
                let mut out: Vec<PathBuf> =
                    home(&|v| ctx.var(v)).map(|h| h.join(".tencentcloud/credentials")).into_iter().collect();
                out.push(PathBuf::from("/etc/tencentcloud/credentials"));
                out
            }
        }
    }
}

impl Source for Profile<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(std::future::ready(profile(self.profile, self.file, ctx)))
    }

    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        read_profile(self.profile, self.file, var).map(|f| f.description)
    }

    /// A rewritten profile file brings new keys.
    fn watch(&self, ctx: &Context) -> Watch {
        Watch::Files(self.files(ctx))
    }

    fn vars(&self) -> Vec<&str> {
        PROFILE_VARS.to_vec()
    }
}

/// Tencent `source = "cvm_role"`: the instance's role.
pub(crate) struct CvmRole<'a>(pub &'a MetadataSpec);

impl Source for CvmRole<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(cvm_role(self.0, ctx))
    }

    fn describe(&self, _: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        Ok(format!("cvm_role ({})", self.0.role_name.clone().unwrap_or_else(|| "role discovered at run time".into())))
    }

    fn vars(&self) -> Vec<&str> {
        Vec::new()
    }
}

/// Tencent `source = "oidc"`: TKE's web identity.
pub(crate) struct Oidc<'a>(pub &'a OidcSpec);

impl Source for Oidc<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(oidc(self.0, ctx))
    }

    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        oidc_vars(var).map(|v| format!("oidc (role {})", v.role_arn))
    }

    fn vars(&self) -> Vec<&str> {
        OIDC_VARS.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |n: &str| map.get(n).cloned()
    }

    #[test]
    fn profile_file_default_section_and_variable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".tencentcloud")).unwrap();
        std::fs::write(
            dir.path().join(".tencentcloud/credentials"),
            "[default]\nsecret_id = AKIDhome\nsecret_key = k\n[ci]\nsecret_id = AKIDci\n",
        )
        .unwrap();
        let home = dir.path().display().to_string();
        let f = read_profile(None, None, &vars(&[("HOME", &home)])).unwrap();
        assert_eq!(f.credentials.access_key_id.expose(), "AKIDhome");
        let Err(e) = read_profile(Some("ci"), None, &vars(&[("HOME", &home)])) else { panic!() };
        assert!(e.detail().ends_with("[ci] has no secret_key"), "{e:?}");
        let other = dir.path().join("other");
        std::fs::write(&other, "[default]\nsecret_id = AKIDvar\nsecret_key = k2\n").unwrap();
        let p = other.display().to_string();
        let f = read_profile(None, None, &vars(&[("HOME", &home), ("TENCENTCLOUD_CREDENTIALS_FILE", &p)])).unwrap();
        assert_eq!(f.credentials.access_key_id.expose(), "AKIDvar");
        let Err(SourceError::Absent(d)) =
            read_profile(None, None, &vars(&[("TENCENTCLOUD_CREDENTIALS_FILE", "/nonexistent/c")]))
        else {
            panic!()
        };
        assert_eq!(d, "TENCENTCLOUD_CREDENTIALS_FILE=/nonexistent/c not found");
    }

    #[test]
    fn tke_variables_are_all_needed() {
        let Err(e) = oidc_vars(&vars(&[("TKE_REGION", "ap-guangzhou")])) else { panic!() };
        assert_eq!(e.detail(), "TKE_PROVIDER_ID is not set");
    }
}
