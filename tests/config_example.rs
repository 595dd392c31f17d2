//! `config.example.toml` is what the README points users at: it must validate.

use std::collections::HashMap;

use ticketd::config::{ApiSpec, SinkSpec};

fn env() -> HashMap<String, String> {
    [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
    ]
    .into_iter()
    .map(|k| (k.to_string(), "x".to_string()))
    .collect()
}

#[test]
fn the_example_config_validates() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let config =
        ticketd::credentials::environment::load(std::path::Path::new(path), &env()).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(config.credentials.len(), 2);
    assert_eq!(config.tickets.len(), 3);
    assert!(config.socket.is_some());
    assert_eq!(config.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(config.metrics_ticket_series, ticketd::config::DEFAULT_METRICS_TICKET_SERIES);
    assert!(!config.core_dumps);
    let kinds: Vec<&str> = config.tickets.iter().map(|t| t.kind().as_str()).collect();
    assert_eq!(kinds, ["sls", "dsw", "tcr"]);
    let sls = &config.tickets[0];
    assert_eq!(sls.name, "ops-dashboard");
    assert!(matches!(sls.api, ApiSpec::Sls(_)));
    assert_eq!(sls.sinks.len(), 2);
    assert_eq!(sls.consumers.allow_uids, [33]);
    assert!(sls.consumers.on_change.is_some());
    assert!(matches!(config.tickets[2].sinks[0], SinkSpec::DockerConfig(_)));
}

/// Issue 17 item 6: the commented examples of `ram_role_arn`, `role_arn` and `credentials_uri`
/// validate when uncommented.
#[test]
fn issue_17_the_commented_credential_source_examples_validate() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let block: String = text
        .lines()
        .skip_while(|l| !l.starts_with("# --- example: assumed roles"))
        .skip(1)
        .take_while(|l| !l.starts_with("# --- end of example"))
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l.trim_start_matches('#'))))
        .collect();
    assert!(block.contains("source = \"ram_role_arn\""), "{block}");
    let config = ticketd::credentials::environment::parse(&format!("{text}\n{block}"), "config.example.toml", &env())
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(config.credentials.len(), 7);
    let names: Vec<&str> = config.credentials.values().map(|c| c.source.name()).collect();
    for name in ["ram_role_arn", "role_arn", "credentials_uri", "ecs_ram_role", "cvm_role"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
}

/// The config of the Kubernetes examples (`examples/kubernetes/base/ticketd.toml`, the ConfigMap
/// every overlay mounts) validates too, and its sinks write into the shared volume.
#[test]
fn the_kubernetes_example_config_validates() {
    let toml = include_str!("../examples/kubernetes/base/ticketd.toml");
    let config = ticketd::credentials::environment::parse(toml, "ticketd.toml", &env())
        .unwrap_or_else(|p| panic!("{p}\n{toml}"));
    assert_eq!(config.tickets.len(), 1);
    assert!(config.metrics_listen.is_some());
    for sink in &config.tickets[0].sinks {
        assert!(sink.path().starts_with("/run/ticketd"), "{}", sink.path().display());
    }
}
