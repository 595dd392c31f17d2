//! Alibaba Cloud PAI-DSW instance tokens, as one API folder: spec, client, `Api` implementation.

pub(crate) mod api;
pub(crate) mod client;
pub(crate) mod section;
pub(crate) mod spec;

pub use client::*;
pub use spec::*;
