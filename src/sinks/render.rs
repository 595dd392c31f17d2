//! What consumers read: the JSON view of a ticket, the raw token, the SLS share URL.
//! Derived on demand from the held secrets; nothing here is stored.

use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::{ApiSpec, EnvNames, FileFormat, FileSink, TicketSpec};
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
    let ApiSpec::Sls(sls) = &spec.api else { return None };
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

/// The bytes of a file sink.
pub fn render(file: &FileSink, spec: &TicketSpec, current: &Current) -> Vec<u8> {
    match file.format {
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
        FileFormat::Env => env(&file.env_names, current).into_bytes(),
    }
}

/// `KEY=value` lines, one per configured name. Tokens, user names and RFC 3339 times hold no
/// space, quote or newline, so no quoting is needed (systemd `EnvironmentFile=` and docker
/// `--env-file` read them the same way); anything else is single-quoted defensively.
pub fn env(names: &EnvNames, current: &Current) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        let plain = value.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'\\' | b'$' | b'`'));
        if plain {
            out.push_str(&format!("{name}={value}\n"));
        } else {
            let cleaned: String = value.chars().filter(|c| !c.is_control() && *c != '\'').collect();
            out.push_str(&format!("{name}='{cleaned}'\n"));
        }
    };
    line(&names.token, current.token.value.expose());
    if let Some(name) = &names.username {
        line(name, current.token.username.as_deref().unwrap_or(""));
    }
    if let Some(name) = &names.expires_at {
        line(name, &rfc3339(current.token.expires_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;
    use crate::config::Kind;
    use crate::secret::Secret;
    use crate::token::{ThinStr, TokenPart};

    fn current(username: Option<&str>) -> Current {
        let t = from_unix_seconds(1_700_000_000);
        Current {
            ticket: None,
            token: TokenPart {
                value: Secret::new("eyJa.eyJb.sig"),
                username: username.map(ThinStr::from),
                issued_at: t.into(),
                expires_at: (t + std::time::Duration::from_secs(3600)).into(),
            },
            generation: 3,
            refreshed_at: t.into(),
        }
    }

    #[test]
    fn env_format_writes_key_value_lines_with_default_and_custom_names() {
        let names = EnvNames::defaults("TCR_", Kind::Tcr);
        assert_eq!(
            env(&names, &current(Some("100012345678"))),
            "TCR_TOKEN=eyJa.eyJb.sig\nTCR_USERNAME=100012345678\nTCR_EXPIRES_AT=2023-11-14T23:13:20Z\n"
        );
        let names = EnvNames { token: "DSW_TOKEN".into(), username: None, expires_at: None };
        assert_eq!(env(&names, &current(None)), "DSW_TOKEN=eyJa.eyJb.sig\n");
        let dsw = EnvNames::defaults("TICKETD_", Kind::Dsw);
        assert_eq!(dsw.username, None);
        assert_eq!(dsw.token, "TICKETD_TOKEN");
    }

    #[test]
    fn env_values_with_odd_characters_are_quoted() {
        let names = EnvNames { token: "T".into(), username: Some("U".into()), expires_at: None };
        let mut c = current(Some("a b'c"));
        c.token.value = Secret::new("x");
        assert_eq!(env(&names, &c), "T=x\nU='a bc'\n");
    }
}
