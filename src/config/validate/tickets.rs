//! One `[[tickets]]` section's shared keys: name, kind, credentials, consumers, the keys that do
//! not apply to its kind. The kind's own keys are checked by its API's section
//! (`apis/<kind>/section.rs`, through the registry's [`validate::validate`]).

use std::collections::BTreeMap;

use super::hooks::hook;
use super::sinks::sinks;
use crate::apis::kinds::{Kind, api_keys};
use crate::apis::validate::{self, TicketContext};
use crate::config::check::{Checker, valid_name};
use crate::config::cluster::scope;
use crate::config::credential::CredentialSpec;
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
    clustered: bool,
) -> Option<(String, TicketSettings)> {
    let scope = scope(c, rt.scope.as_deref(), &at.key("scope"), clustered);
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
        Some(name) => {
            let kind = Kind::from_name(name);
            if kind.is_none() {
                c.report(&at.key("kind"), format!("unknown kind `{name}` (expected {})", Kind::names()));
            }
            kind
        }
        None => None,
    };
    let sinks = sinks(c, &rt.sinks, &at.key("sinks"), kind, rt.api.text("registry").as_deref());
    let consumers = consumers(c, rt, at);
    let kind = kind?;
    foreign_keys(c, rt, at, kind);
    let needs = kind.vendor();
    if vendor.is_some_and(|v| v != needs) {
        c.report(&at.key("credentials"), format!("{} ticket needs {} credentials", kind.a(), needs.as_str()));
    }
    let url = |sink: &SinkSpec| matches!(sink, SinkSpec::File(f) if f.format == FileFormat::Url);
    let context = TicketContext { url_sink: sinks.iter().flatten().any(url) };
    let api = validate::validate(kind, c, &rt.api, at, &context);
    if !kind.url_format() {
        for (i, sink) in sinks.iter().flatten().enumerate() {
            if url(sink) {
                c.report(
                    &at.key("sinks").index(i).key("format"),
                    format!(
                        "the `url` format is for {} tickets, not {}",
                        Kind::names_of(Kind::url_format),
                        kind.as_str()
                    ),
                );
            }
        }
    }
    Some((
        name?,
        TicketSettings { credentials: cred_name?, api: api?, sinks: sinks?, consumers: consumers?, scope: scope? },
    ))
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

/// Report every API key that is set but is not one of `kind`'s, in the registry's order.
fn foreign_keys(c: &mut Checker<'_>, rt: &RawTicket, at: &KeyPath, kind: Kind) {
    for key in api_keys() {
        if rt.api.is_set(key.name) && !kind.keys().iter().any(|k| k.name == key.name) {
            c.report(&at.key(key.name), format!("does not apply to kind = \"{}\"", kind.as_str()));
        }
    }
}
