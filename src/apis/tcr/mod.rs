//! Tencent Cloud TCR instance tokens: the client.

pub mod client;

pub use client::*;
