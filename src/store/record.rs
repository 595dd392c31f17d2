//! What the store keeps: the state's records (each ticket's holding and what it was obtained
//! for, the pending revocations), their JSON shape (`state.json`'s), and a snapshot streamed
//! from the scheduler's own entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{Endpoint, TcrTokenType, TicketSpec};
use crate::token::Holding;

/// The state's format version.
pub const VERSION: u32 = 1;

/// The whole state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub version: u32,
    pub tickets: BTreeMap<String, StoredTicket>,
    /// Superseded TCR long-term tokens still to revoke (absent when none, and in a state file
    /// written before they were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<PendingRevocation>,
    /// TCR long-term tokens minted but not yet in every sink (`after_generation`: the generation
    /// that carries each). The state records only what the sinks hold, so without this a crash
    /// before the first write would lose the new token's `TokenId` and leave it active for good;
    /// a restart revokes one that no saved ticket holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<PendingRevocation>,
}

impl StateFile {
    /// A state with nothing in it.
    pub fn empty() -> StateFile {
        StateFile { version: VERSION, ..StateFile::default() }
    }
}

/// A superseded TCR long-term token to revoke with `DeleteInstanceToken`, kept in the state file
/// until the API says it is gone, so a restart does not forget it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRevocation {
    /// The ticket it was minted for.
    pub ticket: String,
    /// The API's `TokenId`.
    pub token_id: String,
    /// Where and with which keys (a credential set's name) to delete it: the ticket's settings
    /// when it was superseded, so it is revoked even after the ticket left the config.
    pub endpoint: String,
    pub region: String,
    pub registry_id: String,
    pub credentials: String,
    /// Revoked only once every sink of the ticket holds this generation (the token that replaced
    /// it) and the ticket's `on_change` hook has run since; `None`: due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_generation: Option<u64>,
    /// When it was superseded.
    pub since: crate::clock::Stamp,
}

/// One ticket's saved holding, with what it was obtained for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTicket {
    pub kind: String,
    /// What the holding is good for (kind and API target); a config change that alters it makes
    /// the saved holding unusable.
    pub identity: String,
    #[serde(flatten)]
    pub holding: Holding,
}

/// One ticket's record as it is written: [`StoredTicket`]'s form, borrowed from the scheduler's own
/// entries, so that saving 100,000 tickets copies none of them.
#[derive(Debug, Serialize)]
pub struct StoredTicketRef<'a> {
    pub kind: &'static str,
    pub identity: String,
    #[serde(flatten)]
    pub holding: std::borrow::Cow<'a, Holding>,
}

impl StoredTicketRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> StoredTicket {
        StoredTicket { kind: self.kind.to_string(), identity: self.identity.clone(), holding: (*self.holding).clone() }
    }
}

/// Calls its argument once per ticket, with its name and record, in name order.
pub type Visit<'a> = &'a dyn Fn(&mut dyn FnMut(&str, &StoredTicketRef<'_>));

/// A whole state to save, streamed from the scheduler's entries as it is serialized: the
/// tickets (see [`Visit`]), the pending revocations and the unconfirmed long-term tokens.
pub struct Snapshot<'a> {
    pub tickets: Visit<'a>,
    pub revocations: &'a [PendingRevocation],
    pub unconfirmed: &'a [PendingRevocation],
}

impl Serialize for Snapshot<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Tickets<'f>(Visit<'f>);
        impl Serialize for Tickets<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                let mut failed = None;
                (self.0)(&mut |name, record| {
                    if failed.is_none()
                        && let Err(e) = map.serialize_entry(name, record)
                    {
                        failed = Some(e);
                    }
                });
                match failed {
                    Some(e) => Err(e),
                    None => map.end(),
                }
            }
        }
        let mut state = serializer.serialize_struct("StateFile", 4)?;
        state.serialize_field("version", &VERSION)?;
        state.serialize_field("tickets", &Tickets(self.tickets))?;
        if self.revocations.is_empty() {
            state.skip_field("revocations")?;
        } else {
            state.serialize_field("revocations", self.revocations)?;
        }
        if self.unconfirmed.is_empty() {
            state.skip_field("unconfirmed")?;
        } else {
            state.serialize_field("unconfirmed", self.unconfirmed)?;
        }
        state.end()
    }
}

/// What makes a saved holding reusable for `spec`: its API's [`crate::apis::Api::identity`].
pub fn identity(spec: &TicketSpec) -> String {
    spec.api.identity()
}

/// [`identity`] of a `tcr` ticket, from its parts (the client view of the config has no
/// [`TicketSpec`]).
pub fn tcr_identity(endpoint: &Endpoint, registry_id: &str, token_type: TcrTokenType) -> String {
    crate::apis::tcr::spec::identity(endpoint, registry_id, token_type)
}
