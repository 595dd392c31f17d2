//! `ticketd check-config` (also `--check-config`): validate the config with its environment.
//!
//! It prints every problem at once, or a one-line summary and how each credential set resolves.

use std::path::Path;
use std::process::ExitCode;

use crate::cli::common::EXIT_CONFIG;
use crate::credentials::ProcessEnvironment;

/// Exit 0 and a summary when the config at `path` validates, else 2 and every problem.
pub(crate) fn check_config(path: &Path) -> ExitCode {
    match crate::credentials::environment::load(path, &ProcessEnvironment) {
        Ok(config) => {
            // What `run` refuses before it connects, refused here too (review F1).
            if let Err(e) = crate::daemon::fleet::check(&config, &ProcessEnvironment) {
                eprintln!("{}: {e}", path.display());
                return ExitCode::from(EXIT_CONFIG);
            }
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
            if let Some(warning) = crate::daemon::fleet::no_key_warning(&config) {
                eprintln!("{warning}");
            }
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprint!("{problems}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
