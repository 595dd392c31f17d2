//! The `env` source as a [`Source`]: the three variables a set names ([`env_keys`] reads them).

use super::answer::{Fetched, SourceError, Watch};
use super::context::Context;
use super::env::env_keys;
use super::source::{Fetching, Source};
use crate::credentials::env::Environment;
use crate::credentials::keys::Credentials;

/// `source = "env"` (and the first member of both chains): the three variables named.
pub(crate) struct EnvSource<'a> {
    pub id_var: &'a str,
    pub secret_var: &'a str,
    pub token_var: &'a str,
}

impl EnvSource<'_> {
    fn keys(&self, env: &dyn Environment) -> Result<Credentials, SourceError> {
        env_keys(env, self.id_var, self.secret_var, self.token_var)
    }

    fn description(&self) -> String {
        format!("env ({})", self.id_var)
    }
}

/// A variable reader seen as an [`Environment`].
struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Environment for Vars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl Source for EnvSource<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        let fetched =
            self.keys(ctx.env.as_ref()).map(|credentials| Fetched { credentials, description: self.description() });
        Box::pin(std::future::ready(fetched))
    }

    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        self.keys(&Vars(var)).map(|_| self.description())
    }

    /// The environment is copied once: only a restart or reload changes these keys.
    fn watch(&self, _: &Context) -> Watch {
        Watch::Nothing
    }

    fn vars(&self) -> Vec<&str> {
        vec![self.id_var, self.secret_var, self.token_var]
    }
}
