//! Provider errors: what went wrong, and whether retrying makes sense.

use std::time::Duration;

use crate::credentials::CredentialError;
use crate::scheduler::timing::RetryClass;

/// Longest server-supplied text kept in an error (hostile or huge bodies are cut).
pub const MAX_SERVER_TEXT: usize = 300;

/// A failed API call. Messages never contain a secret: server text is cut and scrubbed of the
/// secrets the request carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{api}: cannot reach {endpoint}: {detail}")]
    Transport { api: &'static str, endpoint: String, detail: String },
    #[error("{api}: no answer from {endpoint} within {}", humantime::format_duration(*.timeout))]
    Timeout { api: &'static str, endpoint: String, timeout: Duration },
    #[error("{api}: HTTP {status} {code}: {message}{}", request_id.as_ref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
    Api {
        api: &'static str,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        kind: ApiErrorKind,
        retry_after: Option<Duration>,
    },
    #[error("{api}: unexpected response: {detail}")]
    Malformed { api: &'static str, detail: String },
    /// The API created a credential that ticketd cannot use (a long-term TCR token whose answer
    /// gives no usable expiry): it is not kept, and the scheduler revokes it by its `token_id`
    /// (not a secret), so a retry does not leave one more active credential behind.
    #[error("{api}: the created token cannot be used: {detail}; it is revoked (TokenId {token_id})")]
    Unusable { api: &'static str, detail: String, token_id: String },
    #[error("{0}")]
    Credentials(#[from] CredentialError),
    /// The call ended without an answer inside ticketd: its task panicked or was cancelled. A
    /// bug, reported so the ticket is retried rather than left waiting (the detail never quotes
    /// the panic, which may hold a secret).
    #[error("{api}: the call ended without an answer ({detail}); retrying")]
    Internal { api: &'static str, detail: &'static str },
}

/// What an API error code means for ticketd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// Server trouble or throttling: retry with backoff.
    Transient,
    /// The request was rejected because the host clock is off: fix the clock, retrying won't help.
    ClockSkew,
    /// Signature, keys, permissions or parameters: retry slowly, it needs a change somewhere.
    Permanent,
}

impl ProviderError {
    pub fn retry_class(&self) -> RetryClass {
        match self {
            ProviderError::Transport { .. }
            | ProviderError::Timeout { .. }
            | ProviderError::Malformed { .. }
            | ProviderError::Internal { .. } => RetryClass::Transient { after: None },
            ProviderError::Api { kind: ApiErrorKind::Transient, retry_after, .. } => {
                RetryClass::Transient { after: *retry_after }
            }
            // The host clock may be corrected any second: retry soon, not in a quarter hour.
            ProviderError::Api { kind: ApiErrorKind::ClockSkew, .. } => RetryClass::ClockSkew,
            // Each try creates a credential (revoked, but created): as slowly as a refusal.
            ProviderError::Api { .. } | ProviderError::Credentials(_) | ProviderError::Unusable { .. } => {
                RetryClass::Permanent
            }
        }
    }

    pub fn is_clock_skew(&self) -> bool {
        self.api_kind() == Some(ApiErrorKind::ClockSkew)
    }

    /// What an API error code meant, for an error answer from the API (`None` for the others).
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            ProviderError::Api { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Server text made safe to log: at most [`MAX_SERVER_TEXT`] characters, control characters
/// dropped, and any of `secrets` replaced by `<redacted>`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(MAX_SERVER_TEXT).collect();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "<redacted>");
        // A secret cut in half at the end must not leak its first part either. The cuts tried
        // fall between characters only: a secret may hold multi-byte characters (a pasted
        // U+200B, a hostile server's ticket), and cutting inside one would panic with the whole
        // secret in the panic message.
        let cuts = s.char_indices().map(|(at, _)| at).filter(|&at| at >= 4).rev();
        if let Some(kept) = cuts.filter_map(|at| s.get(..at)).find_map(|prefix| out.strip_suffix(prefix).map(str::len))
        {
            out.truncate(kept);
            out.push_str("<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_secrets_and_cuts_long_text() {
        assert_eq!(scrub("ticket eyJabc.def is bad", &["eyJabc.def"]), "ticket <redacted> is bad");
        let long = format!("{}eyJsecret", "x".repeat(MAX_SERVER_TEXT - 5));
        let out = scrub(&long, &["eyJsecret"]);
        assert!(!out.contains("eyJs"), "{out}");
        assert_eq!(scrub("a\nb\u{7}c", &[]), "abc");
    }

    /// Issue #16 item 1: a secret with a multi-byte character made `scrub` cut inside it, and
    /// the panic message carried the whole secret.
    #[test]
    fn issue_16_secrets_with_multi_byte_characters_are_scrubbed_without_panicking() {
        for secret in
            ["LTAI5t\u{200b}Secret", "s\u{e9}cr\u{e9}t-key", "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}", "abc\u{1f600}def"]
        {
            let answer = format!("the ticket {secret} is invalid");
            let out = std::panic::catch_unwind(|| scrub(&answer, &[secret])).expect("scrub never panics");
            assert_eq!(out, "the ticket <redacted> is invalid");
            // Every prefix of the secret (cut between characters) left at the end of the text.
            for (at, _) in secret.char_indices().filter(|&(at, _)| at >= 4) {
                let cut = format!("answer: {}", &secret[..at]);
                let out = std::panic::catch_unwind(|| scrub(&cut, &[secret])).expect("no panic");
                assert_eq!(out, "answer: <redacted>", "prefix of {at} bytes");
            }
            // An answer that does not mention the secret at all (the hostile case: any error).
            assert_eq!(scrub("the ticket is invalid", &[secret]), "the ticket is invalid");
        }
    }

    #[test]
    fn classes() {
        let e = ProviderError::Api {
            api: "SLS CreateTicket",
            status: 503,
            code: "ServerBusy".into(),
            message: "busy".into(),
            request_id: Some("r1".into()),
            kind: ApiErrorKind::Transient,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(e.retry_class(), RetryClass::Transient { after: Some(Duration::from_secs(3)) });
        assert_eq!(e.to_string(), "SLS CreateTicket: HTTP 503 ServerBusy: busy (request id r1)");
    }
}
