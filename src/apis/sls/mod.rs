//! Alibaba Cloud SLS share tickets: its validated spec, its client, its share URL and its `Api` implementation.

pub mod api;
pub mod client;
pub(crate) mod section;
pub mod share;
pub mod spec;

pub use client::*;
pub use spec::*;
