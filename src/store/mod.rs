//! Where the scheduler's state lives between runs, behind the [`Store`] trait.
//!
//! The trait with its contract, the records it keeps, and the file store (`state_dir/state.json`),
//! its one implementation today.

pub(crate) mod contract;
pub(crate) mod file;
pub mod record;

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
pub(crate) mod memory;

pub use contract::{Loaded, Store, StoreError};
pub use file::{FileStore, LOCK_FILE, STATE_DIR_MODE, STATE_FILE, read_unlocked};
pub use record::{PendingRevocation, Snapshot, StateFile, StoredTicket, StoredTicketRef, identity, tcr_identity};
