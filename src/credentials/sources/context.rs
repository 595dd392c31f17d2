//! What a source needs from outside ([`Context`]: HTTP clients, the variables it may read, the
//! clock, the credential store for sets on top of others).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::credentials::env::Environment;
use crate::credentials::store::CredentialStore;

/// Metadata services answer within this or are taken as absent (the SDKs' 1 s).
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(1);

/// What a source needs from outside.
#[derive(Clone)]
pub(crate) struct Context {
    pub http: reqwest::Client,
    /// Metadata services: 1 s timeouts.
    pub metadata_http: reqwest::Client,
    pub env: Arc<dyn Environment + Send + Sync>,
    pub clock: Arc<dyn Clock>,
    /// The keys of every set, for a source that assumes a role on top of another set (the
    /// refresher sets it; without it such a source fails).
    pub store: Option<CredentialStore>,
}

impl Context {
    pub(crate) fn new(env: Arc<dyn Environment + Send + Sync>, clock: Arc<dyn Clock>) -> Context {
        // Builds the shared client first: it installs the crypto provider the metadata client needs.
        let http = crate::http::client();
        let metadata_http = reqwest::Client::builder()
            .connect_timeout(METADATA_TIMEOUT)
            .timeout(METADATA_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the metadata client builds with static settings");
        Context { http, metadata_http, env, clock, store: None }
    }

    /// This context, reading base sets' keys from `store`.
    pub(crate) fn with_store(mut self, store: CredentialStore) -> Context {
        self.store = Some(store);
        self
    }

    pub(crate) fn var(&self, name: &str) -> Option<String> {
        self.env.var(name).filter(|v| !v.is_empty())
    }
}

/// The user's home directory (`HOME`).
pub(crate) fn home(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("HOME").map(PathBuf::from)
}
