//! One `[[tickets]]` section: name, kind, credentials, consumers, and the keys that do not apply to
//! its kind; the kind's own keys are checked by its API's section ([`super::sls`], [`super::dsw`],
//! [`super::tcr`]).

use std::collections::BTreeMap;

use super::dsw::{DSW_KEYS, dsw};
use super::hooks::hook;
use super::sinks::sinks;
use super::sls::{SLS_KEYS, sls};
use super::tcr::{TCR_KEYS, tcr};
use crate::apis::kinds::{ApiSpec, Kind};
use crate::config::check::{Checker, valid_name};
use crate::config::credential::{CredentialSpec, Vendor};
use crate::config::locate::KeyPath;
use crate::config::raw::{RawCredentials, RawTicket};
use crate::config::sink::{FileFormat, SinkSpec};
use crate::config::ticket::{ConsumerSpec, TicketSettings};

pub(super) fn ticket(
    c: &mut Checker<'_>,
    rt: &RawTicket,
    at: &KeyPath,
    raw_credentials: &BTreeMap<String, RawCredentials>,
    credentials: &BTreeMap<String, CredentialSpec>,
) -> Option<(String, TicketSettings)> {
    let name = c.required(&rt.name, &at.key("name")).map(str::to_string);
    if let Some(n) = &name
        && !valid_name(n)
    {
        c.report(&at.key("name"), format!("`{n}` is not a valid name: use only letters, digits, `.`, `_` and `-`"));
    }
    let cred_name = c.required(&rt.credentials, &at.key("credentials")).map(str::to_string);
    let vendor = match &cred_name {
        Some(n) if !raw_credentials.contains_key(n) => {
            c.report(&at.key("credentials"), format!("unknown credentials `{n}` (no [credentials.{n}] section)"));
            None
        }
        Some(n) => credentials.get(n).map(|spec| spec.vendor),
        None => None,
    };
    let kind = match c.required(&rt.kind, &at.key("kind")) {
        Some("sls") => Some(Kind::Sls),
        Some("dsw") => Some(Kind::Dsw),
        Some("tcr") => Some(Kind::Tcr),
        Some(other) => {
            c.report(&at.key("kind"), format!("unknown kind `{other}` (expected sls, dsw or tcr)"));
            None
        }
        None => None,
    };
    let sinks = sinks(c, &rt.sinks, &at.key("sinks"), kind, rt.registry.as_deref());
    let consumers = consumers(c, rt, at);
    let kind = kind?;
    foreign_keys(c, rt, at, kind);
    let needs = match kind {
        Kind::Sls | Kind::Dsw => Vendor::Alibaba,
        Kind::Tcr => Vendor::Tencent,
    };
    if vendor.is_some_and(|v| v != needs) {
        c.report(
            &at.key("credentials"),
            format!(
                "a{} {} ticket needs {} credentials",
                if kind == Kind::Sls { "n" } else { "" },
                kind.as_str(),
                needs.as_str()
            ),
        );
    }
    let api = match kind {
        Kind::Sls => sls(c, rt, at, &sinks).map(ApiSpec::Sls),
        Kind::Dsw => dsw(c, rt, at).map(ApiSpec::Dsw),
        Kind::Tcr => tcr(c, rt, at).map(ApiSpec::Tcr),
    };
    if kind != Kind::Sls {
        for (i, sink) in sinks.iter().flatten().enumerate() {
            if let SinkSpec::File(f) = sink
                && f.format == FileFormat::Url
            {
                c.report(
                    &at.key("sinks").index(i).key("format"),
                    format!("the `url` format is for sls tickets, not {}", kind.as_str()),
                );
            }
        }
    }
    Some((name?, TicketSettings { credentials: cred_name?, api: api?, sinks: sinks?, consumers: consumers? }))
}

fn consumers(c: &mut Checker<'_>, rt: &RawTicket, at: &KeyPath) -> Option<ConsumerSpec> {
    let on_change = match &rt.on_change {
        None => None,
        Some(raw) => Some(hook(c, raw, &at.key("on_change"))?),
    };
    Some(ConsumerSpec {
        allow_uids: rt.allow_uids.clone().unwrap_or_default(),
        allow_gids: rt.allow_gids.clone().unwrap_or_default(),
        required: rt.required.unwrap_or(true),
        on_change,
    })
}

/// Report every key that is set but does not apply to `kind`.
fn foreign_keys(c: &mut Checker<'_>, rt: &RawTicket, at: &KeyPath, kind: Kind) {
    let set: [(&str, bool); 15] = [
        ("endpoint", rt.endpoint.is_some()),
        ("ticket_lifetime", rt.ticket_lifetime.is_some()),
        ("token_lifetime", rt.token_lifetime.is_some()),
        ("ticket_renew_before", rt.ticket_renew_before.is_some()),
        ("signature_method", rt.signature_method.is_some()),
        ("console_url", rt.console_url.is_some()),
        ("console_params", rt.console_params.is_some()),
        ("region", rt.region.is_some()),
        ("network", rt.network.is_some()),
        ("instance_id", rt.instance_id.is_some()),
        ("token_type", rt.token_type.is_some()),
        ("audience", rt.audience.is_some()),
        ("registry_id", rt.registry_id.is_some()),
        ("description", rt.description.is_some()),
        ("registry", rt.registry.is_some()),
    ];
    let allowed = match kind {
        Kind::Sls => SLS_KEYS,
        Kind::Dsw => DSW_KEYS,
        Kind::Tcr => TCR_KEYS,
    };
    for (key, present) in set {
        if present && !allowed.contains(&key) {
            c.report(&at.key(key), format!("does not apply to kind = \"{}\"", kind.as_str()));
        }
    }
}
