//! Reading the `exp` claim of JWT-shaped tickets or tokens, without verifying them.
//!
//! SLS tickets and access tokens, and TCR tokens, are JWTs. ticketd does not trust them for
//! anything but a tighter expiry: when a token says it dies sooner than the API promised, the
//! earlier time wins.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `exp` claim of a JWT-shaped string, or `None` when it is not a JWT or has no numeric `exp`.
pub fn expiry(token: &str) -> Option<SystemTime> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 64 * 1024 {
        return None;
    }
    // Some issuers pad; the URL-safe alphabet is the JWT one.
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?;
    let seconds = exp.as_u64().or_else(|| exp.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))?;
    // Some issuers write milliseconds; a "seconds" value past year 5138 is one.
    let seconds = if seconds > 100_000_000_000 { seconds / 1000 } else { seconds };
    Some(crate::clock::from_unix_seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unsigned-looking JWT with the given claims.
    fn encode(claims: &serde_json::Value, signature: &[u8]) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
    use crate::clock::from_unix_seconds;

    #[test]
    fn reads_exp_from_the_vector_ticket() {
        let ticket = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzbHMiLCJleHAiOjE3MDY3NTY2NDV9.c2lnbmF0dXJlLXBsYWNlaG9sZGVy";
        assert_eq!(expiry(ticket), Some(from_unix_seconds(1_706_756_645)));
    }

    #[test]
    fn non_jwt_and_missing_exp_give_none() {
        assert_eq!(expiry("opaque-token"), None);
        assert_eq!(expiry("a.b"), None);
        assert_eq!(expiry("eyJhbGciOiJIUzI1NiJ9.eyJ0eXAiOiJhY2Nlc3MifQ.YWNjZXNz"), None);
        assert_eq!(expiry("a.!!!.c"), None);
    }

    #[test]
    fn encode_round_trips_and_milliseconds_are_understood() {
        let token = encode(&serde_json::json!({"exp": 1_735_880_997_750u64}), b"sig");
        assert_eq!(expiry(&token), Some(from_unix_seconds(1_735_880_997)));
    }
}
