//! The config file's shape, as written: every key optional where the file may leave it out.
//! Unknown keys are collected (not fatal one by one) so that all of them are reported at once.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de;
use zeroize::Zeroizing;

use crate::apis::kinds::api_keys;
use crate::apis::section::{RawKeys, RawValue, Shape};

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawConfig {
    pub state_dir: Option<String>,
    pub socket: Option<String>,
    pub socket_mode: Option<String>,
    pub socket_group: Option<toml::Value>,
    pub metrics_listen: Option<String>,
    pub metrics_ticket_series: Option<i64>,
    pub core_dumps: Option<bool>,
    pub rate_limits: Option<RawRateLimits>,
    pub cluster: Option<RawCluster>,
    #[serde(default)]
    pub credentials: BTreeMap<String, RawCredentials>,
    /// Empty in the rest of a cut file (each ticket is parsed on its own, `config::split`): the
    /// field is there so that a `tickets` table out of place is explained by its type, and for
    /// the tests that read a document whole.
    #[serde(default)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub tickets: Vec<RawTicket>,
}

/// The `[cluster]` section as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawCluster {
    pub backend: Option<String>,
    pub endpoints: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub node: Option<String>,
    pub lease_ttl: Option<String>,
    pub encryption_key_file: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub username: Option<String>,
    /// The name of the variable holding etcd's password: a [`RawSecret`] in case the password
    /// itself was pasted here.
    pub password_env: Option<RawSecret>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawRateLimits {
    pub alibaba: Option<i64>,
    pub tencent: Option<i64>,
}

/// The keys that may hold a secret (the `*_env` names too: a key pasted on the wrong line) are
/// [`RawSecret`]s: no error or `Debug` output shows them.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawCredentials {
    pub vendor: Option<String>,
    pub source: Option<String>,
    // Alibaba environment variable names.
    pub access_key_id_env: Option<RawSecret>,
    pub access_key_secret_env: Option<RawSecret>,
    pub security_token_env: Option<RawSecret>,
    // Tencent environment variable names.
    pub secret_id_env: Option<RawSecret>,
    pub secret_key_env: Option<RawSecret>,
    pub session_token_env: Option<RawSecret>,
    // source = "static".
    pub access_key_id: Option<RawSecret>,
    pub access_key_secret: Option<RawSecret>,
    pub security_token: Option<RawSecret>,
    pub secret_id: Option<RawSecret>,
    pub secret_key: Option<RawSecret>,
    pub session_token: Option<RawSecret>,
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
    // source = "ram_role_arn" (Alibaba) / "role_arn" (Tencent); role_session_name and
    // sts_endpoint above apply too.
    pub base_credentials: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub policy: Option<String>,
    pub session_duration: Option<String>,
    // source = "credentials_uri" (Alibaba).
    pub credentials_uri: Option<String>,
}

/// One `[[tickets]]` section. Its API keys are those every registered API declares
/// ([`api_keys`]): each is read in its declared shape, so a value of the wrong type or an
/// unknown key is found as the file is read, with its place, as for the other raw structs.
#[derive(Debug, Default)]
pub(crate) struct RawTicket {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub credentials: Option<String>,
    /// The keys of the APIs (`endpoint`, `region`, ...), checked by the ticket kind's section.
    pub api: RawKeys,
    // Consumers.
    pub allow_uids: Option<Vec<u32>>,
    pub allow_gids: Option<Vec<u32>>,
    pub required: Option<bool>,
    pub on_change: Option<RawHook>,
    pub sinks: Vec<RawSink>,
    /// `"cluster"` or `"node"` ([`Scope`](crate::config::cluster::Scope)).
    pub scope: Option<String>,
}

/// The keys a `[[tickets]]` section holds besides the APIs' own, before and after them.
const TICKET_KEYS_BEFORE: [&str; 3] = ["name", "kind", "credentials"];
const TICKET_KEYS_AFTER: [&str; 6] = ["allow_uids", "allow_gids", "required", "on_change", "sinks", "scope"];

/// Every key a `[[tickets]]` section may hold, in the order the unknown-key suggestions weigh them.
fn ticket_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let apis = api_keys().iter().map(|k| k.name);
        TICKET_KEYS_BEFORE.into_iter().chain(apis).chain(TICKET_KEYS_AFTER).collect()
    })
}

impl<'de> Deserialize<'de> for RawTicket {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ticket;
        impl<'de> de::Visitor<'de> for Ticket {
            type Value = RawTicket;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // serde's derive says so: the file's messages call it "a table".
                f.write_str("struct RawTicket")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawTicket, A::Error> {
                let mut t = RawTicket::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => t.name = map.next_value()?,
                        "kind" => t.kind = map.next_value()?,
                        "credentials" => t.credentials = map.next_value()?,
                        "allow_uids" => t.allow_uids = map.next_value()?,
                        "allow_gids" => t.allow_gids = map.next_value()?,
                        "required" => t.required = map.next_value()?,
                        "on_change" => t.on_change = map.next_value()?,
                        "sinks" => t.sinks = map.next_value()?,
                        "scope" => t.scope = map.next_value()?,
                        other => match api_keys().iter().find(|k| k.name == other) {
                            Some(k) => {
                                let value = match k.shape {
                                    Shape::Text | Shape::Duration => RawValue::Text(map.next_value()?),
                                    Shape::Table => RawValue::Table(map.next_value()?),
                                };
                                t.api.insert(k.name, value);
                            }
                            // Reported as unknown (`serde_ignored` sees it skipped).
                            None => {
                                map.next_value::<de::IgnoredAny>()?;
                            }
                        },
                    }
                }
                Ok(t)
            }
        }
        deserializer.deserialize_struct("RawTicket", ticket_keys(), Ticket)
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawHook {
    pub exec: Option<Vec<String>>,
    pub signal: Option<String>,
    pub pid_file: Option<String>,
    pub timeout: Option<String>,
    pub debounce: Option<String>,
    pub env: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawSink {
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
    // format = "template".
    pub template: Option<String>,
    pub template_text: Option<String>,
    pub template_env: Option<Vec<String>>,
}

/// The text of a config key that may hold a secret. A value of the wrong type is refused without
/// being shown (serde's own message would quote it: ``invalid type: integer `…` ``), `Debug`
/// prints `<redacted>`, and the text is wiped when dropped.
#[derive(Default)]
pub(crate) struct RawSecret(Zeroizing<String>);

impl std::ops::Deref for RawSecret {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        /// What was found instead of a string, by kind only.
        fn wrong<E: de::Error>(kind: &'static str) -> Result<RawSecret, E> {
            Err(E::invalid_type(de::Unexpected::Other(kind), &Text))
        }
        impl<'de> de::Visitor<'de> for Text {
            type Value = RawSecret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string in quotes (the value is not shown)")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(value.to_string())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<RawSecret, E> {
                Ok(RawSecret(Zeroizing::new(value)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawSecret, E> {
                wrong("a boolean")
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawSecret, E> {
                wrong("an integer")
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawSecret, E> {
                wrong("an integer")
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<RawSecret, E> {
                wrong("an integer")
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<RawSecret, E> {
                wrong("an integer")
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawSecret, E> {
                wrong("a number")
            }
            fn visit_char<E: de::Error>(self, _: char) -> Result<RawSecret, E> {
                wrong("a character")
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<RawSecret, E> {
                wrong("bytes")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<RawSecret, A::Error> {
                wrong("an array")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<RawSecret, A::Error> {
                wrong("a table or a date")
            }
        }
        deserializer.deserialize_str(Text)
    }
}
