//! What the store keeps: the state's records, in `state.json`'s JSON shape.
//!
//! Each ticket's holding and what it was obtained for, the pending revocations, and a snapshot
//! streamed from the scheduler's own entries.

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

/// Reads a [`StateFile`] handing each ticket's record to its function as soon as it is read, never
/// collecting them (the state it answers has no tickets): the same fields, the same refusals
/// (unknown or repeated fields, missing ones) as [`StateFile`]'s own `Deserialize`.
pub(crate) struct Each<'f>(pub &'f mut dyn FnMut(String, StoredTicket));

const FIELDS: &[&str] = &["version", "tickets", "revocations", "unconfirmed"];

impl<'de> serde::de::DeserializeSeed<'de> for Each<'_> {
    type Value = StateFile;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<StateFile, D::Error> {
        deserializer.deserialize_struct("StateFile", FIELDS, self)
    }
}

impl<'de> serde::de::Visitor<'de> for Each<'_> {
    type Value = StateFile;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct StateFile")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<StateFile, A::Error> {
        use serde::de::Error;
        let (mut version, mut tickets, mut revocations, mut unconfirmed) = (None, false, None, None);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "version" if version.is_none() => version = Some(map.next_value()?),
                "tickets" if !tickets => {
                    map.next_value_seed(Tickets(&mut *self.0))?;
                    tickets = true;
                }
                "revocations" if revocations.is_none() => revocations = Some(map.next_value()?),
                "unconfirmed" if unconfirmed.is_none() => unconfirmed = Some(map.next_value()?),
                "version" | "tickets" | "revocations" | "unconfirmed" => {
                    return Err(A::Error::custom(format_args!("duplicate field `{key}`")));
                }
                other => return Err(A::Error::unknown_field(other, FIELDS)),
            }
        }
        if !tickets {
            return Err(A::Error::missing_field("tickets"));
        }
        Ok(StateFile {
            version: version.ok_or_else(|| A::Error::missing_field("version"))?,
            tickets: BTreeMap::new(),
            revocations: revocations.unwrap_or_default(),
            unconfirmed: unconfirmed.unwrap_or_default(),
        })
    }
}

/// The `tickets` object, each entry handed over as it is read.
struct Tickets<'a, 'f>(&'a mut (dyn FnMut(String, StoredTicket) + 'f));

impl<'de> serde::de::DeserializeSeed<'de> for Tickets<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Tickets<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of tickets")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some((name, ticket)) = map.next_entry::<String, StoredTicket>()? {
            (self.0)(name, ticket);
        }
        Ok(())
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
