//! The keys of a `kind = "example"` ticket, checked with the config problem toolkit.

use crate::apis::example::spec::{DEFAULT_EXAMPLE_TOKEN_LIFETIME, ExampleSpec};
use crate::apis::section::RawKeys;
use crate::apis::validate::{TicketContext, Validate};
use crate::config::check::{Checker, endpoint, identifier};
use crate::config::defaults::MIN_LIFETIME;
use crate::config::locate::KeyPath;

/// The longest token an `example` ticket asks for.
const MAX_EXAMPLE_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(86_400);

impl Validate for ExampleSpec {
    fn validate(c: &mut Checker<'_>, keys: &RawKeys, at: &KeyPath, _ticket: &TicketContext) -> Option<ExampleSpec> {
        let endpoint = c.required(keys.text("endpoint"), &at.key("endpoint")).and_then(|v| {
            let at = at.key("endpoint");
            endpoint(c, v, &at)
        });
        let greeting = c.required(keys.text("greeting"), &at.key("greeting")).and_then(|v| {
            let at = at.key("greeting");
            identifier(c, v, &at)
        });
        let token_lifetime = c.duration(
            keys.text("token_lifetime"),
            &at.key("token_lifetime"),
            DEFAULT_EXAMPLE_TOKEN_LIFETIME,
            MIN_LIFETIME,
            MAX_EXAMPLE_TOKEN_LIFETIME,
            "example",
        );
        Some(ExampleSpec { endpoint: endpoint?, greeting: greeting?, token_lifetime: token_lifetime? })
    }
}
