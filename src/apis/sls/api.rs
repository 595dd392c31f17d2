//! SLS as an [`Api`]: a ticket refreshed into tokens, one endpoint per rate budget.

use crate::apis::api::{Api, CallContext, Lifecycle};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::operation::{BoxFuture, Operation};
use crate::apis::sls::client;
use crate::apis::sls::spec::SlsSpec;
use crate::config::Vendor;
use crate::credentials::Credentials;
use crate::token::Issued;

impl Api for SlsSpec {
    const VENDOR: Vendor = Vendor::Alibaba;

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::TicketAndToken { renew_before: self.ticket_renew_before }
    }

    fn identity(&self) -> String {
        format!("sls endpoint={}", self.endpoint)
    }

    fn rate_limit_key(&self) -> String {
        self.endpoint.to_string()
    }

    fn call(
        &self,
        context: &CallContext,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        let (spec, context) = (self.clone(), context.clone());
        Box::pin(async move { client::call(&context.http, context.clock.as_ref(), &spec, op, &credentials).await })
    }

    fn classify(status: u16, code: &str) -> ApiErrorKind {
        client::classify(status, code)
    }
}
