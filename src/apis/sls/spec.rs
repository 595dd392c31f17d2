//! What an `sls` ticket is, once its config section is validated: `SlsSpec`, with the API's limits.

use std::time::Duration;

use crate::apis::section::{Key, Section};
use crate::config::credential::Vendor;
use crate::http::Endpoint;
use crate::signing::sls::V1Mac;

/// Optional. Default SLS `expirationTime`: the vendor's ceiling, so the share URL changes monthly.
pub const DEFAULT_SLS_TICKET_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// The longest SLS ticket (`expirationTime` max 2592000 s).
pub const MAX_SLS_TICKET_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// Optional. Default SLS `accessTokenExpirationTime`: the vendor's maximum, or the ticket's
/// lifetime when shorter ([`SlsSpec::default_token_lifetime`]).
pub const DEFAULT_SLS_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// The longest SLS access token (`accessTokenExpirationTime` max 86400 s).
pub const MAX_SLS_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// The regions whose SLS endpoint serves `CreateTicket` and `RefreshToken` (seeds 000 and 001:
/// China (Shanghai) and Singapore); a ticket then works for projects in every region.
pub const SLS_TICKET_REGIONS: [&str; 2] = ["cn-shanghai", "ap-southeast-1"];
/// Their public hosts, as messages name them (`<region>-intranet.log.aliyuncs.com` works too).
pub const SLS_TICKET_HOSTS: [&str; 2] = ["cn-shanghai.log.aliyuncs.com", "ap-southeast-1.log.aliyuncs.com"];

/// An SLS share ticket: CreateTicket, then RefreshToken until the ceiling.
#[derive(Debug, Clone, PartialEq)]
pub struct SlsSpec {
    pub endpoint: Endpoint,
    pub ticket_lifetime: Duration,
    pub token_lifetime: Duration,
    /// How long before the ticket's ceiling a new ticket is minted.
    pub ticket_renew_before: Duration,
    pub signature: V1Mac,
    pub console_url: Option<String>,
    pub console_params: Vec<(String, String)>,
}

impl SlsSpec {
    /// Optional. Default `token_lifetime`: [`DEFAULT_SLS_TOKEN_LIFETIME`], or the ticket's lifetime
    /// when that is shorter (SLS caps a token at its ticket), so a short `ticket_lifetime` alone is
    /// a valid ticket.
    pub fn default_token_lifetime(ticket: Duration) -> Duration {
        DEFAULT_SLS_TOKEN_LIFETIME.min(ticket)
    }

    /// Optional. Default `ticket_renew_before`: one token lifetime, at most a third of the ticket's.
    pub fn default_renew_before(ticket: Duration, token: Duration) -> Duration {
        token.min(Self::max_renew_before(ticket))
    }

    /// The longest `ticket_renew_before`: a third of the ticket's lifetime. The scheduler re-mints
    /// up to 1/12 of `renew_before` earlier still (`timing::plan`'s spread), so each ticket is the
    /// current one for at least `ticket - 13/12 renew_before`; while that is longer than the
    /// `13/12 renew_before` the previous ticket still lives, at most two tickets (share URLs) are
    /// live at once. Past 6/13 of the ticket (so at one half) a third one would be; a third keeps a
    /// margin, and mirrors the token rule (replaced after 2/3 of its life, the last third kept for
    /// retries).
    pub fn max_renew_before(ticket: Duration) -> Duration {
        ticket / 3
    }
}

/// The `kind = "sls"` section: its keys, Alibaba credentials, a share URL (`format = "url"`).
impl Section for SlsSpec {
    const KEYS: &'static [Key] = &[
        Key::text("endpoint"),
        Key::duration("ticket_lifetime"),
        Key::duration("token_lifetime"),
        Key::duration("ticket_renew_before"),
        Key::text("signature_method"),
        Key::text("console_url"),
        Key::table("console_params"),
    ];
    const VENDOR: Vendor = Vendor::Alibaba;
    const URL_FORMAT: bool = true;
    const TICKET: bool = true;
}
