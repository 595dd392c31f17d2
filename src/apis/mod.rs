//! Cloud APIs, one folder each (`sls/`, `dsw/`, `tcr/`: spec, client, [`Api`] implementation),
//! registered by one line in `kinds.rs`, behind the [`Provider`] trait the scheduler calls.

pub(crate) mod answer;
pub(crate) mod api;
pub mod dsw;
pub(crate) mod error;
#[cfg(all(test, feature = "example-api"))]
pub mod example;
pub(crate) mod kinds;
pub(crate) mod operation;
pub(crate) mod provider;
pub(crate) mod ratelimit;
pub(crate) mod registry;
pub(crate) mod section;
pub mod sls;
pub mod tcr;
pub(crate) mod validate;

pub use api::{Api, CallContext, CallKind, Lifecycle};
pub use error::{ApiErrorKind, ProviderError};
pub use kinds::{ApiSpec, Kind};
pub use operation::{BoxFuture, Operation};
pub use provider::{CloudProvider, Provider};
