//! SLS as an [`Api`]: a ticket refreshed into tokens, one endpoint per rate budget.

use std::future::Future;

use zeroize::Zeroizing;

use crate::apis::api::{Api, CallContext, CallKind, Lifecycle};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::operation::Operation;
use crate::apis::sls::spec::SlsSpec;
use crate::apis::sls::{client, share};
use crate::credentials::Credentials;
use crate::http::Endpoint;
use crate::token::Issued;

impl Api for SlsSpec {
    const EMBEDS: bool = true;

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::TicketAndToken { renew_before: self.ticket_renew_before }
    }

    /// CreateTicket mints the ticket the fleet then shares; RefreshToken renews from it.
    fn call_kind(&self, op: &Operation) -> CallKind {
        match op {
            Operation::Mint => CallKind::Mint,
            Operation::Refresh { .. } => CallKind::Renew,
        }
    }

    fn identity(&self) -> String {
        format!("sls endpoint={}", self.endpoint)
    }

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn call<'a>(
        &'a self,
        context: &'a CallContext,
        op: Operation,
        credentials: &'a Credentials,
    ) -> impl Future<Output = Result<Issued, ProviderError>> + Send + 'a {
        client::call(&context.http, context.clock.as_ref(), self, op, credentials)
    }

    fn share_url(&self, ticket: &str) -> Option<Zeroizing<String>> {
        share::share_url(self, ticket)
    }

    fn classify(status: u16, code: &str) -> ApiErrorKind {
        client::classify(status, code)
    }
}
