//! PAI-DSW as an [`Api`]: one `GetToken` call per token, one endpoint per rate budget.

use std::future::Future;

use crate::apis::api::{Api, CallContext, CallKind, Lifecycle};
use crate::apis::dsw::client;
use crate::apis::dsw::spec::{DswSpec, DswTokenType};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::operation::Operation;
use crate::credentials::Credentials;
use crate::http::Endpoint;
use crate::token::Issued;

impl Api for DswSpec {
    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::SingleCall
    }

    /// GetToken renews a short token; any number may be live.
    fn call_kind(&self, _op: &Operation) -> CallKind {
        CallKind::Renew
    }

    fn identity(&self) -> String {
        format!(
            "dsw endpoint={} instance_id={} token_type={} audience={}",
            self.endpoint,
            self.instance_id,
            // Unset asks for the API's default, Access: the same token as before `Type` became optional.
            self.token_type.unwrap_or(DswTokenType::Access).as_str(),
            self.audience.as_deref().unwrap_or("")
        )
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

    fn classify(status: u16, code: &str) -> ApiErrorKind {
        client::classify(status, code)
    }
}
