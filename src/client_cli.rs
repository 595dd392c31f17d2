//! `ticketd status` and `ticketd get`: the socket API from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use crate::api::client;
use crate::clock::until;
use crate::config::{self, ProcessEnvironment};

/// `get`: the ticket does not exist.
pub const EXIT_MISSING: u8 = 3;
/// `get`: the ticket holds no valid token (expired, or none yet).
pub const EXIT_NO_TOKEN: u8 = 4;
/// `get`: this caller may not read the ticket.
pub const EXIT_DENIED: u8 = 5;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The API socket (default: `socket` from the config).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GetFormat {
    Token,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The ticket's name.
    pub name: String,
    /// Wait for the next token (a newer generation than the current one), then print it.
    #[arg(long)]
    pub wait: bool,
    /// What to print.
    #[arg(long, value_enum, default_value = "token")]
    pub format: GetFormat,
    /// The API socket (default: `socket` from the config).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

fn socket_path(explicit: &Option<PathBuf>, config_path: &Path) -> Result<PathBuf, ExitCode> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    match config::load(config_path, &ProcessEnvironment) {
        Ok(c) => c.socket.map(|s| s.path).ok_or_else(|| {
            eprintln!("ticketd: {} sets no `socket`; pass --socket", config_path.display());
            ExitCode::from(crate::cli::EXIT_CONFIG)
        }),
        Err(problems) => {
            eprint!("{problems}");
            Err(ExitCode::from(crate::cli::EXIT_CONFIG))
        }
    }
}

async fn fetch(socket: &Path, path: &str) -> Result<(u16, Vec<u8>), ExitCode> {
    client::get(socket, path).await.map_err(|e| {
        eprintln!("ticketd: {e}");
        ExitCode::from(crate::cli::EXIT_FAILURE)
    })
}

pub async fn status(args: StatusArgs, config_path: &Path) -> ExitCode {
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
        return ExitCode::from(crate::cli::EXIT_FAILURE);
    };
    let now = SystemTime::now();
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
    ExitCode::SUCCESS
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

pub async fn get(args: GetArgs, config_path: &Path) -> ExitCode {
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
            match fetch(&socket, &format!("{path}?wait={generation}&timeout=300s")).await {
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
        _ => crate::cli::EXIT_FAILURE,
    })
}
