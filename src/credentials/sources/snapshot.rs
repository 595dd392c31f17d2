//! The variables a config's sources may read, copied once from the environment ([`EnvSnapshot`]),
//! and the [`Context`] built on them for a config.

use std::collections::HashMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::context::Context;
use super::dispatch::vars;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::env::Environment;
use crate::secret::Secret;

impl Context {
    /// A context for `config`: the variables its sources may read, copied from `env` once.
    pub(crate) fn for_config(config: &Config, env: &dyn Environment, clock: Arc<dyn Clock>) -> Context {
        Context::new(Arc::new(snapshot_env(config, env)), clock)
    }
}

/// Every variable a config's sources may read (the union of their `Source::vars`), copied once so refresh tasks need no process environment.
pub(crate) fn snapshot_env(config: &Config, env: &dyn Environment) -> EnvSnapshot {
    let names: std::collections::BTreeSet<String> = config.credentials.values().flat_map(vars).collect();
    EnvSnapshot(names.into_iter().filter_map(|n| env.var(&n).map(|v| (n, Secret::new(Zeroizing::new(v))))).collect())
}

/// The variables a config's sources may read, copied once. The values (keys among them) are
/// held as [`Secret`]s: in the secret pool, left out of core dumps, wiped when dropped.
pub(crate) struct EnvSnapshot(HashMap<String, Secret>);

impl Environment for EnvSnapshot {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|value| value.expose().to_string())
    }
}
