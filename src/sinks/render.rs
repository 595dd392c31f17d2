//! What consumers read: the JSON view of a ticket, the raw token, the SLS share URL.
//! Derived on demand from the held secrets; nothing here is stored.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::{ApiSpec, FileFormat, TicketSpec};
use crate::token::Current;

/// The JSON document of a ticket's current token (file sink `json`, socket API).
#[derive(Serialize)]
pub struct TokenView<'a> {
    pub name: &'a str,
    pub kind: &'static str,
    pub ticket: Option<&'a str>,
    pub access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    pub url: Option<String>,
    pub token_expires_at: String,
    pub ticket_expires_at: Option<String>,
    pub refreshed_at: String,
    pub generation: u64,
}

impl<'a> TokenView<'a> {
    pub fn new(spec: &'a TicketSpec, current: &'a Current) -> Self {
        TokenView {
            name: &spec.name,
            kind: spec.kind().as_str(),
            ticket: current.ticket.as_ref().map(|t| t.value.expose()),
            access_token: current.token.value.expose(),
            username: current.token.username.as_deref(),
            url: share_url(spec, current),
            token_expires_at: rfc3339(current.token.expires_at),
            ticket_expires_at: current.ticket.as_ref().map(|t| rfc3339(t.expires_at)),
            refreshed_at: rfc3339(current.refreshed_at),
            generation: current.generation,
        }
    }
}

/// The SLS share URL: `console_url` + `sls_ticket=<ticket>&supportRefreshToken=true` + `console_params`.
pub fn share_url(spec: &TicketSpec, current: &Current) -> Option<String> {
    let ApiSpec::Sls(sls) = &spec.api;
    let base = sls.console_url.as_deref()?;
    let ticket = current.ticket.as_ref()?;
    let mut url = url::Url::parse(base).ok()?;
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("sls_ticket", ticket.value.expose());
        query.append_pair("supportRefreshToken", "true");
        for (k, v) in &sls.console_params {
            query.append_pair(k, v);
        }
    }
    Some(url.into())
}

/// The bytes of a file sink in `format`.
pub fn render(format: FileFormat, spec: &TicketSpec, current: &Current) -> Vec<u8> {
    match format {
        FileFormat::Json => {
            let mut json = serde_json::to_vec_pretty(&TokenView::new(spec, current)).expect("a token view serializes");
            json.push(b'\n');
            json
        }
        FileFormat::Token => current.token.value.expose().as_bytes().to_vec(),
        FileFormat::Url => {
            let mut url = share_url(spec, current).unwrap_or_default().into_bytes();
            url.push(b'\n');
            url
        }
    }
}
