//! Cloud API clients, one folder per API, behind one [`Provider`] trait the scheduler calls.

pub(crate) mod answer;
pub mod dsw;
pub mod error;
pub mod operation;
pub mod provider;
pub mod ratelimit;
pub mod sls;
pub mod tcr;

pub use error::{ApiErrorKind, ProviderError};
pub use operation::{BoxFuture, Operation};
pub use provider::{CloudProvider, Provider};
