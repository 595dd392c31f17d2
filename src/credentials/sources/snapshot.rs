//! The variables a config's sources may read, copied once from the environment ([`EnvSnapshot`]),
//! and the [`Context`] built on them for a config.

use std::collections::HashMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::context::Context;
use super::uri;
use crate::clock::Clock;
use crate::config::{Config, SourceSpec};
use crate::credentials::env::Environment;
use crate::secret::Secret;

impl Context {
    /// A context for `config`: the variables its sources may read, copied from `env` once.
    pub fn for_config(config: &Config, env: &dyn Environment, clock: Arc<dyn Clock>) -> Context {
        Context::new(Arc::new(snapshot_env(config, env)), clock)
    }
}

/// Every variable a source may read, copied once so refresh tasks need no process environment.
pub fn snapshot_env(config: &Config, env: &dyn Environment) -> EnvSnapshot {
    let mut names: Vec<String> = [
        "HOME",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        "ALIBABA_CLOUD_ROLE_SESSION_NAME",
        "ALIBABA_CLOUD_STS_REGION",
        "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
        "ALIBABA_CLOUD_PROFILE",
        "ALIBABA_CLOUD_CREDENTIALS_FILE",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
        "ALIBABA_CLOUD_ECS_METADATA",
        "ALIBABA_CLOUD_IMDSV1_DISABLED",
        uri::CREDENTIALS_URI_ENV,
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
        "TENCENTCLOUD_CREDENTIALS_FILE",
        "TKE_REGION",
        "TKE_PROVIDER_ID",
        "TKE_WEB_IDENTITY_TOKEN_FILE",
        "TKE_ROLE_ARN",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fn env_names(source: &SourceSpec, names: &mut Vec<String>) {
        match source {
            SourceSpec::Env { id_var, secret_var, token_var } => {
                names.extend([id_var.clone(), secret_var.clone(), token_var.clone()])
            }
            SourceSpec::Chain(chain) => env_names(&chain.env, names),
            _ => {}
        }
    }
    for spec in config.credentials.values() {
        env_names(&spec.source, &mut names);
    }
    EnvSnapshot(names.into_iter().filter_map(|n| env.var(&n).map(|v| (n, Secret::new(Zeroizing::new(v))))).collect())
}

/// The variables a config's sources may read, copied once. The values (keys among them) are
/// held as [`Secret`]s: in the secret pool, left out of core dumps, wiped when dropped.
pub struct EnvSnapshot(HashMap<String, Secret>);

impl Environment for EnvSnapshot {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|value| value.expose().to_string())
    }
}
