//! Tencent Cloud TCR instance tokens: its validated spec, its client and its `Api` implementation.

pub mod api;
pub mod client;
pub(crate) mod section;
pub mod spec;

pub use client::*;
pub use spec::*;
