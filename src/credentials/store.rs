//! The current keys of every set ([`CredentialStore`]): resolved at start-up for sets read from
//! the environment or the file, filled by the refresher for the others, waited on while fetched.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::env::Environment;
use super::error::CredentialError;
use super::keys::Credentials;
use crate::config::{Config, CredentialSpec, SourceSpec};

/// A token call waits at most this long for a set's first fetch or a refresh under way.
pub const FRESH_WAIT: Duration = Duration::from_secs(20);

/// Whether a source is resolved once at start-up (else by the refresher).
pub fn resolved_at_start(source: &SourceSpec) -> bool {
    matches!(source, SourceSpec::Env { .. } | SourceSpec::InMemory(_) | SourceSpec::Static(_))
}

/// Resolve one credential set from its source.
pub fn resolve(spec: &CredentialSpec, env: &dyn Environment) -> Result<Credentials, CredentialError> {
    match &spec.source {
        SourceSpec::Env { id_var, secret_var, token_var } => {
            crate::credentials::sources::env::env_keys(env, id_var, secret_var, token_var)
                .map_err(|e| CredentialError::MissingEnv { set: spec.name.clone(), detail: e.detail().to_string() })
        }
        SourceSpec::InMemory(keys) | SourceSpec::Static(keys) => Ok(keys.into()),
        other => Err(CredentialError::Unavailable {
            set: spec.name.clone(),
            detail: format!("source {} is fetched by the refresher", other.name()),
        }),
    }
}

#[derive(Clone, Default)]
struct Slot {
    current: Option<Credentials>,
    /// A fetch is under way (or the first one has not finished): token calls wait.
    refreshing: bool,
    last_error: Option<String>,
}

/// The current credentials of every configured set.
#[derive(Clone, Default)]
pub struct CredentialStore {
    sets: Arc<RwLock<BTreeMap<String, Slot>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl CredentialStore {
    /// Resolve every set of `config`; all failures are returned together.
    pub fn resolve_all(config: &Config, env: &dyn Environment) -> Result<Self, Vec<CredentialError>> {
        let mut sets = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, spec) in &config.credentials {
            if !resolved_at_start(&spec.source) {
                sets.insert(name.clone(), Slot { current: None, refreshing: true, last_error: None });
                continue;
            }
            match resolve(spec, env) {
                Ok(c) => {
                    sets.insert(name.clone(), Slot { current: Some(c), ..Slot::default() });
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(CredentialStore { sets: Arc::new(RwLock::new(sets)), changed: Arc::default() })
        } else {
            Err(errors)
        }
    }

    /// Set `name` is being fetched: token calls wait for the result.
    pub fn begin_refresh(&self, name: &str) {
        self.update(name, |slot| slot.refreshing = true);
    }

    /// New keys for `name`.
    pub fn store(&self, name: &str, credentials: Credentials) {
        self.update(name, |slot| *slot = Slot { current: Some(credentials), refreshing: false, last_error: None });
    }

    /// A fetch failed: waiting calls go ahead with what is held (if anything).
    pub fn fetch_failed(&self, name: &str, error: String) {
        self.update(name, |slot| {
            slot.refreshing = false;
            slot.last_error = Some(error);
        });
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut Slot)) {
        f(self.sets.write().expect("credential store lock").entry(name.to_string()).or_default());
        self.changed.notify_waiters();
    }

    /// A snapshot of set `name` for a call starting at `now`: waits while the set is being fetched
    /// (at most `wait`), so a token is never minted with keys about to be replaced.
    pub async fn fresh(
        &self,
        name: &str,
        clock: &dyn crate::clock::Clock,
        wait: Duration,
    ) -> Result<Credentials, CredentialError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let slot = self.sets.read().expect("credential store lock").get(name).cloned();
            let Some(slot) = slot else { return Err(CredentialError::Unknown(name.to_string())) };
            let now = clock.now();
            let usable = slot.current.clone().filter(|c| c.usable_at(now));
            if !slot.refreshing || tokio::time::Instant::now() >= deadline {
                return usable.ok_or_else(|| CredentialError::Unavailable {
                    set: name.to_string(),
                    detail: slot.last_error.clone().unwrap_or_else(|| {
                        if slot.current.is_some() { "the keys expired".into() } else { "not fetched yet".into() }
                    }),
                });
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    /// A snapshot of set `name`.
    pub fn get(&self, name: &str) -> Result<Credentials, CredentialError> {
        self.sets
            .read()
            .expect("credential store lock")
            .get(name)
            .and_then(|slot| slot.current.clone())
            .ok_or_else(|| CredentialError::Unknown(name.to_string()))
    }

    /// Replace every set at once (reload). Sets the refresher fetches keep what they hold (and
    /// whether a fetch is under way) until the refresher fetches them again.
    pub fn replace(&self, other: &CredentialStore) {
        let mut fresh = other.sets.read().expect("credential store lock").clone();
        {
            let old = self.sets.read().expect("credential store lock");
            for (name, slot) in fresh.iter_mut() {
                // A set the refresher fetches keeps its state; a changed set is fetched anew by
                // the new refresher, which marks it as refreshing first.
                if slot.current.is_none()
                    && let Some(held) = old.get(name)
                {
                    *slot = held.clone();
                }
            }
        }
        *self.sets.write().expect("credential store lock") = fresh;
        self.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Vendor;
    use crate::config::check::key_text_problem;
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

    /// Issue #16 item 1: a key with a non-ASCII or control character is refused where it is
    /// read, naming the variable and never the value.
    #[test]
    fn issue_16_keys_with_non_ascii_or_control_characters_are_refused_naming_the_variable() {
        let spec = CredentialSpec {
            name: "prod".into(),
            vendor: Vendor::Alibaba,
            source: SourceSpec::Env { id_var: "ID".into(), secret_var: "SK".into(), token_var: "TOK".into() },
        };
        for (var, value, kind) in [
            ("SK", "s3cr\u{e9}t-key", "a non-ASCII character (U+00E9) at character 5"),
            ("SK", "s3cret\u{200b}key", "a non-ASCII character (U+200B) at character 7"),
            ("ID", "LTAIkey\n", "a control character (U+000A) at character 8"),
            ("SK", "s3c\0ret", "a control character (U+0000) at character 4"),
            ("TOK", "CAIS tok", "a space (U+0020) at character 5"),
            ("SK", "\u{a0}s3cret", "a whitespace character (U+00A0) at character 1"),
        ] {
            let mut env =
                HashMap::from([("ID".to_string(), "LTAIkey".to_string()), ("SK".to_string(), "s3cr3t".to_string())]);
            env.insert(var.to_string(), value.to_string());
            let err = resolve(&spec, &env).unwrap_err().to_string();
            assert!(err.starts_with(&format!("credentials `prod`: environment variable {var} holds {kind}")), "{err}");
            assert!(!err.contains(value) && !err.contains("s3c"), "{err}");
        }
        assert_eq!(key_text_problem("LTAI5tAbc+/=xyz"), None);
        assert_eq!(key_text_problem("").as_deref(), Some("is empty"));
    }
}
