//! The streams of a fleet session ([`super::EtcdFleet`]): the leader's name at each change, the
//! members' keys, the holdings' watch, each answer read with its errors named.

use etcd_client::{EventType, ObserveStream, WatchStream};

use super::{Change, FleetError, decode_kv};
use crate::cluster::keys::Keys;
use crate::cluster::seal::Sealer;
use std::sync::Arc;

/// A member key's node and last sync (`{"node":..,"last_sync":<unix s>}`; an unreadable value is
/// a member with no known sync).
pub(super) fn member(keys: &Keys, kv: &etcd_client::KeyValue) -> Option<MemberChange> {
    let name = keys.member_name(std::str::from_utf8(kv.key()).ok()?)?;
    let value = serde_json::from_slice::<serde_json::Value>(kv.value()).ok();
    let field = |key: &str| value.as_ref().and_then(|v| v.get(key));
    Some(MemberChange::Synced {
        name: name.to_string(),
        last_sync: field("last_sync").and_then(serde_json::Value::as_u64),
        applied: field("applied_revision").and_then(serde_json::Value::as_i64),
    })
}

/// The leader's name at each change ([`super::EtcdFleet::observe`]).
pub struct Leaders {
    pub(super) stream: ObserveStream,
    pub(super) endpoints: String,
}

impl Leaders {
    /// The next leader's node name.
    pub async fn next(&mut self) -> Result<String, FleetError> {
        let answer = self
            .stream
            .message()
            .await
            .map_err(|source| FleetError::Etcd { endpoints: self.endpoints.clone(), source })?
            .ok_or_else(|| FleetError::WatchEnded {
                endpoints: self.endpoints.clone(),
                prefix: "the election".into(),
            })?;
        Ok(answer.kv().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()).unwrap_or_default())
    }
}

/// A change among the members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Joined, or recorded a sync (unix seconds) of etcd's holdings up to revision `applied`.
    Synced { name: String, last_sync: Option<u64>, applied: Option<i64> },
    /// Its key is gone (its lease expired or was revoked).
    Left { name: String },
}

/// The watch of the members ([`super::EtcdFleet::members`]).
pub struct Members {
    pub(super) stream: WatchStream,
    pub(super) keys: Keys,
    pub(super) endpoints: String,
    pub(super) prefix: String,
}

impl Members {
    pub async fn next(&mut self) -> Result<Vec<MemberChange>, FleetError> {
        let answer = next_answer(&mut self.stream, &self.endpoints, &self.prefix).await?;
        Ok(answer
            .events()
            .iter()
            .filter_map(|event| {
                let kv = event.kv()?;
                match event.event_type() {
                    EventType::Put => member(&self.keys, kv),
                    EventType::Delete => {
                        let name = self.keys.member_name(std::str::from_utf8(kv.key()).ok()?)?;
                        Some(MemberChange::Left { name: name.to_string() })
                    }
                }
            })
            .collect())
    }
}

/// The next answer of a watch: an error names the endpoints (review F4: it named the prefix as
/// them); a watch cancelled for compaction is [`FleetError::Compacted`].
async fn next_answer(
    stream: &mut WatchStream,
    endpoints: &str,
    prefix: &str,
) -> Result<etcd_client::WatchResponse, FleetError> {
    let answer = stream
        .message()
        .await
        .map_err(|source| FleetError::Etcd { endpoints: endpoints.to_string(), source })?
        .ok_or_else(|| FleetError::WatchEnded { endpoints: endpoints.to_string(), prefix: prefix.to_string() })?;
    if answer.canceled() {
        return Err(if answer.compact_revision() > 0 {
            FleetError::Compacted { endpoints: endpoints.to_string(), prefix: prefix.to_string() }
        } else {
            FleetError::WatchEnded { endpoints: endpoints.to_string(), prefix: prefix.to_string() }
        });
    }
    Ok(answer)
}

/// The watch of the holdings.
pub struct Watch {
    pub(super) stream: WatchStream,
    pub(super) keys: Keys,
    pub(super) sealer: Option<Arc<Sealer>>,
    pub(super) prefix: String,
    pub(super) endpoints: String,
    /// The last revision seen: a new watch after a reconnect starts after it.
    pub revision: i64,
}

impl Watch {
    /// The next changes, in etcd's order.
    pub async fn next(&mut self) -> Result<Vec<Change>, FleetError> {
        loop {
            let answer = next_answer(&mut self.stream, &self.endpoints, &self.prefix).await?;
            let mut changes = Vec::new();
            for event in answer.events() {
                let Some(kv) = event.kv() else { continue };
                self.revision = self.revision.max(kv.mod_revision());
                match event.event_type() {
                    EventType::Put => match decode_kv(&self.keys, self.sealer.as_deref(), kv) {
                        Some(Ok(stored)) => changes.push(Change::Put(stored)),
                        Some(Err(e)) => changes.push(Change::Unreadable(e)),
                        None => {}
                    },
                    EventType::Delete => {
                        changes.push(Change::Deleted { key: String::from_utf8_lossy(kv.key()).into_owned() })
                    }
                }
            }
            if !changes.is_empty() {
                return Ok(changes);
            }
        }
    }
}
