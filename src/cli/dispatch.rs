//! `ticketd`'s entry point: one subcommand run from the command line to its exit code.
//!
//! It parses the command line, starts logging, runs the chosen subcommand and maps its outcome to an
//! exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::args::{Command, parse};
use crate::cli::common::runtime;
use crate::cli::{check_config, client, dev, docker_credential, emulator, kubelet_credential, run};
use crate::config::DEFAULT_CONFIG_PATH;
use crate::logging;

/// Parse the command line, run, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args.first().map(Path::new).and_then(Path::file_name).map(|n| n.to_os_string());
    if let Some(subcommand) = invoked_as.and_then(|n| subcommand_named(&n)) {
        args.splice(0..1, ["ticketd".into(), subcommand.into()]);
    }
    let (command, config, log_format) = parse(args).unwrap_or_else(|e| e.exit());
    let config_path = config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    match command {
        Command::CheckConfig(_) => check_config::check_config(&config_path),
        Command::Run(args) => {
            logging::init(log_format, "info");
            runtime(async move { run::run(&config_path, args).await })
        }
        Command::Dev(args) => {
            logging::init(log_format, "warn");
            runtime(async move { dev::run(args).await })
        }
        Command::Emulator(args) => {
            logging::init(log_format, "info");
            runtime(async move { emulator::run(args).await })
        }
        Command::Status(args) => runtime(async move { client::status(args, config.as_deref()).await }),
        Command::Get(args) => runtime(async move { client::get(args, config.as_deref()).await }),
        Command::DockerCredential(args) => docker_credential::main(&args, &config_path),
        Command::KubeletCredentialProvider(_) => kubelet_credential::main(&config_path),
    }
}

/// The subcommand the binary runs when invoked (through a symlink) under program name `name`:
/// `docker-credential-ticketd` is `ticketd docker-credential`, `ticketd-credential-provider` is
/// `ticketd kubelet-credential-provider`.
fn subcommand_named(name: &std::ffi::OsStr) -> Option<&'static str> {
    [
        (docker_credential::HELPER_NAME, "docker-credential"),
        (kubelet_credential::PROVIDER_NAME, "kubelet-credential-provider"),
    ]
    .into_iter()
    .find_map(|(program, subcommand)| (name == program).then_some(subcommand))
}
