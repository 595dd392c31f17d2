//! What ticketd holds for each ticket: the ticket (SLS), the current token, and their expiries.
//!
//! A [`Holding`] is what consumers see (`current`), plus a freshly minted ticket still waiting for
//! its first token (`pending`). Consumers only ever get a ticket together with a token minted
//! from it, so the SLS embed answer `{accessToken, ticket}` is always a matching pair.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::clock::Stamp;
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
    /// When the request that obtained it was sent: lifetimes count from here, conservatively.
    pub issued_at: Stamp,
    pub expires_at: Stamp,
}

impl TokenPart {
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        now < self.expires_at
    }
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
    /// The current token, when it has not expired.
    pub fn valid_token(&self, now: SystemTime) -> Option<&TokenPart> {
        self.current.as_ref().map(|c| &c.token).filter(|t| t.is_valid_at(now))
    }

    pub fn generation(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.generation)
    }

    /// Bytes of secrets held (for memory accounting).
    pub fn secret_bytes(&self) -> usize {
        let ticket = |t: Option<&TicketPart>| t.map_or(0, |t| t.value.len());
        self.current.as_ref().map_or(0, |c| ticket(c.ticket.as_ref()) + c.token.value.len())
            + ticket(self.pending.as_deref())
    }

    /// Move each secret held down into a lower free slot of the pool, if there is one (see
    /// [`Secret::settle`]). How many moved.
    pub(crate) fn settle_secrets(&mut self) -> usize {
        let current = self.current.as_mut().map_or(0, Current::settle_secrets);
        current + self.pending.as_mut().map_or(0, |t| usize::from(t.value.settle()))
    }
}

impl Current {
    /// Move the ticket and token down in the pool, when there is room lower (see
    /// [`Secret::settle`]). How many moved.
    pub(crate) fn settle_secrets(&mut self) -> usize {
        let ticket = self.ticket.as_mut().is_some_and(|t| t.value.settle());
        usize::from(ticket) + usize::from(self.token.value.settle())
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
