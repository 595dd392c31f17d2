//! What an `example` ticket is, once its config section is validated: `ExampleSpec`.

use std::time::Duration;

use crate::apis::section::{Key, Section};
use crate::config::credential::Vendor;
use crate::http::Endpoint;

/// Optional. Default `token_lifetime` of an `example` ticket.
pub(crate) const DEFAULT_EXAMPLE_TOKEN_LIFETIME: Duration = Duration::from_secs(3_600);

/// An `example` ticket: one local call per token.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleSpec {
    /// Where its calls would go: the rate limiter's key (no request is sent).
    pub endpoint: Endpoint,
    /// Written into every token, so a test sees which ticket's spec made it.
    pub greeting: String,
    pub token_lifetime: Duration,
}

/// The `kind = "example"` section: its keys and Alibaba credentials.
impl Section for ExampleSpec {
    const KEYS: &'static [Key] = &[Key::text("endpoint"), Key::text("greeting"), Key::duration("token_lifetime")];
    const VENDOR: Vendor = Vendor::Alibaba;
}
