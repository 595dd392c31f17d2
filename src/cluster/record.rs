//! One holding as the fleet stores it in etcd ([`FleetRecord`]): the ticket's name, the node that
//! wrote it, and state.json's record of it (kind, identity, ticket, token, expiries, generation),
//! sealed with `encryption_key_file` or, without one, plain JSON.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::cluster::seal::{OpenError, Sealer, is_sealed};
use crate::store::record::StoredTicket;

/// A holding in etcd. `Debug` shows no secret (the token and ticket are [`crate::secret::Secret`]s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRecord {
    pub ticket: String,
    /// The node that wrote it (the leader then, or a node's fallback renewal).
    pub writer: String,
    #[serde(flatten)]
    pub stored: StoredTicket,
}

/// Why a value under a holding key was not taken. Names the key, never a byte of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("etcd key {key} is sealed, and this node has no encryption_key_file: every node needs the same key")]
    SealedWithoutKey { key: String },
    #[error(
        "etcd key {key} holds plain text, but this node seals holdings (encryption_key_file): not taken, since \
         anyone who can write to etcd could plant a token so"
    )]
    PlainWithKey { key: String },
    #[error("etcd key {key} {source}")]
    Open { key: String, source: OpenError },
    #[error("etcd key {key} does not hold a ticketd holding ({what} at line {line}, column {column})")]
    Format { key: String, what: &'static str, line: usize, column: usize },
    #[error("etcd key {key} holds ticket `{found}`'s holding, not the one its key names")]
    Misplaced { key: String, found: String },
}

impl FleetRecord {
    /// The value to store under `key`: sealed with `sealer` (the key as the AEAD's associated
    /// data, so a value copied under another key does not open), or plain JSON.
    pub fn encode(&self, key: &str, sealer: Option<&Sealer>) -> Zeroizing<Vec<u8>> {
        let plain = Zeroizing::new(serde_json::to_vec(self).expect("a record serializes"));
        match sealer {
            Some(sealer) => Zeroizing::new(sealer.seal(key.as_bytes(), &plain)),
            None => plain,
        }
    }

    /// The record stored under `key` (ticket `name`'s holding, by the key), opened with `sealer`.
    pub fn decode(key: &str, name: &str, value: &[u8], sealer: Option<&Sealer>) -> Result<FleetRecord, RecordError> {
        let key_owned = || key.to_string();
        let plain: Zeroizing<Vec<u8>> = match (sealer, is_sealed(value)) {
            (Some(sealer), true) => {
                sealer.open(key.as_bytes(), value).map_err(|source| RecordError::Open { key: key_owned(), source })?
            }
            (Some(_), false) => return Err(RecordError::PlainWithKey { key: key_owned() }),
            (None, true) => return Err(RecordError::SealedWithoutKey { key: key_owned() }),
            (None, false) => Zeroizing::new(value.to_vec()),
        };
        // serde_json's messages may quote the value (a token): only its category and place.
        let record: FleetRecord = serde_json::from_slice(&plain).map_err(|e| RecordError::Format {
            key: key_owned(),
            what: match e.classify() {
                serde_json::error::Category::Io => "unreadable",
                serde_json::error::Category::Syntax => "not JSON",
                serde_json::error::Category::Data => "a JSON value of another shape",
                serde_json::error::Category::Eof => "JSON cut short",
            },
            line: e.line(),
            column: e.column(),
        })?;
        if record.ticket != name {
            return Err(RecordError::Misplaced { key: key_owned(), found: record.ticket });
        }
        Ok(record)
    }

    pub fn generation(&self) -> u64 {
        self.stored.holding.generation()
    }
}

/// Whether a watched holding of `incoming` generation may replace what a node holds at `held`:
/// generations never go back. An equal one may (a new SLS ticket waiting for its first token
/// changes the holding, not the generation); etcd's revision order, which the watch keeps, says
/// which of two equal ones is later.
pub fn supersedes(incoming: u64, held: u64) -> bool {
    incoming >= held
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
