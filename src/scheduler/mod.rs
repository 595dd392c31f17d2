//! The scheduler: one queue of tickets keyed by their next deadline, one loop that calls the
//! APIs when they fall due and hands each new token to its sinks (a facade over its parts).
//!
//! One refresh, file by file: `event_loop` wakes at the `queue`'s head and starts a
//! `call`; its report comes back to the loop, `handle` folds it in with the pure rules of
//! `apply` and [`timing`], `publish` writes the sinks and runs the hooks, `persist` records
//! the state. A reload is a `ReloadPlan` computed aside, then applied.

pub(crate) mod apply;
pub(crate) mod call;
pub(crate) mod clock_step;
pub(crate) mod core;
pub(crate) mod error;
pub(crate) mod event_loop;
pub(crate) mod fenced;
pub(crate) mod fleet;
pub(crate) mod handle;
pub(crate) mod persist;
pub(crate) mod publish;
pub(crate) mod queue;
pub(crate) mod reload;
pub(crate) mod reports;
pub(crate) mod restore;
pub(crate) mod revoke;
pub mod timing;

pub use apply::{MIN_CALL_TIMEOUT, Outlook};
pub use core::{MAX_AWAITING_SAVE, MAX_IN_FLIGHT};
pub use error::{CallError, MIN_USEFUL_LIFE, Part, PublishError, TaskEnd, Unfit, WriterDied};
pub use event_loop::{CLOCK_STEP, Command, Parts, SHUTDOWN_GRACE, Scheduler, WALL_CLOCK_RECHECK, Watchdog};
pub use fenced::FLEET_RECHECK;
pub use persist::SAVE_DEBOUNCE;
pub use reload::ReloadSummary;
pub use reports::Event;
pub use timing::CALL_TIMEOUT;

#[cfg(test)]
pub(crate) mod restart_tests;
#[cfg(test)]
mod revocation_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod texts_tests;
