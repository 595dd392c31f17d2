//! The problem toolkit every config section is checked with: [`Checker`] collects each problem at
//! its [`KeyPath`] (located to file:line only once a problem exists), plus the value checks the
//! sections share (paths, names, endpoints, regions, ids, durations).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::locate::{KeyPath, Locator};
use super::problem::Problem;
use super::raw::RawSecret;
use super::split::{Cut, split};
use super::template::TemplateMemo;
use crate::http::Endpoint;

pub(crate) struct Checker<'a> {
    pub(crate) file: String,
    /// The file's text, when it is held whole; a file read by pieces ([`Checker::by_pieces`]) is
    /// not, and its problems are not located (its reader reads it whole to locate them).
    pub(crate) text: Option<&'a str>,
    /// The directory relative paths are resolved against: the config file's (absolute), or none
    /// for text that was not read from a file.
    pub(crate) base: Option<PathBuf>,
    /// The text cut into the pieces it is parsed (and located) by.
    pub(crate) cut: std::sync::Arc<Cut>,
    /// Built at the first problem: a valid file (with 100,000 tickets, say) never pays for it.
    pub(crate) locator: std::cell::OnceCell<Locator>,
    pub(crate) problems: Vec<Problem>,
    /// The sink templates read and checked so far.
    pub(crate) templates: TemplateMemo,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &str, text: &'a str, base: Option<PathBuf>) -> Self {
        let mut checker = Checker::by_pieces(file, split(text), base);
        checker.text = Some(text);
        checker
    }

    /// A checker of a file that is not held whole, only its `cut` (see [`Checker::text`]).
    pub(crate) fn by_pieces(file: &str, cut: Cut, base: Option<PathBuf>) -> Self {
        Checker {
            file: file.to_string(),
            text: None,
            base,
            cut: std::sync::Arc::new(cut),
            locator: std::cell::OnceCell::new(),
            problems: Vec::new(),
            templates: TemplateMemo::default(),
        }
    }

    /// A path key: absolute as written, or relative to the config file's directory (every path
    /// key alike, wherever the config is read: daemon start, reload, check-config, clients).
    pub(crate) fn path(&mut self, text: &str, at: &KeyPath) -> Option<PathBuf> {
        if text.is_empty() {
            self.report(at, "must not be empty");
            return None;
        }
        if text.contains('\0') {
            self.report(at, "holds a NUL byte");
            return None;
        }
        let resolved = resolve_path(self.base.as_deref(), text);
        if resolved.is_none() {
            self.report(
                at,
                format!(
                    "`{text}` is relative, and this configuration was not read from a file whose directory it \
                     could be relative to: write an absolute path"
                ),
            );
        }
        resolved
    }

    pub(crate) fn report(&mut self, at: &KeyPath, message: impl Into<String>) {
        let position = self.position(at);
        self.problems.push(Problem {
            file: self.file.clone(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            key: at.to_string(),
            message: message.into(),
        });
    }

    /// The line and column of `at` in the file (none for a file not held whole).
    pub(crate) fn position(&self, at: &KeyPath) -> Option<(usize, usize)> {
        let text = self.text?;
        self.locator.get_or_init(|| Locator::new(text, &self.cut)).position(text, &self.cut, at)
    }

    /// Where a value a message compares against came from: `line N` of the file, or the default.
    pub(crate) fn given(&self, written: bool, at: &KeyPath) -> String {
        match self.line(at) {
            Some(line) if written => format!("line {line}"),
            _ => "the default".to_string(),
        }
    }

    /// The line of `at` in the file.
    pub(crate) fn line(&self, at: &KeyPath) -> Option<usize> {
        self.position(at).map(|p| p.0)
    }

    pub(crate) fn required<'v>(&mut self, value: &'v Option<String>, at: &KeyPath) -> Option<&'v str> {
        match value.as_deref() {
            Some(v) => Some(v),
            None => {
                self.report(at, "is required");
                None
            }
        }
    }

    /// A key, secret or token written in the file: required, and text a vendor issues (see
    /// [`key_text_problem`]). Problems name the key, never the value.
    pub(crate) fn required_key<'v>(&mut self, value: &'v Option<RawSecret>, at: &KeyPath) -> Option<&'v str> {
        let Some(value) = value.as_ref() else {
            self.report(at, "is required");
            return None;
        };
        match key_text_problem(value) {
            Some(problem) => {
                self.report(at, problem);
                None
            }
            None => Some(value),
        }
    }

    /// A humantime duration within `[min, max]`.
    pub(crate) fn duration(
        &mut self,
        value: &Option<String>,
        at: &KeyPath,
        default: Duration,
        min: Duration,
        max: Duration,
        what: &str,
    ) -> Option<Duration> {
        self.duration_with(value, at, default, min, max, |_| what.to_string())
    }

    /// [`Checker::duration`], with the limit's description made only for a value out of range:
    /// one that names a line makes the locator index the whole file (hundreds of MiB for 100,000
    /// tickets), which a valid file must never pay for.
    pub(crate) fn duration_with(
        &mut self,
        value: &Option<String>,
        at: &KeyPath,
        default: Duration,
        min: Duration,
        max: Duration,
        what: impl FnOnce(&Self) -> String,
    ) -> Option<Duration> {
        let Some(text) = value else { return Some(default) };
        match humantime::parse_duration(text) {
            Ok(d) if d < min => {
                let what = what(self);
                self.report(
                    at,
                    format!("{text} is shorter than {what} allows (min {})", humantime::format_duration(min)),
                );
                None
            }
            Ok(d) if d > max => {
                let what = what(self);
                self.report(
                    at,
                    format!("{text} is longer than {what} allows (max {})", humantime::format_duration(max)),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.report(at, format!("`{text}` is not a duration ({e}); write e.g. \"90s\", \"20h\", \"30d\""));
                None
            }
        }
    }
}

/// Whether path `text` ends in a file name (not `/`, `.` or `..`).
pub(crate) fn names_a_file(text: &str) -> bool {
    !matches!(text.rsplit('/').next(), None | Some("" | "." | ".."))
}

/// `text` as a path: absolute as written, else joined to `base` (leading `./` dropped); `None`
/// for a relative path with no base.
pub(crate) fn resolve_path(base: Option<&Path>, text: &str) -> Option<PathBuf> {
    let path = Path::new(text);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    let relative: PathBuf = path.components().filter(|c| *c != std::path::Component::CurDir).collect();
    Some(base?.join(relative))
}

/// An environment variable name as POSIX has them: upper-case letters, digits and `_`, not
/// starting with a digit.
pub(crate) fn is_env_var_name(name: &str) -> bool {
    name.len() <= 128
        && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A region id such as `cn-hangzhou` or `ap-guangzhou`.
pub(crate) fn region(c: &mut Checker<'_>, value: &str, at: &KeyPath) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        c.report(at, format!("`{value}` is not a region id (e.g. cn-hangzhou, ap-guangzhou)"));
    }
    ok.then(|| value.to_string())
}

/// A plain identifier value (instance and registry ids, audience).
pub(crate) fn identifier(c: &mut Checker<'_>, value: &str, at: &KeyPath) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        c.report(at, format!("`{value}` is not a valid id (letters, digits, `-`, `_`, `.`)"));
    }
    ok.then(|| value.to_string())
}

/// A bare host means https; a full URL may be http only on loopback.
pub(crate) fn endpoint(c: &mut Checker<'_>, text: &str, at: &KeyPath) -> Option<Endpoint> {
    let url_text = if text.contains("://") { text.to_string() } else { format!("https://{text}") };
    let url = match reqwest::Url::parse(&url_text) {
        Ok(u) => u,
        Err(e) => {
            c.report(at, format!("`{text}` is not a host or URL ({e})"));
            return None;
        }
    };
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        c.report(at, format!("`{text}`: an endpoint has no query, fragment or user info"));
        return None;
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                c.report(
                    at,
                    format!("`{text}`: plain http is allowed only on loopback (127.0.0.1, ::1, localhost); use https"),
                );
                return None;
            }
        }
        other => {
            c.report(at, format!("`{text}`: scheme {other} is not http(s)"));
            return None;
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        c.report(at, format!("`{text}` has no host"));
        return None;
    }
    Some(Endpoint { base: url })
}

/// What is wrong with the text of a key, secret id or STS token, or `None` when it may be one.
///
/// The vendors' keys and tokens are printable ASCII without spaces; anything else is a paste
/// gone wrong (a U+200B or a non-breaking space from a web page, an `é`, a newline from
/// `$(cat file)`) and is refused where it is read, before it is signed with or sent. The answer
/// names the offending character by kind, code point and position, never the value, so it can
/// go into any error message.
pub fn key_text_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("is empty".into());
    }
    let (at, c) = value.chars().enumerate().find(|(_, c)| !c.is_ascii_graphic())?;
    let kind = match c {
        ' ' => "a space",
        c if c.is_control() => "a control character",
        c if c.is_whitespace() => "a whitespace character",
        _ => "a non-ASCII character",
    };
    Some(format!(
        "holds {kind} (U+{:04X}) at character {}: keys are printable ASCII without spaces (look for a pasted \
         invisible character or a stray newline)",
        u32::from(c),
        at + 1
    ))
}

/// Why a credentials URI is refused. Each names the text only up to its query, which may hold a
/// token (as `credentials::sources::uri::shown` does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UriError {
    #[error("`{shown}` is not a URL ({reason})")]
    NotAUrl { shown: String, reason: url::ParseError },
    #[error("`{shown}`: scheme {scheme} is not http(s)")]
    Scheme { shown: String, scheme: String },
    #[error("`{shown}` has no host")]
    NoHost { shown: String },
    #[error("a credentials URI has no user info (the value is not shown)")]
    UserInfo,
}

/// A credentials URI: http or https (plain http too, as the SDKs allow: the URI is a local
/// sidecar or node agent), with a host and no user info.
pub(crate) fn parse_uri(text: &str) -> Result<reqwest::Url, UriError> {
    let shown = || text.split(['?', '#']).next().unwrap_or_default().to_string();
    let url = reqwest::Url::parse(text).map_err(|reason| UriError::NotAUrl { shown: shown(), reason })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UriError::Scheme { shown: shown(), scheme: url.scheme().to_string() });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UriError::NoHost { shown: shown() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UriError::UserInfo);
    }
    Ok(url)
}
