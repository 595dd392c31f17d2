//! A set resolved through its sources: the [`Source`] its spec names for its vendor ([`source`]),
//! a chain's walked in order, to fetch it once ([`fetch`], with what could change it), describe it
//! without network ([`describe`]) or name the variables it reads ([`vars`]).

use super::alibaba;
use super::alibaba_profile;
use super::answer::{Fetched, SourceError, Watch};
use super::assume_role::AssumeRole;
use super::chain::chain_members;
use super::cli_profile::Overrides;
use super::context::Context;
use super::env_source::EnvSource;
use super::given::Given;
use super::source::{Fetching, Source};
use super::tencent;
use super::uri::CredentialsUri;
use crate::config::{CredentialSpec, SourceSpec, Vendor};
use crate::credentials::env::Environment;
use crate::credentials::error::CredentialError;

/// The source `spec` names for `vendor`. A chain here is a chain inside a chain (the chain itself
/// is walked by [`fetch_watched`] and [`describe`]); a source the vendor has not is
/// [`Unavailable`]: both fail with a reason.
pub(crate) fn source(vendor: Vendor, spec: &SourceSpec) -> Box<dyn Source + '_> {
    match (vendor, spec) {
        (_, SourceSpec::InMemory(keys)) => Box::new(Given { keys, description: "in-memory" }),
        (_, SourceSpec::Static(keys)) => Box::new(Given { keys, description: "static (keys in the config file)" }),
        (_, SourceSpec::Env { id_var, secret_var, token_var }) => Box::new(EnvSource { id_var, secret_var, token_var }),
        (_, SourceSpec::Chain(_)) => Box::new(Unavailable {
            fetch: "a chain inside a chain".into(),
            describe: format!("{} is not available", spec.name()),
        }),
        (Vendor::Alibaba, SourceSpec::Oidc(o)) => Box::new(alibaba::Oidc(o)),
        (Vendor::Alibaba, SourceSpec::Profile { profile, file, sts_endpoint, metadata_endpoint }) => {
            Box::new(alibaba_profile::Profile {
                profile: profile.as_deref(),
                file: file.as_ref(),
                overrides: Overrides {
                    sts_endpoint: sts_endpoint.as_ref(),
                    metadata_endpoint: metadata_endpoint.as_ref(),
                },
            })
        }
        (Vendor::Alibaba, SourceSpec::EcsRamRole(m)) => Box::new(alibaba::EcsRamRole(m)),
        (Vendor::Tencent, SourceSpec::Oidc(o)) => Box::new(tencent::Oidc(o)),
        (Vendor::Tencent, SourceSpec::Profile { profile, file, .. }) => {
            Box::new(tencent::Profile { profile: profile.as_deref(), file: file.as_ref() })
        }
        (Vendor::Tencent, SourceSpec::CvmRole(m)) => Box::new(tencent::CvmRole(m)),
        (_, SourceSpec::AssumeRole(a)) => Box::new(AssumeRole { spec: a, name: spec.name() }),
        (Vendor::Alibaba, SourceSpec::CredentialsUri(u)) => Box::new(CredentialsUri(u.as_ref())),
        (v, s) => Box::new(Unavailable {
            fetch: format!("source {} is not available for vendor {}", s.name(), v.as_str()),
            describe: format!("{} is not available", s.name()),
        }),
    }
}

/// A source that cannot be used here: its fetch and its description fail with these reasons.
struct Unavailable {
    fetch: String,
    describe: String,
}

impl Source for Unavailable {
    fn fetch<'a>(&'a self, _: &'a Context) -> Fetching<'a> {
        Box::pin(std::future::ready(Err(SourceError::Failed(self.fetch.clone()))))
    }

    fn describe(&self, _: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        Err(SourceError::Failed(self.describe.clone()))
    }

    fn vars(&self) -> Vec<&str> {
        Vec::new()
    }
}

/// Every environment variable set `spec` may read (a chain: all its members').
pub(crate) fn vars(spec: &CredentialSpec) -> Vec<String> {
    let own = |s: &SourceSpec| source(spec.vendor, s).vars().into_iter().map(str::to_string).collect::<Vec<_>>();
    match &spec.source {
        SourceSpec::Chain(chain) => chain_members(spec.vendor, chain).iter().flat_map(own).collect(),
        s => own(s),
    }
}

/// Resolve `spec` once.
#[cfg(test)]
pub(crate) async fn fetch(spec: &CredentialSpec, ctx: &Context) -> Result<Fetched, CredentialError> {
    fetch_watched(spec, ctx).await.map(|(fetched, _)| fetched)
}

/// Resolve `spec` once, and say what could change the keys (the source that gave them).
pub(crate) async fn fetch_watched(spec: &CredentialSpec, ctx: &Context) -> Result<(Fetched, Watch), CredentialError> {
    match &spec.source {
        SourceSpec::Chain(chain) => {
            let mut tried = Vec::new();
            for member in &chain_members(spec.vendor, chain) {
                let one = source(spec.vendor, member);
                match fetch_checked(one.as_ref(), spec.vendor, ctx).await {
                    Ok(f) => return Ok((f, one.watch(ctx))),
                    Err(e) => tried.push(format!("{}: {}", member.name(), e.detail())),
                }
            }
            Err(CredentialError::ChainExhausted { set: spec.name.clone(), tried: tried.join("; ") })
        }
        other => {
            let one = source(spec.vendor, other);
            match fetch_checked(one.as_ref(), spec.vendor, ctx).await {
                Ok(f) => Ok((f, one.watch(ctx))),
                Err(e) => Err(CredentialError::Source {
                    set: spec.name.clone(),
                    source_name: other.name(),
                    detail: e.detail().to_string(),
                }),
            }
        }
    }
}

async fn fetch_checked(source: &dyn Source, vendor: Vendor, ctx: &Context) -> Result<Fetched, SourceError> {
    let fetched = source.fetch(ctx).await?;
    // Every source's keys (files, STS and metadata answers too) are checked before use: a key
    // that holds a character no vendor issues is a broken file or a hostile answer.
    match fetched.credentials.text_problem(key_names(vendor)) {
        Some(problem) => Err(SourceError::Failed(format!("{}: {problem}", fetched.description))),
        None => Ok(fetched),
    }
}

/// The names of a vendor's id, secret and token, as its APIs spell them (for errors).
pub(crate) fn key_names(vendor: Vendor) -> [&'static str; 3] {
    match vendor {
        Vendor::Alibaba => ["AccessKeyId", "AccessKeySecret", "SecurityToken"],
        Vendor::Tencent => ["SecretId", "SecretKey", "Token"],
    }
}

/// How a set would resolve, from variables and files only (no network): for `check-config`.
pub(crate) fn describe(spec: &CredentialSpec, env: &dyn Environment) -> String {
    let set = |v: &str| env.var(v).filter(|x| !x.is_empty());
    match &spec.source {
        SourceSpec::Chain(chain) => {
            let mut tried = Vec::new();
            for m in &chain_members(spec.vendor, chain) {
                match source(spec.vendor, m).describe(&set) {
                    Ok(d) => return format!("chain -> {d}"),
                    Err(e) => tried.push(format!("{}: {}", m.name(), e.detail())),
                }
            }
            format!("chain -> nothing found ({})", tried.join("; "))
        }
        s => match source(spec.vendor, s).describe(&set) {
            Ok(d) => d,
            Err(e) => format!("{} -> not usable: {}", s.name(), e.detail()),
        },
    }
}
