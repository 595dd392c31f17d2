//! What one API call asks for (mint or refresh), with the future a call returns.

use std::future::Future;
use std::pin::Pin;

use crate::secret::Secret;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One call to make.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Obtain a new ticket (SLS) or token (single-call kinds).
    Mint,
    /// Obtain a token from this ticket (SLS RefreshToken).
    Refresh { ticket: Secret },
}
