//! Tests of the `[cluster]` section, with the ticket `scope` key.

use std::time::Duration;

use super::*;
use crate::config::raw::RawConfig;

/// The `[cluster]` section of `text` checked alone: the spec, or its problems as
/// `file:line:col: key: message` (the build's own feature problem left out, so these tests hold
/// with and without the `etcd` feature).
fn check(text: &str) -> Result<ClusterSpec, Vec<String>> {
    let raw: RawConfig = toml::from_str(text).expect("test TOML");
    let mut c = Checker::new("t.toml", text, None);
    let spec = cluster(&mut c, raw.cluster.as_ref().expect("a [cluster] section"));
    let problems: Vec<String> =
        c.problems.iter().filter(|p| p.message != NO_ETCD_FEATURE).map(|p| p.to_string()).collect();
    match (spec, problems.is_empty()) {
        (Some(spec), true) => Ok(spec),
        (_, _) => Err(problems),
    }
}

fn problems(text: &str) -> Vec<String> {
    check(text).expect_err("problems")
}

const MINIMAL: &str = "[cluster]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\n";

#[test]
fn a_minimal_section_takes_every_default() {
    let spec = check(MINIMAL).unwrap();
    assert_eq!(spec.endpoints, ["http://127.0.0.1:2379"]);
    assert_eq!(spec.prefix, DEFAULT_CLUSTER_PREFIX);
    assert_eq!(spec.node, host_name());
    assert_eq!(spec.lease_ttl, DEFAULT_LEASE_TTL);
    assert_eq!(spec.lease_ttl, Duration::from_secs(10));
    assert!(!spec.tls());
    assert_eq!((spec.encryption_key_file, spec.ca_file, spec.client_cert, spec.auth), (None, None, None, None));
}

#[test]
fn a_full_section_is_read_whole() {
    let spec = check(
        r#"
[cluster]
backend = "etcd"
endpoints = ["https://10.0.0.1:2379", "https://etcd-2.example:2379/"]
prefix = "/ticketd/prod"
node = "web-1"
lease_ttl = "15s"
encryption_key_file = "/etc/ticketd/cluster.key"
ca_file = "/etc/ticketd/etcd-ca.pem"
cert_file = "/etc/ticketd/etcd.pem"
key_file = "/etc/ticketd/etcd.key"
username = "ticketd"
password_env = "ETCD_PASSWORD"
"#,
    )
    .unwrap();
    assert_eq!(spec.endpoints, ["https://10.0.0.1:2379", "https://etcd-2.example:2379"]);
    assert_eq!((spec.prefix.as_str(), spec.node.as_str()), ("/ticketd/prod", "web-1"));
    assert_eq!(spec.lease_ttl, Duration::from_secs(15));
    assert!(spec.tls());
    assert_eq!(spec.encryption_key_file.as_deref(), Some(std::path::Path::new("/etc/ticketd/cluster.key")));
    assert_eq!(spec.ca_file.as_deref(), Some(std::path::Path::new("/etc/ticketd/etcd-ca.pem")));
    let cert = spec.client_cert.unwrap();
    assert_eq!(
        (cert.cert_file.to_str(), cert.key_file.to_str()),
        (Some("/etc/ticketd/etcd.pem"), Some("/etc/ticketd/etcd.key"))
    );
    assert_eq!(spec.auth, Some(ClusterAuth { username: "ticketd".into(), password_env: "ETCD_PASSWORD".into() }));
}

#[test]
fn backend_and_endpoints_are_required_and_checked_at_their_line() {
    assert_eq!(
        problems("[cluster]\nprefix = \"/t\"\n"),
        [
            "t.toml:1:2: cluster.backend: is required",
            "t.toml:1:2: cluster.endpoints: is required: etcd's client URLs, e.g. [\"https://10.0.0.1:2379\"]"
        ]
    );
    assert_eq!(
        problems("[cluster]\nbackend = \"consul\"\nendpoints = []\n"),
        [
            "t.toml:2:1: cluster.backend: unknown backend `consul` (expected \"etcd\")",
            "t.toml:3:1: cluster.endpoints: must list at least one etcd client URL, e.g. [\"https://10.0.0.1:2379\"]",
        ]
    );
}

#[test]
fn endpoints_are_http_or_https_urls_with_a_host_and_port_and_one_scheme() {
    let one = |e: &str| problems(&format!("[cluster]\nbackend = \"etcd\"\nendpoints = [\"{e}\"]\n"));
    assert_eq!(
        one("10.0.0.1:2379"),
        [
            "t.toml:3:14: cluster.endpoints[0]: `10.0.0.1:2379` is not a URL (relative URL without a base); write e.g. \"https://10.0.0.1:2379\""
        ]
    );
    assert_eq!(
        one("http://10.0.0.1"),
        ["t.toml:3:14: cluster.endpoints[0]: `http://10.0.0.1` has no port: write it, e.g. http://10.0.0.1:2379"]
    );
    assert_eq!(
        one("unix:///run/etcd.sock"),
        ["t.toml:3:14: cluster.endpoints[0]: `unix:///run/etcd.sock` is not an http or https URL"]
    );
    assert_eq!(
        one("http://h:2379/v3"),
        [
            "t.toml:3:14: cluster.endpoints[0]: `http://h:2379/v3` has a path, query or fragment: write only scheme://host:port"
        ]
    );
    assert_eq!(
        problems("[cluster]\nbackend = \"etcd\"\nendpoints = [\"http://a:1\", \"https://b:2\"]\nca_file = \"/ca\"\n"),
        ["t.toml:3:1: cluster.endpoints: mixes http and https endpoints: one TLS setting applies to all of them"]
    );
}

#[test]
fn an_endpoint_with_a_password_is_refused_without_showing_it() {
    for e in ["http://root:hunter2@10.0.0.1:2379", "http://root:hunter2@[bad:2379"] {
        let found = problems(&format!("[cluster]\nbackend = \"etcd\"\nendpoints = [\"{e}\"]\n"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!found[0].contains("hunter2"), "{found:?}");
        assert!(found[0].starts_with("t.toml:3:14: cluster.endpoints[0]: "), "{found:?}");
    }
}

#[test]
fn prefix_starts_with_a_slash_and_never_ends_with_one() {
    let with = |p: &str| check(&format!("{MINIMAL}prefix = \"{p}\"\n"));
    assert_eq!(with("/ticketd/prod").unwrap().prefix, "/ticketd/prod");
    for (p, why) in [
        ("ticketd", "must start with `/`"),
        ("/ticketd/", "must not end with `/`"),
        ("/", "must not end with `/`"),
        ("/a//b", "must not hold an empty part"),
        ("/a b", "must be printable ASCII"),
    ] {
        let found = with(p).unwrap_err();
        assert_eq!(found.len(), 1, "{p}: {found:?}");
        assert!(found[0].starts_with(&format!("t.toml:4:1: cluster.prefix: `{p}` {why}")), "{p}: {found:?}");
    }
}

#[test]
fn node_is_a_name_and_lease_ttl_whole_seconds_in_bounds() {
    assert_eq!(
        problems(&format!("{MINIMAL}node = \"web 1\"\n")),
        ["t.toml:4:1: cluster.node: `web 1` is not a valid node name: use only letters, digits, `.`, `_` and `-`"]
    );
    let ttl = |t: &str| check(&format!("{MINIMAL}lease_ttl = \"{t}\"\n"));
    assert_eq!(ttl("2s").unwrap().lease_ttl, MIN_LEASE_TTL);
    assert_eq!(ttl("5m").unwrap().lease_ttl, MAX_LEASE_TTL);
    assert_eq!(ttl("1s").unwrap_err(), ["t.toml:4:1: cluster.lease_ttl: 1s is shorter than lease_ttl allows (min 2s)"]);
    assert_eq!(ttl("6m").unwrap_err(), ["t.toml:4:1: cluster.lease_ttl: 6m is longer than lease_ttl allows (max 5m)"]);
    assert_eq!(
        ttl("2500ms").unwrap_err(),
        ["t.toml:4:1: cluster.lease_ttl: 2500ms is not a whole number of seconds (etcd leases count in seconds)"]
    );
}

#[test]
fn tls_files_and_auth_come_in_pairs_and_match_the_scheme() {
    assert_eq!(
        problems(&format!("{MINIMAL}cert_file = \"/c.pem\"\n")),
        [
            "t.toml:4:1: cluster.cert_file: needs `key_file` too (the client certificate's private key)",
            "t.toml:4:1: cluster.cert_file: applies to https endpoints only; these are http",
        ]
    );
    assert_eq!(
        problems("[cluster]\nbackend = \"etcd\"\nendpoints = [\"https://a:1\"]\nkey_file = \"/k.pem\"\n"),
        ["t.toml:4:1: cluster.key_file: needs `cert_file` too (the client certificate)"]
    );
    // Review F6: with https, ca_file is optional (the system's trusted roots).
    let spec = check("[cluster]\nbackend = \"etcd\"\nendpoints = [\"https://a:1\"]\n").expect("https without ca_file");
    assert!(spec.tls() && spec.ca_file.is_none());
    assert_eq!(
        problems(&format!("{MINIMAL}ca_file = \"ca.pem\"\n")),
        [
            "t.toml:4:1: cluster.ca_file: `ca.pem` is relative, and this configuration was not read from a file whose \
             directory it could be relative to: write an absolute path",
            "t.toml:4:1: cluster.ca_file: applies to https endpoints only; these are http",
        ]
    );
    assert_eq!(
        problems(&format!("{MINIMAL}username = \"u\"\n")),
        ["t.toml:4:1: cluster.username: needs `password_env` too (the variable holding etcd's password)"]
    );
    assert_eq!(
        problems(&format!("{MINIMAL}password_env = \"P\"\n")),
        ["t.toml:4:1: cluster.password_env: needs `username` too"]
    );
}

#[test]
fn a_password_pasted_as_password_env_is_refused_without_showing_it() {
    let found = problems(&format!("{MINIMAL}username = \"u\"\npassword_env = \"s3cr3t-Pa55\"\n"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("t.toml:5:1: cluster.password_env: is not an environment variable name"), "{found:?}");
    assert!(!found[0].contains("s3cr3t"), "{found:?}");
}

#[test]
fn scope_defaults_to_cluster_with_a_cluster_section_and_to_node_without() {
    let mut c = Checker::new("t.toml", "", None);
    let at = KeyPath::root().key("tickets").index(0).key("scope");
    assert_eq!(scope(&mut c, None, &at, true), Some(Scope::Cluster));
    assert_eq!(scope(&mut c, Some("cluster"), &at, true), Some(Scope::Cluster));
    assert_eq!(scope(&mut c, Some("node"), &at, true), Some(Scope::Node));
    assert_eq!(scope(&mut c, None, &at, false), Some(Scope::Node));
    assert_eq!(scope(&mut c, Some("node"), &at, false), Some(Scope::Node));
    assert!(c.problems.is_empty());
    assert_eq!(scope(&mut c, Some("cluster"), &at, false), None);
    assert_eq!(scope(&mut c, Some("fleet"), &at, true), None);
    let messages: Vec<&str> = c.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "`cluster` needs a [cluster] section (without one every ticket is this host's own)",
            "unknown scope `fleet` (expected \"cluster\" or \"node\")",
        ]
    );
}

const TICKET: &str = r#"
[credentials.prod]
vendor = "alibaba"
access_key_id_env = "A"
access_key_secret_env = "B"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "cn-shanghai.log.aliyuncs.com"
"#;

#[test]
fn a_ticket_s_scope_is_read_from_the_file() {
    let without =
        crate::config::parse(&format!("state_dir = \"/tmp/x\"\n{TICKET}scope = \"node\"\n"), "t.toml").unwrap();
    assert_eq!((without.cluster, without.tickets[0].scope), (None, Scope::Node));
    let wrong = crate::config::parse(&format!("state_dir = \"/tmp/x\"\n{TICKET}scope = \"cluster\"\n"), "t.toml");
    let wrong: Vec<String> = wrong.unwrap_err().0.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        wrong,
        [
            "t.toml:13:1: tickets[0].scope: `cluster` needs a [cluster] section (without one every ticket is this host's own)"
        ]
    );
}

#[cfg(feature = "etcd")]
#[test]
fn with_a_cluster_section_tickets_are_the_fleet_s_unless_scoped_to_the_node() {
    let text = format!(
        "state_dir = \"/tmp/x\"\n{MINIMAL}{TICKET}\n[[tickets]]\nname = \"own\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"cn-shanghai.log.aliyuncs.com\"\nscope = \"node\"\n"
    );
    let config = crate::config::parse(&text, "t.toml").unwrap();
    assert_eq!(config.cluster.unwrap().endpoints, ["http://127.0.0.1:2379"]);
    let scopes: Vec<Scope> = config.tickets.iter().map(|t| t.scope).collect();
    assert_eq!(scopes, [Scope::Cluster, Scope::Node]);
}

#[cfg(not(feature = "etcd"))]
#[test]
fn without_the_etcd_feature_a_cluster_section_is_refused_at_its_line() {
    let text = format!("state_dir = \"/tmp/x\"\n{MINIMAL}");
    let found: Vec<String> =
        crate::config::parse(&text, "t.toml").unwrap_err().0.iter().map(|p| p.to_string()).collect();
    assert_eq!(found, ["t.toml:2:2: cluster: built without the `etcd` feature: cargo build --features etcd"]);
}
