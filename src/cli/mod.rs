//! The command line: `run` (default), `check-config`, `dev`, `emulator`, `status`, `get`,
//! `docker-credential`. `args` is its shape (clap), `dispatch` runs it; one file per subcommand,
//! and `common` what they share (exit codes, options). No subcommand imports this facade.

mod args;
mod check_config;
mod client;
mod common;
pub mod dev;
mod dispatch;
mod docker_credential;
mod emulator;
mod run;

pub use dispatch::main;
