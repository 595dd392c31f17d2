//! The sources whose keys are given as they are: `static` (written in the config file) or
//! in memory (handed over by `ticketd dev` and tests).

use super::answer::{Fetched, SourceError, Watch};
use super::context::Context;
use super::source::{Fetching, Source};
use crate::config::StaticKeys;

/// Keys given as they are, described as `description`.
pub(crate) struct Given<'a> {
    pub keys: &'a StaticKeys,
    pub description: &'static str,
}

impl Source for Given<'_> {
    fn fetch<'a>(&'a self, _: &'a Context) -> Fetching<'a> {
        let fetched = Fetched { credentials: self.keys.into(), description: self.description.into() };
        Box::pin(std::future::ready(Ok(fetched)))
    }

    fn describe(&self, _: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        Ok(self.description.into())
    }

    /// Only a restart or reload changes keys the config holds.
    fn watch(&self, _: &Context) -> Watch {
        Watch::Nothing
    }

    fn vars(&self) -> Vec<&str> {
        Vec::new()
    }
}
