//! What ticketd holds for each ticket: the ticket (SLS), the current token, their expiries.
//!
//! A [`Holding`] is what consumers see (`current`), plus a freshly minted ticket still waiting for
//! its first token (`pending`). Consumers only ever get a ticket together with a token minted
//! from it, so the SLS embed answer `{accessToken, ticket}` is always a matching pair.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock::{Mono, Now, Stamp};
use crate::secret::Secret;

/// A long-lived ticket (SLS `CreateTicket`), from which tokens are refreshed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketPart {
    pub value: Secret,
    pub issued_at: Stamp,
    pub expires_at: Stamp,
}

/// A short-lived token: an SLS access token, a DSW token, or TCR registry credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenPart {
    pub value: Secret,
    /// A user name that goes with the token (TCR registry login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<ThinStr>,
    /// The vendor's id for the token, to revoke it by (TCR long-term tokens: `TokenId`). Not a
    /// secret. Absent in a state file written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<ThinStr>,
    /// When the request that obtained it was sent: lifetimes count from here, conservatively.
    pub issued_at: Stamp,
    pub expires_at: Stamp,
}

/// Text behind a single pointer: 8 bytes where a `Box<str>` takes 16, for text most records
/// never hold (a TCR user name, the last error). At 100,000 tickets each such field costs 0.8 MB
/// less. Reads as a `str`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ThinStr(Box<Box<str>>);

impl std::ops::Deref for ThinStr {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ThinStr {
    fn from(text: &str) -> ThinStr {
        ThinStr(Box::new(text.into()))
    }
}

impl From<String> for ThinStr {
    fn from(text: String) -> ThinStr {
        ThinStr(Box::new(text.into_boxed_str()))
    }
}

impl std::fmt::Debug for ThinStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

/// What consumers see: a token, and the ticket it was refreshed from (SLS only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Current {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketPart>,
    pub token: TokenPart,
    /// Bumped each time the token changes; consumers use it to notice rotations.
    pub generation: u64,
    pub refreshed_at: Stamp,
    /// When the token expires by the monotonic clock: its stated life left when it was received,
    /// counted from then. A wall clock set back cannot keep it valid past this. `None` for a token
    /// loaded from the state file (a restart has no monotonic history: the wall clock alone
    /// decides).
    #[serde(skip)]
    pub expires_mono: Option<Mono>,
}

/// Everything held for one ticket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Holding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Current>,
    /// A new ticket, minted before the current one's ceiling, not yet holding a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<TicketPart>>,
}

impl Holding {
    /// The current token and its ticket, when the token has not expired (see [`Current::is_valid`]).
    pub fn valid(&self, now: Now) -> Option<&Current> {
        self.current.as_ref().filter(|c| c.is_valid(now))
    }

    /// The current token, when it has not expired (see [`Current::is_valid`]).
    pub fn valid_token(&self, now: Now) -> Option<&TokenPart> {
        self.valid(now).map(|c| &c.token)
    }

    pub fn generation(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.generation)
    }
}

impl Current {
    /// When the token expires, on the wall clock as it reads at `now`: its stated expiry, or
    /// earlier when the monotonic time since it was received says so (the wall clock was set
    /// back). Fails closed on either clock.
    pub fn expiry(&self, now: Now) -> SystemTime {
        let stated = self.token.expires_at.time();
        self.expires_mono.map_or(stated, |m| stated.min(now.wall_at(m)))
    }

    /// Whether the token is still valid at `now`: neither the wall clock nor the monotonic time
    /// since it was received says it has expired. Every reader that hands a token out or reports
    /// it as fresh (socket API, readiness, `run --once`, status lines, the scheduler) asks here.
    pub fn is_valid(&self, now: Now) -> bool {
        now.wall < self.token.expires_at && self.expires_mono.is_none_or(|m| now.mono < m)
    }
}

/// What one successful API call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Issued {
    /// A new ticket (SLS CreateTicket); a token must still be refreshed from it.
    Ticket(TicketPart),
    /// A new token (SLS RefreshToken, DSW GetToken, TCR CreateInstanceToken).
    Token(TokenPart),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn received(now: Now, life: Duration) -> Current {
        let token = TokenPart {
            value: Secret::new("t"),
            username: None,
            token_id: None,
            issued_at: now.wall.into(),
            expires_at: (now.wall + life).into(),
        };
        Current {
            ticket: None,
            token,
            generation: 1,
            refreshed_at: now.wall.into(),
            expires_mono: Some(now.mono_at(now.wall + life)),
        }
    }

    #[test]
    fn a_token_is_expired_as_soon_as_either_clock_says_so() {
        let start = Now { wall: crate::clock::from_unix_seconds(1_700_000_000), mono: Mono::from_nanos(10) };
        let minute = Duration::from_secs(60);
        let current = received(start, minute);
        let later = |wall: Duration, mono: Duration| Now { wall: start.wall + wall, mono: start.mono + mono };
        assert!(current.is_valid(later(Duration::from_secs(59), Duration::from_secs(59))));
        assert!(!current.is_valid(later(minute, minute)));
        // 60 s later the wall clock reads 1 s later (set back 59 s): the monotonic time since
        // receipt still ends it on time.
        let behind = Now { wall: start.wall + Duration::from_secs(1), mono: start.mono + minute };
        assert!(!current.is_valid(behind), "a clock set back keeps no token alive");
        assert_eq!(current.expiry(behind), behind.wall, "its expiry, read on the clock as it is now: now");
        // The wall clock stepped 2 h ahead: expired by the wall clock, though little time passed.
        let ahead = later(Duration::from_secs(7200), Duration::from_secs(1));
        assert!(!current.is_valid(ahead));
        assert_eq!(current.expiry(ahead), start.wall + minute);
        // Loaded from the state file: no monotonic history, the wall clock alone decides.
        let loaded = Current { expires_mono: None, ..current };
        assert!(loaded.is_valid(behind));
        assert!(!loaded.is_valid(ahead));
        let holding = Holding { current: Some(loaded), pending: None };
        assert!(holding.valid_token(behind).is_some() && holding.valid(ahead).is_none());
    }

    #[test]
    fn a_thin_str_is_one_pointer_and_reads_and_writes_as_a_plain_string() {
        assert_eq!(size_of::<Option<ThinStr>>(), 8);
        let name = ThinStr::from("100012345678");
        assert_eq!(&*name, "100012345678");
        assert_eq!(format!("{name:?}"), "\"100012345678\"");
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, "\"100012345678\"");
        assert_eq!(serde_json::from_str::<ThinStr>(&json).unwrap(), ThinStr::from(String::from("100012345678")));
    }
}
