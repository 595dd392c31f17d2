//! The keys of a `kind = "dsw"` ticket (the PAI-DSW instance token API).

use crate::apis::dsw::spec::{DEFAULT_DSW_TOKEN_LIFETIME, DswSpec, DswTokenType, MAX_DSW_TOKEN_LIFETIME};
use crate::apis::section::RawKeys;
use crate::apis::validate::{TicketContext, Validate};
use crate::config::check::{Checker, endpoint, identifier, region};
use crate::config::defaults::MIN_LIFETIME;
use crate::config::locate::KeyPath;

impl Validate for DswSpec {
    fn validate(c: &mut Checker<'_>, keys: &RawKeys, at: &KeyPath, _ticket: &TicketContext) -> Option<DswSpec> {
        let network = match keys.text("network").as_deref() {
            None | Some("public") => None,
            Some("vpc") => Some("vpc"),
            Some(other) => {
                c.report(&at.key("network"), format!("unknown network `{other}` (expected public or vpc)"));
                None
            }
        };
        let region = keys.text("region").as_deref().and_then(|r| region(c, r, &at.key("region")));
        let endpoint = match (keys.text("endpoint"), keys.text("region")) {
            (Some(text), _) => {
                if keys.text("network").is_some() {
                    c.report(&at.key("network"), "is not used when endpoint is set");
                }
                endpoint(c, text, &at.key("endpoint"))
            }
            (None, None) => {
                c.report(&at.key("region"), "is required (or set endpoint)");
                None
            }
            (None, Some(_)) => region.as_deref().and_then(|r| {
                let host = match network {
                    Some(n) => format!("pai-dsw-{n}.{r}.aliyuncs.com"),
                    None => format!("pai-dsw.{r}.aliyuncs.com"),
                };
                endpoint(c, &host, &at.key("region"))
            }),
        };
        let instance_id = c.required(keys.text("instance_id"), &at.key("instance_id")).and_then(|v| {
            let at = at.key("instance_id");
            identifier(c, v, &at)
        });
        let token_lifetime = c.duration(
            keys.text("token_lifetime"),
            &at.key("token_lifetime"),
            DEFAULT_DSW_TOKEN_LIFETIME,
            MIN_LIFETIME,
            MAX_DSW_TOKEN_LIFETIME,
            "DSW (ExpireTime)",
        );
        let token_type = match keys.text("token_type").as_deref() {
            None => Some(None),
            Some("Access") => Some(Some(DswTokenType::Access)),
            Some("View") => Some(Some(DswTokenType::View)),
            Some(other) => {
                c.report(&at.key("token_type"), format!("unknown token_type `{other}` (expected Access or View)"));
                None
            }
        };
        let audience = match keys.text("audience").as_deref() {
            None => Some(None),
            Some(a) => identifier(c, a, &at.key("audience")).map(Some),
        };
        Some(DswSpec {
            endpoint: endpoint?,
            instance_id: instance_id?,
            token_lifetime: token_lifetime?,
            token_type: token_type?,
            audience: audience?,
        })
    }
}
