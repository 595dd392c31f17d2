//! Credentials: the keys a provider signs with, resolved from their configured source.
//!
//! A [`CredentialStore`] holds the current [`Credentials`] of every named set. Providers take a
//! snapshot for each call, so a later rotation never changes a request half-way through signing.
//!
//! Sets read from the environment or the config itself are resolved at start-up. Every other
//! source (profiles, OIDC, instance roles, chains) is fetched by `credentials::sources::refresher`:
//! until its first fetch, and while a refresh is under way, [`CredentialStore::fresh`] makes token
//! calls wait (bounded by [`FRESH_WAIT`]) instead of racing with old keys.
//!
//! This file is the facade: every child imports its siblings directly, never through it.

mod env;
pub mod environment;
mod error;
mod keys;
pub(crate) mod sources;
mod store;
mod system;

pub use crate::config::check::key_text_problem;
pub use env::{Environment, ProcessEnvironment};
pub use error::CredentialError;
pub use keys::Credentials;
pub use store::{CredentialStore, FRESH_WAIT, resolve, resolved_at_start};
pub(crate) use system::group_id;
