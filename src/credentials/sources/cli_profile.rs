//! The Alibaba CLI's `~/.aliyun/config.json` (aliyun-cli format), resolved as
//! `aliyun/credentials-go` `providers/cli_profile.go` does: modes AK, StsToken, RamRoleArn (an
//! AssumeRole signed with the profile's own keys), ChainableRamRoleArn (an AssumeRole signed with
//! what `source_profile` resolves to, recursively), EcsRamRole and OIDC.
//!
//! Reading the file gives a [`Plan`] (no network: `check-config` describes it); [`execute`] runs
//! it. Unlike credentials-go, a cycle of `source_profile`s is an error naming the profiles.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;

use super::alibaba::{OidcExchange, OidcVars, assume_role_with_oidc, ecs_ram_role, sts_url};
use super::answer::{SourceError, read_file};
use super::context::Context;
use crate::config::{AssumeRoleSpec, Endpoint, MIN_STS_DURATION, MetadataSpec, Vendor};
use crate::credentials::keys::Credentials;

/// credentials-go's `expired_seconds` default.
pub(crate) const DEFAULT_EXPIRED_SECONDS: u64 = 3_600;

#[derive(Deserialize)]
struct CliConfig {
    #[serde(default)]
    current: Option<String>,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CliProfile {
    name: String,
    mode: String,
    access_key_id: String,
    access_key_secret: String,
    sts_token: String,
    ram_role_arn: String,
    ram_session_name: String,
    expired_seconds: u64,
    sts_region: String,
    enable_vpc: bool,
    source_profile: String,
    ram_role_name: String,
    oidc_token_file: String,
    oidc_provider_arn: String,
    policy: String,
    external_id: String,
}

/// How a profile's keys are obtained.
pub(crate) enum Plan {
    /// Keys written in the profile (AK, StsToken).
    Keys(Credentials),
    /// STS AssumeRole signed with what `base` gives (RamRoleArn, ChainableRamRoleArn).
    AssumeRole { base: Box<Plan>, role: AssumeRoleSpec, sts_region: Option<String>, enable_vpc: bool },
    /// The ECS instance role (EcsRamRole); `None` discovers it.
    EcsRamRole(Option<String>),
    /// STS AssumeRoleWithOIDC (OIDC).
    Oidc {
        vars: OidcVars,
        session: Option<String>,
        duration: Duration,
        policy: Option<String>,
        sts_region: Option<String>,
        enable_vpc: bool,
    },
}

/// Endpoint overrides from the `[credentials.NAME]` section (tests point them at the emulator).
#[derive(Clone, Copy, Default)]
pub(crate) struct Overrides<'a> {
    pub sts_endpoint: Option<&'a Endpoint>,
    pub metadata_endpoint: Option<&'a Endpoint>,
}

/// Read `path` and plan profile `wanted` (else `current`, else `default`); the description names
/// the file, the profile and its mode.
pub(crate) fn plan(
    path: &Path,
    wanted: Option<&str>,
    what: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(Plan, String), SourceError> {
    let text = zeroize::Zeroizing::new(read_file(what, path)?);
    let config: CliConfig = serde_json::from_str(&text).map_err(|e| {
        SourceError::Failed(format!(
            "{}: not a CLI config ({})",
            path.display(),
            crate::secret::json_error_without_values(&e)
        ))
    })?;
    let name = wanted.map(str::to_string).or_else(|| config.current.clone()).unwrap_or_else(|| "default".into());
    let mut visited = Vec::new();
    let plan = plan_named(&config, &name, path, var, &mut visited)?;
    let mode = config.profiles.iter().find(|p| p.name == name).map(|p| p.mode.as_str()).unwrap_or_default();
    let mode = if mode.is_empty() { "AK" } else { mode };
    let role = match &plan {
        Plan::AssumeRole { role, .. } => format!(", role {}", role.role_arn),
        Plan::Oidc { vars, .. } => format!(", role {}", vars.role_arn),
        Plan::EcsRamRole(Some(r)) => format!(", role {r}"),
        _ => String::new(),
    };
    let chain = if visited.len() > 1 { format!(", via {}", visited[1..].join(" -> ")) } else { String::new() };
    Ok((plan, format!("profile ({}, profile {name}, mode {mode}{role}{chain})", path.display())))
}

fn plan_named(
    config: &CliConfig,
    name: &str,
    path: &Path,
    var: &dyn Fn(&str) -> Option<String>,
    visited: &mut Vec<String>,
) -> Result<Plan, SourceError> {
    let failed = |m: String| SourceError::Failed(format!("{}: {m}", path.display()));
    if visited.iter().any(|v| v == name) {
        visited.push(name.to_string());
        return Err(failed(format!("source_profile cycle: {}", visited.join(" -> "))));
    }
    visited.push(name.to_string());
    let p = config.profiles.iter().find(|p| p.name == name).ok_or_else(|| failed(format!("no profile `{name}`")))?;
    let missing = |field: &str| failed(format!("profile `{name}` has no {field}"));
    let keys = |token: Option<&str>| -> Result<Credentials, SourceError> {
        if p.access_key_id.is_empty() {
            return Err(missing("access_key_id"));
        }
        if p.access_key_secret.is_empty() {
            return Err(missing("access_key_secret"));
        }
        Ok(Credentials::long_term(p.access_key_id.clone(), p.access_key_secret.clone(), token.map(str::to_string)))
    };
    let duration = || {
        let secs = if p.expired_seconds == 0 { DEFAULT_EXPIRED_SECONDS } else { p.expired_seconds };
        if secs < MIN_STS_DURATION.as_secs() {
            return Err(failed(format!("profile `{name}`: expired_seconds {secs} is below 900")));
        }
        Ok(Duration::from_secs(secs))
    };
    let text = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    let role = |base_name: &str| -> Result<AssumeRoleSpec, SourceError> {
        let role_arn =
            text(&p.ram_role_arn).or_else(|| var("ALIBABA_CLOUD_ROLE_ARN")).ok_or_else(|| missing("ram_role_arn"))?;
        Ok(AssumeRoleSpec {
            vendor: Vendor::Alibaba,
            base: base_name.to_string(),
            role_arn,
            role_session_name: text(&p.ram_session_name),
            external_id: text(&p.external_id),
            policy: text(&p.policy),
            duration: duration()?,
            sts_endpoint: None,
        })
    };
    let assume = |base: Plan, role: AssumeRoleSpec| Plan::AssumeRole {
        base: Box::new(base),
        role,
        sts_region: text(&p.sts_region),
        enable_vpc: p.enable_vpc,
    };
    match p.mode.as_str() {
        "AK" | "" => Ok(Plan::Keys(keys(None)?)),
        "StsToken" => {
            if p.sts_token.is_empty() {
                return Err(missing("sts_token"));
            }
            Ok(Plan::Keys(keys(Some(&p.sts_token))?))
        }
        "RamRoleArn" => {
            let base = Plan::Keys(keys(None)?);
            Ok(assume(base, role(name)?))
        }
        "ChainableRamRoleArn" => {
            let source = text(&p.source_profile).ok_or_else(|| missing("source_profile"))?;
            let base = plan_named(config, &source, path, var, visited)?;
            Ok(assume(base, role(&source)?))
        }
        "EcsRamRole" => Ok(Plan::EcsRamRole(text(&p.ram_role_name))),
        "OIDC" => {
            let get =
                |field: &str, value: &str, env: &str| text(value).or_else(|| var(env)).ok_or_else(|| missing(field));
            Ok(Plan::Oidc {
                vars: OidcVars {
                    role_arn: get("ram_role_arn", &p.ram_role_arn, "ALIBABA_CLOUD_ROLE_ARN")?,
                    provider_arn: get("oidc_provider_arn", &p.oidc_provider_arn, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN")?,
                    token_file: PathBuf::from(get(
                        "oidc_token_file",
                        &p.oidc_token_file,
                        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
                    )?),
                },
                session: text(&p.ram_session_name),
                duration: duration()?,
                policy: text(&p.policy),
                sts_region: text(&p.sts_region),
                enable_vpc: p.enable_vpc,
            })
        }
        other => Err(failed(format!(
            "profile `{name}` has mode {other}; ticketd reads modes AK, StsToken, RamRoleArn, ChainableRamRoleArn, \
             EcsRamRole and OIDC"
        ))),
    }
}

/// Run `plan`: the keys it holds, or the STS / metadata calls it needs (the base first).
pub(crate) fn execute<'a>(
    plan: &'a Plan,
    overrides: Overrides<'a>,
    ctx: &'a Context,
) -> Pin<Box<dyn Future<Output = Result<Credentials, SourceError>> + Send + 'a>> {
    Box::pin(async move {
        let var = |n: &str| ctx.var(n);
        match plan {
            Plan::Keys(c) => Ok(c.clone()),
            Plan::AssumeRole { base, role, sts_region, enable_vpc } => {
                let keys = execute(base, overrides, ctx).await?;
                let url = sts_url(overrides.sts_endpoint, sts_region.clone(), *enable_vpc, &var);
                Ok(super::assume_role::alibaba(role, url, &keys, ctx).await?.credentials)
            }
            Plan::EcsRamRole(role_name) => {
                let spec = MetadataSpec {
                    metadata_endpoint: overrides.metadata_endpoint.cloned(),
                    role_name: role_name.clone(),
                    imdsv1_fallback: true,
                };
                Ok(ecs_ram_role(&spec, ctx).await?.credentials)
            }
            Plan::Oidc { vars, session, duration, policy, sts_region, enable_vpc } => {
                let url = sts_url(overrides.sts_endpoint, sts_region.clone(), *enable_vpc, &var);
                let exchange = OidcExchange { vars, what: "oidc_token_file", policy: policy.as_deref() };
                Ok(assume_role_with_oidc(&exchange, url, session.clone(), *duration, ctx).await?.credentials)
            }
        }
    })
}
