//! Provider errors: what went wrong, with whether retrying makes sense.

use std::time::Duration;

use crate::credentials::CredentialError;

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
    /// The provider does not make this call at all (a provider without `revoke`: the test
    /// fakes); `detail` says what it cannot do. The caller keeps the work queued and retries. (A
    /// call whose task panicked or was cancelled is the scheduler's `CallError`, not this.) The
    /// text is the one this variant had as `Internal`, kept as it was.
    #[error("{api}: the call ended without an answer ({detail}); retrying")]
    Unsupported { api: &'static str, detail: &'static str },
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

/// What a failed call says about retrying it, as the API layer knows it; the scheduler turns it
/// into its retry class (`scheduler::timing::retry_class`), so this layer never names the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network trouble, a server error or throttling: worth retrying soon; the server may say when.
    Transient { after: Option<Duration> },
    /// The request was rejected because the host clock is off.
    ClockSkew,
    /// Retrying will not help until something changes (keys, permissions, parameters).
    Permanent,
}

impl ProviderError {
    /// How this failure should be retried.
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Transport { .. }
            | ProviderError::Timeout { .. }
            | ProviderError::Malformed { .. }
            | ProviderError::Unsupported { .. } => ErrorClass::Transient { after: None },
            ProviderError::Api { kind: ApiErrorKind::Transient, retry_after, .. } => {
                ErrorClass::Transient { after: *retry_after }
            }
            // The host clock may be corrected any second: retry soon, not in a quarter hour.
            ProviderError::Api { kind: ApiErrorKind::ClockSkew, .. } => ErrorClass::ClockSkew,
            // Each try creates a credential (revoked, but created): as slowly as a refusal.
            ProviderError::Api { .. } | ProviderError::Credentials(_) | ProviderError::Unusable { .. } => {
                ErrorClass::Permanent
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(e.class(), ErrorClass::Transient { after: Some(Duration::from_secs(3)) });
        assert_eq!(e.to_string(), "SLS CreateTicket: HTTP 503 ServerBusy: busy (request id r1)");
    }

    #[test]
    fn a_call_a_provider_does_not_make_is_unsupported_keeps_its_text_and_is_retried() {
        let e = ProviderError::Unsupported {
            api: crate::apis::tcr::DELETE_INSTANCE_TOKEN,
            detail: "this provider cannot revoke tokens",
        };
        assert_eq!(
            e.to_string(),
            "TCR DeleteInstanceToken: the call ended without an answer (this provider cannot revoke tokens); retrying"
        );
        assert_eq!(e.class(), ErrorClass::Transient { after: None });
    }
}
