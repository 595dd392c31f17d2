//! `ticketd docker-credential get|store|erase|list`: the docker credential-helper protocol, so
//! docker, podman, skopeo and buildah can log in to a TCR registry with the credentials ticketd
//! keeps fresh. Installed as `docker-credential-ticketd` (a symlink to `ticketd`), it is what a
//! docker `config.json` `"credHelpers": {"<registry>": "ticketd"}` entry runs.
//!
//! Docker runs helpers without arguments, so the config is found through `TICKETD_CONFIG` or the
//! default path (`-c` works too). Answers come from the running daemon over its socket API when
//! `socket` is set and answers (so its access control applies), otherwise from the saved state
//! (`state.json`) while the token there is still valid. The helper reads only the client view of
//! the config ([`crate::config::ClientConfig`]): it resolves no credential, needs no cloud keys and
//! makes no cloud API call.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use crate::config::ClientConfig;

/// The protocol's "not found" message: docker then goes on without credentials.
pub const NOT_FOUND: &str = "credentials not found in native keychain";

/// The helper actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Print `{"ServerURL","Username","Secret"}` for the server URL read on stdin.
    Get,
    /// Refused: ticketd owns these credentials.
    Store,
    /// Refused: ticketd owns these credentials.
    Erase,
    /// Print `{"<registry>": "<username>"}` for every registry with a valid token.
    List,
}

#[derive(Debug, clap::Args)]
pub struct DockerCredentialArgs {
    #[command(flatten)]
    pub config: crate::cli::common::ConfigArg,
    #[arg(value_enum)]
    pub action: Action,
}

/// Invoked under this name, the binary is `ticketd docker-credential`.
pub const HELPER_NAME: &str = "docker-credential-ticketd";

/// Why the helper cannot answer. The message is what docker shows.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    #[error("{NOT_FOUND}")]
    NotFound,
    #[error("ticketd: {0}")]
    Failed(String),
}

/// Load the client view of the config at `path` for the helper.
pub fn load_config(path: &Path) -> Result<ClientConfig, HelperError> {
    crate::config::load_client(path)
        .map_err(|p| HelperError::Failed(format!("cannot use the config: {}", p.to_string().trim_end())))
}

/// `host[:port]` of a server URL as docker passes it (`https://host/v1/`, `host`, `host:5000`).
pub fn registry_host(server_url: &str) -> String {
    let s = server_url.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    s.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// A registry host and, when a valid token is saved for it, `(username, secret)`.
type Login = (String, Option<(String, String)>);

/// Every tcr ticket with a registry, with its login when the daemon (or, when it does not answer,
/// the saved state) holds a valid token.
fn valid_logins(config: &ClientConfig, now: SystemTime) -> Result<Vec<Login>, HelperError> {
    if let Some(logins) = logins_from_daemon(config) {
        return Ok(logins);
    }
    let state = crate::store::read_unlocked(&config.state_dir).map_err(|e| HelperError::Failed(e.to_string()))?;
    // Saved tokens carry no monotonic history: the wall clock decides.
    let now = crate::clock::Now { wall: now, mono: crate::clock::Clock::monotonic(&crate::clock::SystemClock) };
    let mut out = Vec::new();
    for ticket in &config.registries {
        let login = state
            .tickets
            .get(ticket.name.as_str())
            .filter(|saved| saved.identity == ticket.identity)
            .and_then(|saved| saved.holding.valid_token(now))
            .map(|t| (t.username.as_deref().unwrap_or_default().to_string(), t.value.expose().to_string()));
        out.push((ticket.registry.clone(), login));
    }
    Ok(out)
}

/// Ask the running daemon; `None` when there is no socket or it does not answer.
fn logins_from_daemon(config: &ClientConfig) -> Option<Vec<Login>> {
    let socket = config.socket.clone()?;
    if !socket.exists() {
        return None;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    runtime.block_on(async {
        let mut out = Vec::new();
        for ticket in &config.registries {
            let name: String = url::form_urlencoded::byte_serialize(ticket.name.as_bytes()).collect();
            let (status, body) = crate::api::client::get(&socket, &format!("/v1/tickets/{name}")).await.ok()?;
            let login = (status == 200)
                .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
                .flatten()
                .and_then(|j| {
                    Some((
                        j["username"].as_str().unwrap_or_default().to_string(),
                        j["access_token"].as_str()?.to_string(),
                    ))
                });
            out.push((ticket.registry.clone(), login));
        }
        Some(out)
    })
}

/// Run `action`: read the request on `input`, write the answer to `output`.
pub fn run(
    action: Action,
    config: &ClientConfig,
    now: SystemTime,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), HelperError> {
    let io = |e: std::io::Error| HelperError::Failed(e.to_string());
    match action {
        Action::Get => {
            let mut server_url = String::new();
            input.take(64 * 1024).read_to_string(&mut server_url).map_err(io)?;
            let server_url = server_url.trim();
            let host = registry_host(server_url);
            let logins = valid_logins(config, now)?;
            let (_, login) = logins.iter().find(|(r, _)| *r == host).ok_or(HelperError::NotFound)?;
            let (username, secret) = login.as_ref().ok_or_else(|| {
                HelperError::Failed(format!(
                    "no valid token for {host} in {} (is the daemon running?)",
                    config.state_dir.join(crate::store::STATE_FILE).display()
                ))
            })?;
            let answer = serde_json::json!({"ServerURL": server_url, "Username": username, "Secret": secret});
            writeln!(output, "{answer}").map_err(io)
        }
        Action::List => {
            let map: serde_json::Map<String, serde_json::Value> = valid_logins(config, now)?
                .into_iter()
                .filter_map(|(registry, login)| login.map(|(user, _)| (registry, user.into())))
                .collect();
            writeln!(output, "{}", serde_json::Value::Object(map)).map_err(io)
        }
        Action::Store | Action::Erase => {
            // Drain the request so docker does not see a broken pipe.
            let _ = std::io::copy(&mut input.take(1024 * 1024), &mut std::io::sink());
            Err(HelperError::Failed(format!(
                "`{}` is not supported: ticketd owns these credentials and keeps them fresh itself",
                if action == Action::Store { "store" } else { "erase" }
            )))
        }
    }
}

/// The `docker-credential` subcommand: errors go to stdout, as the protocol wants, and exit 1.
pub fn main(args: &DockerCredentialArgs, config_path: &Path) -> ExitCode {
    let result = load_config(config_path).and_then(|config| {
        run(args.action, &config, SystemTime::now(), &mut std::io::stdin().lock(), &mut std::io::stdout().lock())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{e}");
            ExitCode::from(crate::cli::common::EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;
    use crate::secret::Secret;
    use crate::store::{StateFile, StoredTicket};
    use crate::token::{Current, Holding, TokenPart};
    use std::time::Duration;

    fn setup(expires_in: Duration) -> (tempfile::TempDir, ClientConfig, SystemTime) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            r#"
state_dir = "{0}/state"
[credentials.tc]
vendor = "tencent"
[[tickets]]
name = "reg"
kind = "tcr"
credentials = "tc"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
registry = "myreg.tencentcloudcr.com"
"#,
            dir.path().display()
        );
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        let config = load_config(&path).unwrap();
        let now = from_unix_seconds(1_700_000_000);
        let holding = Holding {
            current: Some(Current {
                ticket: None,
                token: TokenPart {
                    value: Secret::new("eyJtoken"),
                    username: Some("100012345678".into()),
                    token_id: None,
                    issued_at: now.into(),
                    expires_at: (now + expires_in).into(),
                },
                generation: 1,
                refreshed_at: now.into(),
                expires_mono: None,
            }),
            pending: None,
        };
        let mut state = StateFile { version: 1, ..Default::default() };
        let stored = StoredTicket { kind: "tcr".into(), identity: config.registries[0].identity.clone(), holding };
        state.tickets.insert("reg".into(), stored);
        std::fs::create_dir_all(&config.state_dir).unwrap();
        std::fs::write(config.state_dir.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
        (dir, config, now)
    }

    fn call(action: Action, config: &ClientConfig, now: SystemTime, input: &str) -> Result<String, HelperError> {
        let mut out = Vec::new();
        run(action, config, now, &mut input.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn get_and_list_answer_from_the_saved_state() {
        let (_dir, config, now) = setup(Duration::from_secs(3600));
        let out = call(Action::Get, &config, now, "https://myreg.tencentcloudcr.com/v2/\n").unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ServerURL": "https://myreg.tencentcloudcr.com/v2/", "Username": "100012345678", "Secret": "eyJtoken"})
        );
        let out = call(Action::List, &config, now, "").unwrap();
        assert_eq!(out.trim(), r#"{"myreg.tencentcloudcr.com":"100012345678"}"#);
        assert!(matches!(call(Action::Get, &config, now, "other.example"), Err(HelperError::NotFound)));
        assert_eq!(HelperError::NotFound.to_string(), NOT_FOUND);
    }

    #[test]
    fn an_expired_token_and_store_erase_are_clear_errors() {
        let (_dir, config, now) = setup(Duration::from_secs(60));
        let later = now + Duration::from_secs(61);
        let e = call(Action::Get, &config, later, "myreg.tencentcloudcr.com").unwrap_err().to_string();
        assert!(e.contains("no valid token for myreg.tencentcloudcr.com"), "{e}");
        assert_eq!(call(Action::List, &config, later, "").unwrap().trim(), "{}");
        let e = call(Action::Store, &config, now, r#"{"ServerURL":"x","Username":"u","Secret":"s"}"#).unwrap_err();
        assert!(e.to_string().contains("ticketd owns these credentials"), "{e}");
        assert!(call(Action::Erase, &config, now, "x").is_err());
    }

    #[test]
    fn server_urls_reduce_to_the_registry_host() {
        assert_eq!(registry_host("https://MyReg.tencentcloudcr.com/v1/"), "myreg.tencentcloudcr.com");
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(registry_host(" reg.example\n"), "reg.example");
    }
}
