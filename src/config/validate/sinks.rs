//! A ticket's `[[tickets.sinks]]`: file sinks (format, mode, env names, templates), docker-config sinks.

use crate::apis::kinds::Kind;
use crate::config::check::{Checker, names_a_file};
use crate::config::defaults::{DEFAULT_ENV_PREFIX, DEFAULT_SINK_MODE};
use crate::config::locate::KeyPath;
use crate::config::problem::Problem;
use crate::config::raw::RawSink;
use crate::config::sink::{DockerConfigSink, EnvNames, FileFormat, FileSink, SinkSpec};
use crate::config::template::{SinkTemplate, TemplateOrigin};

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
    let template_keys = [
        ("template", rs.template.is_some()),
        ("template_text", rs.template_text.is_some()),
        ("template_env", rs.template_env.is_some()),
    ];
    if docker {
        let set = [("format", &rs.format)].into_iter().chain(env_keys).map(|(key, value)| (key, value.is_some()));
        for (key, _) in set.chain(template_keys).filter(|(_, set)| *set) {
            c.report(&at.key(key), "does not apply to type = \"docker-config\"");
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
        None | Some("json") => Some(FileFormat::Json),
        Some("token") => Some(FileFormat::Token),
        Some("url") => Some(FileFormat::Url),
        Some("env") => Some(FileFormat::Env),
        Some("template") => template(c, rs, at, kind).map(FileFormat::Template),
        Some(other) => {
            c.report(
                &at.key("format"),
                format!("unknown format `{other}` (expected json, token, url, env or template)"),
            );
            None
        }
    };
    if rs.format.as_deref() != Some("template") {
        for (key, _) in template_keys.into_iter().filter(|(_, set)| *set) {
            c.report(&at.key(key), "applies only to format = \"template\"");
        }
    }
    if format != Some(FileFormat::Env) {
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
    Some(SinkSpec::File(FileSink { path: path?, format: format?, mode, env_names }))
}

/// The template of a `format = "template"` sink: `template` (a file, read now, so a reload reads
/// it again) or `template_text`, exactly one; `template_env` the names `env.NAME` may read. The
/// template is rendered once over a sample of the kind's fields, so an unknown field, a field
/// the kind lacks, a syntax error or a misused filter is a problem now, at the template's line.
fn template(
    c: &mut Checker<'_>,
    rs: &RawSink,
    at: &KeyPath,
    kind: Option<Kind>,
) -> Option<std::sync::Arc<SinkTemplate>> {
    let mut env: Vec<String> = Vec::new();
    let mut env_ok = true;
    for name in rs.template_env.iter().flatten() {
        if !env_name_ok(name) {
            c.report(
                &at.key("template_env"),
                format!("`{name}` is not an environment variable name (letters, digits, `_`)"),
            );
            env_ok = false;
        } else if !env.contains(name) {
            env.push(name.clone());
        }
    }
    let (text, origin) = match (&rs.template, &rs.template_text) {
        (Some(_), Some(_)) => {
            c.report(&at.key("template_text"), "give either `template` (a file) or `template_text`, not both");
            return None;
        }
        (None, None) => {
            c.report(&at.key("format"), "format = \"template\" needs `template` (a file) or `template_text`");
            return None;
        }
        (Some(path_text), None) => {
            let path = c.path(path_text, &at.key("template"))?;
            match c.templates.read(&path) {
                Ok(text) => (text, TemplateOrigin::File(path)),
                Err(e) => {
                    c.report(&at.key("template"), format!("cannot read the template {}: {e}", path.display()));
                    return None;
                }
            }
        }
        (None, Some(text)) => {
            let key = at.key("template_text").to_string();
            (std::sync::Arc::from(text.as_str()), TemplateOrigin::Inline { file: c.file.clone(), key })
        }
    };
    let template = SinkTemplate { text, origin, env: env.into() };
    // A ticket of no known kind is refused already; its template is checked with it once it has one.
    let kind = kind?;
    if let Err(e) = c.templates.check(&template, kind) {
        let problem = match &template.origin {
            TemplateOrigin::File(path) => {
                let at = at.key("template");
                let set_at = match c.line(&at) {
                    Some(line) => format!("{}:{line}", c.file),
                    None => c.file.clone(),
                };
                Problem {
                    file: path.display().to_string(),
                    line: e.line,
                    column: None,
                    key: at.to_string(),
                    message: format!("{} (the template of {set_at})", e.message),
                }
            }
            TemplateOrigin::Inline { .. } => {
                let at = at.key("template_text");
                let inside = e.line.map(|l| format!("template line {l}: ")).unwrap_or_default();
                let position = c.position(&at);
                Problem {
                    file: c.file.clone(),
                    line: position.map(|p| p.0),
                    column: position.map(|p| p.1),
                    key: at.to_string(),
                    message: format!("{inside}{}", e.message),
                }
            }
        };
        c.problems.push(problem);
        return None;
    }
    env_ok.then(|| std::sync::Arc::new(template))
}
