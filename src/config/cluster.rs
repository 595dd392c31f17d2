//! The `[cluster]` section (issue #19) as pure data: which etcd, under which prefix, as which node,
//! with which lease, TLS and auth, and each ticket's `scope`. Checked here; nothing is connected.

use std::path::PathBuf;
use std::time::Duration;

use super::check::{Checker, is_env_var_name, valid_name};
use super::locate::KeyPath;
use super::raw::RawCluster;

/// Optional. Default `prefix`: every key ticketd writes in etcd starts with it.
pub const DEFAULT_CLUSTER_PREFIX: &str = "/ticketd";
/// Optional. Default `lease_ttl`: how long a dead leader keeps the role (and a dead node its
/// membership) before another node takes over.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// The shortest `lease_ttl`: below it a busy host's keep-alive (every third of the TTL) can miss.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
/// The longest `lease_ttl`: a fleet without a leader for longer than this is an outage.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(300);

/// A fleet of ticketd nodes sharing their tickets through etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// etcd's client URLs, each `http://host:port` or `https://host:port` (one scheme for all).
    pub endpoints: Vec<String>,
    /// Optional. Default [`DEFAULT_CLUSTER_PREFIX`]. Starts with `/`, never ends with one.
    pub prefix: String,
    /// Optional. Default: the host name. Unique in the fleet: two nodes of one name would share a
    /// membership key; that cannot be checked offline.
    pub node: String,
    /// Optional. Default [`DEFAULT_LEASE_TTL`]; whole seconds (etcd's lease unit), 2 s to 5 min.
    pub lease_ttl: Duration,
    /// Optional. Default: none (holdings stored in etcd in plain text; start-up and `check-config`
    /// warn).
    pub encryption_key_file: Option<PathBuf>,
    /// Optional, `https` only: the CA that signed etcd's certificate. Default: the system's trusted
    /// roots (review F6: the issue lists every TLS key as optional).
    pub ca_file: Option<PathBuf>,
    /// Optional: a TLS client certificate (`cert_file` and `key_file`, both or neither).
    pub client_cert: Option<ClientCert>,
    /// Optional: etcd user and password (`username` and `password_env`, both or neither).
    pub auth: Option<ClusterAuth>,
}

impl ClusterSpec {
    /// Whether the endpoints use TLS.
    pub fn tls(&self) -> bool {
        self.endpoints.first().is_some_and(|e| e.starts_with("https://"))
    }
}

/// A TLS client certificate for etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// etcd's user/password authentication. The password is read from `password_env` when the
/// daemon connects, never by the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAuth {
    pub username: String,
    pub password_env: String,
}

/// Where a ticket lives in a fleet (the ticket key `scope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// Shared by the fleet: the leader refreshes it, every node serves what etcd holds. The
    /// default for a ticket when `[cluster]` is set.
    Cluster,
    /// This host's own, refreshed here as without a fleet. Every ticket is `Node` when there is no
    /// `[cluster]`.
    #[default]
    Node,
}

/// The message a build without the `etcd` feature gives for a `[cluster]` section.
pub(crate) const NO_ETCD_FEATURE: &str = "built without the `etcd` feature: cargo build --features etcd";

/// Check the `[cluster]` section.
pub(crate) fn cluster(c: &mut Checker<'_>, raw: &RawCluster) -> Option<ClusterSpec> {
    let at = KeyPath::root().key("cluster");
    if !cfg!(feature = "etcd") {
        c.report(&at, NO_ETCD_FEATURE);
    }
    let backend = match c.required(&raw.backend, &at.key("backend")) {
        Some("etcd") => Some(()),
        Some(other) => {
            c.report(&at.key("backend"), format!("unknown backend `{other}` (expected \"etcd\")"));
            None
        }
        None => None,
    };
    let endpoints = endpoints(c, raw.endpoints.as_deref(), &at.key("endpoints"));
    let prefix = prefix(c, raw.prefix.as_deref(), &at.key("prefix"));
    let node = node(c, raw.node.as_deref(), &at.key("node"));
    let lease_ttl = lease_ttl(c, &raw.lease_ttl, &at.key("lease_ttl"));
    let mut path = |value: &Option<String>, key: &str| match value {
        None => Some(None),
        Some(text) => c.path(text, &at.key(key)).map(Some),
    };
    let encryption_key_file = path(&raw.encryption_key_file, "encryption_key_file");
    let ca_file = path(&raw.ca_file, "ca_file");
    let cert_file = path(&raw.cert_file, "cert_file");
    let key_file = path(&raw.key_file, "key_file");
    let client_cert = match (cert_file, key_file) {
        (Some(Some(cert_file)), Some(Some(key_file))) => Some(Some(ClientCert { cert_file, key_file })),
        (Some(None), Some(None)) => Some(None),
        (Some(Some(_)), Some(None)) => {
            c.report(&at.key("cert_file"), "needs `key_file` too (the client certificate's private key)");
            None
        }
        (Some(None), Some(Some(_))) => {
            c.report(&at.key("key_file"), "needs `cert_file` too (the client certificate)");
            None
        }
        _ => None,
    };
    let auth = auth(c, raw, &at);
    if let Some(endpoints) = &endpoints {
        let tls = endpoints[0].starts_with("https://");
        if !tls {
            for (key, set) in [("ca_file", raw.ca_file.is_some()), ("cert_file", raw.cert_file.is_some())] {
                if set {
                    c.report(&at.key(key), "applies to https endpoints only; these are http");
                }
            }
        }
    }
    backend?;
    Some(ClusterSpec {
        endpoints: endpoints?,
        prefix: prefix?,
        node: node?,
        lease_ttl: lease_ttl?,
        encryption_key_file: encryption_key_file?,
        ca_file: ca_file?,
        client_cert: client_cert?,
        auth: auth?,
    })
}

/// A ticket's `scope`: `clustered` says whether the file has a `[cluster]` section.
pub(crate) fn scope(c: &mut Checker<'_>, value: Option<&str>, at: &KeyPath, clustered: bool) -> Option<Scope> {
    match (value, clustered) {
        (None, true) | (Some("cluster"), true) => Some(Scope::Cluster),
        (None, false) | (Some("node"), _) => Some(Scope::Node),
        (Some("cluster"), false) => {
            c.report(at, "`cluster` needs a [cluster] section (without one every ticket is this host's own)");
            None
        }
        (Some(other), _) => {
            c.report(at, format!("unknown scope `{other}` (expected \"cluster\" or \"node\")"));
            None
        }
    }
}

fn endpoints(c: &mut Checker<'_>, raw: Option<&[String]>, at: &KeyPath) -> Option<Vec<String>> {
    let Some(raw) = raw else {
        c.report(at, "is required: etcd's client URLs, e.g. [\"https://10.0.0.1:2379\"]");
        return None;
    };
    if raw.is_empty() {
        c.report(at, "must list at least one etcd client URL, e.g. [\"https://10.0.0.1:2379\"]");
        return None;
    }
    let mut ok = true;
    let mut found = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        match endpoint(text) {
            Ok(url) => found.push(url),
            Err(why) => {
                c.report(&at.index(i), why);
                ok = false;
            }
        }
    }
    if ok && found.iter().any(|e| e.starts_with("https://")) && found.iter().any(|e| e.starts_with("http://")) {
        c.report(at, "mixes http and https endpoints: one TLS setting applies to all of them");
        ok = false;
    }
    ok.then_some(found)
}

/// One endpoint, as `scheme://host:port`, or why it is refused. A URL with a user or password is
/// refused without being shown (the password would be in it).
fn endpoint(text: &str) -> Result<String, String> {
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(_) if text.contains('@') => return Err("is not a URL (not shown: it may hold a password)".to_string()),
        Err(e) => return Err(format!("`{text}` is not a URL ({e}); write e.g. \"https://10.0.0.1:2379\"")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("holds a user or password (not shown): use `username` and `password_env`".to_string());
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http or https URL"));
    }
    let Some(host) = url.host_str() else { return Err(format!("`{text}` has no host")) };
    let Some(port) = url.port() else {
        return Err(format!("`{text}` has no port: write it, e.g. {}://{host}:2379", url.scheme()));
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}` has a path, query or fragment: write only scheme://host:port"));
    }
    Ok(format!("{}://{host}:{port}", url.scheme()))
}

fn prefix(c: &mut Checker<'_>, raw: Option<&str>, at: &KeyPath) -> Option<String> {
    let Some(text) = raw else { return Some(DEFAULT_CLUSTER_PREFIX.to_string()) };
    let problem = if !text.starts_with('/') {
        Some("must start with `/`, e.g. \"/ticketd/prod\"")
    } else if text.ends_with('/') {
        Some("must not end with `/` (ticketd adds `/leader`, `/members/...`, `/tickets/...`)")
    } else if text.contains("//") {
        Some("must not hold an empty part (`//`)")
    } else if !text.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be printable ASCII without spaces")
    } else {
        None
    };
    match problem {
        Some(why) => {
            c.report(at, format!("`{text}` {why}"));
            None
        }
        None => Some(text.to_string()),
    }
}

fn node(c: &mut Checker<'_>, raw: Option<&str>, at: &KeyPath) -> Option<String> {
    let (name, written) = match raw {
        Some(name) => (name.to_string(), true),
        None => (host_name(), false),
    };
    if valid_name(&name) {
        return Some(name);
    }
    let why = "is not a valid node name: use only letters, digits, `.`, `_` and `-`";
    match written {
        true => c.report(at, format!("`{name}` {why}")),
        false => c.report(at, format!("defaults to the host name, and `{name}` {why}: set `node`")),
    }
    None
}

/// This host's name (`uname -n`).
pub(crate) fn host_name() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

fn lease_ttl(c: &mut Checker<'_>, raw: &Option<String>, at: &KeyPath) -> Option<Duration> {
    let ttl = c.duration(raw, at, DEFAULT_LEASE_TTL, MIN_LEASE_TTL, MAX_LEASE_TTL, "lease_ttl")?;
    if ttl.subsec_nanos() != 0 {
        let text = raw.as_deref().unwrap_or_default();
        c.report(at, format!("{text} is not a whole number of seconds (etcd leases count in seconds)"));
        return None;
    }
    Some(ttl)
}

fn auth(c: &mut Checker<'_>, raw: &RawCluster, at: &KeyPath) -> Option<Option<ClusterAuth>> {
    match (&raw.username, &raw.password_env) {
        (None, None) => Some(None),
        (Some(_), None) => {
            c.report(&at.key("username"), "needs `password_env` too (the variable holding etcd's password)");
            None
        }
        (None, Some(_)) => {
            c.report(&at.key("password_env"), "needs `username` too");
            None
        }
        (Some(user), Some(env)) => {
            let mut ok = true;
            if user.is_empty() || user.chars().any(char::is_control) {
                c.report(&at.key("username"), "must be a non-empty name without control characters");
                ok = false;
            }
            if !is_env_var_name(env) {
                c.report(
                    &at.key("password_env"),
                    "is not an environment variable name: use upper-case letters, digits and `_`, not starting \
                     with a digit (the value is not shown, in case it is the password itself)",
                );
                ok = false;
            }
            ok.then(|| Some(ClusterAuth { username: user.clone(), password_env: env.to_string() }))
        }
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
