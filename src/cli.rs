//! The command line: `run` (default), `check-config`, `dev`, `emulator`, `docker-credential`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::DEFAULT_CONFIG_PATH;
use crate::credentials::ProcessEnvironment;
use crate::daemon::{Daemon, DaemonError};
use crate::logging::{self, LogFormat};

/// Exit code for a configuration that does not validate.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for any other failure to start or run.
pub const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(name = "ticketd", version, about = "Keeps short-lived cloud tokens fresh and hands them to consumers")]
pub struct Cli {
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
pub enum Command {
    /// Run the daemon (the default).
    Run(RunArgs),
    /// Validate the config (and that its environment variables are set); print every problem.
    CheckConfig(ConfigArg),
    /// Run the daemon against a built-in emulator of the cloud APIs, with short lifetimes.
    Dev(crate::dev::DevArgs),
    /// Run only the emulator of the cloud APIs, on loopback.
    Emulator(crate::emulator_cli::EmulatorArgs),
    /// Show every ticket's state, from the running daemon (socket API).
    Status(crate::client_cli::StatusArgs),
    /// Print a ticket's current token (or wait for the next), from the running daemon.
    Get(crate::client_cli::GetArgs),
    /// Docker credential helper for TCR registries (`get|store|erase|list`); also runs when the
    /// binary is invoked as `docker-credential-ticketd`.
    DockerCredential(crate::docker_credential::DockerCredentialArgs),
}

/// `--log-format`: only the commands that log take it (`run`, `dev`, `emulator`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArg {
    /// Log format on stderr [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// `-c`: only the commands that read a config take it (`dev` and `emulator` read none).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArg {
    /// The config file [default: /etc/ticketd/ticketd.toml].
    #[arg(short = 'c', long = "config", env = "TICKETD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// This command's `-c`, else the one given before the subcommand (`ticketd -c FILE status`).
    fn or(&self, outer: &ConfigArg) -> Option<PathBuf> {
        self.config.clone().or_else(|| outer.config.clone())
    }
}

#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub log: LogArg,
    /// Obtain every token, write every sink, and exit: 0 when all succeeded, 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// With --once: give up after this long.
    #[arg(long, default_value = "2m", requires = "once")]
    pub once_timeout: Option<humantime::Duration>,
}

/// Invoked under this name, the binary is `ticketd docker-credential`.
pub const HELPER_NAME: &str = "docker-credential-ticketd";

/// Parse `args` (`args[0]` is the program): the command to run, the config it reads (`None`:
/// neither `-c` nor `TICKETD_CONFIG`) and its log format. `-c` and `--log-format` before the
/// subcommand apply to a subcommand that takes them and are refused before one that does not.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<(Command, Option<PathBuf>, LogFormat), clap::Error> {
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
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::CheckConfig(_) => "check-config",
            Command::Dev(_) => "dev",
            Command::Emulator(_) => "emulator",
            Command::Status(_) => "status",
            Command::Get(_) => "get",
            Command::DockerCredential(_) => "docker-credential",
        }
    }
}

/// Parse the command line, run, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args.first().map(Path::new).and_then(Path::file_name).map(|n| n.to_os_string());
    if invoked_as.is_some_and(|n| n == HELPER_NAME) {
        args.splice(0..1, ["ticketd".into(), "docker-credential".into()]);
    }
    let (command, config, log_format) = parse(args).unwrap_or_else(|e| e.exit());
    let config_path = config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    match command {
        Command::CheckConfig(_) => check_config(&config_path),
        Command::Run(args) => {
            logging::init(log_format, "info");
            runtime(async move { run(&config_path, args).await })
        }
        Command::Dev(args) => {
            logging::init(log_format, "warn");
            runtime(async move { crate::dev::run(args).await })
        }
        Command::Emulator(args) => {
            logging::init(log_format, "info");
            runtime(async move { crate::emulator_cli::run(args).await })
        }
        Command::Status(args) => runtime(async move { crate::client_cli::status(args, config.as_deref()).await }),
        Command::Get(args) => runtime(async move { crate::client_cli::get(args, config.as_deref()).await }),
        Command::DockerCredential(args) => crate::docker_credential::main(&args, &config_path),
    }
}

fn runtime(f: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("ticketd: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match crate::credentials::environment::load(path, &ProcessEnvironment) {
        Ok(config) => {
            println!(
                "{}: ok ({} ticket{}, {} credential set{}, state in {})",
                path.display(),
                config.tickets.len(),
                if config.tickets.len() == 1 { "" } else { "s" },
                config.credentials.len(),
                if config.credentials.len() == 1 { "" } else { "s" },
                config.state_dir.display()
            );
            for (name, spec) in &config.credentials {
                println!("credentials {name}: {}", crate::credentials::sources::describe(spec, &ProcessEnvironment));
            }
            if let Some(warning) = config.static_keys_warning() {
                eprintln!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprint!("{problems}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

async fn run(path: &std::path::Path, args: RunArgs) -> ExitCode {
    let config = match crate::credentials::environment::load(path, &ProcessEnvironment) {
        Ok(c) => c,
        Err(problems) => {
            eprint!("{problems}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Before the state is loaded (tokens) and any call is made.
    if let Err(e) = crate::secret::set_core_dumps(config.core_dumps) {
        eprintln!("ticketd: cannot set whether core dumps are allowed (PR_SET_DUMPABLE): {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    let daemon = match Daemon::prepare(config, &ProcessEnvironment, Arc::new(SystemClock)) {
        Ok(daemon) => daemon,
        Err(e) => return exit_code(Err(e)),
    };
    if args.once {
        let limit = args.once_timeout.map_or(std::time::Duration::from_secs(120), Into::into);
        let report = daemon.run_once(limit).await;
        for name in &report.ok {
            eprintln!("ticketd: {name}: ok");
        }
        for (name, error) in &report.failed {
            eprintln!("ticketd: {name}: FAILED: {error}");
        }
        for (name, token_id, error) in &report.revocations_pending {
            let why = error.as_deref().unwrap_or("not tried: its new token is not in every sink");
            eprintln!(
                "ticketd: {name}: WARNING: the replaced long-term token {token_id} is still active ({why}); the next run retries"
            );
        }
        eprintln!("ticketd: --once: {} ok, {} failed", report.ok.len(), report.failed.len());
        if !report.revocations_pending.is_empty() {
            eprintln!(
                "ticketd: --once: {} revocation(s) pending (kept in the state file)",
                report.revocations_pending.len()
            );
        }
        return if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_FAILURE) };
    }
    let control = match crate::control::from_signals() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ticketd: cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    exit_code(daemon.run(control, &ProcessEnvironment).await)
}

/// Exit 0 on success; otherwise print the error and exit non-zero.
pub fn exit_code(result: Result<(), DaemonError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(DaemonError::Config(problems)) => {
            eprint!("{problems}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(e) => {
            eprintln!("ticketd: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for sub in ["run", "check-config", "status", "get", "docker-credential"] {
            assert!(help(sub).contains("-c, --config <FILE>"), "ticketd {sub} --help:\n{}", help(sub));
        }
        // Where -c worked, it still does: after the subcommand, before it, and with no subcommand.
        let x = Some(PathBuf::from("/x.toml"));
        assert_eq!(parsed(&["status", "-c", "/x.toml"]).unwrap().1, x);
        assert_eq!(parsed(&["-c", "/x.toml", "status"]).unwrap().1, x);
        assert_eq!(parsed(&["get", "dash", "--config", "/x.toml"]).unwrap().1, x);
        assert_eq!(parsed(&["docker-credential", "-c", "/x.toml", "list"]).unwrap().1, x);
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
        for sub in ["check-config", "status", "get", "docker-credential"] {
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
