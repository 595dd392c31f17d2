//! `config.example.toml` is what the README points users at: it must validate.

use std::collections::HashMap;

use ticketd::config::{self, ApiSpec, SinkSpec};

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
    let config = config::load(std::path::Path::new(path), &env()).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(config.credentials.len(), 1);
    assert_eq!(config.tickets.len(), 1);
    let ticket = &config.tickets[0];
    assert_eq!(ticket.name, "ops-dashboard");
    assert!(matches!(ticket.api, ApiSpec::Sls(_)));
    assert_eq!(ticket.sinks.len(), 2);
    assert!(ticket.sinks.iter().all(|s| matches!(s, SinkSpec::File(_))));
}
