//! Which source a set's spec names, per vendor, and the chain walked in its order: a set fetched
//! once ([`fetch`], with what could change it), described without network ([`describe`]).

use std::path::PathBuf;

use super::answer::{Fetched, SourceError, Watch};
use super::chain::chain_members;
use super::context::{Context, home};
use super::env::env_keys;
use super::{alibaba, alibaba_profile, assume_role, cli_profile, tencent, uri};
use crate::config::{CredentialSpec, SourceSpec, Vendor};
use crate::credentials::env::Environment;
use crate::credentials::error::CredentialError;
use crate::credentials::keys::Credentials;

fn watch_of(vendor: Vendor, source: &SourceSpec, ctx: &Context) -> Watch {
    match source {
        SourceSpec::Env { .. } | SourceSpec::InMemory(_) | SourceSpec::Static(_) => Watch::Nothing,
        SourceSpec::Profile { file, .. } => Watch::Files(profile_files(vendor, file.as_ref(), ctx)),
        _ => Watch::Service,
    }
}

/// Resolve `spec` once.
pub async fn fetch(spec: &CredentialSpec, ctx: &Context) -> Result<Fetched, CredentialError> {
    fetch_watched(spec, ctx).await.map(|(fetched, _)| fetched)
}

/// Resolve `spec` once, and say what could change the keys (the source that gave them).
pub async fn fetch_watched(spec: &CredentialSpec, ctx: &Context) -> Result<(Fetched, Watch), CredentialError> {
    let fail = |source: &SourceSpec, e: SourceError| CredentialError::Source {
        set: spec.name.clone(),
        source_name: source.name(),
        detail: e.detail().to_string(),
    };
    match &spec.source {
        SourceSpec::Chain(chain) => {
            let mut tried = Vec::new();
            for member in &chain_members(spec.vendor, chain) {
                match fetch_one(spec.vendor, member, ctx).await {
                    Ok(f) => return Ok((f, watch_of(spec.vendor, member, ctx))),
                    Err(e) => tried.push(format!("{}: {}", member.name(), e.detail())),
                }
            }
            Err(CredentialError::ChainExhausted { set: spec.name.clone(), tried: tried.join("; ") })
        }
        other => fetch_one(spec.vendor, other, ctx)
            .await
            .map(|f| (f, watch_of(spec.vendor, other, ctx)))
            .map_err(|e| fail(other, e)),
    }
}

async fn fetch_one(vendor: Vendor, source: &SourceSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let fetched = fetch_unchecked(vendor, source, ctx).await?;
    // Every source's keys (files, STS and metadata answers too) are checked before use: a key
    // that holds a character no vendor issues is a broken file or a hostile answer.
    match fetched.credentials.text_problem(key_names(vendor)) {
        Some(problem) => Err(SourceError::Failed(format!("{}: {problem}", fetched.description))),
        None => Ok(fetched),
    }
}

async fn fetch_unchecked(vendor: Vendor, source: &SourceSpec, ctx: &Context) -> Result<Fetched, SourceError> {
    let plain = |credentials: Credentials, description: String| Fetched { credentials, description };
    match (vendor, source) {
        (_, SourceSpec::InMemory(keys)) => Ok(plain(keys.into(), "in-memory".into())),
        (_, SourceSpec::Static(keys)) => Ok(plain(keys.into(), "static (keys in the config file)".into())),
        (_, SourceSpec::Env { id_var, secret_var, token_var }) => {
            let c = env_keys(ctx.env.as_ref(), id_var, secret_var, token_var)?;
            Ok(plain(c, format!("env ({id_var})")))
        }
        (_, SourceSpec::Chain(_)) => Err(SourceError::Failed("a chain inside a chain".into())),
        (Vendor::Alibaba, SourceSpec::Oidc(o)) => alibaba::oidc(o, ctx).await,
        (Vendor::Alibaba, SourceSpec::Profile { profile, file, sts_endpoint, metadata_endpoint }) => {
            let overrides = cli_profile::Overrides {
                sts_endpoint: sts_endpoint.as_ref(),
                metadata_endpoint: metadata_endpoint.as_ref(),
            };
            alibaba_profile::profile(profile.as_deref(), file.as_ref(), overrides, ctx).await
        }
        (Vendor::Alibaba, SourceSpec::EcsRamRole(m)) => alibaba::ecs_ram_role(m, ctx).await,
        (Vendor::Tencent, SourceSpec::Oidc(o)) => tencent::oidc(o, ctx).await,
        (Vendor::Tencent, SourceSpec::Profile { profile, file, .. }) => {
            tencent::profile(profile.as_deref(), file.as_ref(), ctx)
        }
        (Vendor::Tencent, SourceSpec::CvmRole(m)) => tencent::cvm_role(m, ctx).await,
        (_, SourceSpec::AssumeRole(a)) => assume_role::fetch(a, ctx).await,
        (Vendor::Alibaba, SourceSpec::CredentialsUri(u)) => uri::fetch(u.as_ref(), ctx).await,
        (v, s) => Err(SourceError::Failed(format!("source {} is not available for vendor {}", s.name(), v.as_str()))),
    }
}

/// The names of a vendor's id, secret and token, as its APIs spell them (for errors).
pub fn key_names(vendor: Vendor) -> [&'static str; 3] {
    match vendor {
        Vendor::Alibaba => ["AccessKeyId", "AccessKeySecret", "SecurityToken"],
        Vendor::Tencent => ["SecretId", "SecretKey", "Token"],
    }
}

/// How a set would resolve, from variables and files only (no network): for `check-config`.
pub fn describe(spec: &CredentialSpec, env: &dyn Environment) -> String {
    fn one(vendor: Vendor, source: &SourceSpec, env: &dyn Environment) -> Result<String, SourceError> {
        let set = |v: &str| env.var(v).filter(|x| !x.is_empty());
        match (vendor, source) {
            (_, SourceSpec::Env { id_var, secret_var, token_var }) => {
                env_keys(env, id_var, secret_var, token_var).map(|_| format!("env ({id_var})"))
            }
            (_, SourceSpec::Static(_)) => Ok("static (keys in the config file)".into()),
            (_, SourceSpec::InMemory(_)) => Ok("in-memory".into()),
            (Vendor::Alibaba, SourceSpec::Oidc(_)) => {
                alibaba::oidc_vars(&|v| set(v)).map(|v| format!("oidc (role {})", v.role_arn))
            }
            (Vendor::Tencent, SourceSpec::Oidc(_)) => {
                tencent::oidc_vars(&|v| set(v)).map(|v| format!("oidc (role {})", v.role_arn))
            }
            (Vendor::Alibaba, SourceSpec::Profile { profile, file, .. }) => {
                alibaba_profile::resolve_profile(profile.as_deref(), file.as_ref(), &|v| set(v)).map(|r| match r {
                    alibaba_profile::Resolved::Keys(f) => f.description,
                    alibaba_profile::Resolved::Cli(_, description) => description,
                })
            }
            (Vendor::Tencent, SourceSpec::Profile { profile, file, .. }) => {
                tencent::read_profile(profile.as_deref(), file.as_ref(), &|v| set(v)).map(|f| f.description)
            }
            (Vendor::Alibaba, SourceSpec::EcsRamRole(m)) => {
                if set("ALIBABA_CLOUD_ECS_METADATA_DISABLED").as_deref() == Some("true") {
                    return Err(SourceError::Absent("ALIBABA_CLOUD_ECS_METADATA_DISABLED=true".into()));
                }
                Ok(format!(
                    "ecs_ram_role ({})",
                    m.role_name
                        .clone()
                        .or_else(|| set("ALIBABA_CLOUD_ECS_METADATA"))
                        .unwrap_or_else(|| "role discovered at run time".into())
                ))
            }
            (Vendor::Tencent, SourceSpec::CvmRole(m)) => Ok(format!(
                "cvm_role ({})",
                m.role_name.clone().unwrap_or_else(|| "role discovered at run time".into())
            )),
            (_, SourceSpec::AssumeRole(a)) => {
                Ok(format!("{} (role {} on top of `{}`)", source.name(), a.role_arn, a.base))
            }
            (Vendor::Alibaba, SourceSpec::CredentialsUri(u)) => {
                uri::uri_of(u.as_ref(), &|v| set(v)).map(|u| format!("credentials_uri ({})", uri::shown(&u)))
            }
            (_, s) => Err(SourceError::Failed(format!("{} is not available", s.name()))),
        }
    }
    match &spec.source {
        SourceSpec::Chain(chain) => {
            let mut tried = Vec::new();
            for m in &chain_members(spec.vendor, chain) {
                match one(spec.vendor, m, env) {
                    Ok(d) => return format!("chain -> {d}"),
                    Err(e) => tried.push(format!("{}: {}", m.name(), e.detail())),
                }
            }
            format!("chain -> nothing found ({})", tried.join("; "))
        }
        s => match one(spec.vendor, s, env) {
            Ok(d) => d,
            Err(e) => format!("{} -> not usable: {}", s.name(), e.detail()),
        },
    }
}

/// The files a profile source reads (an explicit `profile_file`, else the vendor's defaults).
fn profile_files(vendor: Vendor, file: Option<&PathBuf>, ctx: &Context) -> Vec<PathBuf> {
    if let Some(f) = file {
        return vec![f.clone()];
    }
    let home = home(&|v| ctx.var(v));
    let mut out = Vec::new();
    match vendor {
        Vendor::Alibaba => {
            out.extend(home.as_ref().map(|h| h.join(".aliyun/config.json")));
            match ctx.var("ALIBABA_CLOUD_CREDENTIALS_FILE") {
                Some(f) => out.push(PathBuf::from(f)),
                None => out.extend(home.map(|h| h.join(".alibabacloud/credentials.ini"))),
            }
        }
        Vendor::Tencent => match ctx.var("TENCENTCLOUD_CREDENTIALS_FILE") {
            Some(f) => out.push(PathBuf::from(f)),
            None => {
                out.extend(home.map(|h| h.join(".tencentcloud/credentials")));
                out.push(PathBuf::from("/etc/tencentcloud/credentials"));
            }
        },
    }
    out
}
