//! `ticketd dev`: the daemon against the built-in emulator, with short lifetimes, narrating what
//! happens, so a newcomer sees tickets minted and tokens refreshed within a minute: an SLS share
//! ticket, a PAI-DSW token and TCR registry credentials (with a docker config).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use emulator::{Emulator, generate_key, generate_tencent_key};

use crate::clock::{Clock, SystemClock, until};
use crate::config::{
    ApiSpec, Config, CredentialSpec, DEFAULT_ENV_PREFIX, DockerConfigSink, DswSpec, DswTokenType, Endpoint, EnvNames,
    FileFormat, FileSink, Kind, SinkSpec, SlsSpec, SocketSpec, SourceSpec, TcrSpec, TcrTokenType, TicketSettings,
    TicketSpec, Vendor,
};
use crate::credentials::Credentials;
use crate::daemon::Daemon;
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
    /// Lifetime of each access token [default: 20s, or --ticket-lifetime when shorter].
    #[arg(long)]
    pub token_lifetime: Option<humantime::Duration>,
    /// Lifetime of each PAI-DSW token (`ExpireTime`).
    #[arg(long, default_value = "30s")]
    pub dsw_token_lifetime: humantime::Duration,
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<humantime::Duration>,
    #[command(flatten)]
    pub log: crate::cli::common::LogArg,
}

/// The default `--token-lifetime` (shortened to `--ticket-lifetime` when that is shorter).
const DEFAULT_DEV_TOKEN_LIFETIME: Duration = Duration::from_secs(20);

impl DevArgs {
    /// `--token-lifetime`, or its default, which follows `--ticket-lifetime`.
    pub fn token_lifetime(&self) -> Duration {
        self.token_lifetime.map_or(DEFAULT_DEV_TOKEN_LIFETIME.min(self.ticket_lifetime.into()), Into::into)
    }
}

/// What is wrong with the SLS lifetimes of `ticketd dev`, naming the flag that was given
/// (`token` is `--token-lifetime` when given; its default always fits).
fn dev_lifetime_problem(ticket: Duration, token: Option<Duration>) -> Option<String> {
    const MIN: Duration = Duration::from_secs(5);
    let show = humantime::format_duration;
    match token {
        Some(t) if t < MIN => Some(format!("--token-lifetime {} is shorter than 5s", show(t))),
        Some(t) if t > ticket => {
            Some(format!("--token-lifetime {} is longer than --ticket-lifetime {}", show(t), show(ticket)))
        }
        None if ticket < MIN => Some(format!("--ticket-lifetime {} is shorter than 5s", show(ticket))),
        _ => None,
    }
}

const TICKET: &str = "dev-dashboard";
const DSW_TICKET: &str = "dev-notebook";
const TCR_TICKET: &str = "dev-registry";
/// The registry host the dev TCR credentials are written for.
const DEV_REGISTRY: &str = "dev-registry.tencentcloudcr.com";

/// The config `ticketd dev` runs against the emulator at `endpoint`: an SLS ticket, a DSW token
/// and TCR temp credentials.
pub fn config(
    dir: &std::path::Path,
    endpoint: &str,
    credentials: Credentials,
    tencent: Credentials,
    args: &DevArgs,
) -> Config {
    let ticket_lifetime: Duration = args.ticket_lifetime.into();
    let token_lifetime = args.token_lifetime();
    let sink = |ext: &str, format| {
        SinkSpec::File(FileSink {
            path: dir.join(format!("{TICKET}.{ext}")),
            format,
            mode: 0o600,
            env_names: EnvNames::defaults(DEFAULT_ENV_PREFIX, Kind::Sls),
        })
    };
    let endpoint = Endpoint { base: url::Url::parse(endpoint).expect("the emulator URL parses") };
    let file = |name: &str, ext: &str, format, kind| {
        SinkSpec::File(FileSink {
            path: dir.join(format!("{name}.{ext}")),
            format,
            mode: 0o600,
            env_names: EnvNames::defaults(DEFAULT_ENV_PREFIX, kind),
        })
    };
    Config {
        source: None,
        state_dir: dir.join("state"),
        socket: Some(SocketSpec { path: dir.join("ticketd.sock"), mode: 0o600, group: None }),
        metrics_listen: None,
        metrics_ticket_series: crate::config::DEFAULT_METRICS_TICKET_SERIES,
        rate_limits: Default::default(),
        core_dumps: crate::config::DEFAULT_CORE_DUMPS,
        credentials: BTreeMap::from([
            (
                "dev".to_string(),
                CredentialSpec {
                    name: "dev".into(),
                    vendor: Vendor::Alibaba,
                    source: SourceSpec::InMemory(credentials.into()),
                },
            ),
            (
                "dev-tencent".to_string(),
                CredentialSpec {
                    name: "dev-tencent".into(),
                    vendor: Vendor::Tencent,
                    source: SourceSpec::InMemory(tencent.into()),
                },
            ),
        ]),
        tickets: vec![
            TicketSpec::new(
                TICKET,
                TicketSettings {
                    credentials: "dev".into(),
                    api: ApiSpec::Sls(SlsSpec {
                        endpoint: endpoint.clone(),
                        ticket_lifetime,
                        token_lifetime,
                        ticket_renew_before: SlsSpec::default_renew_before(ticket_lifetime, token_lifetime),
                        signature: V1Mac::HmacSha256,
                        console_url: Some(
                            "https://sls.console.alibabacloud.com/lognext/project/dev-project/dashboard/dev-dashboard"
                                .into(),
                        ),
                        console_params: vec![("isShare".into(), "true".into()), ("hideTopbar".into(), "true".into())],
                    }),
                    sinks: vec![
                        sink("json", FileFormat::Json),
                        sink("token", FileFormat::Token),
                        sink("url", FileFormat::Url),
                    ],
                    consumers: Default::default(),
                    scope: Default::default(),
                },
            ),
            TicketSpec::new(
                DSW_TICKET,
                TicketSettings {
                    credentials: "dev".into(),
                    api: ApiSpec::Dsw(DswSpec {
                        endpoint: endpoint.clone(),
                        instance_id: "dsw-dev0123456789".into(),
                        token_lifetime: args.dsw_token_lifetime.into(),
                        token_type: Some(DswTokenType::Access),
                        audience: Some("ThirdParty".into()),
                    }),
                    sinks: vec![
                        file(DSW_TICKET, "json", FileFormat::Json, Kind::Dsw),
                        file(DSW_TICKET, "env", FileFormat::Env, Kind::Dsw),
                    ],
                    consumers: Default::default(),
                    scope: Default::default(),
                },
            ),
            TicketSpec::new(
                TCR_TICKET,
                TicketSettings {
                    credentials: "dev-tencent".into(),
                    api: ApiSpec::Tcr(TcrSpec {
                        endpoint,
                        region: "ap-guangzhou".into(),
                        registry_id: "tcr-dev01234".into(),
                        token_type: TcrTokenType::Temp,
                        token_type_written: true,
                        description: None,
                        registry: Some(DEV_REGISTRY.into()),
                    }),
                    sinks: vec![
                        file(TCR_TICKET, "json", FileFormat::Json, Kind::Tcr),
                        SinkSpec::DockerConfig(DockerConfigSink {
                            path: dir.join("docker/config.json"),
                            registry: DEV_REGISTRY.into(),
                            mode: 0o600,
                        }),
                    ],
                    consumers: Default::default(),
                    scope: Default::default(),
                },
            ),
        ],
        cluster: None,
    }
}

pub async fn run(args: DevArgs) -> ExitCode {
    let dir = match std::path::absolute(&args.dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ticketd dev: {}: {e}", args.dir.display());
            return ExitCode::from(crate::cli::common::EXIT_FAILURE);
        }
    };
    let ticket_lifetime: Duration = args.ticket_lifetime.into();
    let token_lifetime = args.token_lifetime();
    // Only a value given on the command line can be out of range; the message names it.
    if let Some(problem) = dev_lifetime_problem(ticket_lifetime, args.token_lifetime.map(Into::into)) {
        eprintln!("ticketd dev: {problem}");
        return ExitCode::from(crate::cli::common::EXIT_FAILURE);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let key = generate_key("LTAIdev");
    let credentials = Credentials {
        access_key_id: crate::secret::Secret::new(key.access_key_id.clone()),
        access_key_secret: crate::secret::Secret::new(key.access_key_secret.expose()),
        security_token: None,
        expires_at: None,
    };
    let tencent_key = generate_tencent_key("AKIDdev");
    let tencent = Credentials {
        access_key_id: crate::secret::Secret::new(tencent_key.access_key_id.clone()),
        access_key_secret: crate::secret::Secret::new(tencent_key.access_key_secret.expose()),
        security_token: None,
        expires_at: None,
    };
    let keys = vec![key, tencent_key];
    let wall = clock.clone();
    let emulator = match Emulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), keys, move || wall.now()).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ticketd dev: cannot start the emulator on 127.0.0.1: {e}");
            return ExitCode::from(crate::cli::common::EXIT_FAILURE);
        }
    };
    if Duration::from(args.dsw_token_lifetime) < crate::config::MIN_LIFETIME {
        eprintln!("ticketd dev: --dsw-token-lifetime must be at least 10s");
        return ExitCode::from(crate::cli::common::EXIT_FAILURE);
    }
    let config = config(&dir, &emulator.url(), credentials, tencent, &args);
    let daemon = match Daemon::prepare(config, &crate::credentials::ProcessEnvironment, clock.clone()) {
        Ok(d) => d,
        Err(e) => return crate::cli::common::exit_code(Err(e)),
    };
    println!(
        "ticketd dev: an emulator of SLS CreateTicket/RefreshToken, PAI-DSW GetToken and TCR CreateInstanceToken is listening on {}",
        emulator.url()
    );
    println!(
        "ticketd dev: keeping `{TICKET}` fresh: tickets live {}, access tokens {}",
        humantime::format_duration(ticket_lifetime),
        humantime::format_duration(token_lifetime)
    );
    println!(
        "ticketd dev: files: {0}/{TICKET}.json, {0}/{TICKET}.token, {0}/{TICKET}.url (state in {0}/state)",
        dir.display()
    );
    println!(
        "ticketd dev: keeping `{DSW_TICKET}` fresh (DSW tokens live {life}): {d}/{DSW_TICKET}.json, {d}/{DSW_TICKET}.env",
        life = humantime::format_duration(args.dsw_token_lifetime.into()),
        d = dir.display()
    );
    println!(
        "ticketd dev: keeping `{TCR_TICKET}` fresh (TCR temp credentials live 1h): {0}/{TCR_TICKET}.json, and {DEV_REGISTRY} in {0}/docker/config.json",
        dir.display()
    );
    println!("ticketd dev: the socket API is on {}/ticketd.sock. {TRY_THESE}", dir.display());
    for command in commands(&dir) {
        println!("  {command}");
    }
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
            return ExitCode::from(crate::cli::common::EXIT_FAILURE);
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
    let result = daemon.run(control, &crate::credentials::ProcessEnvironment).await;
    let stats = emulator.stats();
    println!(
        "ticketd dev: stopped; the emulator answered {} CreateTicket, {} RefreshToken, {} GetToken and {} CreateInstanceToken calls ({} rejected)",
        stats.create_ticket, stats.refresh_token, stats.get_token, stats.create_instance_token, stats.rejected
    );
    emulator.stop();
    crate::cli::common::exit_code(result)
}

/// The banner line after which [`commands`] are printed, one a line, indented by two spaces (a
/// test runs every one of them as printed).
pub const TRY_THESE: &str = "While it runs, try these in another terminal:";

/// The commands the banner suggests, each one ready to paste into a shell as printed: the binary
/// by its real path (after `cargo run`, `ticketd` is not on `PATH`), every path absolute and
/// quoted for `sh`.
pub fn commands(dir: &std::path::Path) -> Vec<String> {
    let exe = std::env::current_exe().map_or_else(|_| "ticketd".to_string(), |p| shell_quote(&p.display().to_string()));
    let at = |name: &str| shell_quote(&dir.join(name).display().to_string());
    let socket = at("ticketd.sock");
    vec![
        format!("{exe} status --socket {socket}"),
        format!("{exe} get {TICKET} --socket {socket}"),
        format!("{exe} get {TCR_TICKET} --format json --socket {socket}"),
        format!("curl -s --unix-socket {socket} http://ticketd/v1/sls/{TICKET}/access-token"),
        format!("cat {}", at(&format!("{DSW_TICKET}.env"))),
    ]
}

/// `text` as one `sh` word: as it is when it holds only characters no shell treats specially,
/// else in single quotes.
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
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
            "{at} {name}: got {} #{generation} with {}{}; it expires in {}",
            match name.as_str() {
                TCR_TICKET => "registry credentials",
                _ => "access token",
            },
            match name.as_str() {
                DSW_TICKET => "GetToken",
                TCR_TICKET => "CreateInstanceToken",
                _ => "RefreshToken",
            },
            if *new_ticket { " from the new ticket (the share URL changes)" } else { "" },
            within(*expires_at)
        ),
        Event::Published { name, generation } => format!(
            "{at} {name}: wrote token #{generation} to {}",
            match name.as_str() {
                DSW_TICKET => "the .json and .env files",
                TCR_TICKET => "the .json file and docker/config.json",
                _ => "the .json, .token and .url files",
            }
        ),
        Event::CallFailed { name, error, retry_at, .. } => {
            format!("{at} {name}: call failed ({error}); retrying in {}", within(*retry_at))
        }
        Event::PublishFailed { name, error } => format!("{at} {name}: could not write a file ({error}); will retry"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        dev: DevArgs,
    }

    fn args(flags: &[&str]) -> DevArgs {
        Wrapper::parse_from(std::iter::once("dev").chain(flags.iter().copied())).dev
    }

    /// Issue #17 item 5 (sweep): `--ticket-lifetime 10s` alone is valid; its token default follows.
    #[test]
    fn issue_17_the_dev_token_lifetime_default_follows_a_short_ticket_lifetime() {
        let short = args(&["--ticket-lifetime", "10s"]);
        assert_eq!(short.token_lifetime(), Duration::from_secs(10));
        assert_eq!(dev_lifetime_problem(Duration::from_secs(10), None), None);
        assert_eq!(args(&[]).token_lifetime(), Duration::from_secs(20));
        assert_eq!(
            dev_lifetime_problem(Duration::from_secs(10), Some(Duration::from_secs(30))).as_deref(),
            Some("--token-lifetime 30s is longer than --ticket-lifetime 10s")
        );
        assert_eq!(
            dev_lifetime_problem(Duration::from_secs(3), None).as_deref(),
            Some("--ticket-lifetime 3s is shorter than 5s")
        );
    }

    #[test]
    fn shell_quote_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/home/you/ticketd-dev/ticketd.sock"), "/home/you/ticketd-dev/ticketd.sock");
        assert_eq!(shell_quote("/tmp/my dir"), "'/tmp/my dir'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("printf %s {}", shell_quote("a b'c$HOME`x`"))])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b'c$HOME`x`");
    }
}
