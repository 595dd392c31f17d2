//! The command line: `run` (default), `check-config`, `dev`, `emulator`, `docker-credential`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{self, DEFAULT_CONFIG_PATH, ProcessEnvironment};
use crate::daemon::{Daemon, DaemonError};
use crate::logging::{self, LogFormat};

/// Exit code for a configuration that does not validate.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for any other failure to start or run.
pub const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(name = "ticketd", version, about = "Keeps short-lived cloud tokens fresh and hands them to consumers")]
pub struct Cli {
    /// The config file [default: /etc/ticketd/ticketd.toml].
    #[arg(short = 'c', long = "config", global = true, env = "TICKETD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
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
    CheckConfig,
    /// Run the daemon against a built-in emulator of the cloud APIs, with short lifetimes.
    Dev(crate::dev::DevArgs),
    /// Run only the emulator of the cloud APIs, on loopback.
    Emulator(EmulatorArgs),
    /// Show every ticket's state, from the running daemon (socket API).
    Status(crate::client_cli::StatusArgs),
    /// Print a ticket's current token (or wait for the next), from the running daemon.
    Get(crate::client_cli::GetArgs),
    /// Docker credential helper for TCR registries (`get|store|erase|list`); also runs when the
    /// binary is invoked as `docker-credential-ticketd`.
    DockerCredential(crate::docker_credential::DockerCredentialArgs),
}

#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    /// Obtain every token, write every sink, and exit: 0 when all succeeded, 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// With --once: give up after this long.
    #[arg(long, default_value = "2m", requires = "once")]
    pub once_timeout: Option<humantime::Duration>,
}

/// Invoked under this name, the binary is `ticketd docker-credential`.
pub const HELPER_NAME: &str = "docker-credential-ticketd";

#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub listen: SocketAddr,
}

/// Parse the command line, run, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args.first().map(Path::new).and_then(Path::file_name).map(|n| n.to_os_string());
    if invoked_as.is_some_and(|n| n == HELPER_NAME) {
        args.splice(0..1, ["ticketd".into(), "docker-credential".into()]);
    }
    let cli = Cli::parse_from(args);
    let command = match (cli.command, cli.check_config) {
        (_, true) => Command::CheckConfig,
        (Some(c), false) => c,
        (None, false) => Command::Run(RunArgs::default()),
    };
    let config_path = cli.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    match command {
        Command::CheckConfig => check_config(&config_path),
        Command::Run(args) => {
            crate::heap::use_one_heap();
            logging::init(cli.log_format, "info");
            runtime(async move { run(&config_path, args).await })
        }
        Command::Dev(args) => {
            logging::init(cli.log_format, "warn");
            runtime(async move { crate::dev::run(args).await })
        }
        Command::Emulator(args) => {
            logging::init(cli.log_format, "info");
            runtime(async move { emulator(args).await })
        }
        Command::Status(args) => runtime(async move { crate::client_cli::status(args, cli.config.as_deref()).await }),
        Command::Get(args) => runtime(async move { crate::client_cli::get(args, cli.config.as_deref()).await }),
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
    match config::load(path, &ProcessEnvironment) {
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
                println!("credentials {name}: {}", crate::sources::describe(spec, &ProcessEnvironment));
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
    let config = match config::load(path, &ProcessEnvironment) {
        Ok(c) => c,
        Err(problems) => {
            eprint!("{problems}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // Before the state is loaded (tokens) and any call is made.
    if let Err(e) = crate::heap::set_core_dumps(config.core_dumps) {
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
        eprintln!("ticketd: --once: {} ok, {} failed", report.ok.len(), report.failed.len());
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

async fn emulator(args: EmulatorArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        eprintln!("ticketd emulator: {} is not a loopback address; the emulator listens on loopback only", args.listen);
        return ExitCode::from(EXIT_FAILURE);
    }
    let env = ProcessEnvironment;
    let key = match (
        config::Environment::var(&env, config::ALIBABA_ACCESS_KEY_ID_ENV),
        config::Environment::var(&env, config::ALIBABA_ACCESS_KEY_SECRET_ENV),
    ) {
        (Some(id), Some(secret)) => crate::emulator::EmulatorKey {
            vendor: config::Vendor::Alibaba,
            access_key_id: id,
            access_key_secret: crate::secret::Secret::new(secret),
            security_token: config::Environment::var(&env, config::ALIBABA_SECURITY_TOKEN_ENV)
                .map(crate::secret::Secret::new),
        },
        _ => {
            let key = crate::emulator::generate_key("LTAIemu");
            println!("# no keys in the environment; the emulator accepts these (fake) ones:");
            println!("export {}={}", config::ALIBABA_ACCESS_KEY_ID_ENV, key.access_key_id);
            println!("export {}={}", config::ALIBABA_ACCESS_KEY_SECRET_ENV, key.access_key_secret.expose());
            key
        }
    };
    let tencent = match (
        config::Environment::var(&env, config::TENCENT_SECRET_ID_ENV),
        config::Environment::var(&env, config::TENCENT_SECRET_KEY_ENV),
    ) {
        (Some(id), Some(secret)) => crate::emulator::EmulatorKey {
            vendor: config::Vendor::Tencent,
            access_key_id: id,
            access_key_secret: crate::secret::Secret::new(secret),
            security_token: config::Environment::var(&env, config::TENCENT_SESSION_TOKEN_ENV)
                .map(crate::secret::Secret::new),
        },
        _ => {
            let key = crate::emulator::generate_tencent_key("AKIDemu");
            println!("export {}={}", config::TENCENT_SECRET_ID_ENV, key.access_key_id);
            println!("export {}={}", config::TENCENT_SECRET_KEY_ENV, key.access_key_secret.expose());
            key
        }
    };
    let keys = vec![key, tencent];
    let emulator = match crate::emulator::Emulator::start(args.listen, keys, Arc::new(SystemClock)).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ticketd emulator: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    println!("# emulator listening on {}", emulator.url());
    let mut control = match crate::control::from_signals() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ticketd: cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    while let Some(c) = control.recv().await {
        if c == crate::control::Control::Shutdown {
            break;
        }
    }
    emulator.stop();
    ExitCode::SUCCESS
}
