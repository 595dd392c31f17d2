//! Checking a ticket's API keys: the trait each API's `section.rs` implements ([`Validate`]), and
//! the dispatch to the ticket kind's, generated from the registry (`apis/kinds.rs`).

use crate::apis::kinds::{ApiSpec, Kind, with_apis};
use crate::apis::section::{RawKeys, Section};
use crate::config::check::Checker;
use crate::config::locate::KeyPath;

/// What a section's checks may need of the rest of its ticket.
pub(crate) struct TicketContext {
    /// Whether one of the ticket's file sinks has `format = "url"`.
    pub(crate) url_sink: bool,
}

/// An API's checks of its keys ([`Section::KEYS`]), implemented by its spec type in
/// `apis/<kind>/section.rs`: every problem reported at its key through `c`, the spec only when
/// there was none.
pub(crate) trait Validate: Section + Sized {
    fn validate(c: &mut Checker<'_>, keys: &RawKeys, at: &KeyPath, ticket: &TicketContext) -> Option<Self>;
}

macro_rules! dispatch {
    ($($variant:ident $kind:literal $spec:ty,)+) => {
        /// Check the `keys` of a `kind` ticket at `at` with that API's [`Validate`].
        pub(crate) fn validate(
            kind: Kind,
            c: &mut Checker<'_>,
            keys: &RawKeys,
            at: &KeyPath,
            ticket: &TicketContext,
        ) -> Option<ApiSpec> {
            match kind {
                $(Kind::$variant => <$spec as Validate>::validate(c, keys, at, ticket).map(ApiSpec::$variant),)+
            }
        }
    };
}

with_apis!(dispatch);
