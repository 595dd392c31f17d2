//! Alibaba Cloud SLS share tickets: the client.

pub mod client;

pub use client::*;
