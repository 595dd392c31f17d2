//! A ticket's `[[tickets.sinks]]`: file sinks (format, mode, env names) and docker-config sinks.

use crate::apis::kinds::Kind;
use crate::config::check::{Checker, names_a_file};
use crate::config::defaults::{DEFAULT_ENV_PREFIX, DEFAULT_SINK_MODE};
use crate::config::locate::KeyPath;
use crate::config::raw::RawSink;
use crate::config::sink::{DockerConfigSink, EnvNames, FileFormat, FileSink, SinkSpec};

pub(super) fn sinks(
    c: &mut Checker<'_>,
    raw: &[RawSink],
    at: &KeyPath,
    kind: Option<Kind>,
    registry: Option<&str>,
) -> Option<Vec<SinkSpec>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, rs) in raw.iter().enumerate() {
        let at = at.index(i);
        match sink(c, rs, &at, kind, registry) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn env_name_ok(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn sink(
    c: &mut Checker<'_>,
    rs: &RawSink,
    at: &KeyPath,
    kind: Option<Kind>,
    registry: Option<&str>,
) -> Option<SinkSpec> {
    // Without a known type the sink is refused, but its other keys are still checked (as a file's).
    let (docker, typed) = match c.required(&rs.kind, &at.key("type")) {
        Some("file") => (false, true),
        Some("docker-config") => (true, true),
        Some(other) => {
            c.report(&at.key("type"), format!("unknown sink type `{other}` (expected file or docker-config)"));
            (false, false)
        }
        None => (false, false),
    };
    let path = match c.required(&rs.path, &at.key("path")) {
        Some(text) => c.path(text, &at.key("path")).filter(|_| {
            let file = names_a_file(text);
            if !file {
                c.report(&at.key("path"), format!("`{text}` names a directory: give the sink's file path"));
            }
            file
        }),
        None => None,
    };
    let mode = match &rs.mode {
        None => DEFAULT_SINK_MODE,
        Some(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 && m & 0o400 != 0 => m,
            _ => {
                c.report(
                    &at.key("mode"),
                    format!("`{text}` is not an octal file mode the owner can read, e.g. \"0600\""),
                );
                DEFAULT_SINK_MODE
            }
        },
    };
    let env_keys = [
        ("env_prefix", &rs.env_prefix),
        ("env_token", &rs.env_token),
        ("env_username", &rs.env_username),
        ("env_expires_at", &rs.env_expires_at),
    ];
    if docker {
        for (key, value) in [("format", &rs.format)].into_iter().chain(env_keys) {
            if value.is_some() {
                c.report(&at.key(key), "does not apply to type = \"docker-config\"");
            }
        }
        let registry = match (kind, registry) {
            (Some(k), Some(r)) if k.docker_config() => Some(r.to_string()),
            (Some(k), None) if k.docker_config() => {
                c.report(&at.key("type"), "a docker-config sink needs the ticket's `registry` (the registry host)");
                None
            }
            (Some(other), _) => {
                let needs = Kind::names_of(Kind::docker_config);
                c.report(
                    &at.key("type"),
                    format!("a docker-config sink needs a {needs} ticket, not {}", other.as_str()),
                );
                None
            }
            (None, _) => None,
        };
        return Some(SinkSpec::DockerConfig(DockerConfigSink { path: path?, registry: registry?, mode }));
    }
    let format = match rs.format.as_deref() {
        None | Some("json") => FileFormat::Json,
        Some("token") => FileFormat::Token,
        Some("url") => FileFormat::Url,
        Some("env") => FileFormat::Env,
        Some(other) => {
            c.report(&at.key("format"), format!("unknown format `{other}` (expected json, token, url or env)"));
            FileFormat::Json
        }
    };
    if format != FileFormat::Env {
        for (key, value) in env_keys {
            if value.is_some() {
                c.report(&at.key(key), "applies only to format = \"env\"");
            }
        }
    }
    for (key, value) in env_keys {
        if let Some(v) = value
            && !(env_name_ok(v) || key == "env_prefix" && v.is_empty())
        {
            c.report(&at.key(key), format!("`{v}` is not an environment variable name (letters, digits, `_`)"));
        }
    }
    let prefix = rs.env_prefix.as_deref().unwrap_or(DEFAULT_ENV_PREFIX);
    // A ticket of no known kind is refused (only its problems are reported): its names take the
    // first registered kind's defaults.
    let mut env_names = EnvNames::defaults(prefix, kind.unwrap_or(Kind::ALL[0]));
    if let Some(v) = &rs.env_token {
        env_names.token = v.clone();
    }
    if let Some(v) = &rs.env_username {
        env_names.username = Some(v.clone());
    }
    if let Some(v) = &rs.env_expires_at {
        env_names.expires_at = Some(v.clone());
    }
    typed.then_some(())?;
    Some(SinkSpec::File(FileSink { path: path?, format, mode, env_names }))
}
