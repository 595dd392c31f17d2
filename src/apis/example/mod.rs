//! A test-only API (feature `example-api`), as one API folder: spec, section, `Api` implementation.
//!
//! It shows what adding an API takes: this folder, its `mod` line in `apis/mod.rs` and its one line
//! in `with_apis!` (`apis/kinds.rs`). Its tokens are made locally (no cloud, no emulator): a
//! counter and the ticket's `greeting`, living `token_lifetime`.

pub(crate) mod api;
pub(crate) mod section;
pub mod spec;

#[cfg(test)]
mod tests;
