//! Revoking superseded TCR long-term tokens with `DeleteInstanceToken`.
//!
//! A long-term token stays valid at the vendor until deleted, so each re-mint would leave the one
//! it replaced active for good. The scheduler queues the replaced token's `TokenId` here when the
//! new token arrives ([`Revocations::push`], saved in the state file at once); it becomes due once
//! every sink holds the new token ([`Revocations::published`]) and the ticket's `on_change` hook
//! has run since ([`Revocations::hooks_ran`]), so no consumer is left holding it. The revoker
//! ([`run`]) is a task of its own, one delete at a time: a failing or slow delete never holds up
//! a refresh. A failed delete is retried with backoff until the API says the token is gone; the
//! queue is capped at [`MAX_PENDING`] (see [`Pushed::Full`]). Before each attempt the revoker looks
//! at the board: a token any ticket holds (current, or still in its sinks) is never deleted.
//!
//! Temporary tokens are never revoked: they have no `TokenId` (the SDK: "not available to
//! temporary access credential"), `DeleteInstanceToken` "is used to delete a long-term access
//! credential", and they lapse within the hour anyway.
//!
//! `queue` holds the tokens and decides when each is due; `revoker` deletes them.

pub(crate) mod queue;
pub(crate) mod revoker;

pub(crate) use revoker::{ONCE_LIMIT, once, run};
