//! The client view of a config file: only what `status`, `get` or the docker credential helper
//! read of it (the socket, the state directory, the TCR tickets' registries).
//!
//! A client runs in a consumer's or an admin's shell, which holds no cloud keys and must not need
//! them: this view parses only the keys it names (every other key, `[credentials.*]` included, is
//! skipped unread), resolves no credential and reads no environment variable. Validating the rest
//! is the daemon's job (`ticketd check-config`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::defaults::DEFAULT_STATE_DIR;
use super::problem::{Problem, Problems};
use crate::apis::tcr::spec::{DEFAULT_TCR_ENDPOINT, TcrTokenType};
use crate::http::Endpoint;

/// What a client command needs of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The file it came from.
    pub source: PathBuf,
    pub state_dir: PathBuf,
    /// The API socket, when the config sets one.
    pub socket: Option<PathBuf>,
    /// Every `tcr` ticket that names a `registry`, in file order.
    pub registries: Vec<RegistryTicket>,
}

/// A `tcr` ticket with a registry host: what the docker credential helper answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTicket {
    pub name: String,
    /// The registry host, lower-cased (docker's server URLs are compared in lower case).
    pub registry: String,
    /// The TCR endpoint, `registry_id` and `token_type`, as validation reads them: what a saved
    /// holding must have been obtained for (the store's identity of the ticket, made of these).
    pub endpoint: Endpoint,
    pub registry_id: String,
    pub token_type: TcrTokenType,
}

/// The keys a client reads; serde skips every other key without looking at its value.
#[derive(Deserialize)]
struct RawClient {
    state_dir: Option<String>,
    socket: Option<String>,
    #[serde(default)]
    tickets: Vec<RawClientTicket>,
}

#[derive(Deserialize)]
struct RawClientTicket {
    name: Option<String>,
    kind: Option<String>,
    endpoint: Option<String>,
    registry_id: Option<String>,
    token_type: Option<String>,
    registry: Option<String>,
}

/// Read the client view of the config file at `path`.
pub fn load_client(path: &Path) -> Result<ClientConfig, Problems> {
    let text = super::load::read(path)?;
    parse_client(&text, path)
}

/// The client view of config `text`, read from `path`.
pub fn parse_client(text: &str, path: &Path) -> Result<ClientConfig, Problems> {
    let file = path.display().to_string();
    let raw: RawClient = toml::from_str(text).map_err(|e| {
        let position = e.span().map(|s| super::locate::LineIndex::new(text).position(s.start));
        Problems(vec![Problem {
            file: file.clone(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            key: String::new(),
            message: e.message().trim().to_string(),
        }])
    })?;
    let registries = raw
        .tickets
        .into_iter()
        .filter(|t| t.kind.as_deref() == Some("tcr"))
        .filter_map(|t| {
            let token_type = match t.token_type.as_deref() {
                None | Some("temp") => TcrTokenType::Temp,
                Some("longterm") => TcrTokenType::LongTerm,
                // The daemon refuses this ticket: nothing is saved for it.
                Some(_) => return None,
            };
            let endpoint = client_endpoint(t.endpoint.as_deref().unwrap_or(DEFAULT_TCR_ENDPOINT))?;
            Some(RegistryTicket {
                name: t.name?,
                registry: t.registry?.to_ascii_lowercase(),
                endpoint,
                registry_id: t.registry_id?,
                token_type,
            })
        })
        .collect();
    // Read as the validated config reads them, relative paths against the config file's
    // directory (a test below keeps the two in step).
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = super::load::config_dir(&source);
    let resolve = |text: &str| super::load::resolve_path(base.as_deref(), text).unwrap_or_else(|| PathBuf::from(text));
    Ok(ClientConfig {
        source,
        state_dir: resolve(raw.state_dir.filter(|d| !d.is_empty()).as_deref().unwrap_or(DEFAULT_STATE_DIR)),
        socket: raw.socket.as_deref().filter(|s| !s.is_empty()).map(resolve),
        registries,
    })
}

/// An endpoint as validation builds it (a bare host means https); `None` for one it refuses.
fn client_endpoint(text: &str) -> Option<Endpoint> {
    let url_text = if text.contains("://") { text.to_string() } else { format!("https://{text}") };
    reqwest::Url::parse(&url_text).ok().map(|base| Endpoint { base })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A config whose credentials read keys from variables that are not set, and whose
    /// `[credentials.*]` tables hold keys of a type the daemon would refuse.
    const TEXT: &str = r#"
state_dir = "/var/lib/ticketd-test"
socket = "/run/ticketd-test/ticketd.sock"
metrics_listen = "127.0.0.1:9464"

[credentials.prod]
vendor = "alibaba"
source = "env"
access_key_id_env = "NOT_SET_ANYWHERE_ID"
access_key_secret_env = "NOT_SET_ANYWHERE_SECRET"

[credentials.tc]
vendor = "tencent"
source = "env"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "http://127.0.0.1:1"
[[tickets.sinks]]
type = "file"
path = "/run/ticketd-test/dash.json"

[[tickets]]
name = "reg"
kind = "tcr"
credentials = "tc"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
registry = "MyReg.tencentcloudcr.com"
token_type = "longterm"

[[tickets]]
name = "reg-no-host"
kind = "tcr"
credentials = "tc"
region = "ap-guangzhou"
registry_id = "tcr-abcd1235"
"#;

    #[test]
    fn issue17_client_view_needs_no_credentials() {
        // The full load refuses the file in an environment without the keys...
        let empty: HashMap<String, String> = HashMap::new();
        let problems = crate::credentials::environment::parse(TEXT, "t.toml", &empty).unwrap_err().to_string();
        assert!(problems.contains("NOT_SET_ANYWHERE_ID is not set"), "{problems}");
        // ...the client view reads what it needs from it.
        let client = parse_client(TEXT, Path::new("/etc/ticketd/t.toml")).unwrap();
        assert_eq!(client.state_dir, Path::new("/var/lib/ticketd-test"));
        assert_eq!(client.socket.as_deref(), Some(Path::new("/run/ticketd-test/ticketd.sock")));
        assert_eq!(client.registries.len(), 1);
        assert_eq!(client.registries[0].name, "reg");
        assert_eq!(client.registries[0].registry, "myreg.tencentcloudcr.com");
    }

    #[test]
    fn the_client_view_reads_paths_and_identities_as_the_daemon_does() {
        let mut env = HashMap::new();
        for var in
            ["NOT_SET_ANYWHERE_ID", "NOT_SET_ANYWHERE_SECRET", "TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY"]
        {
            env.insert(var.to_string(), "AKIDkey0123456789".to_string());
        }
        let relative = TEXT
            .replace("state_dir = \"/var/lib/ticketd-test\"", "state_dir = \"state\"")
            .replace("socket = \"/run/ticketd-test/ticketd.sock\"", "socket = \"./run/t.sock\"");
        let defaulted = TEXT.replace("state_dir = \"/var/lib/ticketd-test\"", "");
        let endpoint = TEXT.replace("token_type = \"longterm\"", "endpoint = \"http://127.0.0.1:9/tcr/\"");
        for text in [TEXT.to_string(), relative, defaulted, endpoint] {
            let path = Path::new("/etc/ticketd/t.toml");
            let full = crate::credentials::environment::parse_read(&text, path, &env).unwrap();
            let client = parse_client(&text, path).unwrap();
            assert_eq!(client.state_dir, full.state_dir, "{text}");
            assert_eq!(client.socket, full.socket.as_ref().map(|s| s.path.clone()));
            let reg = full.ticket("reg").unwrap();
            let ticket = &client.registries[0];
            let identity = crate::store::tcr_identity(&ticket.endpoint, &ticket.registry_id, ticket.token_type);
            assert_eq!(identity, crate::store::record::identity(reg), "{text}");
        }
    }

    #[test]
    fn a_type_error_in_a_key_the_client_reads_names_its_line() {
        let text = "socket = 5\n[credentials.x]\naccess_key_secret = 7\n";
        let e = parse_client(text, Path::new("t.toml")).unwrap_err().to_string();
        assert!(e.contains("t.toml:1:10: invalid type"), "{e}");
        // A key the client does not read is not looked at.
        let text = "socket = \"/s\"\n[credentials.x]\naccess_key_secret = 7\n";
        assert_eq!(parse_client(text, Path::new("t.toml")).unwrap().socket.as_deref(), Some(Path::new("/s")));
    }
}
