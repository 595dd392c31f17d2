//! The JWTs the emulator hands out (SLS tickets, DSW tokens): HS256-signed, with real claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `header.payload.signature`, the signature an HMAC-SHA256 of the claims under `key` (nobody
/// checks it; the token only needs to look like the vendors').
pub(crate) fn encode(claims: &serde_json::Value, key: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(claims.to_string().as_bytes());
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn three_parts_and_the_claims_in_the_middle() {
        let token = super::encode(&serde_json::json!({"exp": 1_706_756_645u64}), b"k");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1], "eyJleHAiOjE3MDY3NTY2NDV9");
    }
}
