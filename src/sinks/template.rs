//! The `template` file format: a sink's checked template rendered over the ticket's current
//! token and the environment variables its `template_env` allows, read now.
//!
//! The rendered bytes hold the token: they are built in a buffer of exactly their size, zeroed
//! when dropped, and never logged. (The engine's own copies of the field values, made while
//! rendering, are freed without being zeroed: minijinja keeps strings in its own `Value`s.)

use minijinja::value::Value;
use zeroize::Zeroizing;

use crate::clock::rfc3339;
use crate::config::TicketSpec;
use crate::config::template::{Context, SinkTemplate, TemplateError, has_field};
use crate::token::Current;

/// What `template` renders for `spec`'s `current` token; an error (an allowed variable unset
/// now, say) names the template's line and the variable, never a value.
pub(crate) fn render(
    template: &SinkTemplate,
    spec: &TicketSpec,
    current: &Current,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    crate::config::template::render(template, context(template, spec, current))
}

/// The fields of `spec`'s kind with `current`'s values (a field it has no value for yet is left
/// out, so naming it is an error), and the allowed variables as the daemon's environment holds
/// them now.
fn context(template: &SinkTemplate, spec: &TicketSpec, current: &Current) -> Context {
    let kind = spec.kind();
    let token = current.token.value.expose();
    let mut fields: Vec<(&'static str, Value)> = vec![
        ("name", Value::from(&*spec.name)),
        ("kind", Value::from(kind.as_str())),
        ("access_token", Value::from(token)),
        ("token", Value::from(token)),
        ("expires_at", Value::from(rfc3339(current.token.expires_at))),
        ("generation", Value::from(current.generation)),
    ];
    if has_field(kind, "ticket")
        && let Some(ticket) = &current.ticket
    {
        fields.push(("ticket", Value::from(ticket.value.expose())));
        fields.push(("ticket_expires_at", Value::from(rfc3339(ticket.expires_at))));
    }
    if has_field(kind, "url")
        && let Some(url) = current.ticket.as_ref().and_then(|t| spec.api.share_url(t.value.expose()))
    {
        fields.push(("url", Value::from(url.as_str())));
    }
    if has_field(kind, "username")
        && let Some(username) = current.token.username.as_deref()
    {
        fields.push(("username", Value::from(username)));
    }
    let env = template
        .env
        .iter()
        .map(|name| {
            let value = std::env::var_os(name).and_then(|v| v.into_string().ok()).map(Value::from);
            (name.clone(), value)
        })
        .collect();
    Context::new(kind, fields, env)
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
