//! Alibaba Cloud PAI-DSW instance tokens, as one API folder: spec, client, `Api` implementation.

pub mod api;
pub mod client;
pub(crate) mod section;
pub mod spec;

pub use client::*;
pub use spec::*;
