//! What a fleet node exchanges with etcd in a session: the holdings (loaded, read again, handed on
//! to the scheduler in mod-revision order, written through the fence) and the member keys.

use std::time::SystemTime;

use super::{FleetNode, unix, unix_now};
use crate::cluster::etcd::{Change, EtcdFleet, FleetError, MemberChange, ReadAgain, Stored, Watch};
use crate::cluster::fence::{Expect, Refused};
use crate::cluster::link::{FleetEvent, Reread, Wanted, WriteError};
use crate::cluster::record::FleetRecord;
use crate::cluster::view::Role;

impl FleetNode {
    /// The watch of the holdings for a new session: resumed after the last revision applied, or
    /// (first session, or history compacted) a load of everything etcd holds.
    pub(super) async fn holdings(&self, fleet: &EtcdFleet) -> Result<Watch, FleetError> {
        let resume = {
            let state = self.lock();
            state.applied.loaded().then_some(state.applied.watched)
        };
        match resume {
            Some(revision) => match fleet.watch_from(revision).await {
                Err(FleetError::Compacted { .. }) => self.load(fleet).await,
                resumed => resumed,
            },
            None => self.load(fleet).await,
        }
    }

    /// Load every holding and hand on each not yet handed on; the watch from just after.
    pub(super) async fn load(&self, fleet: &EtcdFleet) -> Result<Watch, FleetError> {
        let (held, watch) = fleet.load_and_watch().await?;
        let changes = held
            .into_iter()
            .map(|held| match held {
                Ok(stored) => Change::Put(stored),
                Err(e) => Change::Unreadable(e),
            })
            .collect();
        self.apply(changes, watch.revision);
        self.send(FleetEvent::Loaded);
        self.view.synced(SystemTime::now());
        Ok(watch)
    }

    /// Hand `changes` on to the scheduler, in order, each holding once (by mod revision).
    pub(super) fn apply(&self, changes: Vec<Change>, revision: i64) {
        let mut out = Vec::new();
        {
            let mut state = self.lock();
            for change in changes {
                match change {
                    Change::Put(Stored { key, revision, record }) => {
                        let seen = state.seen.entry(key.clone()).or_insert(revision);
                        *seen = (*seen).max(revision);
                        if state.applied.admit(&key, revision) {
                            out.push((record, revision));
                        }
                    }
                    Change::Unreadable(e) => {
                        tracing::warn!(error = %e, "a holding in etcd cannot be read; it is not applied")
                    }
                    Change::Deleted { key } => {
                        state.seen.remove(&key);
                        state.applied.deleted(&key, revision);
                    }
                }
            }
            state.applied.reached(revision);
        }
        for (FleetRecord { ticket, writer, stored }, revision) in out {
            self.send(FleetEvent::Holding { ticket, stored: Box::new(stored), writer, revision });
        }
    }

    /// Read again the holdings in [`State::wanted`] and hand on each one not older than the one
    /// handed on last for its key; then tell the scheduler the reread is done. On failure they
    /// stay wanted, for the next session.
    pub(super) async fn reread(&self, fleet: &EtcdFleet) -> Result<(), FleetError> {
        let wanted: Vec<Wanted> = std::mem::take(&mut self.lock().wanted).into_iter().collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let held = match self.bounded(fleet.read_many(&wanted)).await {
            Ok(held) => held,
            Err(e) => {
                self.lock().wanted.extend(wanted);
                return Err(e);
            }
        };
        let mut out = Vec::new();
        let mut answers = Vec::with_capacity(wanted.len());
        {
            let mut state = self.lock();
            let sessions = state.sessions;
            for w in &wanted {
                let key = fleet.keys().ticket(&w.ticket, &w.identity);
                let certain = state.unanswered.get(&key).is_none_or(|(_, s)| *s < sessions);
                if certain {
                    state.unanswered.remove(&key);
                }
                answers.push(Reread { wanted: w.clone(), certain });
            }
            for Wanted { ticket, identity } in &wanted {
                let key = fleet.keys().ticket(ticket, identity);
                if !held.iter().any(|h| h.key == key) {
                    // Nothing there: the next write expects none.
                    state.seen.remove(&key);
                }
            }
            for ReadAgain { key, revision, record } in held {
                // Readable or not, the next write there expects this revision (review F3).
                let seen = state.seen.entry(key.clone()).or_insert(revision);
                *seen = (*seen).max(revision);
                match record {
                    Ok(record) if state.applied.readmit(&key, revision) => out.push((record, revision)),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "a holding in etcd cannot be read; it is not applied"),
                }
            }
        }
        for (FleetRecord { ticket, writer, stored }, revision) in out {
            self.send(FleetEvent::Holding { ticket, stored: Box::new(stored), writer, revision });
        }
        self.send(FleetEvent::Reread(answers));
        Ok(())
    }

    /// A write of `key` (for `wanted`) got no answer in the current session.
    pub(super) fn unanswered(&self, key: &str, wanted: &Wanted) {
        let mut state = self.lock();
        let sessions = state.sessions;
        state.unanswered.insert(key.to_string(), (wanted.clone(), sessions));
    }

    /// Ask for `wanted` to be read again (now, or in the next session).
    pub(super) fn want(&self, wanted: impl IntoIterator<Item = Wanted>) {
        self.lock().wanted.extend(wanted);
        self.reread_wanted.notify_one();
    }

    /// Record this node's sync in its member key: now, and the revision of the holdings applied.
    pub(super) async fn put_member(&self, fleet: &EtcdFleet) -> Result<(), FleetError> {
        let applied = self.lock().applied.watched;
        fleet.put_member(unix_now(), applied).await
    }

    pub(super) fn members(&self, changes: Vec<MemberChange>) {
        for change in changes {
            match change {
                MemberChange::Synced { name, last_sync, applied } => {
                    self.view.member(&name, last_sync.map(unix));
                    // A member key without the revision (an older ticketd) is not waited for.
                    let mut state = self.lock();
                    match applied {
                        Some(applied) => state.members_applied.insert(name, applied),
                        None => state.members_applied.remove(&name),
                    };
                }
                MemberChange::Left { name } => {
                    self.view.member_left(&name);
                    if self.view.snapshot().leader.as_deref() == Some(name.as_str()) {
                        self.view.set_leader(None);
                    }
                    self.lock().members_applied.remove(&name);
                }
            }
        }
        // Review G13: the leader revokes a replaced long-term token only once every member has
        // applied its successor.
        let lowest = {
            let mut state = self.lock();
            let lowest = state.members_applied.values().copied().min().unwrap_or(0);
            (lowest != state.fleet_applied).then(|| {
                state.fleet_applied = lowest;
                lowest
            })
        };
        if let Some(lowest) = lowest.filter(|&l| l > 0) {
            self.send(FleetEvent::Applied(lowest));
        }
    }

    /// The fenced write ([`FleetLink::write`]).
    pub(super) async fn write_fenced(&self, record: FleetRecord) -> Result<i64, WriteError> {
        let (fleet, leadership, expect) = {
            let state = self.lock();
            let Some(fleet) = state.session.clone() else {
                return Err(WriteError::Unreachable {
                    endpoints: self.spec.endpoints.join(", "),
                    reason: "not connected".into(),
                });
            };
            let Some(leadership) = state.leadership.clone() else { return Err(Refused::Deposed.into()) };
            let key = fleet.keys().ticket(&record.ticket, &record.stored.identity);
            let expect = state.seen.get(&key).map_or(Expect::Absent, |&revision| Expect::At(revision));
            (fleet, leadership, expect)
        };
        let key = fleet.keys().ticket(&record.ticket, &record.stored.identity);
        let wanted = Wanted { ticket: record.ticket.clone(), identity: record.stored.identity.clone() };
        let written = tokio::time::timeout(self.spec.lease_ttl, fleet.write(&leadership, &record, expect)).await;
        match written {
            Ok(Ok(revision)) => {
                self.answered();
                let mut state = self.lock();
                // An earlier unanswered write there can no longer commit: its compare expects a
                // revision this one replaced.
                state.unanswered.remove(&key);
                let seen = state.seen.entry(key).or_insert(revision);
                *seen = (*seen).max(revision);
                Ok(revision)
            }
            Ok(Err(FleetError::Refused(refused))) => {
                self.answered();
                match refused {
                    Refused::Deposed => {
                        // Standing says so at once; the session ends and campaigns again.
                        self.set_role(Role::Follower);
                        self.deposed.notify_one();
                    }
                    // Read it again: the next attempt expects what etcd holds, and the scheduler gets
                    // etcd's holding even if it ignored it before (review G5).
                    Refused::Raced | Refused::Stale { .. } => self.want([wanted]),
                }
                Err(refused.into())
            }
            Ok(Err(e)) => {
                // It may have landed (or land later): read again once etcd answers (the scheduler,
                // which ignores its own write's echo while the write is out, then gets it).
                self.unanswered(&key, &wanted);
                self.want([wanted]);
                self.failed();
                Err(WriteError::Unreachable { endpoints: fleet.endpoints().to_string(), reason: e.to_string() })
            }
            Err(_) => {
                self.unanswered(&key, &wanted);
                self.want([wanted]);
                self.failed();
                Err(WriteError::Unreachable {
                    endpoints: fleet.endpoints().to_string(),
                    reason: format!("no answer within {}", humantime::format_duration(self.spec.lease_ttl)),
                })
            }
        }
    }
}
