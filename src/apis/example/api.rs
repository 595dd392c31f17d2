//! The example API as an [`Api`]: each call makes a token locally, living `token_lifetime`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::apis::api::{Api, CallContext, CallKind, Lifecycle};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::example::spec::ExampleSpec;
use crate::apis::operation::Operation;
use crate::credentials::Credentials;
use crate::http::Endpoint;
use crate::secret::Secret;
use crate::token::{Issued, TokenPart};

/// Tokens made so far by this process: each call's token differs from the one before.
static MADE: AtomicU64 = AtomicU64::new(0);

impl Api for ExampleSpec {
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::SingleCall
    }

    fn call_kind(&self, _op: &Operation) -> CallKind {
        CallKind::Renew
    }

    fn identity(&self) -> String {
        format!("example endpoint={} greeting={}", self.endpoint, self.greeting)
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn call(
        &self,
        context: &CallContext,
        _op: Operation,
        _credentials: &Credentials,
    ) -> Result<Issued, ProviderError> {
        let sent_at = context.clock.now();
        let n = MADE.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Issued::Token(TokenPart {
            value: Secret::new(format!("{}-{n}", self.greeting)),
            username: None,
            token_id: None,
            issued_at: sent_at.into(),
            expires_at: (sent_at + self.token_lifetime).into(),
        }))
    }

    fn classify(_status: u16, _code: &str) -> ApiErrorKind {
        ApiErrorKind::Transient
    }
}
