//! Signature checks, server side, as the clouds make them: written from the specs
//! (`shared/spec/cloud-apis.md`), independently of the client signers in ticketd's `signing`, so a
//! mistake in one is caught by the other; both replay the vendors' vectors (`tests/vectors`).
//!
//! `v3` is the one core of the two "V3" schemes ([`acs3`] for Alibaba OpenAPI, `tc3` for
//! Tencent Cloud API 3.0); `sls_v1` and `rpc` are the older Alibaba schemes; `mac` holds the
//! MACs and the constant-time comparison.
//!
//! [`acs3`] is public so that ticketd's ACS3 client signer can be checked against it, request by
//! request (a sign → verify round trip in `src/signing/acs3.rs`); the rest serves the emulator.

pub mod acs3;
pub(crate) mod mac;
pub(crate) mod pct;
pub(crate) mod rpc;
pub(crate) mod sls_v1;
pub(crate) mod tc3;
pub(crate) mod v3;

pub use v3::{Authorization, AuthorizationError, VerifyError};
#[cfg(test)]
#[path = "vector_tests.rs"]
pub(crate) mod vectors;
