//! The [`Provider`] trait the scheduler calls; [`CloudProvider`] makes the real calls.

use std::sync::Arc;

use crate::clock::Clock;

use crate::apis::api::CallContext;
use crate::apis::error::ProviderError;
use crate::apis::operation::{BoxFuture, Operation};
use crate::apis::{ratelimit, tcr};
use crate::config::{RateLimits, TicketSpec, Vendor};
use crate::credentials::Credentials;
use crate::token::Issued;

/// Makes API calls for tickets. The scheduler owns when; a provider owns how.
pub trait Provider: Send + Sync + 'static {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>>;

    /// Revoke a TCR long-term token (`DeleteInstanceToken`). A provider that cannot says so as
    /// an error (the revocation stays queued).
    fn revoke(
        &self,
        revocation: tcr::Revocation,
        credentials: Credentials,
    ) -> BoxFuture<Result<tcr::Deleted, ProviderError>> {
        let _ = (revocation, credentials);
        Box::pin(async {
            Err(ProviderError::Unsupported {
                api: tcr::DELETE_INSTANCE_TOKEN,
                detail: "this provider cannot revoke tokens",
            })
        })
    }
}

/// The real clouds (or the emulator standing in for them).
#[derive(Clone)]
pub struct CloudProvider {
    context: CallContext,
    /// TCR allows 100 requests/s per API: calls are spaced per endpoint.
    tcr_limit: Arc<ratelimit::RateLimiter>,
    /// SLS and PAI-DSW publish no rate for these APIs: ticketd keeps to `rate_limits.alibaba`
    /// per endpoint, so a burst of due tickets stays polite.
    alibaba_limit: Arc<ratelimit::RateLimiter>,
}

impl CloudProvider {
    /// A provider keeping to the default rates.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CloudProvider::with_limits(clock, RateLimits::default())
    }

    /// A provider keeping to `limits` (the config's `[rate_limits]`).
    pub fn with_limits(clock: Arc<dyn Clock>, limits: RateLimits) -> Self {
        CloudProvider {
            context: CallContext { http: crate::http::client(), clock },
            tcr_limit: Arc::new(ratelimit::RateLimiter::per_second(limits.tencent)),
            alibaba_limit: Arc::new(ratelimit::RateLimiter::per_second(limits.alibaba)),
        }
    }
}

impl Provider for CloudProvider {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        // Each vendor has its own per-second budget (`[rate_limits]`), spent per the API's key.
        let limit = match spec.kind().vendor() {
            Vendor::Alibaba => self.alibaba_limit.clone(),
            Vendor::Tencent => self.tcr_limit.clone(),
        };
        let (key, call) = (spec.api.rate_limit_key(), spec.api.call(&self.context, op, credentials));
        Box::pin(async move {
            limit.acquire(&key).await;
            call.await
        })
    }

    fn revoke(
        &self,
        revocation: tcr::Revocation,
        credentials: Credentials,
    ) -> BoxFuture<Result<tcr::Deleted, ProviderError>> {
        let (context, limit) = (self.context.clone(), self.tcr_limit.clone());
        Box::pin(async move {
            limit.acquire(&revocation.endpoint.to_string()).await;
            tcr::delete(&context.http, context.clock.as_ref(), &revocation, &credentials).await
        })
    }
}
