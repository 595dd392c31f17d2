//! `ticketd dev`: the daemon against the built-in emulator, with short lifetimes, narrating what
//! happens, so a newcomer sees tickets minted and tokens refreshed within a minute.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::clock::{Clock, SystemClock, until};
use crate::config::{
    ApiSpec, Config, CredentialSpec, DEFAULT_ENV_PREFIX, Endpoint, EnvNames, FileFormat, FileSink, Kind, SinkSpec,
    SlsSpec, SourceSpec, TicketSpec, Vendor,
};
use crate::credentials::Credentials;
use crate::daemon::Daemon;
use crate::emulator::{Emulator, generate_key};
use crate::scheduler::Event;
use crate::signing::sls::V1Mac;

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Where token files and state go.
    #[arg(long, default_value = "ticketd-dev")]
    pub dir: PathBuf,
    /// Lifetime of each SLS ticket (the share URL).
    #[arg(long, default_value = "2m")]
    pub ticket_lifetime: humantime::Duration,
    /// Lifetime of each access token.
    #[arg(long, default_value = "20s")]
    pub token_lifetime: humantime::Duration,
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<humantime::Duration>,
}

const TICKET: &str = "dev-dashboard";

/// The config `ticketd dev` runs: one SLS ticket against the emulator at `endpoint`.
pub fn config(dir: &std::path::Path, endpoint: &str, credentials: Credentials, args: &DevArgs) -> Config {
    let ticket_lifetime: Duration = args.ticket_lifetime.into();
    let token_lifetime: Duration = args.token_lifetime.into();
    let sink = |ext: &str, format| {
        SinkSpec::File(FileSink {
            path: dir.join(format!("{TICKET}.{ext}")),
            format,
            mode: 0o600,
            env_names: EnvNames::defaults(DEFAULT_ENV_PREFIX, Kind::Sls),
        })
    };
    Config {
        source: None,
        state_dir: dir.join("state"),
        socket: None,
        credentials: BTreeMap::from([(
            "dev".to_string(),
            CredentialSpec { name: "dev".into(), vendor: Vendor::Alibaba, source: SourceSpec::InMemory(credentials) },
        )]),
        tickets: vec![TicketSpec {
            name: TICKET.into(),
            credentials: "dev".into(),
            api: ApiSpec::Sls(SlsSpec {
                endpoint: Endpoint { base: url::Url::parse(endpoint).expect("the emulator URL parses") },
                ticket_lifetime,
                token_lifetime,
                ticket_renew_before: SlsSpec::default_renew_before(ticket_lifetime, token_lifetime),
                signature: V1Mac::HmacSha256,
                console_url: Some(
                    "https://sls.console.alibabacloud.com/lognext/project/dev-project/dashboard/dev-dashboard".into(),
                ),
                console_params: vec![("isShare".into(), "true".into()), ("hideTopbar".into(), "true".into())],
            }),
            sinks: vec![sink("json", FileFormat::Json), sink("token", FileFormat::Token), sink("url", FileFormat::Url)],
            consumers: Default::default(),
        }],
    }
}

pub async fn run(args: DevArgs) -> ExitCode {
    let dir = match std::path::absolute(&args.dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ticketd dev: {}: {e}", args.dir.display());
            return ExitCode::from(crate::cli::EXIT_FAILURE);
        }
    };
    let ticket_lifetime: Duration = args.ticket_lifetime.into();
    let token_lifetime: Duration = args.token_lifetime.into();
    if token_lifetime > ticket_lifetime || token_lifetime < Duration::from_secs(5) {
        eprintln!("ticketd dev: --token-lifetime must be at least 5s and at most --ticket-lifetime");
        return ExitCode::from(crate::cli::EXIT_FAILURE);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let key = generate_key("LTAIdev");
    let credentials = Credentials {
        access_key_id: crate::secret::Secret::new(key.access_key_id.clone()),
        access_key_secret: key.access_key_secret.clone(),
        security_token: None,
        expires_at: None,
    };
    let emulator = match Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), vec![key], clock.clone()).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ticketd dev: cannot start the emulator on 127.0.0.1: {e}");
            return ExitCode::from(crate::cli::EXIT_FAILURE);
        }
    };
    let config = config(&dir, &emulator.url(), credentials, &args);
    let daemon = match Daemon::prepare(&config, &crate::config::ProcessEnvironment, clock.clone()) {
        Ok(d) => d,
        Err(e) => return crate::cli::exit_code(Err(e)),
    };
    println!("ticketd dev: an emulator of the SLS ticket API is listening on {}", emulator.url());
    println!(
        "ticketd dev: keeping `{TICKET}` fresh: tickets live {}, access tokens {}",
        humantime::format_duration(ticket_lifetime),
        humantime::format_duration(token_lifetime)
    );
    println!(
        "ticketd dev: files: {0}/{TICKET}.json, {0}/{TICKET}.token, {0}/{TICKET}.url (state in {0}/state)",
        dir.display()
    );
    println!("ticketd dev: Ctrl-C stops.");
    let mut events = daemon.events();
    let started = clock.now();
    let narrate_clock = clock.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => println!("{}", narrate(&event, started, narrate_clock.now())),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let control = match crate::control::from_signals() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ticketd dev: cannot install signal handlers: {e}");
            return ExitCode::from(crate::cli::EXIT_FAILURE);
        }
    };
    let control = match args.duration {
        None => control,
        Some(d) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let d: Duration = d.into();
            let mut signals = control;
            tokio::spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(d) => { let _ = tx.send(crate::control::Control::Shutdown); }
                    Some(c) = signals.recv() => { let _ = tx.send(c); }
                }
            });
            rx
        }
    };
    let result = daemon.run(control, &crate::config::ProcessEnvironment).await;
    let stats = emulator.stats();
    println!(
        "ticketd dev: stopped; the emulator answered {} CreateTicket and {} RefreshToken calls ({} rejected)",
        stats.create_ticket, stats.refresh_token, stats.rejected
    );
    emulator.stop();
    crate::cli::exit_code(result)
}

/// One event in plain words.
pub fn narrate(event: &Event, started: SystemTime, now: SystemTime) -> String {
    let at = format!("[+{:>4}s]", now.duration_since(started).unwrap_or_default().as_secs());
    let within = |t: SystemTime| humantime::format_duration(Duration::from_secs(until(now, t).as_secs())).to_string();
    match event {
        Event::TicketMinted { name, expires_at } => {
            format!("{at} {name}: minted a new ticket with CreateTicket; it expires in {}", within(*expires_at))
        }
        Event::TokenRefreshed { name, generation, expires_at, new_ticket } => format!(
            "{at} {name}: got access token #{generation} with RefreshToken{}; it expires in {}",
            if *new_ticket { " from the new ticket (the share URL changes)" } else { "" },
            within(*expires_at)
        ),
        Event::Published { name, generation } => {
            format!("{at} {name}: wrote token #{generation} to the .json, .token and .url files")
        }
        Event::CallFailed { name, error, retry_at, .. } => {
            format!("{at} {name}: call failed ({error}); retrying in {}", within(*retry_at))
        }
        Event::PublishFailed { name, error } => format!("{at} {name}: could not write a file ({error}); will retry"),
    }
}
