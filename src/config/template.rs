//! The template engine of `format = "template"` file sinks: one minijinja template, strict
//! undefined, no loader (so no `include`, `import` or `extends`), the escaping filters, and the
//! check-time render over a sample context that finds unknown fields with the template's own line.
//!
//! Pure computation: the template's text is read with the config (a file is content like the
//! config itself); values come in a [`Context`] that the caller fills. At check time that is
//! [`Context::sample`] (dummy, non-secret values); at publish time `sinks::template` fills it
//! from the ticket's current token and the allowed environment variables.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use minijinja::value::{Object, Value};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use zeroize::Zeroizing;

use crate::apis::kinds::Kind;

/// The most bytes a template file may hold.
pub(crate) const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;
/// The most bytes a template may render to.
pub(crate) const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// The most instructions one render may run (a loop over `range(…)` cannot spin for long).
const FUEL: u64 = 1_000_000;

/// Every field a template may name, each ticket kind permitting (see [`has_field`]).
pub(crate) const FIELDS: [&str; 11] = [
    "name",
    "kind",
    "ticket",
    "access_token",
    "token",
    "url",
    "username",
    "expires_at",
    "ticket_expires_at",
    "generation",
    "env",
];

/// Whether tickets of `kind` have `field`: `ticket` and `ticket_expires_at` for APIs that mint
/// from a ticket, `url` for those with a share URL, `username` for those whose tokens come with
/// one; the others for every kind.
pub(crate) fn has_field(kind: Kind, field: &str) -> bool {
    match field {
        "ticket" | "ticket_expires_at" => kind.ticket(),
        "url" => kind.url_format(),
        "username" => kind.username(),
        other => FIELDS.contains(&other),
    }
}

/// Where a template's text came from, as messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// `template = "<path>"` (resolved like every config path).
    File(PathBuf),
    /// `template_text = "..."` in the config file `file`, at key path `key`.
    Inline { file: String, key: String },
}

impl fmt::Display for TemplateOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateOrigin::File(path) => write!(f, "{}", path.display()),
            TemplateOrigin::Inline { file, key } => write!(f, "{key} of {file}"),
        }
    }
}

/// A checked template of a file sink: its text, where it came from, and the environment
/// variables it may read (`template_env`). Not a secret (what it renders is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkTemplate {
    pub text: Arc<str>,
    pub origin: TemplateOrigin,
    /// The names `env.NAME` may use (`template_env`); any other is a config error.
    pub env: Arc<[String]>,
}

/// Why a template did not parse or render: the template's line (1-based) when known, and what
/// was wrong. Never a value: a message names fields, variables and filters only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct TemplateError {
    pub line: Option<usize>,
    pub message: String,
}

/// A name a render looked up and did not find, by why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Miss {
    /// Not a field at all.
    Unknown(String),
    /// A field, but not one tickets of this kind have.
    NotOfKind(String),
    /// `env.NAME` for a name `template_env` does not list.
    EnvNotAllowed(String),
    /// `env.NAME`, allowed, but unset in the daemon's environment now.
    EnvUnset(String),
}

/// The names looked up and not found during one render, in order.
type Misses = Arc<Mutex<Vec<Miss>>>;

fn record(misses: &Misses, miss: Miss) {
    let mut misses = misses.lock().expect("template misses");
    // A template that looks up a thousand globals needs only the last misses explained.
    if misses.len() >= 64 {
        misses.remove(0);
    }
    misses.push(miss);
}

/// What a template renders over: the fields of one ticket's kind and the allowed `env` values.
pub(crate) struct Context {
    kind: Kind,
    fields: Vec<(&'static str, Value)>,
    env: Arc<EnvValues>,
    misses: Misses,
}

/// The `env` object: each allowed name, its value (`None`: unset now).
struct EnvValues {
    values: Vec<(String, Option<Value>)>,
    misses: Misses,
}

// Neither prints a value: they hold the token.
impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<ticket fields>")
    }
}

impl fmt::Debug for EnvValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<env>")
    }
}

impl Object for Context {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if key == "env" {
            return Some(Value::from_dyn_object(self.env.clone()));
        }
        if let Some((_, value)) = self.fields.iter().find(|(name, _)| *name == key) {
            return Some(value.clone());
        }
        let miss = if FIELDS.contains(&key) { Miss::NotOfKind(key.into()) } else { Miss::Unknown(key.into()) };
        record(&self.misses, miss);
        None
    }
}

impl Object for EnvValues {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        match self.values.iter().find(|(name, _)| name == key) {
            Some((_, Some(value))) => Some(value.clone()),
            Some((_, None)) => {
                record(&self.misses, Miss::EnvUnset(key.into()));
                None
            }
            None => {
                record(&self.misses, Miss::EnvNotAllowed(key.into()));
                None
            }
        }
    }
}

impl Context {
    /// A context for a ticket of `kind`: `fields` are its values (those the kind lacks left out),
    /// `env` the allowed names with their values (`None`: unset).
    pub(crate) fn new(kind: Kind, fields: Vec<(&'static str, Value)>, env: Vec<(String, Option<Value>)>) -> Context {
        let misses = Misses::default();
        Context { kind, fields, env: Arc::new(EnvValues { values: env, misses: misses.clone() }), misses }
    }

    /// Every field tickets of `kind` have, with dummy values of their type, and every allowed
    /// `env` name set: what a template is checked over.
    pub(crate) fn sample(kind: Kind, env: &[String]) -> Context {
        let fields = FIELDS
            .iter()
            .filter(|f| **f != "env" && has_field(kind, f))
            .map(|f| {
                let value = match *f {
                    "name" => Value::from("sample-ticket"),
                    "kind" => Value::from(kind.as_str()),
                    "generation" => Value::from(1u64),
                    "url" => Value::from("https://sample.invalid/share?sls_ticket=sample"),
                    "expires_at" | "ticket_expires_at" => Value::from("2000-01-01T00:00:00Z"),
                    other => Value::from(format!("sample-{other}")),
                };
                (*f, value)
            })
            .collect();
        let env = env.iter().map(|name| (name.clone(), Some(Value::from(format!("sample-{name}"))))).collect();
        Context::new(kind, fields, env)
    }
}

/// POSIX shell single-quoting: the value as one word, whatever it holds (`'` becomes `'\''`).
pub(crate) fn shell(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A Java `.properties` value (or key): `\`, the separators `=` `:`, the comment starts `#` `!`,
/// whitespace and control characters escaped, anything outside printable ASCII as `\uXXXX`
/// (UTF-16 units), as `Properties.store` writes it, so `Properties.load` reads back `value`.
pub(crate) fn properties(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            ' ' | '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
    out
}

/// Standard base64 with padding of the UTF-8 text (HTTP Basic auth: `username:password`).
pub(crate) fn b64encode(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// The engine every sink template runs in: strict undefined, no auto-escaping (whatever the
/// file name says), no loader, bounded fuel, `trim_blocks` and the trailing newline kept, and
/// the filters `shell`, `properties`, `b64encode` and `json` (minijinja's `tojson`; `urlencode`
/// is its own).
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(FUEL));
    // As Ansible renders config files: the file's last newline kept, a block tag's own newline not.
    let syntax = minijinja::syntax::SyntaxConfig::builder().keep_trailing_newline(true).trim_blocks(true).build();
    env.set_syntax(syntax.expect("the default delimiters"));
    env.add_filter("shell", |v: &str| shell(v));
    env.add_filter("properties", |v: &str| properties(v));
    env.add_filter("b64encode", |v: &str| b64encode(v));
    env.add_filter("json", minijinja::filters::tojson);
    env
}

/// The statements the engine does not have because a template is one file with no access to
/// others.
const OTHER_FILES: [&str; 5] = ["include", "import", "extends", "from", "block"];

/// `error` as a [`TemplateError`]. A name the render missed explains an undefined value; with
/// `values_shown == false` (a real render) minijinja's own detail, which could quote a value, is
/// left out.
fn template_error(error: &minijinja::Error, misses: &Misses, kind: Kind, values_shown: bool) -> TemplateError {
    let line = error.line().filter(|l| *l > 0);
    let message = match error.kind() {
        ErrorKind::UndefinedError => match misses.lock().expect("template misses").last() {
            Some(Miss::Unknown(name)) => {
                format!("unknown field `{name}` (the fields are {})", known_fields(kind))
            }
            Some(Miss::NotOfKind(name)) if has_field(kind, name) => {
                format!("`{name}` has no value for this ticket's current token")
            }
            Some(Miss::NotOfKind(name)) => {
                let have = Kind::names_of(|k| has_field(k, name));
                format!("{} ticket has no `{name}` field ({have} tickets have it)", kind.a())
            }
            Some(Miss::EnvNotAllowed(name)) => {
                format!("`env.{name}` is not allowed: list `{name}` in the sink's `template_env`")
            }
            Some(Miss::EnvUnset(name)) => format!("environment variable `{name}` (env.{name}) is not set"),
            None => "undefined value".to_string(),
        },
        ErrorKind::SyntaxError => {
            let detail = error.detail().unwrap_or_default();
            let other = OTHER_FILES.iter().any(|s| detail == format!("unknown statement {s}"));
            let hint = if other { " (a template is one file: it cannot include, import or extend others)" } else { "" };
            format!("syntax error: {detail}{hint}")
        }
        kind if values_shown => match error.detail() {
            Some(detail) => format!("{kind}: {detail}"),
            None => kind.to_string(),
        },
        kind => kind.to_string(),
    };
    TemplateError { line, message }
}

/// The fields of `kind`, as a message lists them.
fn known_fields(kind: Kind) -> String {
    let names: Vec<String> =
        FIELDS.iter().filter(|f| **f != "env" && has_field(kind, f)).map(|f| format!("`{f}`")).collect();
    format!("{} and `env.NAME`", names.join(", "))
}

/// Parse `template` and render it over `Context::sample(kind, ...)`: the check every template
/// passes at check-config, start and reload, so that a template that cannot render is found
/// then, with its line, and not when a token comes.
pub(crate) fn check(template: &SinkTemplate, kind: Kind) -> Result<(), TemplateError> {
    render_with(template, Context::sample(kind, &template.env), true).map(drop)
}

/// Render `template` over `context`: the bytes, in a buffer of exactly their size that is zeroed
/// when dropped (rendered twice: counted first, so the buffer never grows and leaves no copy).
pub(crate) fn render(template: &SinkTemplate, context: Context) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    render_with(template, context, false)
}

fn render_with(template: &SinkTemplate, context: Context, sample: bool) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let env = environment();
    let kind = context.kind;
    let misses = context.misses.clone();
    let fail = |e: &minijinja::Error| template_error(e, &misses, kind, sample);
    let compiled = env.template_from_str(&template.text).map_err(|e| fail(&e))?;
    let root = Value::from_object(context);
    let mut count = Count(0);
    compiled.render_captured_to(root.clone(), &mut count).map_err(|e| {
        if count.0 > MAX_RENDERED_BYTES {
            TemplateError { line: None, message: format!("renders to more than {MAX_RENDERED_BYTES} bytes") }
        } else {
            fail(&e)
        }
    })?;
    let mut out = Zeroizing::new(Vec::with_capacity(count.0));
    compiled.render_captured_to(root, &mut *out).map_err(|e| fail(&e))?;
    debug_assert_eq!(out.len(), count.0, "rendered differently the second time");
    Ok(out)
}

/// Counts what is written, refusing past [`MAX_RENDERED_BYTES`].
struct Count(usize);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        if self.0 > MAX_RENDERED_BYTES {
            return Err(io::Error::other("rendered output too large"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A template file's text (by address), a kind and the allowed names.
type CheckKey = (usize, Kind, Arc<[String]>);

/// What one config load has read and checked, so that the sinks of 100,000 tickets naming one
/// template file read it once and check it once per kind.
#[derive(Default)]
pub(crate) struct TemplateMemo {
    files: HashMap<PathBuf, Result<Arc<str>, String>>,
    /// By the text's address (the file's text is held in `files` for the whole load), the kind
    /// and the allowed names.
    checked: HashMap<CheckKey, Result<(), TemplateError>>,
}

impl TemplateMemo {
    /// The text of the template file at `path`: a regular file of at most
    /// [`MAX_TEMPLATE_BYTES`], UTF-8 (symlinks followed, as for the config file); the error is
    /// the system's or the reader's own text.
    pub(crate) fn read(&mut self, path: &Path) -> Result<Arc<str>, String> {
        use crate::fsdir::{Follow, read_regular_string};
        self.files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                read_regular_string(path, Follow::Symlinks, MAX_TEMPLATE_BYTES)
                    .map(Arc::from)
                    .map_err(|e| e.to_string())
            })
            .clone()
    }

    /// [`check`], once per template file text, kind and allowed names.
    pub(crate) fn check(&mut self, template: &SinkTemplate, kind: Kind) -> Result<(), TemplateError> {
        if matches!(template.origin, TemplateOrigin::Inline { .. }) {
            return check(template, kind);
        }
        let key = (Arc::as_ptr(&template.text) as *const u8 as usize, kind, template.env.clone());
        self.checked.entry(key).or_insert_with(|| check(template, kind)).clone()
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
