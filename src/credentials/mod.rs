//! Credentials: the keys a provider signs with, resolved from their configured source.
//!
//! A [`CredentialStore`] holds the current [`Credentials`] of every named set. Providers take a
//! snapshot for each call, so a later rotation never changes a request half-way through signing.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::config::{Config, CredentialSpec, Environment, SourceSpec};
use crate::secret::Secret;

/// Keys for one vendor account. Not printable: `Debug` shows only whether a token is present.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub access_key_id: Secret,
    pub access_key_secret: Secret,
    /// An STS/session token: the keys are temporary.
    pub security_token: Option<Secret>,
    /// When temporary keys stop working, when known.
    pub expires_at: Option<SystemTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("temporary", &self.security_token.is_some())
            .field("expires_at", &self.expires_at.map(crate::clock::rfc3339))
            .finish_non_exhaustive()
    }
}

/// Why a credential set could not be resolved. Names the source and what was missing, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("credentials `{set}`: environment variable {var} is not set")]
    MissingEnv { set: String, var: String },
    #[error("credentials `{0}` are not configured")]
    Unknown(String),
}

/// Resolve one credential set from its source.
pub fn resolve(spec: &CredentialSpec, env: &dyn Environment) -> Result<Credentials, CredentialError> {
    match &spec.source {
        SourceSpec::Env { id_var, secret_var, token_var } => {
            let get = |var: &str| -> Result<Secret, CredentialError> {
                env.var(var)
                    .filter(|v| !v.is_empty())
                    .map(Secret::new)
                    .ok_or_else(|| CredentialError::MissingEnv { set: spec.name.clone(), var: var.to_string() })
            };
            Ok(Credentials {
                access_key_id: get(id_var)?,
                access_key_secret: get(secret_var)?,
                security_token: env.var(token_var).filter(|v| !v.is_empty()).map(Secret::new),
                expires_at: None,
            })
        }
        SourceSpec::InMemory(credentials) => Ok(credentials.clone()),
    }
}

/// The current credentials of every configured set.
#[derive(Clone, Default)]
pub struct CredentialStore {
    sets: Arc<RwLock<BTreeMap<String, Credentials>>>,
}

impl CredentialStore {
    /// Resolve every set of `config`; all failures are returned together.
    pub fn resolve_all(config: &Config, env: &dyn Environment) -> Result<Self, Vec<CredentialError>> {
        let mut sets = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, spec) in &config.credentials {
            match resolve(spec, env) {
                Ok(c) => {
                    sets.insert(name.clone(), c);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() { Ok(CredentialStore { sets: Arc::new(RwLock::new(sets)) }) } else { Err(errors) }
    }

    /// A snapshot of set `name`.
    pub fn get(&self, name: &str) -> Result<Credentials, CredentialError> {
        self.sets
            .read()
            .expect("credential store lock")
            .get(name)
            .cloned()
            .ok_or_else(|| CredentialError::Unknown(name.to_string()))
    }

    /// Replace every set at once (reload).
    pub fn replace(&self, other: &CredentialStore) {
        let fresh = other.sets.read().expect("credential store lock").clone();
        *self.sets.write().expect("credential store lock") = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vendor;
    use std::collections::HashMap;

    #[test]
    fn env_source_reads_keys_and_optional_token_and_never_prints_them() {
        let spec = CredentialSpec {
            name: "prod".into(),
            vendor: Vendor::Alibaba,
            source: SourceSpec::Env { id_var: "ID".into(), secret_var: "SK".into(), token_var: "TOK".into() },
        };
        let env = HashMap::from([("ID".to_string(), "LTAIkey".to_string()), ("SK".to_string(), "s3cr3t".to_string())]);
        let c = resolve(&spec, &env).unwrap();
        assert_eq!(c.access_key_secret.expose(), "s3cr3t");
        assert!(c.security_token.is_none());
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("LTAIkey"), "{shown}");

        let err = resolve(&spec, &HashMap::<String, String>::new()).unwrap_err();
        assert_eq!(err.to_string(), "credentials `prod`: environment variable ID is not set");
    }
}
