//! An in-memory store for tests: the scheduler's tests save here instead of to disk, through the
//! same contract (and optionally as slowly as a big state on disk saves).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::store::contract::{Loaded, Store, StoreError};
use crate::store::record::{Snapshot, StateFile, StoredTicket};

/// Where in-memory stores keep a state: stores opened on the same place share it and its lock.
#[derive(Debug, Default)]
pub(crate) struct Place {
    state: Mutex<Option<StateFile>>,
    /// The id of the store holding the lock.
    holder: Mutex<Option<u64>>,
    /// What is kept here is unreadable as a state (see [`Place::corrupt`]).
    corrupt: Mutex<bool>,
    /// Saves fail (see [`Place::fail_saves`]).
    failing: Mutex<bool>,
    next: Mutex<u64>,
}

impl Place {
    /// A new place, shared.
    pub(crate) fn new() -> Arc<Place> {
        Arc::default()
    }

    /// The state last saved here (empty when none).
    pub(crate) fn state(&self) -> StateFile {
        lock(&self.state).clone().unwrap_or_else(StateFile::empty)
    }

    /// Make what is kept here unreadable as a state (as a torn or foreign file is).
    pub(crate) fn corrupt(&self) {
        *lock(&self.corrupt) = true;
    }

    /// Make every save fail (as a full disk does) until called again with `false`.
    pub(crate) fn fail_saves(&self, failing: bool) {
        *lock(&self.failing) = failing;
    }

    /// Take the lock from whoever holds it (as a lease that expired would).
    pub(crate) fn break_lock(&self) {
        *lock(&self.holder) = None;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A store in a [`Place`], holding its lock from [`MemoryStore::open`] until dropped.
#[derive(Debug)]
pub(crate) struct MemoryStore {
    place: Arc<Place>,
    id: u64,
    /// Each save takes this long (real time, as a big state on disk does).
    save_takes: Duration,
}

impl MemoryStore {
    /// Open and lock `place`.
    pub(crate) fn open(place: &Arc<Place>) -> Result<MemoryStore, StoreError> {
        let id = {
            let mut next = lock(&place.next);
            *next += 1;
            *next
        };
        let mut holder = lock(&place.holder);
        if holder.is_some() {
            return Err(StoreError::InUse { path: "memory".into(), holder: None });
        }
        *holder = Some(id);
        Ok(MemoryStore { place: Arc::clone(place), id, save_takes: Duration::ZERO })
    }

    /// A store of its own place.
    pub(crate) fn new() -> MemoryStore {
        MemoryStore::open(&Place::new()).expect("a new place is not locked")
    }

    /// This store, each of its saves taking `took`.
    pub(crate) fn slow(mut self, took: Duration) -> MemoryStore {
        self.save_takes = took;
        self
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        let mut holder = lock(&self.place.holder);
        if *holder == Some(self.id) {
            *holder = None;
        }
    }
}

impl MemoryStore {
    /// The error of a save while [`Place::fail_saves`] is on.
    fn failing(&self) -> Result<(), StoreError> {
        match *lock(&self.place.failing) {
            true => Err(invalid("the place fails its saves (Place::fail_saves)")),
            false => Ok(()),
        }
    }
}

fn invalid(why: impl std::fmt::Display) -> StoreError {
    let source = std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    StoreError::Write { path: "memory".into(), source }
}

impl Store for MemoryStore {
    fn lock(&self) -> Result<(), StoreError> {
        match *lock(&self.place.holder) == Some(self.id) {
            true => Ok(()),
            false => Err(StoreError::NotLocked { path: "memory".into() }),
        }
    }

    fn load(&self) -> Result<Loaded, StoreError> {
        self.lock()?;
        if std::mem::take(&mut *lock(&self.place.corrupt)) {
            lock(&self.place.state).take();
            let why = "the saved state is not a state".to_string();
            return Ok(Loaded { state: StateFile::empty(), set_aside: Some(("memory (set aside)".into(), why)) });
        }
        Ok(Loaded { state: self.place.state(), set_aside: None })
    }

    fn save_all(&self, state: &Snapshot<'_>) -> Result<(), StoreError> {
        self.lock()?;
        std::thread::sleep(self.save_takes);
        self.failing()?;
        // Through the state's JSON form, as the file store writes it.
        let value = serde_json::to_value(state).map_err(invalid)?;
        let state: StateFile = serde_json::from_value(value).map_err(invalid)?;
        *lock(&self.place.state) = Some(state);
        Ok(())
    }

    fn save_one(&self, name: &str, ticket: Option<&StoredTicket>) -> Result<(), StoreError> {
        self.lock()?;
        self.failing()?;
        // Changed under the place's lock, from the read to the write: linearizable.
        let mut kept = lock(&self.place.state);
        let state = kept.get_or_insert_with(StateFile::empty);
        match ticket {
            Some(ticket) => state.tickets.insert(name.to_string(), ticket.clone()),
            None => state.tickets.remove(name),
        };
        Ok(())
    }
}
