//! The command line: `run` (default), `check-config`, `dev`, `emulator`, `status`, `get`,
//! `docker-credential`, `kubelet-credential-provider`. `args` is its shape (clap), `dispatch` runs
//! it; one file per subcommand, `common` what they share (exit codes, options) and
//! `registry_login` the registry logins both credential helpers hand out. No subcommand imports
//! this facade.

mod args;
mod check_config;
mod client;
mod common;
pub mod dev;
mod dispatch;
mod docker_credential;
mod emulator;
mod kubelet_credential;
mod registry_login;
mod run;

pub use dispatch::main;
