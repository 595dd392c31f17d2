//! What the subcommands share: the exit codes, the `-c`/`--log-format` options, the exit code of a
//! daemon's outcome, the async runtime a subcommand runs on.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::daemon::DaemonError;
use crate::logging::LogFormat;

/// Exit code for a configuration that does not validate.
pub(super) const EXIT_CONFIG: u8 = 2;
/// Exit code for any other failure to start or run.
pub(super) const EXIT_FAILURE: u8 = 1;

/// `--log-format`: only the commands that log take it (`run`, `dev`, `emulator`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArg {
    /// Log format on stderr [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// `-c`: only the commands that read a config take it (`dev` and `emulator` read none).
#[derive(Debug, Clone, Default, clap::Args)]
pub(super) struct ConfigArg {
    /// The config file [default: /etc/ticketd/ticketd.toml].
    #[arg(short = 'c', long = "config", env = "TICKETD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// This command's `-c`, else the one given before the subcommand (`ticketd -c FILE status`).
    pub(crate) fn or(&self, outer: &ConfigArg) -> Option<PathBuf> {
        self.config.clone().or_else(|| outer.config.clone())
    }
}

/// Exit 0 on success; otherwise print the error and exit non-zero.
pub(super) fn exit_code(result: Result<(), DaemonError>) -> ExitCode {
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

/// Run `f` to completion on a two-thread runtime.
pub(crate) fn runtime(f: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("ticketd: cannot start the async runtime: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
