//! ticketd keeps short-lived cloud credentials fresh and hands them to consumers.
//!
//! Architecture, from the outside in:
//!
//! * [`cli`] parses the command line; [`daemon`] wires everything and runs the control loop fed
//!   by [`control`] (signals); [`cli::dev`] runs the daemon against the emulator (the `ticketd-emulator` crate in
//!   `crates/emulator`).
//! * [`config`] turns the TOML file into a validated [`config::Config`], reporting every problem
//!   with file, line and key.
//! * [`credentials`] holds the keys each API call is signed with; [`credentials::sources`] fetch them the way
//!   the vendors' SDKs do and keeps temporary ones fresh.
//! * [`scheduler`] keeps one queue of tickets keyed by their next deadline and decides, with the
//!   pure maths in [`scheduler::timing`], when to mint, refresh or retry.
//! * [`apis`] make the API calls (one folder per API), signed by [`signing`].
//! * [`revocation`] deletes the TCR long-term tokens a re-mint replaced, off the scheduler's path.
//! * [`sinks`] write what consumers read, atomically; [`store`] saves holdings across restarts.
//! * `cli`'s docker-credential subcommand answers docker's credential-helper protocol from the saved state.
//! * [`fsdir`] opens paths as root safely: the StrictModes walk, held directory fds, capped reads.
//! * [`api`] holds both listeners, the socket API and the TCP metrics listener, on one server
//!   loop (connection caps, timeouts) within the descriptor budget of [`fd_budget`]; metrics are
//!   rendered from the [`board`].
//! * [`secret`] keeps keys, tokens and tickets out of logs; [`clock`] is the injected wall clock.

pub mod api;
pub mod apis;
pub mod board;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod credentials;
pub mod daemon;
pub mod fd_budget;
pub mod fsdir;
pub mod http;
pub mod jwt;
pub mod logging;
pub mod revocation;
pub mod scheduler;
pub mod secret;
pub mod signing;
pub mod sinks;
pub mod store;
pub mod systemd;
pub mod token;
