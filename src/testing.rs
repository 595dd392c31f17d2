//! Test fixtures for modules at every layer (below the scheduler too): a ticket to test with.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use crate::config::{ApiSpec, CredentialSpec, Endpoint, SlsSpec, SourceSpec, TicketSettings, TicketSpec, Vendor};
use crate::credentials::{CredentialStore, Credentials};
use crate::secret::Secret;
use crate::signing::sls::V1Mac;
use crate::token::{Current, ThinStr, TokenPart};

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

/// A credential store with one Alibaba set, "prod", of static keys (STS keys expiring at
/// `expires_at` when given).
pub(crate) fn credential_store(expires_at: Option<SystemTime>) -> CredentialStore {
    let mut config = crate::config::Config {
        source: None,
        state_dir: "/nonexistent".into(),
        socket: None,
        metrics_listen: None,
        metrics_ticket_series: crate::config::DEFAULT_METRICS_TICKET_SERIES,
        rate_limits: Default::default(),
        core_dumps: false,
        credentials: Default::default(),
        tickets: vec![],
        cluster: None,
    };
    let creds = Credentials {
        access_key_id: Secret::new("id"),
        access_key_secret: Secret::new("secret"),
        security_token: expires_at.map(|_| Secret::new("sts")),
        expires_at,
    };
    config.credentials.insert(
        "prod".into(),
        CredentialSpec { name: "prod".into(), vendor: Vendor::Alibaba, source: SourceSpec::InMemory(creds.into()) },
    );
    CredentialStore::resolve_all(&config, &HashMap::<String, String>::new()).unwrap()
}

/// A token held without a ticket (DSW, TCR): `value` for `user` (a TCR login), issued at `issued`,
/// living `life`, at `generation`, refreshed when issued, no monotonic expiry.
pub(crate) fn current(value: &str, user: Option<&str>, issued: SystemTime, life: Duration, generation: u64) -> Current {
    Current {
        ticket: None,
        token: TokenPart {
            value: Secret::new(value),
            username: user.map(ThinStr::from),
            token_id: None,
            issued_at: issued.into(),
            expires_at: (issued + life).into(),
        },
        generation,
        refreshed_at: issued.into(),
        expires_mono: None,
    }
}
