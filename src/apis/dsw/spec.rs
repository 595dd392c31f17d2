//! What a `dsw` ticket is, once its config section is validated: `DswSpec`, with the API's limits.

use std::time::Duration;

use crate::apis::section::{Key, Section};
use crate::config::credential::Vendor;
use crate::http::Endpoint;

/// Optional. Default DSW `ExpireTime`.
pub const DEFAULT_DSW_TOKEN_LIFETIME: Duration = Duration::from_secs(3_600);
/// The longest DSW token ticketd asks for (the API documents no maximum).
pub const MAX_DSW_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);

/// A PAI-DSW instance token: one `GetToken` call per token.
#[derive(Debug, Clone, PartialEq)]
pub struct DswSpec {
    pub endpoint: Endpoint,
    pub instance_id: String,
    /// `ExpireTime`; the token's expiry counts from when the request was sent.
    pub token_lifetime: Duration,
    /// `Type`, sent only when the config sets `token_type` (the API's default is `Access`).
    pub token_type: Option<DswTokenType>,
    /// `Audience`, sent only when set.
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DswTokenType {
    Access,
    View,
}

impl DswTokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            DswTokenType::Access => "Access",
            DswTokenType::View => "View",
        }
    }
}

/// The `kind = "dsw"` section: its keys and Alibaba credentials.
impl Section for DswSpec {
    const KEYS: &'static [Key] = &[
        Key::text("region"),
        Key::text("endpoint"),
        Key::text("network"),
        Key::text("instance_id"),
        Key::duration("token_lifetime"),
        Key::text("token_type"),
        Key::text("audience"),
    ];
    const VENDOR: Vendor = Vendor::Alibaba;
}
