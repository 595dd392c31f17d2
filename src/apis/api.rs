//! The contract every API implements ([`Api`]): what the scheduler, the store or the rate limiter
//! need to know of it, so that none of them names an API.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::operation::Operation;
use crate::apis::section::Section;
use crate::clock::Clock;
use crate::credentials::Credentials;
use crate::http::Endpoint;
use crate::token::Issued;

/// How a ticket's lifecycle works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// One call gives a token (DSW, TCR): "mint" again when it is due.
    SingleCall,
    /// A ticket outlives its tokens (SLS): refresh tokens from it, and mint a new ticket this long
    /// before the current ticket's ceiling.
    TicketAndToken { renew_before: Duration },
    /// One call gives a token meant to be kept for its whole (multi-year) life, such as TCR
    /// `longterm` credentials: the 2/3 rule would mint a needless new one after years of use and
    /// leave the old one live. It is re-minted only when less than `renew_before`, or
    /// a tenth of its life if shorter, remains (`scheduler::timing::longterm_renew_point`).
    LongTerm { renew_before: Duration },
}

/// What a call makes, for a fleet's leader election to gate it (`cluster::gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Makes something new the fleet would then share: an SLS CreateTicket, a TCR long-term
    /// CreateInstanceToken. Only a proven leader makes one: two would fork the fleet.
    Mint,
    /// Renews what the fleet already shares: SLS RefreshToken, DSW tokens, TCR temporary tokens.
    Renew,
}

/// What an API call needs besides its spec: the shared HTTP client and the wall clock (signing dates).
#[derive(Clone)]
pub struct CallContext {
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
}

/// One cloud API, implemented by its spec type (`apis/<kind>/spec.rs`, the validated config
/// section) in `apis/<kind>/api.rs`, and registered by one line in `apis/kinds.rs`.
///
/// Static dispatch: `ApiSpec` is an enum generated from the registry, and `apis::registry`
/// generates its `match`es from the same list, so a call costs no vtable, specs stay `Clone` and
/// `PartialEq` (the reload diff compares them), and the scheduler, store and rate limiter name
/// no API.
pub trait Api: Section + Clone + Send + Sync + 'static {
    /// Whether a web page embeds this API's tickets and asks ticketd for `{accessToken, ticket}`
    /// at `/v1/<kind>/{name}/access-token` (SLS's console iframe).
    const EMBEDS: bool = false;

    /// How the scheduler keeps this ticket fresh: ticket/token lifetimes and renew rules.
    fn lifecycle(&self) -> Lifecycle;

    /// Whether `op` makes something new the fleet would share ([`CallKind::Mint`]) or renews
    /// what it shares ([`CallKind::Renew`]). Every API says so itself: no default.
    fn call_kind(&self, op: &Operation) -> CallKind;

    /// What makes a saved holding reusable for this spec (stored in `state.json` beside the
    /// holding): the settings that change which credential the API issues.
    fn identity(&self) -> String;

    /// The endpoint this ticket's calls go to.
    fn endpoint(&self) -> &Endpoint;

    /// The rate limiter's key: calls with the same key share the vendor's per-second budget. By
    /// default the endpoint (the vendors' limits are per endpoint).
    fn rate_limit_key(&self) -> String {
        self.endpoint().to_string()
    }

    /// Make one call (`apis::registry` boxes the future, once for every API).
    fn call<'a>(
        &'a self,
        context: &'a CallContext,
        op: Operation,
        credentials: &'a Credentials,
    ) -> impl Future<Output = Result<Issued, ProviderError>> + Send + 'a;

    /// The link a consumer opens with the current `ticket` (file format and JSON field `url`),
    /// for an API whose tickets have one (SLS: the console share URL). None by default.
    fn share_url(&self, ticket: &str) -> Option<Zeroizing<String>> {
        let _ = ticket;
        None
    }

    /// What an error answer (HTTP `status`, the API's error `code`) means for ticketd.
    fn classify(status: u16, code: &str) -> ApiErrorKind;
}
