//! What a `tcr` ticket is, once its config section is validated: `TcrSpec` (its identity, the API's defaults).

use std::time::Duration;

use crate::apis::section::{Key, Section};
use crate::config::credential::Vendor;
use crate::http::Endpoint;

/// Optional. Default TCR API endpoint.
pub const DEFAULT_TCR_ENDPOINT: &str = "tcr.tencentcloudapi.com";

/// Tencent TCR instance credentials: one `CreateInstanceToken` call per token.
#[derive(Debug, Clone, PartialEq)]
pub struct TcrSpec {
    pub endpoint: Endpoint,
    /// `X-TC-Region`.
    pub region: String,
    pub registry_id: String,
    /// The kind of token asked for (`temp` when the config does not say).
    pub token_type: TcrTokenType,
    /// Whether the config sets `token_type`: `TokenType` is sent only then (the API's default is `temp`),
    /// as the SDK omits a field nobody set.
    pub token_type_written: bool,
    /// `Desc` (long-term tokens), sent only when set.
    pub description: Option<String>,
    /// The registry host the credentials log in to (docker outputs).
    pub registry: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcrTokenType {
    /// Valid one hour, refreshed like any token.
    Temp,
    /// Minted once and kept until close to its expiry.
    LongTerm,
}

impl TcrTokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TcrTokenType::Temp => "temp",
            TcrTokenType::LongTerm => "longterm",
        }
    }
}

/// A long-term token is re-minted only when less than this much of it remains (or a tenth of its
/// life, if shorter).
pub const LONGTERM_RENEW_BEFORE: Duration = Duration::from_secs(30 * 86_400);

/// The identity (`Api::identity`) of a `tcr` ticket, from its parts (the client view of the config has no
/// [`TcrSpec`]).
pub fn identity(endpoint: &Endpoint, registry_id: &str, token_type: TcrTokenType) -> String {
    format!("tcr endpoint={endpoint} registry_id={registry_id} token_type={}", token_type.as_str())
}

/// The `kind = "tcr"` section: its keys, Tencent credentials, a username with each token, and
/// docker-config sinks for its `registry`.
impl Section for TcrSpec {
    const KEYS: &'static [Key] = &[
        Key::text("region"),
        Key::text("registry_id"),
        Key::text("token_type"),
        Key::text("description"),
        Key::text("endpoint"),
        Key::text("registry"),
    ];
    const VENDOR: Vendor = Vendor::Tencent;
    const USERNAME: bool = true;
    const DOCKER_CONFIG: bool = true;
}
