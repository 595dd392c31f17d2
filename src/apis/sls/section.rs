//! The keys of a `kind = "sls"` ticket (the SLS console ticket API).

use std::time::Duration;

use crate::apis::section::RawKeys;
use crate::apis::sls::spec::{
    DEFAULT_SLS_TICKET_LIFETIME, DEFAULT_SLS_TOKEN_LIFETIME, MAX_SLS_TICKET_LIFETIME, MAX_SLS_TOKEN_LIFETIME,
    SLS_TICKET_HOSTS, SLS_TICKET_REGIONS, SlsSpec,
};
use crate::apis::validate::{TicketContext, Validate};
use crate::config::check::{Checker, endpoint};
use crate::config::defaults::MIN_LIFETIME;
use crate::config::locate::KeyPath;
use crate::http::Endpoint;
use crate::signing::sls::V1Mac;

impl Validate for SlsSpec {
    fn validate(c: &mut Checker<'_>, keys: &RawKeys, at: &KeyPath, ticket: &TicketContext) -> Option<SlsSpec> {
        let endpoint = match c.required(keys.text("endpoint"), &at.key("endpoint")) {
            Some(text) => endpoint(c, text, &at.key("endpoint")).filter(|e| match sls_host_problem(e) {
                Some(problem) => {
                    c.report(&at.key("endpoint"), problem);
                    false
                }
                None => true,
            }),
            None => None,
        };
        let ticket_lifetime = c.duration(
            keys.text("ticket_lifetime"),
            &at.key("ticket_lifetime"),
            DEFAULT_SLS_TICKET_LIFETIME,
            MIN_LIFETIME,
            MAX_SLS_TICKET_LIFETIME,
            "SLS (expirationTime)",
        );
        // A default follows the ticket: only a value written in the file can be out of range.
        let token_lifetime = c.duration(
            keys.text("token_lifetime"),
            &at.key("token_lifetime"),
            ticket_lifetime.map_or(DEFAULT_SLS_TOKEN_LIFETIME, SlsSpec::default_token_lifetime),
            MIN_LIFETIME,
            MAX_SLS_TOKEN_LIFETIME,
            "SLS (accessTokenExpirationTime)",
        );
        // The other keys are checked even when a lifetime is refused.
        let lifetimes = ticket_lifetime.zip(token_lifetime).and_then(|(ticket_lifetime, token_lifetime)| {
            if token_lifetime > ticket_lifetime {
                let ticket_at = at.key("ticket_lifetime");
                let given = c.given(keys.text("ticket_lifetime").is_some(), &ticket_at);
                c.report(
                    &at.key("token_lifetime"),
                    format!(
                        "{} is longer than ticket_lifetime ({}, {given}); SLS caps a token at its ticket",
                        humantime::format_duration(token_lifetime),
                        humantime::format_duration(ticket_lifetime)
                    ),
                );
            }
            let ticket_renew_before = c.duration_with(
                keys.text("ticket_renew_before"),
                &at.key("ticket_renew_before"),
                SlsSpec::default_renew_before(ticket_lifetime, token_lifetime),
                Duration::from_secs(1),
                SlsSpec::max_renew_before(ticket_lifetime),
                |c| {
                    let given = c.given(keys.text("ticket_lifetime").is_some(), &at.key("ticket_lifetime"));
                    format!("a third of ticket_lifetime ({}, {given})", humantime::format_duration(ticket_lifetime))
                },
            )?;
            Some((ticket_lifetime, token_lifetime, ticket_renew_before))
        });
        let signature = match keys.text("signature_method").as_deref() {
            None | Some("hmac-sha256") => V1Mac::HmacSha256,
            Some("hmac-sha1") => V1Mac::HmacSha1,
            Some(other) => {
                c.report(
                    &at.key("signature_method"),
                    format!("unknown signature method `{other}` (expected hmac-sha256 or hmac-sha1)"),
                );
                V1Mac::HmacSha256
            }
        };
        if let Some(url) = keys.text("console_url") {
            match reqwest::Url::parse(url) {
                Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                _ => c.report(&at.key("console_url"), format!("`{url}` is not an http(s) URL")),
            }
        }
        let mut console_params = Vec::new();
        for (key, value) in keys.table("console_params").iter().flatten() {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    c.report(
                        &at.key("console_params").key(key),
                        format!("must be a string, boolean or integer, not {}", other.type_str()),
                    );
                    continue;
                }
            };
            if key == "sls_ticket" || key == "supportRefreshToken" {
                c.report(&at.key("console_params").key(key), "is set by ticketd itself");
            }
            console_params.push((key.clone(), text));
        }
        if ticket.url_sink && keys.text("console_url").is_none() {
            c.report(&at.key("console_url"), "is required by the `url` sink format");
        }
        let (ticket_lifetime, token_lifetime, ticket_renew_before) = lifetimes?;
        Some(SlsSpec {
            endpoint: endpoint?,
            ticket_lifetime,
            token_lifetime,
            ticket_renew_before,
            signature,
            console_url: keys.text("console_url").clone(),
            console_params,
        })
    }
}

/// Why an Alibaba SLS host cannot issue tickets: only the Shanghai and Singapore endpoints serve
/// `CreateTicket` and `RefreshToken`, in their public (`<region>.log.aliyuncs.com`), intranet
/// (`<region>-intranet.`) or cross-region (`<region>-share.`) forms, and without a project prefix.
/// Loopback and other hosts (a proxy, the emulator) are left alone.
fn sls_host_problem(endpoint: &Endpoint) -> Option<String> {
    let host = endpoint.base.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let accepted = format!(
        "SLS issues tickets (CreateTicket, RefreshToken) only at the endpoint of China (Shanghai) or \
         Singapore: use {} or {} (or the -intranet form of either from inside Alibaba Cloud); the ticket \
         then works for projects in every region",
        SLS_TICKET_HOSTS[0], SLS_TICKET_HOSTS[1]
    );
    if host == "log-global.aliyuncs.com" || host == "log.aliyuncs.com" {
        return Some(format!("`{host}` is not a region's SLS endpoint; {accepted}"));
    }
    let prefix = host.strip_suffix(".log.aliyuncs.com")?;
    let (project, label) = match prefix.rsplit_once('.') {
        Some((project, label)) => (Some(project), label),
        None => (None, prefix),
    };
    let (region, form) = ["-intranet", "-share"]
        .iter()
        .find_map(|form| label.strip_suffix(form).map(|region| (region, *form)))
        .unwrap_or((label, ""));
    if !SLS_TICKET_REGIONS.contains(&region) {
        return Some(format!("`{host}` is the SLS endpoint of region {region}; {accepted}"));
    }
    project.map(|project| {
        format!(
            "`{host}` names a project (`{project}.`), which CreateTicket and RefreshToken do not take: use \
             {region}{form}.log.aliyuncs.com"
        )
    })
}
