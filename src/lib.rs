//! ticketd keeps short-lived cloud credentials fresh for their consumers.
//!
//! The flow: [`config`] (the file as pure data, every problem with file, line and key) →
//! [`scheduler`] (one queue of tickets keyed by their next deadline; it calls [`apis`] and applies
//! the answer) → [`sinks`] (atomic files, docker config, hooks) and the `board` (the published
//! view) → consumers, through [`api`] (the socket API, `/metrics`) or the files. In a fleet
//! ([`cluster`], `[cluster]`), the leader's holdings go through etcd to every node's scheduler,
//! which publishes them the same way. One refresh, in five files: `scheduler/event_loop.rs` →
//! `scheduler/call.rs` → `scheduler/apply.rs` → `scheduler/publish.rs` → `sinks/mod.rs`
//! (`publish_one`, through the held directory's atomic write, `fsdir/dir.rs`).
//!
//! Around it:
//!
//! * [`cli`] parses the command line; `daemon` wires everything and runs the control loop fed
//!   by `control` (signals); `ticketd dev` runs the daemon against the emulator (the
//!   `ticketd-emulator` crate in `crates/emulator`).
//! * [`credentials`] holds the keys each API call is signed with, and adds the checks that need the
//!   environment to the file's; `credentials::sources` fetch keys the way the vendors' SDKs do.
//! * [`apis`] has one folder per cloud API, registered one line each; requests are signed by
//!   [`signing`], with the pure timing maths of [`scheduler::timing`] and `backoff` deciding
//!   when.
//! * [`store`] saves holdings across restarts behind the `Store` trait; `revocation` deletes the
//!   TCR long-term tokens a re-mint replaced, off the scheduler's path.
//! * [`cluster`] is the fleet through etcd (in progress): holdings sealed for etcd, leadership and
//!   fenced writes behind the `etcd` feature, and the view of the cluster the API shows.
//! * `fsdir` opens paths as root safely: the StrictModes walk, held directory fds, capped reads.
//! * [`api`] holds both listeners on one server loop (connection caps, timeouts) within the
//!   descriptor budget of `fd_budget`; metrics and ticket lists are streamed from the `board`.
//! * [`secret`] keeps keys, tokens and tickets out of logs and core dumps; [`clock`] is the
//!   injected wall clock.

// `pub` only for what tests/, benches/ or the binary use; anything else is `pub(crate)`, and a
// `pub` item nothing outside can reach is flagged (clippy runs with `-D warnings`).
#![warn(unreachable_pub)]

pub mod api;
pub mod apis;
pub(crate) mod backoff;
pub(crate) mod board;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub(crate) mod control;
pub mod credentials;
pub(crate) mod daemon;
pub(crate) mod fd_budget;
pub(crate) mod fsdir;
pub mod http;
pub mod jwt;
pub(crate) mod logging;
pub(crate) mod revocation;
pub mod scheduler;
pub mod secret;
pub mod signing;
pub mod sinks;
pub mod store;
pub(crate) mod systemd;
#[cfg(test)]
mod testing;
pub mod token;
