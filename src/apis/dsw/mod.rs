//! Alibaba Cloud PAI-DSW instance tokens: the client.

pub mod client;

pub use client::*;
