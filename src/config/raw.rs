//! The config file's shape, as written: every key optional where the file may leave it out.
//! Unknown keys are collected (not fatal one by one) so that all of them are reported at once.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub state_dir: Option<String>,
    pub socket: Option<String>,
    pub socket_mode: Option<String>,
    pub socket_group: Option<toml::Value>,
    pub metrics_listen: Option<String>,
    pub rate_limits: Option<RawRateLimits>,
    #[serde(default)]
    pub credentials: BTreeMap<String, RawCredentials>,
    #[serde(default)]
    pub tickets: Vec<RawTicket>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRateLimits {
    pub alibaba: Option<i64>,
    pub tencent: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawCredentials {
    pub vendor: Option<String>,
    pub source: Option<String>,
    // Alibaba environment variable names.
    pub access_key_id_env: Option<String>,
    pub access_key_secret_env: Option<String>,
    pub security_token_env: Option<String>,
    // Tencent environment variable names.
    pub secret_id_env: Option<String>,
    pub secret_key_env: Option<String>,
    pub session_token_env: Option<String>,
    // source = "static".
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    pub security_token: Option<String>,
    pub secret_id: Option<String>,
    pub secret_key: Option<String>,
    pub session_token: Option<String>,
    // source = "profile".
    pub profile: Option<String>,
    pub profile_file: Option<String>,
    // source = "oidc".
    pub sts_endpoint: Option<String>,
    pub role_session_name: Option<String>,
    pub duration: Option<String>,
    // source = "ecs_ram_role" / "cvm_role".
    pub metadata_endpoint: Option<String>,
    pub role_name: Option<String>,
    pub imdsv1_fallback: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTicket {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub credentials: Option<String>,
    pub endpoint: Option<String>,
    pub ticket_lifetime: Option<String>,
    pub token_lifetime: Option<String>,
    pub ticket_renew_before: Option<String>,
    pub signature_method: Option<String>,
    pub console_url: Option<String>,
    pub console_params: Option<toml::Table>,
    // dsw and tcr.
    pub region: Option<String>,
    pub network: Option<String>,
    pub instance_id: Option<String>,
    pub token_type: Option<String>,
    pub audience: Option<String>,
    pub registry_id: Option<String>,
    pub description: Option<String>,
    pub registry: Option<String>,
    // Consumers.
    pub allow_uids: Option<Vec<u32>>,
    pub allow_gids: Option<Vec<u32>>,
    pub required: Option<bool>,
    pub on_change: Option<RawHook>,
    #[serde(default)]
    pub sinks: Vec<RawSink>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawHook {
    pub exec: Option<Vec<String>>,
    pub signal: Option<String>,
    pub pid_file: Option<String>,
    pub timeout: Option<String>,
    pub debounce: Option<String>,
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSink {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub path: Option<String>,
    pub format: Option<String>,
    pub mode: Option<String>,
    // format = "env".
    pub env_prefix: Option<String>,
    pub env_token: Option<String>,
    pub env_username: Option<String>,
    pub env_expires_at: Option<String>,
}
