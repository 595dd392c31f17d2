//! From raw TOML to a validated [`Config`], collecting every problem with its place.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::lenient::{self, KeyProblem};
use super::locate::{KeyPath, LineIndex, Locator};
use super::raw::{RawConfig, RawCredentials, RawHook, RawSecret, RawSink, RawTicket};
use super::split;
use super::*;

/// Where environment variables come from (the process, or a map in tests).
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    /// The directory relative paths are resolved against: the config file's (absolute), or none
    /// for text that was not read from a file.
    base: Option<&'a Path>,
    /// Built at the first problem: a valid file (with 100,000 tickets, say) never pays for it.
    locator: std::cell::OnceCell<Locator>,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    fn new(file: &'a str, text: &'a str, base: Option<&'a Path>) -> Self {
        Checker { file, text, base, locator: std::cell::OnceCell::new(), problems: Vec::new() }
    }

    /// A path key: absolute as written, or relative to the config file's directory (every path
    /// key alike, wherever the config is read: daemon start, reload, check-config, clients).
    fn path(&mut self, text: &str, at: &KeyPath) -> Option<PathBuf> {
        if text.is_empty() {
            self.report(at, "must not be empty");
            return None;
        }
        if text.contains('\0') {
            self.report(at, "holds a NUL byte");
            return None;
        }
        let resolved = resolve_path(self.base, text);
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

    fn report(&mut self, at: &KeyPath, message: impl Into<String>) {
        let position = self.locator.get_or_init(|| Locator::new(self.text)).position(at);
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            key: at.to_string(),
            message: message.into(),
        });
    }

    /// Where a value a message compares against came from: `line N` of the file, or the default.
    fn given(&self, written: bool, at: &KeyPath) -> String {
        match self.line(at) {
            Some(line) if written => format!("line {line}"),
            _ => "the default".to_string(),
        }
    }

    /// The line of `at` in the file.
    fn line(&self, at: &KeyPath) -> Option<usize> {
        self.locator.get_or_init(|| Locator::new(self.text)).position(at).map(|p| p.0)
    }

    fn required<'v>(&mut self, value: &'v Option<String>, at: &KeyPath) -> Option<&'v str> {
        match value.as_deref() {
            Some(v) => Some(v),
            None => {
                self.report(at, "is required");
                None
            }
        }
    }

    /// A key, secret or token written in the file: required, and text a vendor issues (see
    /// [`crate::credentials::key_text_problem`]). Problems name the key, never the value.
    fn required_key<'v>(&mut self, value: &'v Option<RawSecret>, at: &KeyPath) -> Option<&'v str> {
        let Some(value) = value.as_ref() else {
            self.report(at, "is required");
            return None;
        };
        match crate::credentials::key_text_problem(value) {
            Some(problem) => {
                self.report(at, problem);
                None
            }
            None => Some(value),
        }
    }

    /// A humantime duration within `[min, max]`.
    fn duration(
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
    fn duration_with(
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
fn names_a_file(text: &str) -> bool {
    !matches!(text.rsplit('/').next(), None | Some("" | "." | ".."))
}

/// `text` as a path: absolute as written, else joined to `base` (leading `./` dropped); `None`
/// for a relative path with no base.
pub(super) fn resolve_path(base: Option<&Path>, text: &str) -> Option<PathBuf> {
    let path = Path::new(text);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    let relative: PathBuf = path.components().filter(|c| *c != std::path::Component::CurDir).collect();
    Some(base?.join(relative))
}

pub(super) fn parse(text: &str, file: &str, base: Option<&Path>, env: &dyn Environment) -> Result<Config, Problems> {
    // Tickets are parsed one section at a time; a section the cut cannot take alone (or any TOML
    // or type error) sends the file to the whole-document parse, which names the error's line.
    if let Some(sections) = split::split(text).filter(|s| !s.tickets.is_empty())
        && let Ok(result) = parse_sections(Checker::new(file, text, base), env, &sections)
    {
        return result;
    }
    parse_document(Checker::new(file, text, base), env)
}

/// The file's TOML cannot be read section by section: parse it whole.
struct Unsplittable;

/// One `[[tickets]]` section, as a document of its own.
#[derive(serde::Deserialize)]
struct TicketSection {
    tickets: Vec<RawTicket>,
}

/// Deserialize `text`, with a problem for each unknown key or key of the wrong type.
fn deserialize<T: serde::de::DeserializeOwned>(text: &str) -> Result<(T, Vec<KeyProblem>), toml::de::Error> {
    lenient::read(text)
}

fn parse_document(checker: Checker<'_>, env: &dyn Environment) -> Result<Config, Problems> {
    let (text, file) = (checker.text, checker.file);
    let (mut raw, found) =
        deserialize::<RawConfig>(text).map_err(|e| Problems(vec![toml_problem(file, text, 0, &e)]))?;
    let tickets = std::mem::take(&mut raw.tickets);
    let tickets = tickets.into_iter().enumerate().map(|(i, rt)| Ok::<_, std::convert::Infallible>((i, rt, Vec::new())));
    match check(checker, raw, found, env, tickets) {
        Ok(result) => result,
        Err(never) => match never {},
    }
}

fn parse_sections(
    checker: Checker<'_>,
    env: &dyn Environment,
    sections: &split::Sections<'_>,
) -> Result<Result<Config, Problems>, Unsplittable> {
    let (raw, found) = deserialize::<RawConfig>(&sections.rest).map_err(|_| Unsplittable)?;
    if !raw.tickets.is_empty() {
        return Err(Unsplittable);
    }
    // A ticket with a syntax error is reported (at its place in the file) and left out; the
    // other tickets are still checked, so every section's problems come out in one run.
    let (file, text) = (checker.file, checker.text);
    let syntax = std::cell::RefCell::new(Vec::new());
    let tickets = sections.tickets.iter().enumerate().filter_map(|(i, section)| {
        let (mut doc, found) = match deserialize::<TicketSection>(section) {
            Ok(read) => read,
            Err(e) if e.span().is_some() => {
                let offset = section.as_ptr() as usize - text.as_ptr() as usize;
                syntax.borrow_mut().push(toml_problem(file, text, offset, &e));
                return None;
            }
            Err(_) => return Some(Err(Unsplittable)),
        };
        let Some(rt) = doc.tickets.pop().filter(|_| doc.tickets.is_empty()) else { return Some(Err(Unsplittable)) };
        // The section's own paths say `tickets[0]`: it is the file's `tickets[i]`.
        let at = KeyPath::root().key("tickets").index(i);
        let rebased = |path: &KeyPath| if path.segments().len() >= 2 { path.rebased(2, &at) } else { at.clone() };
        Some(Ok((i, rt, found.into_iter().map(|(path, message)| (rebased(&path), message)).collect())))
    });
    let result = check(checker, raw, found, env, tickets)?;
    let syntax = syntax.into_inner();
    if syntax.is_empty() {
        return Ok(result);
    }
    let mut problems = result.err().map(|p| p.0).unwrap_or_default();
    problems.extend(syntax);
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    Ok(Err(Problems(problems)))
}

/// Validate a file's settings and its tickets, which come one at a time (with the paths of their
/// unknown keys) so that a big file never holds all its raw tickets at once.
/// A ticket that cannot be read (`E`) stops the check.
fn check<E>(
    mut checker: Checker<'_>,
    raw: RawConfig,
    found: Vec<KeyProblem>,
    env: &dyn Environment,
    tickets: impl Iterator<Item = Result<(usize, RawTicket, Vec<KeyProblem>), E>>,
) -> Result<Result<Config, Problems>, E> {
    for (path, message) in found {
        checker.report(&path, message);
    }
    let root = KeyPath::root();
    let state_dir = match &raw.state_dir {
        Some(dir) => checker.path(dir, &root.key("state_dir")).unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };

    let socket = socket(&mut checker, &raw);
    let metrics_listen = match &raw.metrics_listen {
        None => None,
        Some(text) => match text.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Some(addr),
            Ok(_) => {
                checker.report(&root.key("metrics_listen"), "needs a port other than 0, e.g. \"127.0.0.1:9464\"");
                None
            }
            Err(_) => {
                checker.report(
                    &root.key("metrics_listen"),
                    format!("`{text}` is not an IP address and port, e.g. \"127.0.0.1:9464\" or \"[::1]:9464\""),
                );
                None
            }
        },
    };
    let rate_limits = rate_limits(&mut checker, raw.rate_limits.as_ref());
    let mut credentials = BTreeMap::new();
    for (name, rc) in &raw.credentials {
        let at = root.key("credentials").key(name);
        if let Some(spec) = credential(&mut checker, name, rc, &at, env) {
            credentials.insert(name.clone(), spec);
        }
    }

    assume_role_bases(&mut checker, &raw.credentials, &credentials);

    let mut specs = Vec::new();
    let mut names = SeenNames::default();
    // Each sink file's first writer, as (ticket, sink) indices: checked on the raw sinks, so a
    // clash shows up with the other problems, even in a ticket rejected for another reason.
    let mut sink_paths: HashMap<PathBuf, (u32, u32)> = HashMap::new();
    let mut shared = SharedSettings::default();
    for ticket_result in tickets {
        let (i, rt, found) = ticket_result?;
        let at = root.key("tickets").index(i);
        for (path, message) in found {
            checker.report(&path, message);
        }
        let duplicate = rt.name.as_deref().is_some_and(|name| names.contains(&specs, name));
        if let Some(name) = rt.name.as_deref().filter(|_| duplicate) {
            checker.report(&at.key("name"), format!("duplicate ticket name `{name}`"));
        }
        for (j, rs) in rt.sinks.iter().enumerate() {
            let Some(path) = rs.path.as_deref().and_then(|p| resolve_path(checker.base, p)) else { continue };
            match sink_paths.entry(path) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert((i as u32, j as u32));
                }
                std::collections::hash_map::Entry::Occupied(first) => {
                    let (fi, fj) = *first.get();
                    let first_at = root.key("tickets").index(fi as usize).key("sinks").index(fj as usize).key("path");
                    let line = checker.line(&first_at).map_or(String::new(), |l| format!(", line {l}"));
                    let message =
                        format!("{} is written by another sink too ({first_at}{line})", first.key().display());
                    checker.report(&at.key("sinks").index(j).key("path"), message);
                }
            }
        }
        match ticket(&mut checker, &rt, &at, &raw.credentials, &credentials) {
            Some((name, settings)) => {
                specs.push(TicketSpec::sharing(name, shared.intern(settings)));
                if !duplicate {
                    names.add_spec(&specs, specs.len() - 1);
                }
            }
            None => {
                if let Some(name) = rt.name.filter(|_| !duplicate) {
                    names.add_rejected(&specs, name);
                }
            }
        }
    }
    if checker.problems.is_empty() {
        Ok(Ok(Config {
            source: None,
            state_dir,
            socket,
            metrics_listen,
            rate_limits,
            core_dumps: raw.core_dumps.unwrap_or(DEFAULT_CORE_DUMPS),
            credentials,
            tickets: specs,
        }))
    } else {
        // In file order, whichever way the file was parsed.
        checker.problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        Ok(Err(Problems(checker.problems)))
    }
}

/// The ticket names seen so far, for the duplicate check. It records where each name already is
/// (in a spec, or in a ticket rejected for another reason) instead of a copy of it: copies would
/// be freed once the file is read, leaving one small hole per ticket in the heap (3.7 MiB at
/// 100,000 tickets).
#[derive(Default)]
struct SeenNames {
    table: hashbrown::HashTable<Seen>,
    hasher: std::hash::RandomState,
    rejected: Vec<String>,
}

#[derive(Clone, Copy)]
enum Seen {
    Spec(usize),
    Rejected(usize),
}

impl SeenNames {
    fn contains(&self, specs: &[TicketSpec], name: &str) -> bool {
        let at = |&seen: &Seen| seen_name(specs, &self.rejected, seen) == name;
        self.table.find(self.hasher.hash_one(name), at).is_some()
    }

    fn add_spec(&mut self, specs: &[TicketSpec], i: usize) {
        self.add(specs, Seen::Spec(i));
    }

    fn add_rejected(&mut self, specs: &[TicketSpec], name: String) {
        self.rejected.push(name);
        self.add(specs, Seen::Rejected(self.rejected.len() - 1));
    }

    fn add(&mut self, specs: &[TicketSpec], seen: Seen) {
        let SeenNames { table, hasher, rejected } = self;
        let hash = |seen: Seen| hasher.hash_one(seen_name(specs, rejected, seen));
        table.insert_unique(hash(seen), seen, |&s| hash(s));
    }
}

fn seen_name<'a>(specs: &'a [TicketSpec], rejected: &'a [String], seen: Seen) -> &'a str {
    match seen {
        Seen::Spec(i) => &specs[i].name,
        Seen::Rejected(i) => &rejected[i],
    }
}

/// The settings of the last few distinct tickets, so tickets configured alike (a generated fleet
/// usually lists them together) share one copy.
#[derive(Default)]
struct SharedSettings {
    recent: std::collections::VecDeque<Arc<TicketSettings>>,
}

impl SharedSettings {
    const KEPT: usize = 8;

    fn intern(&mut self, settings: TicketSettings) -> Arc<TicketSettings> {
        if let Some(same) = self.recent.iter().find(|s| ***s == settings) {
            return same.clone();
        }
        let settings = Arc::new(settings);
        if self.recent.len() == Self::KEPT {
            self.recent.pop_back();
        }
        self.recent.push_front(settings.clone());
        settings
    }
}

fn rate_limits(c: &mut Checker<'_>, raw: Option<&super::raw::RawRateLimits>) -> RateLimits {
    let mut limits = RateLimits::default();
    let Some(raw) = raw else { return limits };
    let at = KeyPath::root().key("rate_limits");
    for (key, value, slot) in
        [("alibaba", raw.alibaba, &mut limits.alibaba), ("tencent", raw.tencent, &mut limits.tencent)]
    {
        match value {
            None => {}
            Some(n) if (1..=i64::from(MAX_RATE_LIMIT)).contains(&n) => *slot = n as u32,
            Some(n) => c.report(
                &at.key(key),
                format!("{n} is not a rate from 1 to {MAX_RATE_LIMIT} calls per second per endpoint"),
            ),
        }
    }
    limits
}

/// A TOML syntax error in the part of `text` that starts at byte `offset`.
fn toml_problem(file: &str, text: &str, offset: usize, e: &toml::de::Error) -> Problem {
    let span = e.span().map(|s| s.start + offset..s.end + offset);
    let position = span.as_ref().map(|s| LineIndex::new(text).position(s.start));
    let mut message = e.message().trim().to_string();
    // A key defined twice: name it, and explain the case a new user meets (a sink or hook
    // section before any `[[tickets]]`, which makes `tickets` a table).
    if message == "duplicate key"
        && let Some(key) = span.and_then(|s| text.get(s)).filter(|k| !k.is_empty() && !k.contains('\n'))
    {
        message = format!("duplicate key `{key}`: it is already defined above");
        let first_part = text.lines().position(|l| {
            let l = l.trim_start();
            l.starts_with("[[tickets.") || l.starts_with("[tickets.")
        });
        let first_ticket = text.lines().position(|l| l.trim_start().starts_with("[[tickets]]"));
        if key == "tickets"
            && let Some(part) = first_part.filter(|p| first_ticket.is_none_or(|t| *p < t))
        {
            message = format!(
                "`[[tickets]]` comes after a ticket's sink or hook section (line {}) that has no `[[tickets]]` \
                 above it: a sink or hook belongs to the ticket whose `[[tickets]]` header is above it, so \
                 start each ticket with `[[tickets]]` and its keys",
                part + 1
            );
        }
    }
    Problem {
        file: file.to_string(),
        line: position.map(|p| p.0),
        column: position.map(|p| p.1),
        key: String::new(),
        message,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// The variable a `*_env` key names. Names are upper-case letters, digits and `_` (not starting
/// with a digit), as POSIX has them: anything else is refused without being shown, since a key
/// pasted into the wrong line (`access_key_secret_env = "<the secret>"`) would otherwise be echoed
/// back in this error and in every "is not set" after it. (Vendor keys are mixed case: one passing
/// as a name is about as likely as guessing it.)
fn env_var_name(c: &mut Checker<'_>, value: &Option<RawSecret>, default: &str, at: &KeyPath) -> String {
    match value {
        Some(v) if !is_env_var_name(v) => {
            c.report(
                at,
                "is not an environment variable name: use upper-case letters, digits and `_`, not starting \
                 with a digit (the value is not shown, in case it is a key pasted on the wrong line)",
            );
            default.to_string()
        }
        Some(v) => v.to_string(),
        None => default.to_string(),
    }
}

fn is_env_var_name(name: &str) -> bool {
    name.len() <= 128
        && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn credential(
    c: &mut Checker<'_>,
    name: &str,
    rc: &RawCredentials,
    at: &KeyPath,
    env: &dyn Environment,
) -> Option<CredentialSpec> {
    if !valid_name(name) {
        c.report(at, "credential set names use only letters, digits, `.`, `_` and `-`");
    }
    let vendor = match c.required(&rc.vendor, &at.key("vendor"))? {
        "alibaba" => Vendor::Alibaba,
        "tencent" => Vendor::Tencent,
        other => {
            c.report(&at.key("vendor"), format!("unknown vendor `{other}` (expected alibaba or tencent)"));
            return None;
        }
    };
    let source_name = rc.source.as_deref().unwrap_or("chain");
    let allowed: &[&str] = match vendor {
        Vendor::Alibaba => {
            &["chain", "env", "static", "profile", "oidc", "ecs_ram_role", "ram_role_arn", "credentials_uri"]
        }
        Vendor::Tencent => &["chain", "env", "static", "profile", "oidc", "cvm_role", "role_arn"],
    };
    if !allowed.contains(&source_name) {
        c.report(
            &at.key("source"),
            format!(
                "unknown source `{source_name}` for vendor = \"{}\" (expected {})",
                vendor.as_str(),
                allowed.join(", ")
            ),
        );
        return None;
    }
    let (alibaba_keys, tencent_keys) = (
        [
            ("access_key_id_env", &rc.access_key_id_env),
            ("access_key_secret_env", &rc.access_key_secret_env),
            ("security_token_env", &rc.security_token_env),
            ("access_key_id", &rc.access_key_id),
            ("access_key_secret", &rc.access_key_secret),
            ("security_token", &rc.security_token),
        ],
        [
            ("secret_id_env", &rc.secret_id_env),
            ("secret_key_env", &rc.secret_key_env),
            ("session_token_env", &rc.session_token_env),
            ("secret_id", &rc.secret_id),
            ("secret_key", &rc.secret_key),
            ("session_token", &rc.session_token),
        ],
    );
    let foreign = match vendor {
        Vendor::Alibaba => tencent_keys,
        Vendor::Tencent => alibaba_keys,
    };
    for (key, value) in foreign {
        if value.is_some() {
            c.report(&at.key(key), format!("is not used with vendor = \"{}\"", vendor.as_str()));
        }
    }
    // Keys that belong to one source only.
    let uses = |sources: &[&str]| {
        sources.contains(&source_name) || (source_name == "chain" && !sources.iter().all(|s| NOT_IN_CHAIN.contains(s)))
    };
    let only: [(&str, bool, &[&str]); 25] = [
        ("access_key_id_env", rc.access_key_id_env.is_some(), &["env"]),
        ("access_key_secret_env", rc.access_key_secret_env.is_some(), &["env"]),
        ("security_token_env", rc.security_token_env.is_some(), &["env"]),
        ("secret_id_env", rc.secret_id_env.is_some(), &["env"]),
        ("secret_key_env", rc.secret_key_env.is_some(), &["env"]),
        ("session_token_env", rc.session_token_env.is_some(), &["env"]),
        ("access_key_id", rc.access_key_id.is_some(), &["static"]),
        ("access_key_secret", rc.access_key_secret.is_some(), &["static"]),
        ("security_token", rc.security_token.is_some(), &["static"]),
        ("secret_id", rc.secret_id.is_some(), &["static"]),
        ("secret_key", rc.secret_key.is_some(), &["static"]),
        ("session_token", rc.session_token.is_some(), &["static"]),
        ("profile", rc.profile.is_some() || rc.profile_file.is_some(), &["profile"]),
        ("sts_endpoint", rc.sts_endpoint.is_some(), &["oidc", "ram_role_arn", "role_arn", "profile"]),
        ("role_session_name", rc.role_session_name.is_some(), &["oidc", "ram_role_arn", "role_arn"]),
        ("duration", rc.duration.is_some(), &["oidc"]),
        ("metadata_endpoint", rc.metadata_endpoint.is_some(), &["ecs_ram_role", "cvm_role", "profile"]),
        ("role_name", rc.role_name.is_some(), &["ecs_ram_role", "cvm_role"]),
        ("imdsv1_fallback", rc.imdsv1_fallback.is_some(), &["ecs_ram_role"]),
        ("base_credentials", rc.base_credentials.is_some(), ASSUME_ROLE),
        ("role_arn", rc.role_arn.is_some(), ASSUME_ROLE),
        ("external_id", rc.external_id.is_some(), ASSUME_ROLE),
        ("policy", rc.policy.is_some(), ASSUME_ROLE),
        ("session_duration", rc.session_duration.is_some(), ASSUME_ROLE),
        ("credentials_uri", rc.credentials_uri.is_some(), &["credentials_uri"]),
    ];
    for (key, set, sources) in only {
        if set && !uses(sources) {
            c.report(&at.key(key), format!("does not apply to source = \"{source_name}\""));
        }
    }
    let (id_var, secret_var, token_var) = match vendor {
        Vendor::Alibaba => (
            env_var_name(c, &rc.access_key_id_env, ALIBABA_ACCESS_KEY_ID_ENV, &at.key("access_key_id_env")),
            env_var_name(c, &rc.access_key_secret_env, ALIBABA_ACCESS_KEY_SECRET_ENV, &at.key("access_key_secret_env")),
            env_var_name(c, &rc.security_token_env, ALIBABA_SECURITY_TOKEN_ENV, &at.key("security_token_env")),
        ),
        Vendor::Tencent => (
            env_var_name(c, &rc.secret_id_env, TENCENT_SECRET_ID_ENV, &at.key("secret_id_env")),
            env_var_name(c, &rc.secret_key_env, TENCENT_SECRET_KEY_ENV, &at.key("secret_key_env")),
            env_var_name(c, &rc.session_token_env, TENCENT_SESSION_TOKEN_ENV, &at.key("session_token_env")),
        ),
    };
    if source_name == "env" {
        for var in [&id_var, &secret_var] {
            if env.var(var).is_none_or(|v| v.is_empty()) {
                c.report(at, format!("environment variable {var} is not set (needed by credentials `{name}`)"));
            }
        }
    }
    // Keys the environment holds (for `env`, and for the chain, whose first member it is) must
    // be text a vendor issues: a pasted `é` or U+200B is refused here, at load, by name.
    if source_name == "env" || source_name == "chain" {
        for var in [&id_var, &secret_var, &token_var] {
            let value = env.var(var).map(zeroize::Zeroizing::new);
            if let Some(problem) =
                value.filter(|v| !v.is_empty()).and_then(|v| crate::credentials::key_text_problem(&v))
            {
                c.report(at, format!("environment variable {var} {problem} (read by credentials `{name}`)"));
            }
        }
    }
    let env_spec = SourceSpec::Env { id_var, secret_var, token_var };
    let (default_duration, max_duration) = match vendor {
        Vendor::Alibaba => (DEFAULT_ALIBABA_OIDC_DURATION, MAX_STS_DURATION),
        Vendor::Tencent => (DEFAULT_TENCENT_OIDC_DURATION, MAX_STS_DURATION),
    };
    let duration = c.duration(
        &rc.duration,
        &at.key("duration"),
        default_duration,
        MIN_STS_DURATION,
        max_duration,
        "STS (DurationSeconds)",
    );
    if let Some(n) = &rc.role_session_name
        && (n.is_empty() || n.len() > 64 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@=,".contains(&b)))
    {
        c.report(&at.key("role_session_name"), format!("`{n}`: 1 to 64 of letters, digits and -_.@=,"));
    }
    let sts_endpoint = rc.sts_endpoint.as_deref().map(|t| endpoint(c, t, &at.key("sts_endpoint")));
    let oidc = OidcSpec {
        sts_endpoint: sts_endpoint.clone().flatten(),
        role_session_name: rc.role_session_name.clone(),
        duration: duration.unwrap_or(default_duration),
    };
    if let Some(r) = &rc.role_name
        && (r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
    {
        c.report(&at.key("role_name"), format!("`{r}` is not a role name (letters, digits, `-`, `_`, `.`)"));
    }
    let metadata = MetadataSpec {
        metadata_endpoint: rc.metadata_endpoint.as_deref().and_then(|t| endpoint(c, t, &at.key("metadata_endpoint"))),
        role_name: rc.role_name.clone(),
        imdsv1_fallback: rc.imdsv1_fallback.unwrap_or(true),
    };
    let profile = SourceSpec::Profile {
        profile: rc.profile.clone(),
        file: rc.profile_file.as_ref().and_then(|f| c.path(f, &at.key("profile_file"))),
        sts_endpoint: sts_endpoint.clone().flatten(),
        metadata_endpoint: metadata.metadata_endpoint.clone(),
    };
    let instance = match vendor {
        Vendor::Alibaba => SourceSpec::EcsRamRole(metadata),
        Vendor::Tencent => SourceSpec::CvmRole(metadata),
    };
    let uri = credentials_uri(c, rc, at);
    let source = match source_name {
        "ram_role_arn" | "role_arn" => assume_role(c, vendor, rc, at, sts_endpoint.clone().flatten())?,
        "credentials_uri" => SourceSpec::CredentialsUri(uri?),
        "env" => env_spec,
        "profile" => profile,
        "oidc" => SourceSpec::Oidc(oidc),
        "ecs_ram_role" | "cvm_role" => instance,
        "static" => {
            let (id_key, secret_key) = match vendor {
                Vendor::Alibaba => ("access_key_id", "access_key_secret"),
                Vendor::Tencent => ("secret_id", "secret_key"),
            };
            let (id, secret, token) = match vendor {
                Vendor::Alibaba => (&rc.access_key_id, &rc.access_key_secret, &rc.security_token),
                Vendor::Tencent => (&rc.secret_id, &rc.secret_key, &rc.session_token),
            };
            let token_key = match vendor {
                Vendor::Alibaba => "security_token",
                Vendor::Tencent => "session_token",
            };
            let id = c.required_key(id, &at.key(id_key));
            let secret = c.required_key(secret, &at.key(secret_key));
            let token = token.as_ref().filter(|t| !t.is_empty());
            if let Some(problem) = token.and_then(|t| crate::credentials::key_text_problem(t)) {
                c.report(&at.key(token_key), problem);
            }
            SourceSpec::Static(crate::credentials::Credentials {
                access_key_id: crate::secret::Secret::new(id?),
                access_key_secret: crate::secret::Secret::new(secret?),
                security_token: token.map(|t| crate::secret::Secret::new(&**t)),
                expires_at: None,
            })
        }
        _ => match vendor {
            // Spec section 4.1: env, OIDC, CLI profile and INI file, ECS RAM role.
            Vendor::Alibaba => SourceSpec::Chain(vec![
                env_spec,
                SourceSpec::Oidc(oidc),
                profile,
                instance,
                SourceSpec::CredentialsUri(uri.flatten()),
            ]),
            // Spec section 4.2 (Python order): env, profile, CVM role, TKE OIDC.
            Vendor::Tencent => SourceSpec::Chain(vec![env_spec, profile, instance, SourceSpec::Oidc(oidc)]),
        },
    };
    Some(CredentialSpec { name: name.to_string(), vendor, source })
}

/// The sources that are no member of a vendor's default chain: their keys do not apply to it.
const NOT_IN_CHAIN: [&str; 3] = ["static", "ram_role_arn", "role_arn"];
/// The sources that assume a role on top of another set.
const ASSUME_ROLE: &[&str] = &["ram_role_arn", "role_arn"];

/// `source = "ram_role_arn"` (Alibaba) / `"role_arn"` (Tencent): the role, the set whose keys
/// sign the call (checked once every set is read, by [`assume_role_bases`]) and the STS options.
fn assume_role(
    c: &mut Checker<'_>,
    vendor: Vendor,
    rc: &RawCredentials,
    at: &KeyPath,
    sts_endpoint: Option<Endpoint>,
) -> Option<SourceSpec> {
    let base = c.required(&rc.base_credentials, &at.key("base_credentials")).map(str::to_string);
    let role_arn = c.required(&rc.role_arn, &at.key("role_arn")).map(str::to_string);
    let (prefix, example) = match vendor {
        Vendor::Alibaba => ("acs:ram::", "acs:ram::123456789012:role/name"),
        Vendor::Tencent => ("qcs::cam::", "qcs::cam::uin/100000000001:roleName/name"),
    };
    if let Some(arn) = &role_arn
        && (!arn.starts_with(prefix) || arn.len() > 1024 || !arn.bytes().all(|b| b.is_ascii_graphic()))
    {
        c.report(&at.key("role_arn"), format!("`{arn}` is not a role ARN (e.g. \"{example}\")"));
    }
    if let Some(id) = &rc.external_id
        && (id.len() < 2
            || id.len() > 1224
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"=,.@:/-_".contains(&b)))
    {
        c.report(&at.key("external_id"), "2 to 1224 of letters, digits and =,.@:/-_ (the value is not shown)");
    }
    if let Some(policy) = &rc.policy
        && serde_json::from_str::<serde_json::Value>(policy).map_or(true, |v| !v.is_object())
    {
        c.report(
            &at.key("policy"),
            "is not a JSON policy document (an object, e.g. {\"Version\": \"1\", \"Statement\": [...]})",
        );
    }
    let default = match vendor {
        Vendor::Alibaba => DEFAULT_ALIBABA_ASSUME_ROLE_DURATION,
        Vendor::Tencent => DEFAULT_TENCENT_ASSUME_ROLE_DURATION,
    };
    let duration = c.duration(
        &rc.session_duration,
        &at.key("session_duration"),
        default,
        MIN_STS_DURATION,
        MAX_STS_DURATION,
        "STS AssumeRole (DurationSeconds)",
    );
    Some(SourceSpec::AssumeRole(AssumeRoleSpec {
        vendor,
        base: base?,
        role_arn: role_arn?,
        role_session_name: rc.role_session_name.clone(),
        external_id: rc.external_id.clone(),
        policy: rc.policy.clone(),
        duration: duration?,
        sts_endpoint,
    }))
}

/// `credentials_uri`: an http(s) URL (plain http too: the SDKs' URI is a local sidecar), or
/// `None` when unset (the source then reads `ALIBABA_CLOUD_CREDENTIALS_URI`). `Err` after a problem.
fn credentials_uri(c: &mut Checker<'_>, rc: &RawCredentials, at: &KeyPath) -> Option<Option<reqwest::Url>> {
    let Some(text) = &rc.credentials_uri else { return Some(None) };
    match crate::sources::uri::parse_uri(text) {
        Ok(url) => Some(Some(url)),
        Err(problem) => {
            c.report(&at.key("credentials_uri"), problem);
            None
        }
    }
}

/// Every assumed role's `base_credentials` names a set of the same vendor, and following the
/// bases never comes back to where it started (`a` on top of `b` on top of `a`).
fn assume_role_bases(
    c: &mut Checker<'_>,
    raw: &BTreeMap<String, RawCredentials>,
    credentials: &BTreeMap<String, CredentialSpec>,
) {
    let base_of = |name: &str| match credentials.get(name).map(|s| &s.source) {
        Some(SourceSpec::AssumeRole(a)) => Some(a.base.as_str()),
        _ => None,
    };
    for (name, spec) in credentials {
        let SourceSpec::AssumeRole(a) = &spec.source else { continue };
        let at = KeyPath::root().key("credentials").key(name).key("base_credentials");
        if !raw.contains_key(&a.base) {
            c.report(&at, format!("unknown credentials `{}` (no [credentials.{}] section)", a.base, a.base));
            continue;
        }
        if let Some(base) = credentials.get(&a.base)
            && base.vendor != spec.vendor
        {
            c.report(
                &at,
                format!(
                    "`{}` are {} credentials; a {} role is assumed with {} keys",
                    a.base,
                    base.vendor.as_str(),
                    spec.vendor.as_str(),
                    spec.vendor.as_str()
                ),
            );
            continue;
        }
        let mut path = vec![name.as_str()];
        let mut next = Some(a.base.as_str());
        while let Some(n) = next {
            path.push(n);
            if n == name {
                c.report(&at, format!("a cycle: the role is assumed on top of itself ({})", path.join(" -> ")));
                break;
            }
            if path[..path.len() - 1].contains(&n) || path.len() > credentials.len() + 1 {
                break; // a cycle further on, reported from one of its own members
            }
            next = base_of(n);
        }
    }
}

fn ticket(
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

fn hook(c: &mut Checker<'_>, raw: &RawHook, at: &KeyPath) -> Option<HookSpec> {
    let before = c.problems.len();
    // The program is a path (relative ones against the config file's directory); a bare name is
    // refused, since there is no PATH search.
    let mut exec = raw.exec.clone();
    if let Some(argv) = &mut exec {
        match argv.first_mut() {
            None => c.report(&at.key("exec"), "needs at least the program to run"),
            Some(p) if !p.contains('/') || !names_a_file(p) => c.report(
                &at.key("exec"),
                format!(
                    "`{p}`: give the program's path, absolute or relative to the config file's directory \
                     (e.g. \"/usr/bin/{p}\" or \"./{p}\"; no shell, no PATH search)"
                ),
            ),
            Some(p) => match c.path(p, &at.key("exec")).map(|path| path.into_os_string().into_string()) {
                Some(Ok(resolved)) => *p = resolved,
                Some(Err(_)) => c.report(&at.key("exec"), "the program's resolved path is not UTF-8"),
                None => {}
            },
        }
    }
    let signal = match raw.signal.as_deref() {
        None => None,
        Some(name) => match signal_number(name) {
            Some(n) => Some((n, name.trim_start_matches("SIG").to_string())),
            None => {
                c.report(
                    &at.key("signal"),
                    format!("unknown signal `{name}` (HUP, USR1, USR2, TERM, INT, QUIT, WINCH)"),
                );
                None
            }
        },
    };
    match (&raw.signal, &raw.pid_file) {
        (Some(_), None) => c.report(&at.key("pid_file"), "is required with `signal`"),
        (None, Some(_)) => c.report(&at.key("signal"), "is required with `pid_file`"),
        _ => {}
    }
    if raw.exec.is_none() && raw.signal.is_none() && raw.pid_file.is_none() {
        c.report(at, "needs `exec`, or `signal` with `pid_file`");
    }
    let timeout = c.duration(
        &raw.timeout,
        &at.key("timeout"),
        DEFAULT_HOOK_TIMEOUT,
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "a hook timeout",
    );
    let debounce = c.duration(
        &raw.debounce,
        &at.key("debounce"),
        DEFAULT_HOOK_DEBOUNCE,
        Duration::ZERO,
        Duration::from_secs(3600),
        "a hook debounce",
    );
    let mut env = Vec::new();
    for (name, value) in raw.env.iter().flatten() {
        let key = at.key("env").key(name);
        let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_name {
            c.report(&key, "is not a variable name (letters, digits and `_`, not starting with a digit)");
        } else if name.starts_with("TICKETD_") {
            c.report(&key, "`TICKETD_*` variables are set by ticketd itself");
        } else if value.contains('\0') {
            c.report(&key, "the value holds a NUL byte");
        } else {
            env.push((name.clone(), value.clone()));
        }
    }
    let pid_file = raw.pid_file.as_deref().and_then(|p| c.path(p, &at.key("pid_file")));
    (c.problems.len() == before).then(|| HookSpec {
        exec,
        env,
        signal,
        pid_file,
        timeout: timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT),
        debounce: debounce.unwrap_or(DEFAULT_HOOK_DEBOUNCE),
    })
}

fn signal_number(name: &str) -> Option<i32> {
    use signal_hook::consts::*;
    Some(match name.trim_start_matches("SIG") {
        "HUP" => SIGHUP,
        "USR1" => SIGUSR1,
        "USR2" => SIGUSR2,
        "TERM" => SIGTERM,
        "INT" => SIGINT,
        "QUIT" => SIGQUIT,
        "WINCH" => SIGWINCH,
        _ => return None,
    })
}

fn socket(c: &mut Checker<'_>, raw: &RawConfig) -> Option<SocketSpec> {
    let root = KeyPath::root();
    let Some(path) = &raw.socket else {
        for (key, set) in [("socket_mode", raw.socket_mode.is_some()), ("socket_group", raw.socket_group.is_some())] {
            if set {
                c.report(&root.key(key), "has no effect without `socket`");
            }
        }
        return None;
    };
    let path = c.path(path, &root.key("socket"));
    let mode = match &raw.socket_mode {
        None => DEFAULT_SOCKET_MODE,
        Some(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 && m & 0o600 == 0o600 => m,
            _ => {
                c.report(
                    &root.key("socket_mode"),
                    format!("`{text}` is not an octal mode the owner can read and write, e.g. \"0660\""),
                );
                DEFAULT_SOCKET_MODE
            }
        },
    };
    let group = match &raw.socket_group {
        None => None,
        Some(toml::Value::Integer(gid)) if (0..=i64::from(u32::MAX)).contains(gid) => Some(*gid as u32),
        Some(toml::Value::String(name)) => match group_id(name) {
            Some(gid) => Some(gid),
            None => {
                c.report(&root.key("socket_group"), format!("no group named `{name}` in /etc/group"));
                None
            }
        },
        Some(other) => {
            c.report(&root.key("socket_group"), format!("must be a group name or gid, not {other}"));
            None
        }
    };
    Some(SocketSpec { path: path?, mode, group })
}

/// A group's gid from `/etc/group` (or a numeric string).
fn group_id(name: &str) -> Option<u32> {
    if let Ok(gid) = name.parse() {
        return Some(gid);
    }
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then(|| fields.nth(1)?.parse().ok()).flatten()
    })
}

fn sls(c: &mut Checker<'_>, rt: &RawTicket, at: &KeyPath, sinks: &Option<Vec<SinkSpec>>) -> Option<SlsSpec> {
    let endpoint = match c.required(&rt.endpoint, &at.key("endpoint")) {
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
        &rt.ticket_lifetime,
        &at.key("ticket_lifetime"),
        DEFAULT_SLS_TICKET_LIFETIME,
        MIN_LIFETIME,
        MAX_SLS_TICKET_LIFETIME,
        "SLS (expirationTime)",
    );
    // A default follows the ticket: only a value written in the file can be out of range.
    let token_lifetime = c.duration(
        &rt.token_lifetime,
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
            let given = c.given(rt.ticket_lifetime.is_some(), &ticket_at);
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
            &rt.ticket_renew_before,
            &at.key("ticket_renew_before"),
            SlsSpec::default_renew_before(ticket_lifetime, token_lifetime),
            Duration::from_secs(1),
            SlsSpec::max_renew_before(ticket_lifetime),
            |c| {
                let given = c.given(rt.ticket_lifetime.is_some(), &at.key("ticket_lifetime"));
                format!("a third of ticket_lifetime ({}, {given})", humantime::format_duration(ticket_lifetime))
            },
        )?;
        Some((ticket_lifetime, token_lifetime, ticket_renew_before))
    });
    let signature = match rt.signature_method.as_deref() {
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
    if let Some(url) = &rt.console_url {
        match reqwest::Url::parse(url) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => c.report(&at.key("console_url"), format!("`{url}` is not an http(s) URL")),
        }
    }
    let mut console_params = Vec::new();
    for (key, value) in rt.console_params.iter().flatten() {
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
    let wants_url = sinks.iter().flatten().any(|s| matches!(s, SinkSpec::File(f) if f.format == FileFormat::Url));
    if wants_url && rt.console_url.is_none() {
        c.report(&at.key("console_url"), "is required by the `url` sink format");
    }
    let (ticket_lifetime, token_lifetime, ticket_renew_before) = lifetimes?;
    Some(SlsSpec {
        endpoint: endpoint?,
        ticket_lifetime,
        token_lifetime,
        ticket_renew_before,
        signature,
        console_url: rt.console_url.clone(),
        console_params,
    })
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

/// The ticket keys each kind uses (besides name, kind, credentials and sinks).
const SLS_KEYS: &[&str] = &[
    "endpoint",
    "ticket_lifetime",
    "token_lifetime",
    "ticket_renew_before",
    "signature_method",
    "console_url",
    "console_params",
];
const DSW_KEYS: &[&str] = &["region", "endpoint", "network", "instance_id", "token_lifetime", "token_type", "audience"];
const TCR_KEYS: &[&str] = &["region", "registry_id", "token_type", "description", "endpoint", "registry"];

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

/// A region id such as `cn-hangzhou` or `ap-guangzhou`.
fn region(c: &mut Checker<'_>, value: &str, at: &KeyPath) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        c.report(at, format!("`{value}` is not a region id (e.g. cn-hangzhou, ap-guangzhou)"));
    }
    ok.then(|| value.to_string())
}

/// A plain identifier value (instance and registry ids, audience).
fn identifier(c: &mut Checker<'_>, value: &str, at: &KeyPath) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        c.report(at, format!("`{value}` is not a valid id (letters, digits, `-`, `_`, `.`)"));
    }
    ok.then(|| value.to_string())
}

fn dsw(c: &mut Checker<'_>, rt: &RawTicket, at: &KeyPath) -> Option<DswSpec> {
    let network = match rt.network.as_deref() {
        None | Some("public") => None,
        Some("vpc") => Some("vpc"),
        Some(other) => {
            c.report(&at.key("network"), format!("unknown network `{other}` (expected public or vpc)"));
            None
        }
    };
    let region = rt.region.as_deref().and_then(|r| region(c, r, &at.key("region")));
    let endpoint = match (&rt.endpoint, &rt.region) {
        (Some(text), _) => {
            if rt.network.is_some() {
                c.report(&at.key("network"), "is not used when endpoint is set");
            }
            endpoint(c, text, &at.key("endpoint"))
        }
        (None, None) => {
            c.report(&at.key("region"), "is required (or set endpoint)");
            None
        }
        (None, Some(_)) => region.as_deref().and_then(|r| {
            let host = match network {
                Some(n) => format!("pai-dsw-{n}.{r}.aliyuncs.com"),
                None => format!("pai-dsw.{r}.aliyuncs.com"),
            };
            endpoint(c, &host, &at.key("region"))
        }),
    };
    let instance_id = c.required(&rt.instance_id, &at.key("instance_id")).and_then(|v| {
        let at = at.key("instance_id");
        identifier(c, v, &at)
    });
    let token_lifetime = c.duration(
        &rt.token_lifetime,
        &at.key("token_lifetime"),
        DEFAULT_DSW_TOKEN_LIFETIME,
        MIN_LIFETIME,
        MAX_DSW_TOKEN_LIFETIME,
        "DSW (ExpireTime)",
    );
    let token_type = match rt.token_type.as_deref() {
        None => Some(None),
        Some("Access") => Some(Some(DswTokenType::Access)),
        Some("View") => Some(Some(DswTokenType::View)),
        Some(other) => {
            c.report(&at.key("token_type"), format!("unknown token_type `{other}` (expected Access or View)"));
            None
        }
    };
    let audience = match rt.audience.as_deref() {
        None => Some(None),
        Some(a) => identifier(c, a, &at.key("audience")).map(Some),
    };
    Some(DswSpec {
        endpoint: endpoint?,
        instance_id: instance_id?,
        token_lifetime: token_lifetime?,
        token_type: token_type?,
        audience: audience?,
    })
}

fn tcr(c: &mut Checker<'_>, rt: &RawTicket, at: &KeyPath) -> Option<TcrSpec> {
    let region = c.required(&rt.region, &at.key("region")).and_then(|r| {
        let at = at.key("region");
        region(c, r, &at)
    });
    let registry_id = c.required(&rt.registry_id, &at.key("registry_id")).and_then(|v| {
        let at = at.key("registry_id");
        identifier(c, v, &at)
    });
    let endpoint = endpoint(c, rt.endpoint.as_deref().unwrap_or(DEFAULT_TCR_ENDPOINT), &at.key("endpoint"));
    let token_type = match rt.token_type.as_deref() {
        None | Some("temp") => Some(TcrTokenType::Temp),
        Some("longterm") => Some(TcrTokenType::LongTerm),
        Some(other) => {
            c.report(&at.key("token_type"), format!("unknown token_type `{other}` (expected temp or longterm)"));
            None
        }
    };
    if let Some(d) = &rt.description
        && (d.len() > 256 || d.chars().any(char::is_control))
    {
        c.report(&at.key("description"), "must be at most 256 characters, without control characters");
    }
    let registry = match rt.registry.as_deref() {
        None => Some(None),
        Some(r) if registry_host(r) => Some(Some(r.to_string())),
        Some(r) => {
            c.report(
                &at.key("registry"),
                format!("`{r}` is not a registry host (e.g. myreg.tencentcloudcr.com or host:port, no scheme or path)"),
            );
            None
        }
    };
    Some(TcrSpec {
        endpoint: endpoint?,
        region: region?,
        registry_id: registry_id?,
        token_type: token_type?,
        token_type_written: rt.token_type.is_some(),
        description: rt.description.clone(),
        registry: registry?,
    })
}

fn registry_host(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 253
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
        && !r.starts_with(['.', '-', ':'])
}

/// A bare host means https; a full URL may be http only on loopback.
fn endpoint(c: &mut Checker<'_>, text: &str, at: &KeyPath) -> Option<Endpoint> {
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

fn sinks(
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
            (Some(Kind::Tcr), Some(r)) => Some(r.to_string()),
            (Some(Kind::Tcr), None) => {
                c.report(&at.key("type"), "a docker-config sink needs the ticket's `registry` (the registry host)");
                None
            }
            (Some(other), _) => {
                c.report(&at.key("type"), format!("a docker-config sink needs a tcr ticket, not {}", other.as_str()));
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
    let mut env_names = EnvNames::defaults(prefix, kind.unwrap_or(Kind::Sls));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<String, String> {
        HashMap::from([
            (ALIBABA_ACCESS_KEY_ID_ENV.to_string(), "id".to_string()),
            (ALIBABA_ACCESS_KEY_SECRET_ENV.to_string(), "secret".to_string()),
        ])
    }

    const GOOD: &str = r#"
state_dir = "/tmp/ticketd-test"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "ops-dashboard"
kind = "sls"
credentials = "prod"
endpoint = "cn-shanghai.log.aliyuncs.com"
ticket_lifetime = "30d"
token_lifetime = "1d"
console_url = "https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d"
console_params = { hideTopbar = "true", hideSidebar = true }

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/ops-dashboard.json"
format = "json"
mode = "0640"
"#;

    #[test]
    fn a_good_config_validates() {
        let config = parse(GOOD, "t.toml", &env()).unwrap();
        assert_eq!(config.tickets.len(), 1);
        let t = &config.tickets[0];
        let ApiSpec::Sls(sls) = &t.api else { panic!("not sls") };
        assert_eq!(sls.endpoint.base.as_str(), "https://cn-shanghai.log.aliyuncs.com/");
        assert_eq!(sls.ticket_lifetime, Duration::from_secs(30 * 86400));
        assert_eq!(sls.ticket_renew_before, Duration::from_secs(86400));
        assert_eq!(
            sls.console_params,
            vec![("hideTopbar".into(), "true".into()), ("hideSidebar".into(), "true".into())]
        );
        let SinkSpec::File(f) = &t.sinks[0] else { panic!("not a file sink") };
        assert_eq!(f.mode, 0o640);
    }

    #[test]
    fn section_by_section_parsing_gives_what_the_whole_document_gives() {
        let credentials = "[credentials.prod]\nvendor = \"alibaba\"\n";
        let tickets = "[[tickets]]\nname = \"a\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpont = \"x\"\n\
                           [[tickets]]\nname = \"a\"\nkind = \"dsw\"\ncredentials = \"nope\"\n\
                           [tickets.on_change]\nsignal = \"SIGNOPE\"\n\
                           [rate_limits]\nalibaba = 0\n";
        let bad_tickets = format!("{credentials}{tickets}");
        let example = include_str!("../../config.example.toml");
        for text in [GOOD, DSW_TCR, &bad_tickets, example, &format!("{GOOD}\n{tickets}")] {
            let sections = split::split(text).expect("a plain layout");
            assert!(!sections.tickets.is_empty());
            let whole = parse_document(Checker::new("t.toml", text, None), &both_env());
            let Ok(by_sections) = parse_sections(Checker::new("t.toml", text, None), &both_env(), &sections) else {
                panic!("every section parses:\n{text}")
            };
            assert_eq!(by_sections, whole, "{text}");
        }
        let found = problems(&bad_tickets, &env()).join("\n");
        for expected in [
            "t.toml:7:1: tickets[0].endpont: unknown key",
            "t.toml:9:1: tickets[1].name: duplicate ticket name `a`",
            "t.toml:11:1: tickets[1].credentials: unknown credentials `nope`",
            "t.toml:8:1: tickets[1].instance_id: is required",
            "t.toml:15:1: rate_limits.alibaba: 0 is not a rate",
        ] {
            assert!(found.contains(expected), "{expected} in:\n{found}");
        }
        let lines: Vec<&str> = found.lines().map(|l| l.split(':').nth(1).unwrap()).collect();
        let mut sorted = lines.clone();
        sorted.sort_by_key(|l| l.parse::<usize>().unwrap());
        assert_eq!(lines, sorted, "problems are listed in file order");
    }

    #[test]
    fn a_syntax_error_inside_a_ticket_names_its_line_in_the_file() {
        let text = format!("{GOOD}\n[[tickets]]\nname = \"b\"\nkind = sls\n");
        let line = text.lines().count();
        let found = problems(&text, &env()).join("\n");
        assert!(found.starts_with(&format!("t.toml:{line}:8: string values must be quoted")), "{found}");
    }

    /// Issue #17 item 10: one config with problems of every sort (types, unknown keys, a clash of
    /// sinks in a rejected ticket, a misplaced section) reports each of them, in file order.
    #[test]
    fn issue_17_every_problem_of_a_config_is_reported_in_one_pass_in_file_order() {
        let text = "state_dir = 5\n\
                    stat_dir = \"/x\"\n\
                    [credentials.prod]\nvendor = \"alibaba\"\n\
                    [[tickets]]\nname = \"a\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n\
                    token_lifetime = 600\n\
                    ticket_lifetme = \"1h\"\n\
                    required = \"yes\"\n\
                    [[tickets.sinks]]\ntype = \"file\"\npath = \"/run/t/a.json\"\nmode = 600\n\
                    [[tickets]]\nname = \"b\"\nkind = \"sls\"\ncredentials = \"nope\"\nendpoint = \"http://127.0.0.1:1\"\n\
                    [[tickets.sinks]]\ntype = \"file\"\npath = \"/run/t/a.json\"\n";
        // The quoted header makes the file go to the whole-document parse: the same problems.
        let whole = format!(
            "{text}[[\"tickets\"]]\nname = \"c\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n"
        );
        assert!(split::split(text).is_some() && split::split(&whole).is_none());
        let want = [
            "t.toml:1:1: state_dir: is an integer, expected a string",
            "t.toml:2:1: stat_dir: unknown key; did you mean `state_dir`?",
            "t.toml:10:1: tickets[0].token_lifetime: is an integer, expected a string: a duration in quotes",
            "t.toml:11:1: tickets[0].ticket_lifetme: unknown key; did you mean `ticket_lifetime`?",
            "t.toml:12:1: tickets[0].required: is a string, expected a boolean",
            "t.toml:16:1: tickets[0].sinks[0].mode: is an integer, expected a string: an octal mode in quotes",
            "t.toml:20:1: tickets[1].credentials: unknown credentials `nope`",
            "t.toml:24:1: tickets[1].sinks[0].path: /run/t/a.json is written by another sink too (tickets[0].sinks[0].path, line 15)",
        ];
        for text in [text, &whole] {
            let found = problems(text, &env());
            assert_eq!(found.len(), want.len(), "{found:#?}");
            for (f, w) in found.iter().zip(want) {
                assert!(f.starts_with(w), "{f}\n  does not start with\n{w}");
            }
        }
        // A sink with no ticket above it, in the words of the file.
        let found = problems(
            "[credentials.prod]\nvendor = \"alibaba\"\n[[tickets.sinks]]\ntype = \"file\"\npath = \"/x\"\n",
            &env(),
        );
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("t.toml:3:3: tickets: `[[tickets.sinks]]` comes before any `[[tickets]]`"),
            "{found:#?}"
        );
    }

    /// Issue #17 item 10: a syntax error in a ticket leaves the other tickets checked (each
    /// ticket section is parsed alone), and every problem keeps its line; a `[[tickets]]` after a
    /// sink section with no ticket above it is explained, not just "duplicate key".
    #[test]
    fn issue_17_syntax_errors_in_tickets_do_not_hide_the_other_problems() {
        let text = "state_dir = \"/tmp/s\"\nstat_dir = \"x\"\n[credentials.prod]\nvendor = \"alibaba\"\n\
                    [[tickets]]\nname = \"a\"\nkind = sls\n\
                    [[tickets]]\nname = \"b\"\nkind = \"sls\n\
                    [[tickets]]\nname = \"c\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\ntoken_lifetime = 5\n";
        let found = problems(text, &env());
        let want = [
            "t.toml:2:1: stat_dir: unknown key; did you mean `state_dir`?",
            "t.toml:7:8: string values must be quoted",
            "t.toml:10:12: invalid basic string",
            "t.toml:16:1: tickets[2].token_lifetime: is an integer, expected a string",
        ];
        assert_eq!(found.len(), want.len(), "{found:#?}");
        for (f, w) in found.iter().zip(want) {
            assert!(f.starts_with(w), "{f}\n  does not start with\n{w}");
        }
        let text = "[credentials.prod]\nvendor = \"alibaba\"\n[[tickets.sinks]]\ntype = \"file\"\npath = \"/x\"\n\
                    [[tickets]]\nname = \"a\"\n";
        assert_eq!(
            problems(text, &env()),
            [
                "t.toml:6:3: `[[tickets]]` comes after a ticket's sink or hook section (line 3) that has no `[[tickets]]` \
              above it: a sink or hook belongs to the ticket whose `[[tickets]]` header is above it, so start each \
              ticket with `[[tickets]]` and its keys"
            ]
        );
        let found = problems("socket = \"/a\"\nsocket = \"/b\"\n", &env());
        assert_eq!(found, ["t.toml:2:1: duplicate key `socket`: it is already defined above"]);
    }

    /// Issue #17 item 5: a short `ticket_lifetime` alone is valid (the token's default follows it);
    /// only a value written in the file is refused, and the message points at it.
    #[test]
    fn issue_17_lifetime_defaults_follow_the_ticket_and_only_written_values_are_refused() {
        let with = |keys: &str| GOOD.replace("ticket_lifetime = \"30d\"\ntoken_lifetime = \"1d\"\n", keys);
        let lifetimes = |keys: &str| {
            let config = parse(&with(keys), "t.toml", &env()).unwrap_or_else(|p| panic!("{keys}: {p}"));
            let ApiSpec::Sls(sls) = &config.tickets[0].api else { panic!("not sls") };
            [sls.ticket_lifetime, sls.token_lifetime, sls.ticket_renew_before].map(|d| d.as_secs())
        };
        assert_eq!(lifetimes("ticket_lifetime = \"12h\"\n"), [43_200, 43_200, 14_400]);
        assert_eq!(lifetimes("ticket_lifetime = \"10s\"\n"), [10, 10, 3]);
        assert_eq!(lifetimes("token_lifetime = \"2h\"\n"), [30 * 86_400, 7_200, 7_200]);
        assert_eq!(lifetimes(""), [30 * 86_400, 86_400, 86_400]);
        let found = problems(&with("ticket_lifetime = \"12h\"\ntoken_lifetime = \"13h\"\n"), &env());
        assert_eq!(
            found,
            [
                "t.toml:13:1: tickets[0].token_lifetime: 13h is longer than ticket_lifetime (12h, line 12); SLS caps a token at its ticket"
            ]
        );
    }

    /// Issue #17 item 12: `ticket_renew_before` is at most a third of the ticket, as documented.
    #[test]
    fn issue_17_ticket_renew_before_is_at_most_a_third_of_the_ticket_lifetime() {
        let with = |keys: &str| GOOD.replace("ticket_lifetime = \"30d\"\ntoken_lifetime = \"1d\"\n", keys);
        let config =
            parse(&with("ticket_lifetime = \"12h\"\nticket_renew_before = \"4h\"\n"), "t.toml", &env()).unwrap();
        let ApiSpec::Sls(sls) = &config.tickets[0].api else { panic!("not sls") };
        assert_eq!(sls.ticket_renew_before, Duration::from_secs(4 * 3600));
        let found = problems(&with("ticket_lifetime = \"12h\"\nticket_renew_before = \"5h\"\n"), &env());
        assert_eq!(
            found,
            [
                "t.toml:13:1: tickets[0].ticket_renew_before: 5h is longer than a third of ticket_lifetime (12h, line 12) allows (max 4h)"
            ]
        );
        let found = problems(&with("ticket_renew_before = \"11d\"\n"), &env());
        assert_eq!(
            found,
            [
                "t.toml:12:1: tickets[0].ticket_renew_before: 11d is longer than a third of ticket_lifetime (30days, the default) allows (max 10days)"
            ]
        );
    }

    /// Issue #17 item 3: an Alibaba SLS host of a region that issues no tickets is refused with
    /// the reason and the two accepted hosts; Shanghai and Singapore (public, intranet, share),
    /// loopback and custom hosts pass.
    #[test]
    fn issue_17_sls_tickets_come_from_the_shanghai_or_singapore_endpoint() {
        let with = |endpoint: &str| GOOD.replace("cn-shanghai.log.aliyuncs.com", endpoint);
        for good in [
            "cn-shanghai.log.aliyuncs.com",
            "ap-southeast-1.log.aliyuncs.com",
            "cn-shanghai-intranet.log.aliyuncs.com",
            "ap-southeast-1-intranet.log.aliyuncs.com",
            "cn-shanghai-share.log.aliyuncs.com",
            "https://CN-Shanghai.log.aliyuncs.com.",
            "http://127.0.0.1:8080",
            "http://localhost:1/prefix",
            "sls-proxy.example.com",
            "https://log.example.com:8443",
        ] {
            parse(&with(good), "t.toml", &env()).unwrap_or_else(|p| panic!("{good}: {p}"));
        }
        let accepted = "SLS issues tickets (CreateTicket, RefreshToken) only at the endpoint of China (Shanghai) or \
                        Singapore: use cn-shanghai.log.aliyuncs.com or ap-southeast-1.log.aliyuncs.com";
        for (bad, why) in [
            (
                "cn-hangzhou.log.aliyuncs.com",
                "`cn-hangzhou.log.aliyuncs.com` is the SLS endpoint of region cn-hangzhou; ",
            ),
            (
                "cn-hangzhou-intranet.log.aliyuncs.com",
                "`cn-hangzhou-intranet.log.aliyuncs.com` is the SLS endpoint of region cn-hangzhou; ",
            ),
            (
                "https://ap-southeast-5.log.aliyuncs.com/",
                "`ap-southeast-5.log.aliyuncs.com` is the SLS endpoint of region ap-southeast-5; ",
            ),
            (
                "us-west-1-share.log.aliyuncs.com",
                "`us-west-1-share.log.aliyuncs.com` is the SLS endpoint of region us-west-1; ",
            ),
            (
                "myproj.cn-beijing.log.aliyuncs.com",
                "`myproj.cn-beijing.log.aliyuncs.com` is the SLS endpoint of region cn-beijing; ",
            ),
            ("log-global.aliyuncs.com", "`log-global.aliyuncs.com` is not a region's SLS endpoint; "),
        ] {
            let found = problems(&with(bad), &env());
            assert_eq!(found.len(), 1, "{bad}: {found:#?}");
            assert!(
                found[0].starts_with(&format!("t.toml:11:1: tickets[0].endpoint: {why}{accepted}")),
                "{bad}: {found:#?}"
            );
        }
        let found = problems(&with("myproj.cn-shanghai.log.aliyuncs.com"), &env());
        assert_eq!(
            found,
            ["t.toml:11:1: tickets[0].endpoint: `myproj.cn-shanghai.log.aliyuncs.com` names a project (`myproj.`), \
              which CreateTicket and RefreshToken do not take: use cn-shanghai.log.aliyuncs.com"]
        );
    }

    /// Issue #17 item 11: every path key, relative, is resolved against the config file's
    /// directory (`out/x` and `./out/x` alike, so they clash); without a file it is refused.
    #[test]
    fn issue_17_relative_paths_resolve_against_the_config_file_s_directory() {
        let text = "state_dir = \"state\"\nsocket = \"./run/t.sock\"\n\
                    [credentials.prod]\nvendor = \"alibaba\"\nsource = \"profile\"\nprofile_file = \"keys/creds.ini\"\n\
                    [[tickets]]\nname = \"a\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n\
                    [tickets.on_change]\nexec = [\"bin/reload\", \"now\"]\n\
                    [[tickets.sinks]]\ntype = \"file\"\npath = \"out/dash.json\"\n\
                    [[tickets.sinks]]\ntype = \"file\"\npath = \"./out/dash.token\"\nformat = \"token\"\n\
                    [[tickets.sinks]]\ntype = \"file\"\npath = \"/abs/dash.env\"\nformat = \"env\"\n\
                    [[tickets]]\nname = \"b\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n\
                    [tickets.on_change]\nsignal = \"HUP\"\npid_file = \"../run/nginx.pid\"\n";
        let base = Path::new("/etc/ticketd");
        let config = super::parse(text, "t.toml", Some(base), &env()).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(config.state_dir, Path::new("/etc/ticketd/state"));
        assert_eq!(config.socket.unwrap().path, Path::new("/etc/ticketd/run/t.sock"));
        let SourceSpec::Profile { file, .. } = &config.credentials["prod"].source else { panic!("not profile") };
        assert_eq!(file.as_deref(), Some(Path::new("/etc/ticketd/keys/creds.ini")));
        let paths: Vec<&Path> = config.tickets[0].sinks.iter().map(SinkSpec::path).collect();
        assert_eq!(
            paths,
            [
                Path::new("/etc/ticketd/out/dash.json"),
                Path::new("/etc/ticketd/out/dash.token"),
                Path::new("/abs/dash.env")
            ]
        );
        let hook = config.tickets[0].consumers.on_change.as_ref().unwrap();
        assert_eq!(hook.exec.as_deref(), Some(&["/etc/ticketd/bin/reload".to_string(), "now".to_string()][..]));
        let hook = config.tickets[1].consumers.on_change.as_ref().unwrap();
        assert_eq!(hook.pid_file.as_deref(), Some(Path::new("/etc/ticketd/../run/nginx.pid")));

        // A sink or program path must end in a file name.
        for (from, to) in [
            ("path = \"out/dash.json\"", "path = \".\""),
            ("path = \"out/dash.json\"", "path = \"out/\""),
            ("path = \"out/dash.json\"", "path = \"out/..\""),
        ] {
            let found = super::parse(&text.replace(from, to), "t.toml", Some(base), &env()).unwrap_err().to_string();
            assert!(
                found.contains("tickets[0].sinks[0].path: `")
                    && found.contains("` names a directory: give the sink's file path"),
                "{to}: {found}"
            );
        }
        let found = super::parse(&text.replace("\"bin/reload\"", "\"bin/\""), "t.toml", Some(base), &env())
            .unwrap_err()
            .to_string();
        assert!(found.contains("tickets[0].on_change.exec: `bin/`: give the program's path"), "{found}");
        // `out/x` and `./out/x` are the same file.
        let clash = text.replace("path = \"./out/dash.token\"", "path = \"./out/dash.json\"");
        let found = super::parse(&clash, "t.toml", Some(base), &env()).unwrap_err().to_string();
        assert!(found.contains("tickets[0].sinks[1].path: /etc/ticketd/out/dash.json is written by another sink too (tickets[0].sinks[0].path, line 16)"), "{found}");
        // A bare program name is not a path (no PATH search).
        let bare = text.replace("exec = [\"bin/reload\"", "exec = [\"reload\"");
        let found = super::parse(&bare, "t.toml", Some(base), &env()).unwrap_err().to_string();
        assert!(found.contains("t.toml:13:1: tickets[0].on_change.exec: `reload`: give the program's path, absolute or relative to the config file's directory"), "{found}");
        // Text not read from a file: each relative path is refused by key.
        let found = problems(text, &env());
        for key in [
            "state_dir",
            "socket",
            "credentials.prod.profile_file",
            "tickets[0].on_change.exec",
            "tickets[0].sinks[0].path",
            "tickets[0].sinks[1].path",
            "tickets[1].on_change.pid_file",
        ] {
            assert!(
                found.iter().any(|p| p.contains(&format!(" {key}: `"))
                    && p.contains("is relative, and this configuration was not read from a file")),
                "{key}: {found:#?}"
            );
        }
        assert_eq!(found.len(), 7, "{found:#?}");
    }

    /// Text not read from a file (no directory for relative paths).
    /// A valid file is checked without indexing the whole file for lines (which a message that
    /// names a line needs): at 100,000 tickets that index peaked the daemon at 341 MiB, against 29.
    #[test]
    fn a_valid_file_is_checked_without_indexing_it_for_lines() {
        let with = |keys: &str| GOOD.replace("ticket_lifetime = \"30d\"\ntoken_lifetime = \"1d\"\n", keys);
        let keys = "ticket_lifetime = \"12h\"\ntoken_lifetime = \"1h\"\nticket_renew_before = \"2h\"\n";
        let before = super::super::locate::BUILT.with(std::cell::Cell::get);
        parse(&with(keys), "t.toml", &env()).unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(super::super::locate::BUILT.with(std::cell::Cell::get), before, "a locator was built");
        // A problem that names a line still gets it.
        let found = parse(&with("ticket_lifetime = \"12h\"\nticket_renew_before = \"5h\"\n"), "t.toml", &env())
            .unwrap_err()
            .to_string();
        assert!(found.contains("a third of ticket_lifetime (12h, line "), "{found}");
    }

    fn parse(text: &str, file: &str, env: &dyn Environment) -> Result<Config, Problems> {
        super::parse(text, file, None, env)
    }

    fn problems(text: &str, env: &HashMap<String, String>) -> Vec<String> {
        parse(text, "t.toml", env).unwrap_err().0.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn metrics_listen_takes_an_address_and_port() {
        assert_eq!(parse(GOOD, "t.toml", &env()).unwrap().metrics_listen, None);
        for (given, want) in
            [("127.0.0.1:9464", "127.0.0.1:9464"), ("[::]:9100", "[::]:9100"), ("0.0.0.0:80", "0.0.0.0:80")]
        {
            let text = format!("metrics_listen = \"{given}\"\n{GOOD}");
            let config = parse(&text, "t.toml", &env()).unwrap();
            assert_eq!(config.metrics_listen, Some(want.parse().unwrap()));
        }
        for bad in ["localhost:9464", "127.0.0.1", "127.0.0.1:0", ":9464"] {
            let text = format!("metrics_listen = \"{bad}\"\n{GOOD}");
            let found = problems(&text, &env()).join("\n");
            assert!(found.contains("t.toml:1:1: metrics_listen:"), "{bad}: {found}");
        }
    }

    #[test]
    fn rate_limits_default_to_the_vendor_rates_and_take_a_range() {
        let limits = parse(GOOD, "t.toml", &env()).unwrap().rate_limits;
        assert_eq!((limits.alibaba, limits.tencent), (50, 100));
        let text = format!("{GOOD}\n[rate_limits]\nalibaba = 1000000\n");
        let limits = parse(&text, "t.toml", &env()).unwrap().rate_limits;
        assert_eq!((limits.alibaba, limits.tencent), (1_000_000, 100));
        let text = format!("{GOOD}\n[rate_limits]\nalibaba = 0\ntencent = 2000000\nsls = 5\n");
        let first = GOOD.lines().count() + 3;
        let found = problems(&text, &env()).join("\n");
        let expected = [
            format!("t.toml:{first}:1: rate_limits.alibaba: 0 is not a rate from 1 to 1000000"),
            format!("t.toml:{}:1: rate_limits.tencent: 2000000 is not a rate", first + 1),
            format!("t.toml:{}:1: rate_limits.sls: unknown key", first + 2),
        ];
        for e in expected {
            assert!(found.contains(&e), "{e} not in {found}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_line() {
        let text = GOOD
            .replace("ticket_lifetime = \"30d\"", "ticket_lifetime = \"31d\"\ncolour = \"blue\"")
            .replace("token_lifetime = \"1d\"", "token_lifetime = \"2d\"")
            .replace("cn-shanghai.log.aliyuncs.com\"", "http://10.0.0.1:8080\"")
            .replace("mode = \"0640\"", "mode = \"0640\"\nshape = \"round\"");
        let found = problems(&text, &env());
        let joined = found.join("\n");
        assert!(joined.contains("t.toml:13:1: tickets[0].colour: unknown key"), "{joined}");
        assert!(joined.contains("t.toml:23:1: tickets[0].sinks[0].shape: unknown key"), "{joined}");
        assert!(
            joined.contains(
                "t.toml:12:1: tickets[0].ticket_lifetime: 31d is longer than SLS (expirationTime) allows (max 30days)"
            ),
            "{joined}"
        );
        assert!(joined.contains("t.toml:14:1: tickets[0].token_lifetime: 2d is longer than SLS (accessTokenExpirationTime) allows (max 1day)"), "{joined}");
        assert!(
            joined.contains(
                "t.toml:11:1: tickets[0].endpoint: `http://10.0.0.1:8080`: plain http is allowed only on loopback"
            ),
            "{joined}"
        );
        assert_eq!(found.len(), 5, "{joined}");
    }

    #[test]
    fn each_repeated_name_is_reported_once_whether_its_first_ticket_was_good_or_rejected() {
        let ticket = |name: &str, kind: &str| {
            format!(
                "[[tickets]]\nname = \"{name}\"\nkind = \"{kind}\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n"
            )
        };
        let mut text = String::from("[credentials.prod]\nvendor = \"alibaba\"\n");
        for i in 0..500 {
            text += &ticket(&format!("n{i}"), "sls");
        }
        // 500: a good ticket's name again; 501: rejected (bad kind); 502: the rejected one's name;
        // 503: a name from the middle; 504: the same name a third time.
        for (name, kind) in [("n0", "sls"), ("r", "nope"), ("r", "sls"), ("n250", "sls"), ("n250", "sls")] {
            text += &ticket(name, kind);
        }
        let found = problems(&text, &HashMap::new());
        let duplicates: Vec<&String> = found.iter().filter(|p| p.contains("duplicate")).collect();
        let want = [(500, "n0"), (502, "r"), (503, "n250"), (504, "n250")];
        assert_eq!(duplicates.len(), want.len(), "{found:#?}");
        for ((i, name), problem) in want.iter().zip(&duplicates) {
            assert!(problem.contains(&format!("tickets[{i}].name: duplicate ticket name `{name}`")), "{problem}");
        }
    }

    #[test]
    fn duplicate_names_unknown_credentials_and_missing_env_are_named() {
        let text = format!(
            "{GOOD}\n[[tickets]]\nname = \"ops-dashboard\"\nkind = \"sls\"\ncredentials = \"staging\"\nendpoint = \"http://127.0.0.1:1\"\n"
        )
        .replace("vendor = \"alibaba\"", "vendor = \"alibaba\"\nsource = \"env\"");
        let joined = problems(&text, &HashMap::new()).join("\n");
        assert!(joined.contains("t.toml:25:1: tickets[1].name: duplicate ticket name `ops-dashboard`"), "{joined}");
        assert!(joined.contains("tickets[1].credentials: unknown credentials `staging`"), "{joined}");
        assert!(
            joined
                .contains("t.toml:4:14: credentials.prod: environment variable ALIBABA_CLOUD_ACCESS_KEY_ID is not set"),
            "{joined}"
        );
        assert!(joined.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set"), "{joined}");
    }

    #[test]
    fn syntax_and_type_errors_name_the_line() {
        let joined = problems("state_dir = \n", &env()).join("\n");
        assert!(joined.starts_with("t.toml:1:"), "{joined}");
        let joined = problems("state_dir = 5\n", &env()).join("\n");
        assert_eq!(joined, "t.toml:1:1: state_dir: is an integer, expected a string");
    }

    #[test]
    fn loopback_http_bare_host_and_url_sink_rules() {
        let text = GOOD.replace("cn-shanghai.log.aliyuncs.com\"", "http://127.0.0.1:18080\"");
        let config = parse(&text, "t.toml", &env()).unwrap();
        let ApiSpec::Sls(sls) = &config.tickets[0].api else { panic!("not sls") };
        assert_eq!(sls.endpoint.host_header(), "127.0.0.1:18080");
        let no_console = GOOD
            .replace("console_url = \"https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d\"\n", "")
            .replace("format = \"json\"", "format = \"url\"");
        let joined = problems(&no_console, &env()).join("\n");
        assert!(joined.contains("console_url: is required by the `url` sink format"), "{joined}");
    }

    fn both_env() -> HashMap<String, String> {
        let mut e = env();
        e.insert(TENCENT_SECRET_ID_ENV.into(), "AKIDx".into());
        e.insert(TENCENT_SECRET_KEY_ENV.into(), "key".into());
        e
    }

    const DSW_TCR: &str = r#"[credentials.ali]
vendor = "alibaba"

[credentials.tc]
vendor = "tencent"

[[tickets]]
name = "notebook"
kind = "dsw"
credentials = "ali"
region = "cn-hangzhou"
network = "vpc"
instance_id = "dsw-730abc"
token_lifetime = "30m"
token_type = "View"
audience = "ThirdParty"

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/notebook.env"
format = "env"
env_token = "DSW_TOKEN"

[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
token_type = "longterm"
description = "ci"
registry = "myreg.tencentcloudcr.com"

[[tickets.sinks]]
type = "docker-config"
path = "/root/.docker/config.json"
"#;

    #[test]
    fn dsw_and_tcr_tickets_validate_with_defaults() {
        let config = parse(DSW_TCR, "t.toml", &both_env()).unwrap();
        let ApiSpec::Dsw(dsw) = &config.tickets[0].api else { panic!("not dsw") };
        assert_eq!(dsw.endpoint.base.as_str(), "https://pai-dsw-vpc.cn-hangzhou.aliyuncs.com/");
        assert_eq!(dsw.token_lifetime, Duration::from_secs(1800));
        assert_eq!(dsw.token_type, Some(DswTokenType::View));
        assert_eq!(dsw.audience.as_deref(), Some("ThirdParty"));
        let SinkSpec::File(f) = &config.tickets[0].sinks[0] else { panic!("not a file sink") };
        assert_eq!(f.format, FileFormat::Env);
        assert_eq!(
            f.env_names,
            EnvNames { token: "DSW_TOKEN".into(), username: None, expires_at: Some("TICKETD_EXPIRES_AT".into()) }
        );
        let ApiSpec::Tcr(tcr) = &config.tickets[1].api else { panic!("not tcr") };
        assert_eq!(tcr.endpoint.base.as_str(), "https://tcr.tencentcloudapi.com/");
        assert_eq!(tcr.token_type, TcrTokenType::LongTerm);
        assert_eq!(tcr.registry.as_deref(), Some("myreg.tencentcloudcr.com"));
        assert_eq!(
            config.tickets[1].sinks[0],
            SinkSpec::DockerConfig(DockerConfigSink {
                path: "/root/.docker/config.json".into(),
                registry: "myreg.tencentcloudcr.com".into(),
                mode: 0o600
            })
        );
        let public = DSW_TCR.replace("network = \"vpc\"\n", "");
        let config = parse(&public, "t.toml", &both_env()).unwrap();
        let ApiSpec::Dsw(dsw) = &config.tickets[0].api else { panic!("not dsw") };
        assert_eq!(dsw.endpoint.host_header(), "pai-dsw.cn-hangzhou.aliyuncs.com");
    }

    /// Issue 17 item 4: an unset `token_type` stays unset, so the request does not carry it.
    #[test]
    fn issue_17_an_unset_token_type_is_not_filled_in() {
        let text = DSW_TCR.replace("token_type = \"View\"\n", "").replace("token_type = \"longterm\"\n", "");
        let config = parse(&text, "t.toml", &both_env()).unwrap();
        let ApiSpec::Dsw(dsw) = &config.tickets[0].api else { panic!("not dsw") };
        assert_eq!(dsw.token_type, None);
        let ApiSpec::Tcr(tcr) = &config.tickets[1].api else { panic!("not tcr") };
        assert_eq!((tcr.token_type, tcr.token_type_written), (TcrTokenType::Temp, false));
        let config = parse(DSW_TCR, "t.toml", &both_env()).unwrap();
        let ApiSpec::Tcr(tcr) = &config.tickets[1].api else { panic!("not tcr") };
        assert_eq!((tcr.token_type, tcr.token_type_written), (TcrTokenType::LongTerm, true));
    }

    #[test]
    fn dsw_and_tcr_problems_are_all_reported_with_file_line_and_key() {
        let text = DSW_TCR
            .replace("credentials = \"ali\"", "credentials = \"tc\"\nconsole_url = \"https://x\"")
            .replace("token_type = \"View\"", "token_type = \"Edit\"")
            .replace("instance_id = \"dsw-730abc\"\n", "")
            .replace("token_type = \"longterm\"", "token_type = \"forever\"\nticket_lifetime = \"1d\"")
            .replace("registry_id = \"tcr-abcd1234\"\n", "")
            .replace("env_token = \"DSW_TOKEN\"", "env_token = \"DSW-TOKEN\"");
        let found = problems(&text, &both_env());
        let joined = found.join("\n");
        for expected in [
            "t.toml:10:1: tickets[0].credentials: a dsw ticket needs alibaba credentials",
            "t.toml:11:1: tickets[0].console_url: does not apply to kind = \"dsw\"",
            "t.toml:7:1: tickets[0].instance_id: is required",
            "t.toml:15:1: tickets[0].token_type: unknown token_type `Edit` (expected Access or View)",
            "t.toml:22:1: tickets[0].sinks[0].env_token: `DSW-TOKEN` is not an environment variable name",
            "t.toml:29:1: tickets[1].token_type: unknown token_type `forever` (expected temp or longterm)",
            "t.toml:30:1: tickets[1].ticket_lifetime: does not apply to kind = \"tcr\"",
            "t.toml:24:1: tickets[1].registry_id: is required",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
        }
        assert_eq!(found.len(), 8, "{joined}");
    }

    #[test]
    fn docker_config_sinks_need_a_tcr_ticket_with_a_registry() {
        let no_registry = DSW_TCR.replace("registry = \"myreg.tencentcloudcr.com\"\n", "");
        let joined = problems(&no_registry, &both_env()).join("\n");
        assert!(
            joined
                .contains("t.toml:34:1: tickets[1].sinks[0].type: a docker-config sink needs the ticket's `registry`"),
            "{joined}"
        );
        let on_dsw = DSW_TCR.replace("type = \"file\"", "type = \"docker-config\"");
        let joined = problems(&on_dsw, &both_env()).join("\n");
        assert!(
            joined.contains("tickets[0].sinks[0].type: a docker-config sink needs a tcr ticket, not dsw"),
            "{joined}"
        );
        assert!(joined.contains("tickets[0].sinks[0].format: does not apply to type = \"docker-config\""), "{joined}");
        let bad = DSW_TCR
            .replace("registry = \"myreg.tencentcloudcr.com\"", "registry = \"https://myreg.tencentcloudcr.com/\"")
            .replace("region = \"ap-guangzhou\"\n", "")
            .replace("network = \"vpc\"", "network = \"internal\"");
        let joined = problems(&bad, &both_env()).join("\n");
        assert!(
            joined.contains("tickets[1].registry: `https://myreg.tencentcloudcr.com/` is not a registry host"),
            "{joined}"
        );
        assert!(joined.contains("tickets[1].region: is required"), "{joined}");
        assert!(joined.contains("tickets[0].network: unknown network `internal` (expected public or vpc)"), "{joined}");
    }

    #[test]
    fn tencent_credentials_default_to_the_chain_with_the_tencentcloud_variables_first() {
        let explicit = DSW_TCR.replace("vendor = \"tencent\"", "vendor = \"tencent\"\nsource = \"env\"");
        let joined = problems(&explicit, &env()).join("\n");
        assert!(joined.contains("credentials.tc: environment variable TENCENTCLOUD_SECRET_ID is not set"), "{joined}");
        assert!(joined.contains("TENCENTCLOUD_SECRET_KEY is not set"), "{joined}");
        let config = parse(DSW_TCR, "t.toml", &env()).unwrap();
        let SourceSpec::Chain(members) = &config.credentials["tc"].source else { panic!("not a chain") };
        let names: Vec<&str> = members.iter().map(SourceSpec::name).collect();
        assert_eq!(names, ["env", "profile", "cvm_role", "oidc"]);
        assert_eq!(
            members[0],
            SourceSpec::Env {
                id_var: TENCENT_SECRET_ID_ENV.into(),
                secret_var: TENCENT_SECRET_KEY_ENV.into(),
                token_var: TENCENT_SESSION_TOKEN_ENV.into()
            }
        );
    }

    #[test]
    fn credential_sources_validate_their_keys_and_endpoints() {
        let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
        let none = HashMap::new();
        // The default is the SDK chain, in the SDK's order; nothing is required up front.
        let config = parse(GOOD, "t.toml", &none).unwrap();
        let SourceSpec::Chain(members) = &config.credentials["prod"].source else { panic!("not a chain") };
        let names: Vec<&str> = members.iter().map(SourceSpec::name).collect();
        assert_eq!(names, ["env", "oidc", "profile", "ecs_ram_role", "credentials_uri"]);
        // oidc with overrides.
        let text = with(
            "source = \"oidc\"\nsts_endpoint = \"http://127.0.0.1:9\"\nrole_session_name = \"ticketd\"\nduration = \"20m\"",
        );
        let config = parse(&text, "t.toml", &none).unwrap();
        let SourceSpec::Oidc(o) = &config.credentials["prod"].source else { panic!("not oidc") };
        assert_eq!((o.duration, o.role_session_name.as_deref()), (Duration::from_secs(1200), Some("ticketd")));
        assert_eq!(o.sts_endpoint.as_ref().unwrap().base.as_str(), "http://127.0.0.1:9/");
        // ecs_ram_role defaults.
        let config = parse(&with("source = \"ecs_ram_role\"\nrole_name = \"web\""), "t.toml", &none).unwrap();
        let SourceSpec::EcsRamRole(m) = &config.credentials["prod"].source else { panic!("not ecs") };
        assert!(m.imdsv1_fallback && m.metadata_endpoint.is_none() && m.role_name.as_deref() == Some("web"));
        // static keys.
        let config =
            parse(&with("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"s\""), "t.toml", &none)
                .unwrap();
        let SourceSpec::Static(c) = &config.credentials["prod"].source else { panic!("not static") };
        assert_eq!(c.access_key_id.expose(), "LTAIx");
        // Every mistake at once, located.
        let text = with(
            "source = \"oidc\"\nsts_endpoint = \"http://10.0.0.1\"\nduration = \"5m\"\nprofile = \"x\"\nsecret_id = \"AKID\"",
        );
        let joined = problems(&text, &none).join("\n");
        assert!(
            joined.contains(
                "t.toml:7:1: credentials.prod.sts_endpoint: `http://10.0.0.1`: plain http is allowed only on loopback"
            ),
            "{joined}"
        );
        assert!(
            joined.contains("credentials.prod.duration: 5m is shorter than STS (DurationSeconds) allows (min 15m)"),
            "{joined}"
        );
        assert!(joined.contains("credentials.prod.profile: does not apply to source = \"oidc\""), "{joined}");
        assert!(joined.contains("credentials.prod.secret_id: is not used with vendor = \"alibaba\""), "{joined}");
        let joined = problems(&with("source = \"cvm_role\""), &none).join("\n");
        assert!(joined.contains("unknown source `cvm_role` for vendor = \"alibaba\" (expected chain, env, static, profile, oidc, ecs_ram_role, ram_role_arn, credentials_uri)"), "{joined}");
        let joined = problems(&with("source = \"static\"\naccess_key_id = \"LTAIx\""), &none).join("\n");
        assert!(joined.contains("credentials.prod.access_key_secret: is required"), "{joined}");
    }

    /// `prod` (the ticket's set) assumes a role on top of `base`; `extra` is added as given.
    fn assumed(prod: &str, extra: &str) -> String {
        GOOD.replace(
            "[credentials.prod]\nvendor = \"alibaba\"\n",
            &format!("[credentials.base]\nvendor = \"alibaba\"\nsource = \"ecs_ram_role\"\n\n[credentials.prod]\nvendor = \"alibaba\"\n{prod}\n{extra}\n"),
        )
    }

    #[test]
    fn issue_17_assume_role_sources_take_their_keys_and_need_a_base_of_the_same_vendor_without_a_cycle() {
        let none = HashMap::new();
        let role = "source = \"ram_role_arn\"\nbase_credentials = \"base\"\nrole_arn = \"acs:ram::123:role/x\"";
        let full = format!(
            "{role}\nrole_session_name = \"ticketd\"\nexternal_id = \"ext-1\"\npolicy = '{{\"Version\": \"1\"}}'\n\
             session_duration = \"2h\"\nsts_endpoint = \"http://127.0.0.1:9\""
        );
        let config = parse(&assumed(&full, ""), "t.toml", &none).unwrap();
        let SourceSpec::AssumeRole(a) = &config.credentials["prod"].source else { panic!("not ram_role_arn") };
        assert_eq!(
            (a.base.as_str(), a.role_arn.as_str(), a.duration),
            ("base", "acs:ram::123:role/x", Duration::from_secs(7200))
        );
        assert_eq!((a.external_id.as_deref(), a.policy.as_deref()), (Some("ext-1"), Some("{\"Version\": \"1\"}")));
        assert!(a.sts_endpoint.is_some() && a.role_session_name.as_deref() == Some("ticketd"));
        let config = parse(&assumed(role, ""), "t.toml", &none).unwrap();
        let SourceSpec::AssumeRole(a) = &config.credentials["prod"].source else { panic!() };
        assert_eq!((a.duration, a.external_id.is_none(), a.policy.is_none()), (Duration::from_secs(3600), true, true));
        // A missing base, with its line.
        let joined = problems(&assumed(&role.replace("\"base\"", "\"nope\""), ""), &none).join("\n");
        assert!(joined.contains("t.toml:11:1: credentials.prod.base_credentials: unknown credentials `nope` (no [credentials.nope] section)"), "{joined}");
        // A cycle, on itself and through another set.
        let joined = problems(&assumed(&role.replace("\"base\"", "\"prod\""), ""), &none).join("\n");
        assert!(
            joined.contains(
                "credentials.prod.base_credentials: a cycle: the role is assumed on top of itself (prod -> prod)"
            ),
            "{joined}"
        );
        let other = "[credentials.other]\nvendor = \"alibaba\"\nsource = \"ram_role_arn\"\nbase_credentials = \"prod\"\nrole_arn = \"acs:ram::1:role/y\"";
        let joined = problems(&assumed(&role.replace("\"base\"", "\"other\""), other), &none).join("\n");
        assert!(joined.contains("credentials.prod.base_credentials: a cycle: the role is assumed on top of itself (prod -> other -> prod)"), "{joined}");
        assert!(joined.contains("credentials.other.base_credentials: a cycle: the role is assumed on top of itself (other -> prod -> other)"), "{joined}");
        assert!(joined.contains("t.toml:11:1: credentials.prod.base_credentials: a cycle"), "{joined}");
        // A Tencent base for an Alibaba role; the wrong source for the vendor.
        let tc = "[credentials.tc]\nvendor = \"tencent\"\nsource = \"cvm_role\"";
        let joined = problems(&assumed(&role.replace("\"base\"", "\"tc\""), tc), &none).join("\n");
        assert!(joined.contains("credentials.prod.base_credentials: `tc` are tencent credentials; a alibaba role is assumed with alibaba keys"), "{joined}");
        let joined = problems(&assumed(&role.replace("ram_role_arn", "role_arn"), ""), &none).join("\n");
        assert!(joined.contains("unknown source `role_arn` for vendor = \"alibaba\""), "{joined}");
        // Bad values, all at once; and the role keys under another source.
        let bad = "source = \"ram_role_arn\"\nrole_arn = \"arn:aws:iam::1:role/x\"\npolicy = \"allow all\"\nsession_duration = \"5m\"\nexternal_id = \"x\"";
        let joined = problems(&assumed(bad, ""), &none).join("\n");
        for part in [
            "credentials.prod.base_credentials: is required",
            "credentials.prod.role_arn: `arn:aws:iam::1:role/x` is not a role ARN (e.g. \"acs:ram::123456789012:role/name\")",
            "credentials.prod.policy: is not a JSON policy document",
            "credentials.prod.session_duration: 5m is shorter than STS AssumeRole (DurationSeconds) allows (min 15m)",
            "credentials.prod.external_id: 2 to 1224 of letters",
        ] {
            assert!(joined.contains(part), "missing `{part}` in {joined}");
        }
        let joined =
            problems(&assumed("role_arn = \"acs:ram::1:role/x\"\nbase_credentials = \"base\"", ""), &none).join("\n");
        assert!(joined.contains("credentials.prod.role_arn: does not apply to source = \"chain\""), "{joined}");
        assert!(joined.contains("credentials.prod.base_credentials: does not apply to source = \"chain\""), "{joined}");
        // Tencent role_arn.
        let text = DSW_TCR.replace(
            "vendor = \"tencent\"",
            "vendor = \"tencent\"\nsource = \"role_arn\"\nbase_credentials = \"base\"\nrole_arn = \"qcs::cam::uin/1:roleName/r\"",
        ) + "\n[credentials.base]\nvendor = \"tencent\"\nsource = \"cvm_role\"\n";
        let config = parse(&text, "t.toml", &both_env()).unwrap();
        let SourceSpec::AssumeRole(a) = &config.credentials["tc"].source else { panic!("not role_arn") };
        assert_eq!((a.vendor, a.duration), (Vendor::Tencent, Duration::from_secs(7200)));
        assert_eq!(config.credentials["tc"].source.name(), "role_arn");
    }

    #[test]
    fn issue_17_profile_takes_the_sts_and_metadata_endpoints_its_cli_role_modes_call() {
        let none = HashMap::new();
        let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
        let text = with(
            "source = \"profile\"\nsts_endpoint = \"http://127.0.0.1:9\"\nmetadata_endpoint = \"http://127.0.0.1:8\"",
        );
        let config = parse(&text, "t.toml", &none).unwrap();
        let SourceSpec::Profile { sts_endpoint: Some(sts), metadata_endpoint: Some(md), .. } =
            &config.credentials["prod"].source
        else {
            panic!("no endpoints")
        };
        assert_eq!((sts.base.port(), md.base.port()), (Some(9), Some(8)));
        let joined = problems(&with("source = \"profile\"\nrole_name = \"web\""), &none).join("\n");
        assert!(joined.contains("credentials.prod.role_name: does not apply to source = \"profile\""), "{joined}");
    }

    #[test]
    fn issue_17_credentials_uri_takes_an_http_url_and_ends_the_alibaba_chain() {
        let none = HashMap::new();
        let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
        let config = parse(
            &with("source = \"credentials_uri\"\ncredentials_uri = \"http://10.0.0.5:8080/creds\""),
            "t.toml",
            &none,
        )
        .unwrap();
        let SourceSpec::CredentialsUri(Some(u)) = &config.credentials["prod"].source else { panic!() };
        assert_eq!(u.as_str(), "http://10.0.0.5:8080/creds");
        let config = parse(&with("source = \"credentials_uri\""), "t.toml", &none).unwrap();
        assert_eq!(config.credentials["prod"].source, SourceSpec::CredentialsUri(None));
        let joined = problems(&with("source = \"credentials_uri\"\ncredentials_uri = \"ftp://x/\""), &none).join("\n");
        assert!(joined.contains("credentials.prod.credentials_uri: `ftp://x/`: scheme ftp is not http(s)"), "{joined}");
        let joined = problems(
            &with("source = \"env\"\ncredentials_uri = \"http://x/\""),
            &HashMap::from([
                ("ALIBABA_CLOUD_ACCESS_KEY_ID".to_string(), "LTAI".to_string()),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET".to_string(), "s".to_string()),
            ]),
        )
        .join("\n");
        assert!(joined.contains("credentials.prod.credentials_uri: does not apply to source = \"env\""), "{joined}");
    }

    #[test]
    fn issue_16_hook_env_takes_variable_names_and_leaves_ticketd_variables_alone() {
        let with = |env: &str| format!("{GOOD}[tickets.on_change]\nexec = [\"/bin/true\"]\nenv = {{ {env} }}\n");
        let config = parse(&with("NGINX_CONF = \"/etc/nginx\", _X = \"\""), "t.toml", &env()).unwrap();
        let hook = config.tickets[0].consumers.on_change.clone().unwrap();
        assert_eq!(hook.env, vec![("NGINX_CONF".to_string(), "/etc/nginx".to_string()), ("_X".into(), "".into())]);
        let joined = problems(&with("\"1X\" = \"a\", TICKETD_TICKET = \"b\", \"A-B\" = \"c\""), &env()).join("\n");
        assert!(joined.contains("on_change.env.1X: is not a variable name"), "{joined}");
        assert!(joined.contains("on_change.env.A-B: is not a variable name"), "{joined}");
        assert!(
            joined.contains("on_change.env.TICKETD_TICKET: `TICKETD_*` variables are set by ticketd itself"),
            "{joined}"
        );
    }

    /// Issue #16 item 12: no problem ever shows a value from a field that may hold a secret
    /// (type errors, a key pasted into a `*_env` line, syntax errors inside the value), and empty
    /// keys or keys with NUL, newline or non-ASCII characters are refused by key. Item 1: keys in
    /// the environment are checked at load too, by variable name.
    #[test]
    fn issue_16_secret_fields_are_never_echoed_and_bad_key_text_is_refused() {
        let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
        let none = HashMap::new();
        let secret = "9876543210987654";
        let mixed = "aZ3kQ9vX2mP7wL5nR8tY1bC4dF6gH0";
        let cases: Vec<(String, &str, &str)> = vec![
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = {secret}"),
                secret,
                "an integer",
            ),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = {secret}.5"),
                secret,
                "a number",
            ),
            (format!("source = \"static\"\naccess_key_id = {secret}\naccess_key_secret = \"s\""), secret, "an integer"),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = [\"{mixed}\"]"),
                mixed,
                "an array",
            ),
            (
                format!("source = \"env\"\naccess_key_secret_env = \"{mixed}\""),
                mixed,
                "access_key_secret_env: is not an environment variable name",
            ),
            (
                format!("source = \"env\"\naccess_key_secret_env = \"{mixed}=x\""),
                mixed,
                "is not an environment variable name",
            ),
            (format!("source = \"env\"\nsecurity_token_env = {secret}"), secret, "an integer"),
            (format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = {mixed}"), mixed, "t.toml:"),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\\q\""),
                mixed,
                "t.toml:",
            ),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}"),
                mixed,
                "t.toml:",
            ),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = '{mixed}\n'"),
                mixed,
                "t.toml:",
            ),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\\u0000\""),
                mixed,
                "access_key_secret: holds a control character (U+0000) at character 31",
            ),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\\n\""),
                mixed,
                "access_key_secret: holds a control character (U+000A)",
            ),
            (
                format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"\u{200b}{mixed}\""),
                mixed,
                "access_key_secret: holds a non-ASCII character (U+200B) at character 1",
            ),
            (
                format!(
                    "source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\"\nsecurity_token = \"{mixed} x\""
                ),
                mixed,
                "security_token: holds a space",
            ),
            (
                "source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"\"".to_string(),
                "\u{0}",
                "access_key_secret: is empty",
            ),
            (
                "source = \"static\"\naccess_key_id = \"\"\naccess_key_secret = \"s\"".to_string(),
                "\u{0}",
                "access_key_id: is empty",
            ),
        ];
        for (body, value, expected) in &cases {
            let joined = problems(&with(body), &none).join("\n");
            assert!(joined.contains(expected), "expected {expected:?} for {body:?} in\n{joined}");
            assert!(
                !joined.contains(value) && !joined.contains(&value[..8.min(value.len())]),
                "a secret echoed:\n{joined}"
            );
        }
        // Keys in the environment: refused at load (`env` and the default chain), by name only.
        for source in ["source = \"env\"", ""] {
            for bad in [format!("{mixed}\u{e9}"), format!("{mixed}\u{200b}"), format!("{mixed}\n")] {
                let env = HashMap::from([
                    (ALIBABA_ACCESS_KEY_ID_ENV.to_string(), "LTAIx".to_string()),
                    (ALIBABA_ACCESS_KEY_SECRET_ENV.to_string(), bad.clone()),
                ]);
                let joined = problems(&with(source), &env).join("\n");
                assert!(
                    joined.contains(&format!(
                        "credentials.prod: environment variable {ALIBABA_ACCESS_KEY_SECRET_ENV} holds"
                    )),
                    "{joined}"
                );
                assert!(!joined.contains(&mixed[..8]), "{joined}");
            }
        }
        // Conventional names and good keys still pass.
        let env =
            HashMap::from([("MY_KEY_1".to_string(), "LTAIx".to_string()), ("_SK".to_string(), mixed.to_string())]);
        parse(
            &with("source = \"env\"\naccess_key_id_env = \"MY_KEY_1\"\naccess_key_secret_env = \"_SK\""),
            "t.toml",
            &env,
        )
        .unwrap();
    }
}
