//! `ticketd status`, `ticketd get`: the socket API from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::api::client;
use crate::clock::until;
use crate::config;

/// `get`: the ticket does not exist.
pub(super) const EXIT_MISSING: u8 = 3;
/// `get`: the ticket holds no valid token (expired, or none yet).
pub(super) const EXIT_NO_TOKEN: u8 = 4;
/// `get`: this caller may not read the ticket.
pub(super) const EXIT_DENIED: u8 = 5;

/// Names the daemon's API socket for `status` and `get` without a config.
pub(super) const SOCKET_ENV: &str = "TICKETD_SOCKET";

#[derive(Debug, clap::Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    pub config: crate::cli::common::ConfigArg,
    /// The API socket (default: `socket` from the config).
    #[arg(long, env = SOCKET_ENV)]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum GetFormat {
    Token,
    Json,
}

#[derive(Debug, clap::Args)]
pub(super) struct GetArgs {
    #[command(flatten)]
    pub config: crate::cli::common::ConfigArg,
    /// The ticket's name.
    pub name: String,
    /// Wait for the next token (a newer generation than the current one), then print it.
    #[arg(long)]
    pub wait: bool,
    /// What to print.
    #[arg(long, value_enum, default_value = "token")]
    pub format: GetFormat,
    /// The API socket (default: `socket` from the config).
    #[arg(long, env = SOCKET_ENV)]
    pub socket: Option<PathBuf>,
}

/// The socket to ask: `--socket` (or `TICKETD_SOCKET`), else the config's `socket`, read through
/// the client view of the config (no credential is resolved: the caller needs no cloud keys).
/// `config_path` is `None` when neither `-c` nor `TICKETD_CONFIG` was given.
fn socket_path(explicit: &Option<PathBuf>, config_path: Option<&Path>) -> Result<PathBuf, ExitCode> {
    socket_from(explicit, config_path, Path::new(config::DEFAULT_CONFIG_PATH)).map_err(|message| {
        eprint!("{message}");
        ExitCode::from(crate::cli::common::EXIT_CONFIG)
    })
}

fn socket_from(explicit: &Option<PathBuf>, config_path: Option<&Path>, default: &Path) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    let path = config_path.unwrap_or(default);
    if config_path.is_none() && std::fs::symlink_metadata(path).is_err() {
        return Err(format!(
            "ticketd: which daemon? No --socket, no -c, and no config at {}: pass --socket PATH (or set \
             {SOCKET_ENV}) to name the daemon's API socket, or -c FILE (or set TICKETD_CONFIG) to name its config\n",
            path.display()
        ));
    }
    match config::load_client(path) {
        Ok(c) => c.socket.ok_or_else(|| format!("ticketd: {} sets no `socket`; pass --socket PATH\n", path.display())),
        Err(problems) => Err(problems.to_string()),
    }
}

/// `GET path`, within [`client::ROUND_TRIP_TIMEOUT`] (a stuck daemon is said, not waited for).
async fn fetch(socket: &Path, path: &str) -> Result<(u16, Vec<u8>), ExitCode> {
    fetch_within(socket, path, client::ROUND_TRIP_TIMEOUT).await
}

async fn fetch_within(socket: &Path, path: &str, bound: std::time::Duration) -> Result<(u16, Vec<u8>), ExitCode> {
    client::get_within(socket, path, bound).await.map_err(|e| {
        eprintln!("ticketd: {e}");
        ExitCode::from(crate::cli::common::EXIT_FAILURE)
    })
}

pub(super) async fn status(args: StatusArgs, config_path: Option<&Path>) -> ExitCode {
    let socket = match socket_path(&args.socket, config_path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let (code, body) = match fetch(&socket, "/v1/tickets").await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let Ok(serde_json::Value::Array(tickets)) = serde_json::from_slice(&body) else {
        eprintln!("ticketd: unexpected answer (HTTP {code})");
        return ExitCode::from(crate::cli::common::EXIT_FAILURE);
    };
    let now = SystemTime::now();
    // A node of a fleet says its role and the leader first (alone: 404, nothing printed).
    if let Ok((200, body)) = fetch(&socket, "/v1/cluster").await
        && let Ok(view) = serde_json::from_slice::<serde_json::Value>(&body)
    {
        println!("{}\n", cluster_line(&view, now));
    }
    let rows: Vec<[String; 7]> = tickets
        .iter()
        .map(|t| {
            let text = |k: &str| t[k].as_str().unwrap_or("-").to_string();
            [
                text("name"),
                text("kind"),
                text("status"),
                within(&t["token_expires_at"], now),
                within(&t["ticket_expires_at"], now),
                within(&t["next_refresh_at"], now),
                text("last_error"),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["NAME", "KIND", "STATE", "TOKEN EXPIRES IN", "TICKET EXPIRES IN", "NEXT REFRESH", "LAST ERROR"], &rows)
    );
    // Replaced TCR long-term tokens not revoked yet (none: nothing printed; an older daemon
    // without the route answers 404).
    if let Ok((200, body)) = fetch(&socket, "/v1/revocations").await
        && let Ok(serde_json::Value::Array(pending)) = serde_json::from_slice(&body)
        && !pending.is_empty()
    {
        let rows: Vec<[String; 6]> = pending
            .iter()
            .map(|r| {
                let text = |k: &str| r[k].as_str().unwrap_or("-").to_string();
                let next = match within(&r["next_attempt_at"], now) {
                    t if t == "expired" => "now".to_string(),
                    t => t,
                };
                [text("ticket"), text("token_id"), text("stage"), r["attempts"].to_string(), next, text("last_error")]
            })
            .collect();
        println!("\nREVOCATIONS PENDING: {} replaced TCR long-term token(s) still active", pending.len());
        print!(
            "{}",
            table(&["TICKET", "TOKEN ID", "STAGE", "FAILED ATTEMPTS", "NEXT ATTEMPT IN", "LAST ERROR"], &rows)
        );
    }
    ExitCode::SUCCESS
}

/// `GET /v1/cluster`'s answer in one line: this node, its role, the leader, when it last synced.
fn cluster_line(view: &serde_json::Value, now: SystemTime) -> String {
    let text = |k: &str| view[k].as_str().unwrap_or("-").to_string();
    let leader = match view["leader"].as_str() {
        Some(leader) => format!("leader {leader}"),
        None => "no leader".to_string(),
    };
    let synced = match view["last_sync"].as_str().and_then(|s| humantime::parse_rfc3339_weak(s).ok()) {
        Some(t) => match now.duration_since(t) {
            Ok(ago) => format!("{} ago", humantime::format_duration(Duration::from_secs(ago.as_secs()))),
            Err(_) => "just now".to_string(),
        },
        None => "never".to_string(),
    };
    let members = view["members"].as_array().map_or(0, Vec::len);
    format!("CLUSTER: node {} is {}, {leader}, {members} member(s), last sync {synced}", text("node"), text("role"))
}

fn within(value: &serde_json::Value, now: SystemTime) -> String {
    let Some(t) = value.as_str().and_then(|s| humantime::parse_rfc3339_weak(s).ok()) else { return "-".into() };
    if t <= now {
        return "expired".into();
    }
    humantime::format_duration(Duration::from_secs(until(now, t).as_secs())).to_string()
}

fn table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(head.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub(super) async fn get(args: GetArgs, config_path: Option<&Path>) -> ExitCode {
    let socket = match socket_path(&args.socket, config_path) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let name: String = url::form_urlencoded::byte_serialize(args.name.as_bytes()).collect();
    let mut path = format!("/v1/tickets/{name}");
    if args.wait {
        // Learn the current generation (or 0), then wait for a newer one.
        let generation = match fetch(&socket, &path).await {
            Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|j| j["generation"].as_u64())
                .unwrap_or(0),
            Ok((503, _)) => 0,
            Ok((code, body)) => return answer_error(code, &body),
            Err(code) => return code,
        };
        loop {
            // The daemon answers a long poll by its `timeout`: bounded a round trip later.
            let bound = std::time::Duration::from_secs(300) + client::ROUND_TRIP_TIMEOUT;
            match fetch_within(&socket, &format!("{path}?wait={generation}&timeout=300s"), bound).await {
                Ok((200, body)) => return print_answer(args.format, &body),
                Ok((408, _)) => continue,
                Ok((code, body)) => return answer_error(code, &body),
                Err(code) => return code,
            }
        }
    }
    if matches!(args.format, GetFormat::Token) {
        path.push_str("/token");
    }
    match fetch(&socket, &path).await {
        Ok((200, body)) => {
            if matches!(args.format, GetFormat::Token) {
                println!("{}", String::from_utf8_lossy(&body));
                ExitCode::SUCCESS
            } else {
                print_answer(args.format, &body)
            }
        }
        Ok((code, body)) => answer_error(code, &body),
        Err(code) => code,
    }
}

fn print_answer(format: GetFormat, body: &[u8]) -> ExitCode {
    match format {
        GetFormat::Json => println!("{}", String::from_utf8_lossy(body).trim_end()),
        GetFormat::Token => {
            let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            println!("{}", json["access_token"].as_str().unwrap_or_default());
        }
    }
    ExitCode::SUCCESS
}

fn answer_error(code: u16, body: &[u8]) -> ExitCode {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let message = json["error"].as_str().unwrap_or("unexpected answer");
    eprintln!("ticketd: {message} (HTTP {code})");
    ExitCode::from(match code {
        404 => EXIT_MISSING,
        503 => EXIT_NO_TOKEN,
        403 => EXIT_DENIED,
        _ => crate::cli::common::EXIT_FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue17_without_a_socket_or_a_config_status_says_how_to_name_one() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ticketd.toml");
        let e = socket_from(&None, None, &missing).unwrap_err();
        assert!(e.contains("--socket PATH") && e.contains(SOCKET_ENV) && e.contains("-c FILE"), "{e}");
        assert!(e.contains(&missing.display().to_string()), "{e}");
        // An explicit socket needs no config; an explicit config that is missing says so.
        assert_eq!(socket_from(&Some("/s".into()), None, &missing).unwrap(), Path::new("/s"));
        let e = socket_from(&None, Some(&missing), &missing).unwrap_err();
        assert!(e.contains("cannot read the config file"), "{e}");
    }

    #[test]
    fn issue17_the_socket_comes_from_a_config_whose_keys_are_not_in_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticketd.toml");
        let text = "socket = \"/run/t/t.sock\"\n[credentials.p]\nvendor = \"alibaba\"\nsource = \"env\"\n\
                    access_key_id_env = \"ISSUE17_UNSET_ID\"\naccess_key_secret_env = \"ISSUE17_UNSET_SECRET\"\n";
        std::fs::write(&path, text).unwrap();
        assert_eq!(socket_from(&None, Some(&path), &path).unwrap(), Path::new("/run/t/t.sock"));
        std::fs::write(&path, "state_dir = \"/x\"\n").unwrap();
        let e = socket_from(&None, Some(&path), &path).unwrap_err();
        assert!(e.contains("sets no `socket`"), "{e}");
    }

    #[test]
    fn issue_19_status_says_this_nodes_role_and_the_leaders_name() {
        use crate::cluster::view::{ClusterView, Role};
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let view = ClusterView::new("web-2");
        view.set_leader(Some("web-1"));
        view.synced(now - Duration::from_secs(3));
        view.member("web-1", None);
        let answer = serde_json::to_value(view.snapshot()).unwrap();
        assert_eq!(
            cluster_line(&answer, now),
            "CLUSTER: node web-2 is follower, leader web-1, 2 member(s), last sync 3s ago"
        );
        view.set_role(Role::Unreachable);
        view.set_leader(None);
        let answer = serde_json::to_value(ClusterView::new("web-3").snapshot()).unwrap();
        assert_eq!(
            cluster_line(&answer, now),
            "CLUSTER: node web-3 is follower, no leader, 1 member(s), last sync never"
        );
        let answer = serde_json::to_value(view.snapshot()).unwrap();
        assert!(cluster_line(&answer, now).starts_with("CLUSTER: node web-2 is unreachable, no leader,"));
    }
}
