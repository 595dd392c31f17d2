//! Alibaba Cloud SLS share tickets, as one API folder: spec, client, share URL, `Api` implementation.

pub(crate) mod api;
pub(crate) mod client;
pub(crate) mod section;
pub(crate) mod share;
pub(crate) mod spec;

pub use client::*;
pub use spec::*;
