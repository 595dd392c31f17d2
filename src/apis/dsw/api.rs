//! PAI-DSW as an [`Api`]: one `GetToken` call per token, one endpoint per rate budget.

use crate::apis::api::{Api, CallContext, Lifecycle};
use crate::apis::dsw::client;
use crate::apis::dsw::spec::{DswSpec, DswTokenType};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::operation::{BoxFuture, Operation};
use crate::config::Vendor;
use crate::credentials::Credentials;
use crate::token::Issued;

impl Api for DswSpec {
    const VENDOR: Vendor = Vendor::Alibaba;

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::SingleCall
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

    fn rate_limit_key(&self) -> String {
        self.endpoint.to_string()
    }

    fn call(
        &self,
        context: &CallContext,
        _op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        let (spec, context) = (self.clone(), context.clone());
        Box::pin(async move { client::call(&context.http, context.clock.as_ref(), &spec, &credentials).await })
    }

    fn classify(status: u16, code: &str) -> ApiErrorKind {
        client::classify(status, code)
    }
}
