//! The command line's shape (clap): the subcommands, their options, which of `-c` or
//! `--log-format` each takes.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::cli::client::{GetArgs, StatusArgs};
use crate::cli::common::{ConfigArg, LogArg};
use crate::cli::dev::DevArgs;
use crate::cli::docker_credential::DockerCredentialArgs;
use crate::cli::emulator::EmulatorArgs;
use crate::cli::kubelet_credential::KubeletCredentialArgs;
use crate::cli::run::RunArgs;
use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(name = "ticketd", version, about = "Keeps short-lived cloud tokens fresh and hands them to consumers")]
pub(super) struct Cli {
    /// The config file of the default `run`, and of a subcommand that reads one.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The log format of the default `run`, and of a subcommand that logs.
    #[command(flatten)]
    pub log: LogArg,
    /// Same as the `check-config` subcommand.
    #[arg(long, hide = true)]
    pub check_config: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Run the daemon (the default).
    Run(RunArgs),
    /// Validate the config (and that its environment variables are set); print every problem.
    CheckConfig(ConfigArg),
    /// Run the daemon against a built-in emulator of the cloud APIs, with short lifetimes.
    Dev(DevArgs),
    /// Run only the emulator of the cloud APIs, on loopback.
    Emulator(EmulatorArgs),
    /// Show every ticket's state, from the running daemon (socket API).
    Status(StatusArgs),
    /// Print a ticket's current token (or wait for the next), from the running daemon.
    Get(GetArgs),
    /// Docker credential helper for TCR registries (`get|store|erase|list`); also runs when the
    /// binary is invoked as `docker-credential-ticketd`.
    DockerCredential(DockerCredentialArgs),
    /// Kubelet image credential provider for TCR registries (`credentialprovider.kubelet.k8s.io/v1`:
    /// a CredentialProviderRequest on stdin, the CredentialProviderResponse on stdout); also runs
    /// when the binary is invoked as `ticketd-credential-provider`.
    KubeletCredentialProvider(KubeletCredentialArgs),
}

/// Parse `args` (`args[0]` is the program): the command to run, the config it reads (`None`:
/// neither `-c` nor `TICKETD_CONFIG`) and its log format. `-c` and `--log-format` before the
/// subcommand apply to a subcommand that takes them and are refused before one that does not.
pub(super) fn parse(args: Vec<std::ffi::OsString>) -> Result<(Command, Option<PathBuf>, LogFormat), clap::Error> {
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    let outer_config = matches.value_source("config") == Some(clap::parser::ValueSource::CommandLine);
    let command = match (cli.command.take(), cli.check_config) {
        (_, true) => Command::CheckConfig(ConfigArg::default()),
        (Some(c), false) => c,
        (None, false) => Command::Run(RunArgs::default()),
    };
    let refused = |option: &str, why: &str| {
        Err(Cli::command().error(
            clap::error::ErrorKind::ArgumentConflict,
            format!("{option} does not apply to `ticketd {}`, which {why}", command.name()),
        ))
    };
    let config = match &command {
        Command::Run(a) => a.config.or(&cli.config),
        Command::CheckConfig(a) => a.or(&cli.config),
        Command::Status(a) => a.config.or(&cli.config),
        Command::Get(a) => a.config.or(&cli.config),
        Command::DockerCredential(a) => a.config.or(&cli.config),
        Command::KubeletCredentialProvider(a) => a.config.or(&cli.config),
        Command::Dev(_) | Command::Emulator(_) if outer_config => {
            return refused("-c/--config", "reads no config file");
        }
        Command::Dev(_) | Command::Emulator(_) => None,
    };
    let log = match &command {
        Command::Run(a) => a.log.log_format,
        Command::Dev(a) => a.log.log_format,
        Command::Emulator(a) => a.log.log_format,
        _ if cli.log.log_format.is_some() => return refused("--log-format", "writes no log"),
        _ => None,
    };
    Ok((command, config, log.or(cli.log.log_format).unwrap_or(LogFormat::Text)))
}

impl Command {
    /// The subcommand's name, as typed.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::CheckConfig(_) => "check-config",
            Command::Dev(_) => "dev",
            Command::Emulator(_) => "emulator",
            Command::Status(_) => "status",
            Command::Get(_) => "get",
            Command::DockerCredential(_) => "docker-credential",
            Command::KubeletCredentialProvider(_) => "kubelet-credential-provider",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parsed(args: &[&str]) -> Result<(Command, Option<PathBuf>), clap::error::ErrorKind> {
        logged(args).map(|(command, config, _)| (command, config))
    }

    fn logged(args: &[&str]) -> Result<(Command, Option<PathBuf>, LogFormat), clap::error::ErrorKind> {
        let args = std::iter::once("ticketd").chain(args.iter().copied()).map(Into::into).collect();
        parse(args).map_err(|e| e.kind())
    }

    fn help(subcommand: &str) -> String {
        Cli::command().find_subcommand_mut(subcommand).unwrap().render_long_help().to_string()
    }

    /// Issue 17 item 12: each subcommand takes `-c` exactly when it reads a config.
    #[test]
    fn issue17_only_the_commands_that_read_a_config_take_c() {
        for sub in ["dev", "emulator"] {
            assert!(!help(sub).contains("--config"), "ticketd {sub} --help lists --config:\n{}", help(sub));
            assert!(parsed(&[sub, "-c", "/x.toml"]).is_err(), "ticketd {sub} -c");
            assert_eq!(parsed(&["-c", "/x.toml", sub]).err(), Some(clap::error::ErrorKind::ArgumentConflict));
        }
        for sub in ["run", "check-config", "status", "get", "docker-credential", "kubelet-credential-provider"] {
            assert!(help(sub).contains("-c, --config <FILE>"), "ticketd {sub} --help:\n{}", help(sub));
        }
        // Where -c worked, it still does: after the subcommand, before it, and with no subcommand.
        let x = Some(PathBuf::from("/x.toml"));
        assert_eq!(parsed(&["status", "-c", "/x.toml"]).unwrap().1, x);
        assert_eq!(parsed(&["-c", "/x.toml", "status"]).unwrap().1, x);
        assert_eq!(parsed(&["get", "dash", "--config", "/x.toml"]).unwrap().1, x);
        assert_eq!(parsed(&["docker-credential", "-c", "/x.toml", "list"]).unwrap().1, x);
        assert_eq!(parsed(&["kubelet-credential-provider", "-c", "/x.toml"]).unwrap().1, x);
        assert_eq!(parsed(&["-c", "/x.toml", "kubelet-credential-provider"]).unwrap().1, x);
        assert!(matches!(parsed(&["-c", "/x.toml"]).unwrap(), (Command::Run(_), Some(p)) if p == Path::new("/x.toml")));
        assert!(matches!(parsed(&["--check-config", "-c", "/x.toml"]).unwrap(), (Command::CheckConfig(_), Some(_))));
        assert_eq!(parsed(&["run", "--once", "-c", "/y.toml"]).unwrap().1, Some(PathBuf::from("/y.toml")));
        assert_eq!(parsed(&["check-config", "-c", "/y.toml"]).unwrap().1, Some(PathBuf::from("/y.toml")));
        assert!(parsed(&["emulator", "--print-config", "--listen", "127.0.0.1:0"]).is_ok());
        assert!(parsed(&["dev", "--dir", "d"]).is_ok());
    }

    /// Issue 17 item 12: `--log-format` likewise, for the commands that log.
    #[test]
    fn issue17_only_the_commands_that_log_take_log_format() {
        for sub in ["check-config", "status", "get", "docker-credential", "kubelet-credential-provider"] {
            assert!(!help(sub).contains("--log-format"), "ticketd {sub} --help:\n{}", help(sub));
        }
        assert!(logged(&["status", "--log-format", "json"]).is_err());
        assert_eq!(logged(&["--log-format", "json", "status"]).err(), Some(clap::error::ErrorKind::ArgumentConflict));
        for args in [&["--log-format", "json"][..], &["run", "--log-format", "json"], &["--log-format", "json", "run"]]
        {
            assert!(matches!(logged(args).unwrap(), (Command::Run(_), _, LogFormat::Json)), "{args:?}");
        }
        assert!(matches!(logged(&["dev", "--log-format", "json"]).unwrap(), (Command::Dev(_), _, LogFormat::Json)));
        assert!(matches!(logged(&["--log-format", "json", "emulator"]).unwrap(), (_, _, LogFormat::Json)));
        assert!(matches!(logged(&["emulator"]).unwrap(), (_, _, LogFormat::Text)));
    }
}
