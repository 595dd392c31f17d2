//! The keys the emulator accepts: who each belongs to (Alibaba or Tencent), with a secret that
//! never shows in `Debug` output.

use std::fmt;

/// Whose APIs a key signs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vendor {
    Alibaba,
    Tencent,
}

/// A key secret or STS token. `Debug` shows `<redacted>`; [`Secret::expose`] gives the text; its
/// bytes are zeroed when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(zeroize::Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A key pair the emulator accepts, for one vendor's APIs.
#[derive(Clone, Debug)]
pub struct EmulatorKey {
    pub vendor: Vendor,
    /// AccessKeyId (Alibaba) or SecretId (Tencent).
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// When set, requests must carry this STS token.
    pub security_token: Option<Secret>,
}

/// A random Alibaba key pair for `ticketd dev` and tests.
pub fn generate_key(prefix: &str) -> EmulatorKey {
    generate_vendor_key(Vendor::Alibaba, prefix)
}

/// A random Tencent key pair (SecretId, SecretKey) for `ticketd dev` and tests.
pub fn generate_tencent_key(prefix: &str) -> EmulatorKey {
    generate_vendor_key(Vendor::Tencent, prefix)
}

pub(crate) fn generate_vendor_key(vendor: Vendor, prefix: &str) -> EmulatorKey {
    let id: [u8; 8] = rand::random();
    let secret: [u8; 15] = rand::random();
    EmulatorKey {
        vendor,
        access_key_id: format!("{prefix}{}", hex::encode_upper(id)),
        access_key_secret: Secret::new(hex::encode(secret)),
        security_token: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret_and_the_token() {
        let mut key = generate_key("LTAI");
        key.security_token = Some(Secret::new("CAIS-token"));
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.access_key_id), "{shown}");
        assert!(!shown.contains(key.access_key_secret.expose()) && !shown.contains("CAIS-token"), "{shown}");
        assert_eq!(generate_tencent_key("AKID").vendor, Vendor::Tencent);
    }
}
