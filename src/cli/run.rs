//! `ticketd run` (the default): the daemon, until a signal stops it, or `--once`: every token
//! obtained and every sink written, then exit.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::cli::common::{ConfigArg, EXIT_CONFIG, EXIT_FAILURE, LogArg, exit_code};
use crate::clock::SystemClock;
use crate::credentials::ProcessEnvironment;
use crate::daemon::Daemon;

#[derive(Debug, Default, clap::Args)]
pub(super) struct RunArgs {
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

/// Load the config at `path` and run the daemon as `args` say.
pub(crate) async fn run(path: &Path, args: RunArgs) -> ExitCode {
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
