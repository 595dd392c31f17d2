//! TCR as an [`Api`]: one `CreateInstanceToken` call per token (long-term ones kept for years).

use std::future::Future;

use crate::apis::api::{Api, CallContext, CallKind, Lifecycle};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::operation::Operation;
use crate::apis::tcr::client;
use crate::apis::tcr::spec::{LONGTERM_RENEW_BEFORE, TcrSpec, TcrTokenType, identity};
use crate::credentials::Credentials;
use crate::http::Endpoint;
use crate::token::Issued;

impl Api for TcrSpec {
    fn lifecycle(&self) -> Lifecycle {
        match self.token_type {
            TcrTokenType::Temp => Lifecycle::SingleCall,
            TcrTokenType::LongTerm => Lifecycle::LongTerm { renew_before: LONGTERM_RENEW_BEFORE },
        }
    }

    /// A long-term token is kept for years and shared: minting another forks the fleet. A
    /// temporary token is a renewal (any number may be live).
    fn call_kind(&self, _op: &Operation) -> CallKind {
        match self.token_type {
            TcrTokenType::Temp => CallKind::Renew,
            TcrTokenType::LongTerm => CallKind::Mint,
        }
    }

    fn identity(&self) -> String {
        identity(&self.endpoint, &self.registry_id, self.token_type)
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn call<'a>(
        &'a self,
        context: &'a CallContext,
        _op: Operation,
        credentials: &'a Credentials,
    ) -> impl Future<Output = Result<Issued, ProviderError>> + Send + 'a {
        client::call(&context.http, context.clock.as_ref(), self, credentials)
    }

    fn classify(_status: u16, code: &str) -> ApiErrorKind {
        client::classify(code)
    }
}
