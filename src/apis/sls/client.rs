//! Alibaba Cloud SLS 2020-12-30 calls: `CreateTicket`, `RefreshToken` (spec §1).

use std::time::Duration;

use serde::Deserialize;

use crate::apis::answer::{nonempty, parse, transport};
use crate::apis::error::{ApiErrorKind, ProviderError};
use crate::apis::operation::Operation;
use crate::apis::sls::spec::SlsSpec;
use crate::clock::Clock;
use crate::credentials::Credentials;
use crate::secret::{Secret, scrub};
use crate::signing::sls::{self as signing, Request, SigningKey};
use crate::token::{Issued, TicketPart, TokenPart};

pub const CREATE_TICKET: &str = "SLS CreateTicket";
pub const REFRESH_TOKEN: &str = "SLS RefreshToken";

#[derive(Deserialize)]
struct TicketBody {
    ticket: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(rename = "accessToken")]
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
}

/// Make one SLS call.
pub async fn call(
    http: &reqwest::Client,
    clock: &dyn Clock,
    spec: &SlsSpec,
    op: Operation,
    credentials: &Credentials,
) -> Result<Issued, ProviderError> {
    let token_secs = spec.token_lifetime.as_secs().to_string();
    let ticket_secs = spec.ticket_lifetime.as_secs().to_string();
    let (api, path, query): (&'static str, &str, Vec<(&str, &str)>) = match &op {
        Operation::Mint => (
            CREATE_TICKET,
            "/tickets",
            vec![("accessTokenExpirationTime", &token_secs), ("expirationTime", &ticket_secs)],
        ),
        Operation::Refresh { ticket } => (
            REFRESH_TOKEN,
            "/token/refresh",
            vec![("accessTokenExpirationTime", &token_secs), ("ticket", ticket.expose())],
        ),
    };
    let sent_at = clock.now();
    let request = Request { method: "POST", path, query: &query, body: b"" };
    let key = SigningKey {
        access_key_id: credentials.access_key_id.expose(),
        access_key_secret: credentials.access_key_secret.expose(),
        security_token: credentials.security_token.as_ref().map(Secret::expose),
    };
    let headers = signing::v1_headers(&request, &key, spec.signature, sent_at);

    let mut url = spec.endpoint.url(path);
    url.query_pairs_mut().extend_pairs(query.iter());
    let mut builder = http.post(url).body(Vec::new());
    for (name, value) in &headers {
        builder = builder.header(*name, value);
    }
    let endpoint = spec.endpoint.to_string();
    let response = builder.send().await.map_err(|e| transport(api, &endpoint, e))?;
    let status = response.status();
    let request_id = response.headers().get("x-log-requestid").and_then(|v| v.to_str().ok()).map(|v| scrub(v, &[]));
    let body = crate::http::read_limited(response)
        .await
        .map_err(|e| ProviderError::Malformed { api, detail: e.to_string() })?;
    let secrets: Vec<&str> = match &op {
        Operation::Refresh { ticket } => vec![ticket.expose(), key.access_key_secret],
        Operation::Mint => vec![key.access_key_secret],
    };
    if !status.is_success() {
        return Err(api_error(api, status.as_u16(), &body, request_id, &secrets));
    }
    let value = issued(api, &op, &body)?;
    match op {
        Operation::Mint => Ok(Issued::Ticket(TicketPart {
            value: Secret::new(value),
            issued_at: sent_at.into(),
            expires_at: (sent_at + spec.ticket_lifetime).into(),
        })),
        Operation::Refresh { .. } => Ok(Issued::Token(TokenPart {
            value: Secret::new(value),
            username: None,
            token_id: None,
            issued_at: sent_at.into(),
            expires_at: (sent_at + spec.token_lifetime).into(),
        })),
    }
}

/// Classify an SLS error answer (spec §1.4).
pub fn api_error(
    api: &'static str,
    status: u16,
    body: &[u8],
    request_id: Option<String>,
    secrets: &[&str],
) -> ProviderError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|b| b.error_code.clone()).unwrap_or_default();
    let message = parsed.as_ref().and_then(|b| b.error_message.clone()).unwrap_or_else(|| {
        if body.is_empty() { "(empty answer)".to_string() } else { String::from_utf8_lossy(body).into_owned() }
    });
    let kind = classify(status, &code);
    ProviderError::Api {
        api,
        status,
        code: scrub(if code.is_empty() { "-" } else { &code }, secrets),
        message: scrub(&message, secrets),
        request_id,
        kind,
        retry_after: None::<Duration>,
    }
}

pub fn classify(status: u16, code: &str) -> ApiErrorKind {
    match code {
        "RequestTimeExpired" => ApiErrorKind::ClockSkew,
        "InternalServerError" | "ServerBusy" | "RequestTimeout" | "ServiceUnavailable" => ApiErrorKind::Transient,
        c if c.starts_with("Throttl") || c.contains("QuotaExceed") => ApiErrorKind::Transient,
        _ if status >= 500 || status == 429 || status == 408 => ApiErrorKind::Transient,
        _ => ApiErrorKind::Permanent,
    }
}

/// The ticket or token of a success answer (a control character in it is a malformed answer).
fn issued(api: &'static str, op: &Operation, body: &[u8]) -> Result<String, ProviderError> {
    match op {
        Operation::Mint => nonempty(api, parse::<TicketBody>(api, body)?.ticket, "ticket"),
        Operation::Refresh { .. } => nonempty(api, parse::<TokenBody>(api, body)?.access_token, "accessToken"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #16 item 14: a ticket or token with a newline or NUL is a malformed answer.
    #[test]
    fn issue_16_a_ticket_or_token_with_a_control_character_is_malformed() {
        let refresh = Operation::Refresh { ticket: Secret::new("t") };
        for (op, api, body) in [
            (&Operation::Mint, CREATE_TICKET, r#"{"ticket":"eyJa\nb"}"#),
            (&Operation::Mint, CREATE_TICKET, r#"{"ticket":"eyJa\u0000b"}"#),
            (&refresh, REFRESH_TOKEN, r#"{"accessToken":"eyJa\r\nX: 1"}"#),
        ] {
            let e = issued(api, op, body.as_bytes()).unwrap_err();
            assert!(matches!(e, ProviderError::Malformed { .. }), "{e}");
            assert!(e.to_string().contains("in the answer holds a control character"), "{e}");
            assert!(!e.to_string().contains("eyJa"), "{e}");
        }
        assert_eq!(issued(CREATE_TICKET, &Operation::Mint, br#"{"ticket":"eyJa.b"}"#).unwrap(), "eyJa.b");
    }

    #[test]
    fn error_answers_are_classified_and_scrubbed() {
        let body =
            br#"{"errorCode":"SignatureNotMatch","errorMessage":"signature abc not match for ticket eyJsecretticket"}"#;
        let e = api_error(REFRESH_TOKEN, 401, body, Some("req-1".into()), &["eyJsecretticket"]);
        let text = e.to_string();
        assert!(text.contains("HTTP 401 SignatureNotMatch") && !text.contains("eyJsecretticket"), "{text}");
        assert!(matches!(e, ProviderError::Api { kind: ApiErrorKind::Permanent, .. }));
        let e = api_error(CREATE_TICKET, 400, br#"{"errorCode":"RequestTimeExpired","errorMessage":"x"}"#, None, &[]);
        assert!(e.is_clock_skew());
        let e = api_error(CREATE_TICKET, 503, b"<html>busy</html>", None, &[]);
        assert!(matches!(e, ProviderError::Api { kind: ApiErrorKind::Transient, .. }));
    }
}
