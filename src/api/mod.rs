//! The two listeners, each answering its own callers.
//!
//! The unix-socket API (`ApiServer`: tokens, status, metrics, probes; callers identified by
//! `SO_PEERCRED`) and the TCP metrics listener (`MetricsServer`: metrics and probes only). Both run
//! on one HTTP/1.1 server loop with connection caps and timeouts (`serve`).

pub mod client;
pub(crate) mod metrics;
pub(crate) mod peer;
mod probes;
mod process;
pub(crate) mod routes;
pub(crate) mod serve;
mod socket;
mod stream;
mod tcp;
mod tickets;

pub use socket::ApiError;
pub(crate) use socket::ApiServer;
pub(crate) use tcp::MetricsServer;
