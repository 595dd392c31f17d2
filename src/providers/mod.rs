//! Cloud API clients, one file per API, behind one [`Provider`] trait the scheduler calls.

pub mod error;
pub mod sls;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use error::{ApiErrorKind, ProviderError};

use crate::clock::Clock;
use crate::config::{ApiSpec, TicketSpec};
use crate::credentials::Credentials;
use crate::secret::Secret;
use crate::token::Issued;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One call to make.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Obtain a new ticket (SLS) or token (single-call kinds).
    Mint,
    /// Obtain a token from this ticket (SLS RefreshToken).
    Refresh { ticket: Secret },
}

/// Makes API calls for tickets. The scheduler owns when; a provider owns how.
pub trait Provider: Send + Sync + 'static {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>>;
}

/// The real clouds (or the emulator standing in for them).
#[derive(Clone)]
pub struct CloudProvider {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl CloudProvider {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        CloudProvider { http: crate::http::client(), clock }
    }
}

impl Provider for CloudProvider {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        let (http, clock) = (self.http.clone(), self.clock.clone());
        match &spec.api {
            ApiSpec::Sls(sls) => {
                let sls = sls.clone();
                Box::pin(async move { sls::call(&http, clock.as_ref(), &sls, op, &credentials).await })
            }
        }
    }
}
