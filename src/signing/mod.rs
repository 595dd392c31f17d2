//! Request signing, one module per scheme.
//!
//! Pure functions: the date, the nonce and the keys are arguments, so every stage can be replayed
//! against the vendors' SDK vectors.

pub mod acs3;
pub(crate) mod rpc;
pub mod sls;
pub(crate) mod tc3;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}
