//! Helpers every API client uses to read answers: JSON, answer fields, transport errors, nonces.

use serde::Deserialize;

use crate::apis::error::ProviderError;

/// Parse a JSON answer.
pub(crate) fn parse<'a, T: Deserialize<'a>>(api: &'static str, body: &'a [u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|e| ProviderError::Malformed {
        api,
        detail: format!("not the expected JSON ({})", crate::secret::json_error_without_values(&e)),
    })
}

/// A token, ticket or user name from an answer: present, non-empty, of sane size, and free of
/// control characters. A newline or NUL would go raw into a `token` sink and change what an
/// `env` sink means; the answer is refused as malformed (retried with backoff, the last good
/// token kept). The error names the field and the character, never the value.
pub(crate) fn nonempty(api: &'static str, value: Option<String>, field: &str) -> Result<String, ProviderError> {
    let malformed = |detail: String| ProviderError::Malformed { api, detail };
    let value = value
        .filter(|v| !v.is_empty() && v.len() <= 16 * 1024)
        .ok_or_else(|| malformed(format!("no `{field}` in the answer")))?;
    if let Some((at, c)) = value.chars().enumerate().find(|(_, c)| c.is_control()) {
        return Err(malformed(format!(
            "`{field}` in the answer holds a control character (U+{:04X}) at character {}",
            u32::from(c),
            at + 1
        )));
    }
    Ok(value)
}

/// A user name that goes with a token (TCR `Username`): as [`nonempty`], and without `:`, which
/// would end the name early in a docker `auth` entry (`base64(user:password)`).
pub(crate) fn username(api: &'static str, value: Option<String>, field: &str) -> Result<String, ProviderError> {
    let value = nonempty(api, value, field)?;
    match value.chars().position(|c| c == ':') {
        Some(at) => Err(ProviderError::Malformed {
            api,
            detail: format!("`{field}` in the answer holds a `:` at character {}", at + 1),
        }),
        None => Ok(value),
    }
}

/// A transport failure, without the URL (it may carry a ticket in its query).
pub(crate) fn transport(api: &'static str, endpoint: &str, e: reqwest::Error) -> ProviderError {
    let e = e.without_url();
    if e.is_timeout() {
        ProviderError::Timeout { api, endpoint: endpoint.to_string(), timeout: crate::http::REQUEST_TIMEOUT }
    } else {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            detail = format!("{detail}: {s}");
            source = s.source();
        }
        ProviderError::Transport { api, endpoint: endpoint.to_string(), detail }
    }
}

/// A fresh request nonce: 32 random hex digits.
pub(crate) fn nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
