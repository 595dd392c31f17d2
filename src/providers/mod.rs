//! Cloud API clients, one file per API, behind one [`Provider`] trait the scheduler calls.

pub mod dsw;
pub mod error;
pub mod ratelimit;
pub mod sls;
pub mod tcr;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use error::{ApiErrorKind, ProviderError};

use crate::clock::Clock;
use serde::Deserialize;

use crate::config::{ApiSpec, RateLimits, TicketSpec};
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

    /// Revoke a TCR long-term token (`DeleteInstanceToken`). A provider that cannot says so as
    /// an error (the revocation stays queued).
    fn revoke(
        &self,
        revocation: tcr::Revocation,
        credentials: Credentials,
    ) -> BoxFuture<Result<tcr::Deleted, ProviderError>> {
        let _ = (revocation, credentials);
        Box::pin(async {
            Err(ProviderError::Internal {
                api: tcr::DELETE_INSTANCE_TOKEN,
                detail: "this provider cannot revoke tokens",
            })
        })
    }
}

/// The real clouds (or the emulator standing in for them).
#[derive(Clone)]
pub struct CloudProvider {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
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
            http: crate::http::client(),
            clock,
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
        let (http, clock) = (self.http.clone(), self.clock.clone());
        match &spec.api {
            ApiSpec::Sls(sls) => {
                let (sls, limit) = (sls.clone(), self.alibaba_limit.clone());
                Box::pin(async move {
                    limit.acquire(&sls.endpoint.to_string()).await;
                    sls::call(&http, clock.as_ref(), &sls, op, &credentials).await
                })
            }
            ApiSpec::Dsw(dsw) => {
                let (dsw, limit) = (dsw.clone(), self.alibaba_limit.clone());
                Box::pin(async move {
                    limit.acquire(&dsw.endpoint.to_string()).await;
                    dsw::call(&http, clock.as_ref(), &dsw, &credentials).await
                })
            }
            ApiSpec::Tcr(tcr) => {
                let (tcr, limit) = (tcr.clone(), self.tcr_limit.clone());
                Box::pin(async move {
                    limit.acquire(&tcr.endpoint.to_string()).await;
                    tcr::call(&http, clock.as_ref(), &tcr, &credentials).await
                })
            }
        }
    }

    fn revoke(
        &self,
        revocation: tcr::Revocation,
        credentials: Credentials,
    ) -> BoxFuture<Result<tcr::Deleted, ProviderError>> {
        let (http, clock, limit) = (self.http.clone(), self.clock.clone(), self.tcr_limit.clone());
        Box::pin(async move {
            limit.acquire(&revocation.endpoint.to_string()).await;
            tcr::delete(&http, clock.as_ref(), &revocation, &credentials).await
        })
    }
}

/// Parse a JSON answer.
pub(crate) fn parse<'a, T: Deserialize<'a>>(api: &'static str, body: &'a [u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Malformed {
        api,
        detail: format!("not the expected JSON ({})", crate::secret::json_error_without_values(&e)),
    })
}

/// A token, ticket or user name from an answer: present, non-empty, of sane size, and free of
/// control characters. A newline or NUL would go raw into a `token` sink and change what an
/// `env` sink means; the answer is refused as malformed (retried with backoff, the last good
/// token kept). The error names the field and the character, never the value.
pub(crate) fn nonempty(api: &'static str, value: Option<String>, field: &str) -> Result<String, ProviderError> {
    let malformed = |detail: String| ProviderError::Malformed { api, detail };
    let value = value
        .filter(|v| !v.is_empty() && v.len() <= 16 * 1024)
        .ok_or_else(|| malformed(format!("no `{field}` in the answer")))?;
    if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(malformed(format!(
            "`{field}` in the answer holds a control character (U+{:04X}) at character {}",
            u32::from(c),
            at + 1
        )));
    }
    Ok(value)
}

/// A user name that goes with a token (TCR `Username`): as [`nonempty`], and without `:`, which
/// would end the name early in a docker `auth` entry (`base64(user:password)`).
pub(crate) fn username(api: &'static str, value: Option<String>, field: &str) -> Result<String, ProviderError> {
    let value = nonempty(api, value, field)?;
    match value.chars().position(|c| c == ':') {
        Some(at) => Err(ProviderError::Malformed {
            api,
            detail: format!("`{field}` in the answer holds a `:` at character {}", at + 1),
        }),
        None => Ok(value),
    }
}

/// A transport failure, without the URL (it may carry a ticket in its query).
pub(crate) fn transport(api: &'static str, endpoint: &str, e: reqwest::Error) -> ProviderError {
    let e = e.without_url();
    if e.is_timeout() {
        ProviderError::Timeout { api, endpoint: endpoint.to_string(), timeout: crate::http::REQUEST_TIMEOUT }
    } else {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail = format!("{detail}: {s}");
            source = s.source();
        }
        ProviderError::Transport { api, endpoint: endpoint.to_string(), detail }
    }
}

/// A fresh request nonce: 32 random hex digits.
pub(crate) fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
