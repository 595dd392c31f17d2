//! Test fixtures for modules at every layer (below the scheduler too): a ticket to test with.

use std::time::Duration;

use crate::config::{ApiSpec, Endpoint, SlsSpec, TicketSettings, TicketSpec};
use crate::signing::sls::V1Mac;

/// An SLS ticket `name` with tickets living `ticket` and tokens `token`, credentials "prod", no sinks.
pub(crate) fn sls_ticket(name: &str, ticket: Duration, token: Duration) -> TicketSpec {
    TicketSpec::new(
        name,
        TicketSettings {
            credentials: "prod".into(),
            api: ApiSpec::Sls(SlsSpec {
                endpoint: Endpoint { base: url::Url::parse("https://cn-shanghai.log.aliyuncs.com").unwrap() },
                ticket_lifetime: ticket,
                token_lifetime: token,
                ticket_renew_before: SlsSpec::default_renew_before(ticket, token),
                signature: V1Mac::HmacSha256,
                console_url: None,
                console_params: vec![],
            }),
            sinks: vec![],
            consumers: Default::default(),
            scope: Default::default(),
        },
    )
}
