//! The keys of a `kind = "tcr"` ticket (the Tencent TCR registry token API).

use crate::apis::section::RawKeys;
use crate::apis::tcr::spec::{DEFAULT_TCR_ENDPOINT, TcrSpec, TcrTokenType};
use crate::apis::validate::{TicketContext, Validate};
use crate::config::check::{Checker, endpoint, identifier, region};
use crate::config::locate::KeyPath;

impl Validate for TcrSpec {
    fn validate(c: &mut Checker<'_>, keys: &RawKeys, at: &KeyPath, _ticket: &TicketContext) -> Option<TcrSpec> {
        let region = c.required(keys.text("region"), &at.key("region")).and_then(|r| {
            let at = at.key("region");
            region(c, r, &at)
        });
        let registry_id = c.required(keys.text("registry_id"), &at.key("registry_id")).and_then(|v| {
            let at = at.key("registry_id");
            identifier(c, v, &at)
        });
        let endpoint =
            endpoint(c, keys.text("endpoint").as_deref().unwrap_or(DEFAULT_TCR_ENDPOINT), &at.key("endpoint"));
        let token_type = match keys.text("token_type").as_deref() {
            None | Some("temp") => Some(TcrTokenType::Temp),
            Some("longterm") => Some(TcrTokenType::LongTerm),
            Some(other) => {
                c.report(&at.key("token_type"), format!("unknown token_type `{other}` (expected temp or longterm)"));
                None
            }
        };
        if let Some(d) = keys.text("description")
            && (d.len() > 256 || d.chars().any(char::is_control))
        {
            c.report(&at.key("description"), "must be at most 256 characters, without control characters");
        }
        let registry = match keys.text("registry").as_deref() {
            None => Some(None),
            Some(r) if registry_host(r) => Some(Some(r.to_string())),
            Some(r) => {
                c.report(
                    &at.key("registry"),
                    format!(
                        "`{r}` is not a registry host (e.g. myreg.tencentcloudcr.com or host:port, no scheme or path)"
                    ),
                );
                None
            }
        };
        Some(TcrSpec {
            endpoint: endpoint?,
            region: region?,
            registry_id: registry_id?,
            token_type: token_type?,
            token_type_written: keys.text("token_type").is_some(),
            description: keys.text("description").clone(),
            registry: registry?,
        })
    }
}

fn registry_host(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 253
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
        && !r.starts_with(['.', '-', ':'])
}
