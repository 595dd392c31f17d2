//! From raw TOML to a validated [`Config`](super::Config): one file per section checked (the
//! document and its settings, credentials, tickets, sinks, hooks, the socket; each API's own keys are checked in its folder, `apis/<kind>/section.rs`).

mod credentials;
mod document;
mod hooks;
mod sinks;
mod socket;
#[cfg(test)]
mod template_tests;
#[cfg(test)]
mod tests;
mod tickets;

pub(super) use document::{parse, parse_by_pieces};
