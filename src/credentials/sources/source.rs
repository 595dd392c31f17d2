//! The one shape every credential source has: the [`Source`] trait.

use std::future::Future;
use std::pin::Pin;

use super::answer::{Fetched, SourceError, Watch};
use super::context::Context;

/// What [`Source::fetch`] returns: the keys, later (files read, STS and metadata called).
pub(crate) type Fetching<'a> = Pin<Box<dyn Future<Output = Result<Fetched, SourceError>> + Send + 'a>>;

/// One way of getting a set's keys, built from its spec for its vendor by
/// `dispatch::source`: the chain walks several, a single source is one.
///
/// Contract (tested over every source in `source_contract_tests.rs`): [`vars`](Source::vars)
/// names every environment variable [`fetch`](Source::fetch), [`describe`](Source::describe) and
/// [`watch`](Source::watch) read, so the daemon's environment snapshot (the union of `vars()` over
/// a config's sources) holds all of them and nothing else.
pub(crate) trait Source: Send + Sync {
    /// The keys, fetched now. Every error text is the source's own (a chain lists them).
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a>;

    /// How the source would resolve, from variables (`var` gives set, non-empty ones) and files
    /// only, never the network: for `check-config`.
    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError>;

    /// Besides their expiry, what could change the keys this source gave: by default a service
    /// (STS, metadata), asked again before they expire.
    fn watch(&self, _ctx: &Context) -> Watch {
        Watch::Service
    }

    /// Every environment variable this source reads.
    fn vars(&self) -> Vec<&str>;
}
