//! Alibaba Cloud sources (spec section 4.1): RRSA OIDC, CLI or INI profiles, ECS RAM role.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;

use super::answer::{Fetched, SourceError, parse_expiration, read_file};
use super::context::Context;
use super::source::{Fetching, Source};
use crate::config::{Endpoint, MetadataSpec, OidcSpec};
use crate::credentials::keys::Credentials;
use crate::secret::{Secret, scrub};

/// The ECS metadata service (http by nature: it is link-local).
pub(crate) const ECS_METADATA: &str = "http://100.100.100.200";
/// IMDSv2 token lifetime asked for.
pub(crate) const IMDS_TOKEN_TTL: &str = "21600";

/// The three RRSA variables.
pub(crate) struct OidcVars {
    pub role_arn: String,
    pub provider_arn: String,
    pub token_file: PathBuf,
}

pub(crate) fn oidc_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<OidcVars, SourceError> {
    let get = |n: &str| var(n).ok_or_else(|| SourceError::Absent(format!("{n} is not set")));
    Ok(OidcVars {
        role_arn: get("ALIBABA_CLOUD_ROLE_ARN")?,
        provider_arn: get("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")?,
        token_file: PathBuf::from(get("ALIBABA_CLOUD_OIDC_TOKEN_FILE")?),
    })
}

/// The STS endpoint: the override, else regional / VPC hosts from the environment.
pub(crate) fn sts_endpoint(spec: &OidcSpec, var: &dyn Fn(&str) -> Option<String>) -> reqwest::Url {
    sts_url(spec.sts_endpoint.as_ref(), None, false, var)
}

/// The STS endpoint as credentials-go picks it: the override; else `sts[-vpc].<region>.aliyuncs.com`
/// with the region given (a CLI profile's `sts_region`) or `ALIBABA_CLOUD_STS_REGION`, `-vpc` when
/// `vpc` (a profile's `enable_vpc`) or `ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true`; else `sts.aliyuncs.com`.
pub(crate) fn sts_url(
    endpoint: Option<&Endpoint>,
    region: Option<String>,
    vpc: bool,
    var: &dyn Fn(&str) -> Option<String>,
) -> reqwest::Url {
    if let Some(e) = endpoint {
        return e.url("/");
    }
    let prefix = if vpc || var("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        "sts-vpc"
    } else {
        "sts"
    };
    let host = match region.filter(|r| !r.is_empty()).or_else(|| var("ALIBABA_CLOUD_STS_REGION")) {
        Some(region) => format!("{prefix}.{region}.aliyuncs.com"),
        None => format!("{prefix}.aliyuncs.com"),
    };
    reqwest::Url::parse(&format!("https://{host}/")).expect("a host name from a region is a URL")
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsAnswer {
    credentials: Option<StsCredentials>,
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

/// RRSA: `AssumeRoleWithOIDC`, unsigned, with the token file read now.
pub(crate) async fn oidc(spec: &OidcSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let var = |n: &str| ctx.var(n);
    let vars = oidc_vars(&var)?;
    let url = sts_endpoint(spec, &var);
    let exchange = OidcExchange { vars: &vars, what: "ALIBABA_CLOUD_OIDC_TOKEN_FILE", policy: None };
    assume_role_with_oidc(&exchange, url, spec.role_session_name.clone(), spec.duration, ctx).await
}

/// One `AssumeRoleWithOIDC`: the role, provider and token file (from the variables or a CLI
/// profile), `what` names where the token file was given, `policy` is sent when set.
pub(super) struct OidcExchange<'a> {
    pub vars: &'a OidcVars,
    pub what: &'a str,
    pub policy: Option<&'a str>,
}

pub(super) async fn assume_role_with_oidc(
    exchange: &OidcExchange<'_>,
    mut url: reqwest::Url,
    session: Option<String>,
    duration: std::time::Duration,
    ctx: &Context,
) -> Result<Fetched, SourceError> {
    let vars = exchange.vars;
    let token = read_file(exchange.what, &vars.token_file)
        .map_err(|e| SourceError::Failed(e.detail().replace("not found", "not readable (not found)")))?;
    let now = ctx.clock.now();
    let session = session
        .or_else(|| ctx.var("ALIBABA_CLOUD_ROLE_SESSION_NAME"))
        .unwrap_or_else(|| format!("ticketd-{}", crate::clock::unix_seconds(now)));
    url.query_pairs_mut()
        .append_pair("Action", "AssumeRoleWithOIDC")
        .append_pair("Format", "JSON")
        .append_pair("Version", "2015-04-01")
        .append_pair("DurationSeconds", &duration.as_secs().to_string())
        .append_pair("RoleArn", &vars.role_arn)
        .append_pair("OIDCProviderArn", &vars.provider_arn)
        .append_pair("OIDCToken", token.trim())
        .append_pair("RoleSessionName", &session)
        .append_pair("Timestamp", &crate::clock::rfc3339(now));
    if let Some(policy) = exchange.policy {
        url.query_pairs_mut().append_pair("Policy", policy);
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let response =
        ctx.http.get(url).send().await.map_err(|e| SourceError::Failed(format!("STS {host}: {}", e.without_url())))?;
    let credentials = sts_answer(response, &host, "AssumeRoleWithOIDC", &vars.role_arn, &[token.trim()]).await?;
    Ok(Fetched { credentials, description: format!("oidc (role {})", vars.role_arn) })
}

/// The keys in an STS answer (`Credentials.{AccessKeyId, AccessKeySecret, SecurityToken,
/// Expiration}`), or an error naming `action`, the role and the answer's `Code` and `Message`
/// (with `secrets` scrubbed out of them).
pub(super) async fn sts_answer(
    response: reqwest::Response,
    host: &str,
    action: &str,
    role_arn: &str,
    secrets: &[&str],
) -> Result<Credentials, SourceError> {
    let status = response.status();
    let body =
        crate::http::read_limited(response).await.map_err(|e| SourceError::Failed(format!("STS {host}: {e}")))?;
    let body = zeroize::Zeroizing::new(body);
    let answer: StsAnswer = serde_json::from_slice(&body).map_err(|e| {
        SourceError::Failed(format!(
            "STS {host}: HTTP {status}, not the expected JSON ({})",
            crate::secret::json_error_without_values(&e)
        ))
    })?;
    let Some(c) = answer.credentials.filter(|_| status.is_success()) else {
        return Err(SourceError::Failed(format!(
            "STS {host} {action} for role {role_arn}: HTTP {status} {}: {}",
            scrub(&answer.code.unwrap_or_default(), secrets),
            scrub(&answer.message.unwrap_or_default(), secrets)
        )));
    };
    Ok(Credentials {
        access_key_id: Secret::new(c.access_key_id),
        access_key_secret: Secret::new(c.access_key_secret),
        security_token: Some(Secret::new(c.security_token)),
        expires_at: Some(parse_expiration(&c.expiration)?),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

/// The ECS instance RAM role: IMDSv2 token (falling back to v1 unless disabled), role, keys.
pub(crate) async fn ecs_ram_role(spec: &MetadataSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    if ctx.var("ALIBABA_CLOUD_ECS_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(SourceError::Absent("ALIBABA_CLOUD_ECS_METADATA_DISABLED=true".into()));
    }
    let base = match &spec.metadata_endpoint {
        Some(e) => e.clone(),
        None => Endpoint { base: reqwest::Url::parse(ECS_METADATA).expect("static URL") },
    };
    let http = &ctx.metadata_http;
    let fallback = spec.imdsv1_fallback
        && ctx.var("ALIBABA_CLOUD_IMDSV1_DISABLED").is_none_or(|v| !v.eq_ignore_ascii_case("true"));
    let token = match http
        .put(base.url("/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", IMDS_TOKEN_TTL)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Some(r.text().await.unwrap_or_default()),
        Ok(r) if !fallback => {
            return Err(SourceError::Failed(format!(
                "metadata {base}: IMDSv2 token refused (HTTP {}), IMDSv1 fallback disabled",
                r.status()
            )));
        }
        Err(e) if !fallback => {
            return Err(SourceError::Absent(format!(
                "metadata {base}: no IMDSv2 token ({}), IMDSv1 fallback disabled",
                e.without_url()
            )));
        }
        _ => None,
    };
    let get = |path: String| {
        let mut b = http.get(base.url(&path));
        if let Some(t) = &token {
            b = b.header("X-aliyun-ecs-metadata-token", t.trim());
        }
        b.send()
    };
    let fetch_text = |r: Result<reqwest::Response, reqwest::Error>, what: &str| {
        let what = what.to_string();
        let base = base.clone();
        async move {
            match r {
                Ok(r) if r.status().is_success() => Ok(r.text().await.unwrap_or_default()),
                Ok(r) => Err(SourceError::Failed(format!("metadata {base}: {what}: HTTP {}", r.status()))),
                Err(e) => Err(SourceError::Absent(format!("metadata {base} unreachable ({})", e.without_url()))),
            }
        }
    };
    let role =
        match spec.role_name.clone().or_else(|| ctx.var("ALIBABA_CLOUD_ECS_METADATA")) {
            Some(r) => r,
            None => {
                let listing =
                    fetch_text(get("/latest/meta-data/ram/security-credentials/".into()).await, "role name").await?;
                listing.lines().next().map(str::trim).filter(|r| !r.is_empty()).map(str::to_string).ok_or_else(
                    || SourceError::Failed(format!("metadata {base}: the instance has no RAM role attached")),
                )?
            }
        };
    let text = fetch_text(
        get(format!("/latest/meta-data/ram/security-credentials/{role}")).await,
        &format!("credentials of role {role}"),
    )
    .await?;
    let c: MetadataCredentials = serde_json::from_str(&text).map_err(|e| {
        SourceError::Failed(format!(
            "metadata {base}: not the expected JSON ({})",
            crate::secret::json_error_without_values(&e)
        ))
    })?;
    if c.code.as_deref() != Some("Success") {
        return Err(SourceError::Failed(format!("metadata {base}: Code is {:?}, not Success", c.code)));
    }
    let field = |v: Option<String>, f: &str| {
        v.filter(|s| !s.is_empty()).ok_or_else(|| SourceError::Failed(format!("metadata {base}: no {f} in the answer")))
    };
    let expires_at: SystemTime = parse_expiration(&field(c.expiration, "Expiration")?)?;
    Ok(Fetched {
        credentials: Credentials {
            access_key_id: Secret::new(field(c.access_key_id, "AccessKeyId")?),
            access_key_secret: Secret::new(field(c.access_key_secret, "AccessKeySecret")?),
            security_token: Some(Secret::new(field(c.security_token, "SecurityToken")?)),
            expires_at: Some(expires_at),
        },
        description: format!("ecs_ram_role (role {role}{})", if token.is_some() { "" } else { ", IMDSv1" }),
    })
}

/// The variables [`sts_url`] picks the STS host by.
pub(crate) const STS_VARS: [&str; 2] = ["ALIBABA_CLOUD_STS_REGION", "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"];
/// The variable an STS session name defaults to.
pub(crate) const SESSION_VAR: &str = "ALIBABA_CLOUD_ROLE_SESSION_NAME";
/// The three RRSA variables ([`oidc_vars`]).
pub(crate) const OIDC_VARS: [&str; 3] =
    ["ALIBABA_CLOUD_ROLE_ARN", "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"];
/// The variables [`ecs_ram_role`] reads.
pub(crate) const ECS_VARS: [&str; 3] =
    ["ALIBABA_CLOUD_ECS_METADATA_DISABLED", "ALIBABA_CLOUD_IMDSV1_DISABLED", "ALIBABA_CLOUD_ECS_METADATA"];

/// Alibaba `source = "oidc"`: RRSA.
pub(crate) struct Oidc<'a>(pub &'a OidcSpec);

impl Source for Oidc<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(oidc(self.0, ctx))
    }

    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        oidc_vars(var).map(|v| format!("oidc (role {})", v.role_arn))
    }

    fn vars(&self) -> Vec<&str> {
        [&OIDC_VARS[..], &[SESSION_VAR], &STS_VARS].concat()
    }
}

/// Alibaba `source = "ecs_ram_role"`: the instance's RAM role.
pub(crate) struct EcsRamRole<'a>(pub &'a MetadataSpec);

impl Source for EcsRamRole<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(ecs_ram_role(self.0, ctx))
    }

    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        if var("ALIBABA_CLOUD_ECS_METADATA_DISABLED").as_deref() == Some("true") {
            return Err(SourceError::Absent("ALIBABA_CLOUD_ECS_METADATA_DISABLED=true".into()));
        }
        Ok(format!(
            "ecs_ram_role ({})",
            self.0
                .role_name
                .clone()
                .or_else(|| var("ALIBABA_CLOUD_ECS_METADATA"))
                .unwrap_or_else(|| "role discovered at run time".into())
        ))
    }

    fn vars(&self) -> Vec<&str> {
        ECS_VARS.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::sources::alibaba_profile::read_profile;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |n: &str| map.get(n).cloned()
    }

    #[test]
    fn oidc_needs_all_three_variables_and_names_the_missing_one() {
        let v = vars(&[("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/x"), ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "p")]);
        let Err(e) = oidc_vars(&v) else { panic!() };
        assert_eq!(e, SourceError::Absent("ALIBABA_CLOUD_OIDC_TOKEN_FILE is not set".into()));
    }

    #[test]
    fn sts_host_follows_region_and_vpc_variables() {
        let spec =
            OidcSpec { sts_endpoint: None, role_session_name: None, duration: std::time::Duration::from_secs(3600) };
        assert_eq!(sts_endpoint(&spec, &vars(&[])).as_str(), "https://sts.aliyuncs.com/");
        assert_eq!(
            sts_endpoint(&spec, &vars(&[("ALIBABA_CLOUD_STS_REGION", "cn-shanghai")])).as_str(),
            "https://sts.cn-shanghai.aliyuncs.com/"
        );
        let both = vars(&[("ALIBABA_CLOUD_STS_REGION", "cn-shanghai"), ("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "true")]);
        assert_eq!(sts_endpoint(&spec, &both).as_str(), "https://sts-vpc.cn-shanghai.aliyuncs.com/");
    }

    #[test]
    fn cli_profile_modes_ak_and_sts_token_and_selection() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aliyun")).unwrap();
        std::fs::write(
            dir.path().join(".aliyun/config.json"),
            r#"{"current":"ak","profiles":[
              {"name":"ak","mode":"AK","access_key_id":"LTAIak","access_key_secret":"s1"},
              {"name":"sts","mode":"StsToken","access_key_id":"STS.x","access_key_secret":"s2","sts_token":"tok"},
              {"name":"role","mode":"RamRoleArn","access_key_id":"a","access_key_secret":"b"}]}"#,
        )
        .unwrap();
        let home = dir.path().display().to_string();
        let v = vars(&[("HOME", &home)]);
        let f = read_profile(None, None, &v).unwrap();
        assert_eq!(f.credentials.access_key_id.expose(), "LTAIak");
        assert!(
            f.credentials.security_token.is_none() && f.description.contains("profile ak, mode AK"),
            "{}",
            f.description
        );
        let f = read_profile(Some("sts"), None, &v).unwrap();
        assert_eq!(f.credentials.security_token.unwrap().expose(), "tok");
        let v2 = vars(&[("HOME", &home), ("ALIBABA_CLOUD_PROFILE", "sts")]);
        assert_eq!(read_profile(None, None, &v2).unwrap().credentials.access_key_id.expose(), "STS.x");
        let Err(e) = read_profile(Some("role"), None, &v) else { panic!() };
        assert!(e.detail().ends_with("profile `role` has no ram_role_arn"), "{e:?}");
        assert!(!e.detail().contains("b\""));
        let Err(e) = read_profile(Some("nope"), None, &v) else { panic!() };
        assert!(e.detail().ends_with("no profile `nope`"), "{e:?}");
    }

    #[test]
    fn ini_file_from_variable_or_home_with_type_access_key() {
        let dir = tempfile::tempdir().unwrap();
        let ini = dir.path().join("creds.ini");
        std::fs::write(&ini, "[default]\ntype = access_key\naccess_key_id = LTAIini\naccess_key_secret = s\n[prod]\ntype = ram_role_arn\n").unwrap();
        let path = ini.display().to_string();
        let home = dir.path().display().to_string();
        let v = vars(&[("HOME", &home), ("ALIBABA_CLOUD_CREDENTIALS_FILE", &path)]);
        let f = read_profile(None, None, &v).unwrap();
        assert_eq!(f.credentials.access_key_id.expose(), "LTAIini");
        let Err(e) = read_profile(Some("prod"), None, &v) else { panic!() };
        assert!(e.detail().contains("type = ram_role_arn"), "{e:?}");
        // Nothing anywhere: absent, naming both places.
        let v = vars(&[("HOME", "/nonexistent")]);
        let Err(SourceError::Absent(d)) = read_profile(None, None, &v) else { panic!() };
        assert!(
            d.contains("/nonexistent/.aliyun/config.json not found") && d.contains("credentials.ini not found"),
            "{d}"
        );
        // The config's profile_file.
        let f = read_profile(None, Some(&ini), &vars(&[])).unwrap();
        assert!(f.description.contains("creds.ini"), "{}", f.description);
    }
}
