//! The `Store` trait: where the scheduler's state lives, with the contract every implementation
//! keeps (atomic saves, what a crash may leave, one exclusive holder).

use std::io;
use std::path::PathBuf;

use crate::store::record::{Snapshot, StateFile, StoredTicket};

/// Where the scheduler's state (every ticket's holding, the pending revocations) is kept between
/// runs. The file store ([`crate::store::FileStore`]) is the one implementation today; a
/// distributed one (etcd) is meant to fit the same contract.
///
/// # Contract
///
/// - **Exclusive lock.** At most one holder per location at a time: [`Store::lock`] takes it, or
///   confirms that this value still holds it, and fails with [`StoreError::InUse`] (naming the
///   holder when known) while another holds it. It is released when the value is dropped, and
///   when the holding process dies (however it dies: the file store's `flock` goes with the
///   process; a lease-based store must expire its lease). [`Store::load`], [`Store::save_all`]
///   and [`Store::save_one`] never read or write without the lock: they fail with
///   [`StoreError::NotLocked`] instead. A store that can lose its lock (a lease) fails them the
///   same way from then on, so a holder that lost it never overwrites the next holder's state.
/// - **Atomic saves.** [`Store::save_all`] replaces the whole state and [`Store::save_one`] one
///   ticket's record (or removes it), each all or nothing: a later [`Store::load`] sees the state
///   before or after the save, never a mix, whether the save failed or the process crashed
///   during it.
/// - **What a crash may leave.** The state of the last save that returned `Ok`, or of a save
///   under way at the crash (one or the other), and nothing else: no partial record. An
///   implementation may leave debris beside the state (the file store: a temp file), which it
///   clears when next locked; debris never loads as state.
/// - **Load.** A location never saved to loads as an empty state. One whose content is not a
///   state (corrupt) is set aside, never overwritten, and reported in [`Loaded::set_aside`]; the
///   load goes on with an empty state. A failure to read (I/O) is an error: nothing is set aside.
/// - **Concurrent calls.** One value may be shared between threads (the trait is `Sync`), and
///   its calls are linearizable: each save takes effect at one instant between its call and its
///   return, as if the calls ran one at a time. So two [`Store::save_one`] calls never lose each
///   other's record, and a [`Store::save_all`] never lands in the middle of a `save_one` (the
///   file store serializes its saves under an in-process lock; between processes, the exclusive
///   lock keeps a second writer out).
/// - **Blocking.** Every method may block (on a disk's fsync, or a network round trip bounded by
///   the implementation's own timeout). The trait is `Send + Sync` so that a caller on an async
///   runtime can move the work to a blocking thread; the scheduler calls it from its loop, whose
///   saves are debounced and spaced for this.
pub trait Store: Send + Sync {
    /// Take the exclusive lock, or confirm it is still held (see the contract).
    fn lock(&self) -> Result<(), StoreError>;

    /// Read the saved state (see the contract for a missing or corrupt one).
    fn load(&self) -> Result<Loaded, StoreError>;

    /// [`Store::load`], handing each ticket's record to `each` as it is read instead of keeping
    /// them all (a state of 100,000 tickets is ~37 MiB of records): the state returned holds no
    /// tickets, only the revocations. When the state turns out corrupt and is set aside
    /// ([`Loaded::set_aside`]), records already handed over came from it: the caller drops them.
    fn load_each(&self, each: &mut dyn FnMut(String, StoredTicket)) -> Result<Loaded, StoreError> {
        let mut loaded = self.load()?;
        for (name, ticket) in std::mem::take(&mut loaded.state.tickets) {
            each(name, ticket);
        }
        Ok(loaded)
    }

    /// Replace the whole saved state with `state`, atomically. `state` is serialized once, as it
    /// is written: the tickets are streamed, never held twice.
    fn save_all(&self, state: &Snapshot<'_>) -> Result<(), StoreError>;

    /// Replace the record of ticket `name` with `ticket` (`None`: remove it), atomically, leaving
    /// every other ticket and the revocations as they are. The file store rewrites its one file
    /// for this (it costs a whole save); a store with a key per ticket writes one key.
    fn save_one(&self, name: &str, ticket: Option<&StoredTicket>) -> Result<(), StoreError>;
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    pub state: StateFile,
    /// A saved state that did not parse, set aside to this place, and why it did not parse.
    pub set_aside: Option<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("state directory {} is in use by another ticketd{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse { path: PathBuf, holder: Option<u32> },
    #[error("the state in {} is not locked by this ticketd; it is neither read nor written", path.display())]
    NotLocked { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}
