//! The registry logins the credential helpers hand out (`docker-credential`,
//! `kubelet-credential-provider`): which `tcr` ticket holds a registry host, and its valid token,
//! from the running daemon's socket API or, when it does not answer, from the saved state.
//!
//! Only the client view of the config ([`ClientConfig`]) is read: no credential is resolved, no
//! cloud key needed, no cloud API called.

use std::path::Path;
use std::time::SystemTime;

use crate::config::{ClientConfig, Problems, RegistryTicket};
use crate::secret::Secret;
use crate::store::StoreError;

/// Why no login could be looked up at all (as opposed to a registry without a valid token).
#[derive(Debug, thiserror::Error)]
pub(super) enum LookupError {
    #[error("cannot use the config: {}", .0.to_string().trim_end())]
    Config(Problems),
    #[error(transparent)]
    State(#[from] StoreError),
}

/// A valid registry login. `Debug` shows no secret.
#[derive(Debug)]
pub(super) struct Login {
    pub username: String,
    pub password: Secret,
    /// When the token expires; `None` when the daemon's answer did not say (cache nothing then).
    pub expires_at: Option<SystemTime>,
}

/// A registry host ticketd holds, and its login when a valid token is held for it.
#[derive(Debug)]
pub(super) struct RegistryLogin {
    pub registry: String,
    pub login: Option<Login>,
}

/// Where a registry's answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The running daemon, over the socket API.
    Daemon,
    /// The saved state (`state.json`): the daemon has no socket or did not answer.
    SavedState,
}

/// Load the client view of the config at `path`.
pub(super) fn load_config(path: &Path) -> Result<ClientConfig, LookupError> {
    crate::config::load_client(path).map_err(LookupError::Config)
}

/// Every tcr ticket with a registry, with its login when the daemon (or, when it does not answer,
/// the saved state) holds a valid token.
pub(super) fn valid_logins(config: &ClientConfig, now: SystemTime) -> Result<Vec<RegistryLogin>, LookupError> {
    let tickets: Vec<&RegistryTicket> = config.registries.iter().collect();
    logins(config, &tickets, now).map(|(logins, _)| logins)
}

/// The first tcr ticket for registry `host` (compared in lower case) with its login, and where
/// the answer came from; `None` when no ticket names that registry.
pub(super) fn login_for(
    config: &ClientConfig,
    host: &str,
    now: SystemTime,
) -> Result<Option<(RegistryLogin, Source)>, LookupError> {
    let host = host.to_ascii_lowercase();
    let Some(ticket) = config.registries.iter().find(|t| t.registry == host) else {
        return Ok(None);
    };
    let (mut logins, source) = logins(config, &[ticket], now)?;
    Ok(logins.pop().map(|login| (login, source)))
}

/// The logins of `tickets`: from the daemon when it answers, else from the saved state.
fn logins(
    config: &ClientConfig,
    tickets: &[&RegistryTicket],
    now: SystemTime,
) -> Result<(Vec<RegistryLogin>, Source), LookupError> {
    if let Some(logins) = logins_from_daemon(config, tickets) {
        return Ok((logins, Source::Daemon));
    }
    let state = crate::store::read_unlocked(&config.state_dir)?;
    // Saved tokens carry no monotonic history: the wall clock decides.
    let now = crate::clock::Now { wall: now, mono: crate::clock::Clock::monotonic(&crate::clock::SystemClock) };
    let logins = tickets
        .iter()
        .map(|ticket| {
            let login = state
                .tickets
                .get(ticket.name.as_str())
                .filter(|saved| saved.identity == identity(ticket))
                .and_then(|saved| saved.holding.valid_token(now))
                .map(|t| Login {
                    username: t.username.as_deref().unwrap_or_default().to_string(),
                    password: t.value.clone(),
                    expires_at: Some(t.expires_at.into()),
                });
            RegistryLogin { registry: ticket.registry.clone(), login }
        })
        .collect();
    Ok((logins, Source::SavedState))
}

/// What a saved holding of `ticket` must have been obtained for (the store's identity of a `tcr`
/// ticket, from the client view's parts).
fn identity(ticket: &RegistryTicket) -> String {
    crate::store::tcr_identity(&ticket.endpoint, &ticket.registry_id, ticket.token_type)
}

/// How long the helpers wait for the daemon, all its answers together, before they answer from
/// the saved state: well inside the kubelet's exec timeout (1 minute) and docker's patience.
pub(super) const DAEMON_TIMEOUT: std::time::Duration = crate::api::client::ROUND_TRIP_TIMEOUT;

/// Ask the running daemon; `None` when there is no socket or it does not answer, within
/// [`DAEMON_TIMEOUT`] for every ticket together (a daemon that accepts and never answers is
/// said on stderr, then the saved state answers).
fn logins_from_daemon(config: &ClientConfig, tickets: &[&RegistryTicket]) -> Option<Vec<RegistryLogin>> {
    logins_from_daemon_within(config, tickets, DAEMON_TIMEOUT)
}

fn logins_from_daemon_within(
    config: &ClientConfig,
    tickets: &[&RegistryTicket],
    bound: std::time::Duration,
) -> Option<Vec<RegistryLogin>> {
    use crate::api::client::{ClientError, get_within};
    let socket = config.socket.clone()?;
    if !socket.exists() {
        return None;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let asked = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + bound;
        let mut out = Vec::new();
        for ticket in tickets {
            let name: String = url::form_urlencoded::byte_serialize(ticket.name.as_bytes()).collect();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (status, body) = get_within(&socket, &format!("/v1/tickets/{name}"), left).await?;
            let body = zeroize::Zeroizing::new(body);
            let login = (status == 200).then(|| login_from_answer(&body)).flatten();
            out.push(RegistryLogin { registry: ticket.registry.clone(), login });
        }
        Ok::<_, ClientError>(out)
    });
    match asked {
        Ok(out) => Some(out),
        // Not running: the saved state answers, as it always has, without a word.
        Err(ClientError::Connect { .. }) => None,
        Err(ClientError::Timeout { path, .. }) => {
            let after = humantime::format_duration(bound);
            eprintln!("ticketd: the daemon at {path} did not answer within {after}; answering from the saved state");
            None
        }
        Err(e @ ClientError::Http(_)) => {
            eprintln!("ticketd: {e}; answering from the saved state");
            None
        }
    }
}

/// The login in a `GET /v1/tickets/<name>` answer (`username`, `access_token`, `token_expires_at`).
fn login_from_answer(body: &[u8]) -> Option<Login> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        username: Option<String>,
        access_token: Secret,
        #[serde(default)]
        token_expires_at: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    Some(Login {
        username: answer.username.unwrap_or_default(),
        password: answer.access_token,
        expires_at: answer.token_expires_at.and_then(|t| humantime::parse_rfc3339(&t).ok()),
    })
}

/// A config with one tcr ticket for `myreg.tencentcloudcr.com` and no socket, and a saved state
/// holding its token (`100012345678` / `eyJtoken`) minted at the returned `now`.
#[cfg(test)]
pub(crate) mod fixture {
    use std::time::{Duration, SystemTime};

    use crate::clock::from_unix_seconds;
    use crate::config::ClientConfig;
    use crate::secret::Secret;
    use crate::store::{StateFile, StoredTicket};
    use crate::token::{Current, Holding, TokenPart};

    /// The fixture, its token expiring `expires_in` after `now`.
    pub(crate) fn setup(expires_in: Duration) -> (tempfile::TempDir, ClientConfig, SystemTime) {
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
        let config = crate::cli::registry_login::load_config(&path).unwrap();
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
        let stored = StoredTicket { kind: "tcr".into(), identity: super::identity(&config.registries[0]), holding };
        state.tickets.insert("reg".into(), stored);
        std::fs::create_dir_all(&config.state_dir).unwrap();
        std::fs::write(config.state_dir.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
        (dir, config, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_answer_reads_as_a_login_and_anything_else_as_none() {
        let login = login_from_answer(
            br#"{"name":"reg","kind":"tcr","ticket":null,"access_token":"eyJtoken","username":"100012345678","url":null,"token_expires_at":"2027-01-01T00:00:00Z","ticket_expires_at":null,"refreshed_at":"2026-01-01T00:00:00Z","generation":1}"#,
        )
        .unwrap();
        assert_eq!((login.username.as_str(), login.password.expose()), ("100012345678", "eyJtoken"));
        assert_eq!(login.expires_at, Some(humantime::parse_rfc3339("2027-01-01T00:00:00Z").unwrap()));
        assert!(!format!("{login:?}").contains("eyJtoken"), "Debug shows no secret");
        let no_expiry = login_from_answer(br#"{"access_token":"t"}"#).unwrap();
        assert_eq!((no_expiry.username.as_str(), no_expiry.expires_at), ("", None));
        assert!(login_from_answer(br#"{"error":"the token has expired"}"#).is_none());
        assert!(login_from_answer(b"not json").is_none());
    }
}
