//! From raw TOML to a validated [`Config`], collecting every problem with its place: the file a
//! piece at a time, its top-level settings and the loop over its tickets.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;

use super::credentials::{assume_role_bases, credential};
use super::socket::socket;
use super::tickets::ticket;
use crate::config::check::{Checker, resolve_path};
use crate::config::checked::{Checked, Needs};
use crate::config::cluster::cluster;
use crate::config::defaults::{DEFAULT_CORE_DUMPS, DEFAULT_METRICS_TICKET_SERIES, DEFAULT_STATE_DIR, MAX_RATE_LIMIT};
use crate::config::lenient::{self, KeyProblem};
use crate::config::locate::{KeyPath, line_and_column};
use crate::config::problem::Problem;
use crate::config::raw::{RawConfig, RawTicket};
use crate::config::spec::{Config, RateLimits, SocketGroup};
use crate::config::split::{Cut, Piece};
use crate::config::ticket::{TicketSettings, TicketSpec};

/// Check config `text` (named `file` in problems; relative paths against `base`): the config or
/// the file's problems, with what the environment's checks need either way.
///
/// The one way a file is read: cut into pieces ([`split`](crate::config::split)), the top-level
/// keys and tables parsed as one small document, then each ticket parsed, checked and dropped on
/// its own, so no tree of the whole file is ever built (except to locate one rare mistake:
/// tickets written both as an inline array and as `[[tickets]]` sections). A syntax error in a ticket is reported
/// at its place and that ticket left out: the others are still checked. A syntax error outside
/// the tickets (or `tickets` both a table and the array of tickets) leaves the file's meaning
/// unknown: it is reported with every ticket's syntax errors, and nothing else is checked.
pub(crate) fn parse<'t>(text: &'t str, file: &str, base: Option<PathBuf>) -> Checked<'t> {
    by_pieces(Checker::new(file, text, base), |piece| Ok(piece.text(text)))
}

/// [`parse`] for a file that is not held whole: cut as it was read (`cut`), each piece's text
/// read back by `read` when it is reached. A valid file gives the same config as [`parse`] of its
/// text; a file with problems gives them unlocated (no line, no column), and one piece that
/// cannot be read is a problem: read such a file whole, with [`parse`], to say where they are.
pub(crate) fn parse_by_pieces(
    cut: Cut,
    file: &str,
    base: Option<PathBuf>,
    mut read: impl FnMut(&Piece) -> std::io::Result<String>,
) -> Checked<'static> {
    by_pieces(Checker::by_pieces(file, cut, base), |piece| read(piece).map(Cow::Owned))
}

fn by_pieces<'t>(
    mut checker: Checker<'t>,
    mut read: impl FnMut(&Piece) -> std::io::Result<Cow<'t, str>>,
) -> Checked<'t> {
    let cut = checker.cut.clone();
    let (file, text) = (checker.file.clone(), checker.text);
    let unreadable =
        |e: std::io::Error| syntax_problem(&file, text, None, &format!("cannot read the config file: {e}"));
    let mut syntax = Vec::new();
    let rest = match read(&cut.rest) {
        Ok(rest) => {
            deserialize::<RawConfig>(&rest).map_err(|e| syntax.push(toml_problem(&file, text, &cut.rest, &e))).ok()
        }
        Err(e) => {
            syntax.push(unreadable(e));
            None
        }
    };
    if let Some(clash) = &cut.clash {
        syntax.push(syntax_problem(&file, text, Some(clash.clone()), "duplicate key"));
    }
    // Each ticket's piece as it is reached: parsed, then dropped once checked.
    let syntax = std::cell::RefCell::new(syntax);
    let tickets = (0..cut.tickets()).filter_map(|i| {
        let piece = cut.ticket(i);
        let read = read(&piece).map_err(|e| syntax.borrow_mut().push(unreadable(e))).ok()?;
        let (mut doc, found) = match deserialize::<TicketSection>(&read) {
            Ok(read) => read,
            Err(e) => {
                syntax.borrow_mut().push(toml_problem(&file, text, &piece, &e));
                return None;
            }
        };
        // A piece holds one `[[tickets]]` entry by construction.
        let rt = doc.tickets.pop()?;
        // The piece's own paths say `tickets[0]`: it is the file's `tickets[i]`.
        let at = KeyPath::root().key("tickets").index(i);
        let rebased = |path: &KeyPath| if path.segments().len() >= 2 { path.rebased(2, &at) } else { at.clone() };
        Some((i, rt, found.into_iter().map(|(path, message)| (rebased(&path), message)).collect()))
    });
    let mut checked = match rest {
        // Tickets written as an inline array (`tickets = [{ ... }]`) are in the rest's own text:
        // checked from there, like the pieces' (they cost no more than the rest already did).
        Some((mut raw, found)) if cut.clash.is_none() && cut.tickets() == 0 && !raw.tickets.is_empty() => {
            let inline = std::mem::take(&mut raw.tickets);
            tickets.for_each(drop);
            check(checker, raw, found, inline.into_iter().enumerate().map(|(i, rt)| (i, rt, Vec::new())))
        }
        // Both an inline array and `[[tickets]]` sections: TOML's duplicate key, located by TOML
        // itself (a rare mistake, so the one place a whole document is parsed).
        Some((raw, _)) if cut.clash.is_none() && !raw.tickets.is_empty() => {
            tickets.for_each(drop);
            let mut syntax = syntax.into_inner();
            match text.map(deserialize::<RawConfig>) {
                Some(Err(e)) => syntax.push(toml_problem(&file, text, &Piece::whole(text.unwrap_or_default()), &e)),
                _ => {
                    let message = "`tickets` is both an inline array and `[[tickets]]` sections";
                    syntax.push(syntax_problem(&file, text, None, message));
                }
            }
            checker.problems.append(&mut syntax);
            return Checked::new(checker, Err(Needs::default()));
        }
        Some((raw, found)) if cut.clash.is_none() => check(checker, raw, found, tickets),
        _ => {
            tickets.for_each(drop);
            checker.problems.append(&mut syntax.borrow_mut());
            return Checked::new(checker, Err(Needs::default()));
        }
    };
    checked.add(syntax.into_inner());
    checked
}

/// The file parsed as one document, the way [`parse`] must agree with: for tests only (a tree of
/// the whole document costs hundreds of MiB at 100,000 tickets).
#[cfg(test)]
pub(super) fn parse_whole(mut checker: Checker<'_>) -> Checked<'_> {
    let text = checker.text.expect("a checker of a whole text");
    let (mut raw, found) = match deserialize::<RawConfig>(text) {
        Ok(read) => read,
        Err(e) => {
            let problem = toml_problem(&checker.file, Some(text), &Piece::whole(text), &e);
            checker.problems.push(problem);
            return Checked::new(checker, Err(Needs::default()));
        }
    };
    let tickets = std::mem::take(&mut raw.tickets);
    check(checker, raw, found, tickets.into_iter().enumerate().map(|(i, rt)| (i, rt, Vec::new())))
}

/// One `[[tickets]]` piece, as a document of its own.
#[derive(serde::Deserialize)]
struct TicketSection {
    tickets: Vec<RawTicket>,
}

/// Deserialize `text`, with a problem for each unknown key or key of the wrong type.
fn deserialize<T: serde::de::DeserializeOwned>(text: &str) -> Result<(T, Vec<KeyProblem>), toml::de::Error> {
    lenient::read(text)
}

/// Validate a file's settings and its tickets, which come one at a time (with the paths of their
/// unknown keys) so that a big file never holds all its raw tickets at once.
fn check<'t>(
    mut checker: Checker<'t>,
    raw: RawConfig,
    found: Vec<KeyProblem>,
    tickets: impl Iterator<Item = (usize, RawTicket, Vec<KeyProblem>)>,
) -> Checked<'t> {
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
    let metrics_ticket_series = match raw.metrics_ticket_series {
        None => DEFAULT_METRICS_TICKET_SERIES,
        Some(n) => usize::try_from(n).unwrap_or_else(|_| {
            checker.report(
                &root.key("metrics_ticket_series"),
                format!("{n} is not a number of tickets (0 or more; 0 shows no series per ticket)"),
            );
            DEFAULT_METRICS_TICKET_SERIES
        }),
    };
    let rate_limits = rate_limits(&mut checker, raw.rate_limits.as_ref());
    let mut credentials = BTreeMap::new();
    for (name, rc) in &raw.credentials {
        let at = root.key("credentials").key(name);
        if let Some(spec) = credential(&mut checker, name, rc, &at) {
            credentials.insert(name.clone(), spec);
        }
    }

    assume_role_bases(&mut checker, &raw.credentials, &credentials);
    let cluster = raw.cluster.as_ref().map(|rc| cluster(&mut checker, rc));

    // Room for every ticket at once: a vector grown by doubling would hold, while it moves, its
    // old copy beside a new one of twice the size (6 MiB at 100,000 tickets).
    let mut specs = Vec::with_capacity(checker.cut.tickets());
    let mut names = SeenNames::with_capacity(checker.cut.tickets());
    // Each sink file's first writer, as (ticket, sink) indices: checked on the raw sinks, so a
    // clash shows up with the other problems, even in a ticket rejected for another reason.
    let mut sink_paths: HashMap<PathBuf, (u32, u32)> = HashMap::new();
    let mut shared = SharedSettings::default();
    for (i, rt, found) in tickets {
        let at = root.key("tickets").index(i);
        for (path, message) in found {
            checker.report(&path, message);
        }
        let duplicate = rt.name.as_deref().is_some_and(|name| names.contains(&specs, name));
        if let Some(name) = rt.name.as_deref().filter(|_| duplicate) {
            checker.report(&at.key("name"), format!("duplicate ticket name `{name}`"));
        }
        for (j, rs) in rt.sinks.iter().enumerate() {
            let Some(path) = rs.path.as_deref().and_then(|p| resolve_path(checker.base.as_deref(), p)) else {
                continue;
            };
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
        match ticket(&mut checker, &rt, &at, &raw.credentials, &credentials, cluster.is_some()) {
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
        let config = Config {
            source: None,
            state_dir,
            socket,
            metrics_listen,
            metrics_ticket_series,
            rate_limits,
            core_dumps: raw.core_dumps.unwrap_or(DEFAULT_CORE_DUMPS),
            credentials,
            tickets: specs,
            cluster: cluster.flatten(),
        };
        Checked::new(checker, Ok(config))
    } else {
        // The group is looked up even when the socket's path was refused, as before.
        let socket_group = raw
            .socket
            .as_ref()
            .and(raw.socket_group.as_ref())
            .and_then(toml::Value::as_str)
            .map(|name| name.parse().map_or_else(|_| SocketGroup::Name(name.to_string()), SocketGroup::Id));
        Checked::new(checker, Err(Needs { credentials, socket_group }))
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

/// Where a name is: spec `i` (`i`), or rejected name `i` (`REJECTED | i`). 4 bytes, where an
/// enum of two `usize`s took 16: the index of a 100,000-ticket file is 1.5 MiB smaller.
#[derive(Clone, Copy)]
struct Seen(u32);

impl Seen {
    const REJECTED: u32 = 1 << 31;

    fn spec(i: usize) -> Seen {
        Seen(u32::try_from(i).ok().filter(|&i| i < Seen::REJECTED).expect("fewer than 2^31 tickets"))
    }

    fn rejected(i: usize) -> Seen {
        Seen(Seen::spec(i).0 | Seen::REJECTED)
    }
}

impl SeenNames {
    fn with_capacity(tickets: usize) -> Self {
        SeenNames { table: hashbrown::HashTable::with_capacity(tickets), ..SeenNames::default() }
    }

    fn contains(&self, specs: &[TicketSpec], name: &str) -> bool {
        let at = |&seen: &Seen| seen_name(specs, &self.rejected, seen) == name;
        self.table.find(self.hasher.hash_one(name), at).is_some()
    }

    fn add_spec(&mut self, specs: &[TicketSpec], i: usize) {
        self.add(specs, Seen::spec(i));
    }

    fn add_rejected(&mut self, specs: &[TicketSpec], name: String) {
        self.rejected.push(name);
        self.add(specs, Seen::rejected(self.rejected.len() - 1));
    }

    fn add(&mut self, specs: &[TicketSpec], seen: Seen) {
        let SeenNames { table, hasher, rejected } = self;
        let hash = |seen: Seen| hasher.hash_one(seen_name(specs, rejected, seen));
        table.insert_unique(hash(seen), seen, |&s| hash(s));
    }
}

fn seen_name<'a>(specs: &'a [TicketSpec], rejected: &'a [String], seen: Seen) -> &'a str {
    match seen.0 & Seen::REJECTED {
        0 => &specs[seen.0 as usize].name,
        _ => &rejected[(seen.0 & !Seen::REJECTED) as usize],
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

fn rate_limits(c: &mut Checker<'_>, raw: Option<&crate::config::raw::RawRateLimits>) -> RateLimits {
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

/// A TOML syntax error in `piece` of the file's `text` (located when the text is held whole).
fn toml_problem(file: &str, text: Option<&str>, piece: &Piece, e: &toml::de::Error) -> Problem {
    let span = e.span().map(|s| match s.is_empty() {
        true => piece.file_offset(s.start)..piece.file_offset(s.start),
        false => piece.file_offset(s.start)..piece.file_offset(s.end - 1) + 1,
    });
    syntax_problem(file, text, span, e.message())
}

/// A TOML syntax error at `span` of the file's `text`, in the words of `message` (located, and a
/// duplicate key named, when the text is held whole).
fn syntax_problem(file: &str, text: Option<&str>, span: Option<std::ops::Range<usize>>, message: &str) -> Problem {
    let Some(text) = text else {
        let message = message.trim().to_string();
        return Problem { file: file.to_string(), line: None, column: None, key: String::new(), message };
    };
    let position = span.as_ref().map(|s| line_and_column(text, s.start));
    let mut message = message.trim().to_string();
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
