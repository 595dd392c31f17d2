//! From raw TOML to a validated [`Config`](super::Config): one file per section checked (the
//! document and its settings, credentials, tickets, sinks, hooks, the socket, and one per API).

mod credentials;
mod document;
mod dsw;
mod hooks;
mod sinks;
mod sls;
mod socket;
mod tcr;
#[cfg(test)]
mod tests;
mod tickets;

pub(super) use document::parse;
