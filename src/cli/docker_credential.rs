//! `ticketd docker-credential get|store|erase|list`: the docker credential-helper protocol, so
//! docker, podman, skopeo and buildah can log in to a TCR registry with the credentials ticketd
//! keeps fresh. Installed as `docker-credential-ticketd` (a symlink to `ticketd`), it is what a
//! docker `config.json` `"credHelpers": {"<registry>": "ticketd"}` entry runs.
//!
//! Docker runs helpers without arguments, so the config is found through `TICKETD_CONFIG` or the
//! default path (`-c` works too). Answers come from the running daemon over its socket API when
//! `socket` is set and answers (so its access control applies), otherwise from the saved state
//! (`state.json`) while the token there is still valid ([`crate::cli::registry_login`], shared with
//! the kubelet credential provider). The helper reads only the client view of the config
//! ([`crate::config::ClientConfig`]): it resolves no credential, needs no cloud keys and makes no
//! cloud API call.

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use crate::cli::registry_login::{self, LookupError};
use crate::config::ClientConfig;

/// The protocol's "not found" message: docker then goes on without credentials.
pub(super) const NOT_FOUND: &str = "credentials not found in native keychain";

/// The helper actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Action {
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
pub(super) struct DockerCredentialArgs {
    #[command(flatten)]
    pub config: crate::cli::common::ConfigArg,
    #[arg(value_enum)]
    pub action: Action,
}

/// Invoked under this name, the binary is `ticketd docker-credential`.
pub(super) const HELPER_NAME: &str = "docker-credential-ticketd";

/// Why the helper cannot answer. The message is what docker shows.
#[derive(Debug, thiserror::Error)]
pub(super) enum HelperError {
    #[error("{NOT_FOUND}")]
    NotFound,
    #[error("ticketd: {0}")]
    Lookup(#[from] LookupError),
    #[error("ticketd: {0}")]
    Failed(String),
}

/// Load the client view of the config at `path` for the helper.
pub(super) fn load_config(path: &Path) -> Result<ClientConfig, HelperError> {
    Ok(registry_login::load_config(path)?)
}

/// `host[:port]` of a server URL as docker passes it (`https://host/v1/`, `host`, `host:5000`).
pub(super) fn registry_host(server_url: &str) -> String {
    let s = server_url.trim();
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    s.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// Run `action`: read the request on `input`, write the answer to `output`.
pub(super) fn run(
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
            let (found, _) = registry_login::login_for(config, &host, now)?.ok_or(HelperError::NotFound)?;
            let login = found.login.ok_or_else(|| {
                HelperError::Failed(format!(
                    "no valid token for {host} in {} (is the daemon running?)",
                    config.state_dir.join(crate::store::STATE_FILE).display()
                ))
            })?;
            let answer = serde_json::json!({"ServerURL": server_url, "Username": login.username, "Secret": login.password.expose()});
            writeln!(output, "{answer}").map_err(io)
        }
        Action::List => {
            let map: serde_json::Map<String, serde_json::Value> = registry_login::valid_logins(config, now)?
                .into_iter()
                .filter_map(|r| r.login.map(|login| (r.registry, login.username.into())))
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
pub(super) fn main(args: &DockerCredentialArgs, config_path: &Path) -> ExitCode {
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
    use crate::cli::registry_login::fixture::setup;
    use std::time::Duration;

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
