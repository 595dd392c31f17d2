//! Alibaba Cloud SLS share tickets, as one API folder: spec, client, share URL, `Api` implementation.

pub mod api;
pub mod client;
pub(crate) mod section;
pub mod share;
pub mod spec;

pub use client::*;
pub use spec::*;
