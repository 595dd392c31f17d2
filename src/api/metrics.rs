//! Prometheus metrics, streamed from the [`Board`] on each scrape, in the OpenMetrics text
//! format or the Prometheus text format (what the scraper's `Accept` asks for): per ticket the
//! expiry and schedule gauges and the refresh counters (while the board holds at most
//! `metrics_ticket_series` tickets), aggregates by kind and the soonest-to-expire token always,
//! the fleet's view from this node (with `[cluster]`), and the process metrics read from `/proc/self`.
//!
//! The text is what the `prometheus-client` crate wrote before (family by family, the same names,
//! help texts, label order and number formats), with each family's series in ticket-name order.
//! Served at `/metrics` on the socket API and on the TCP listener ([`crate::api::tcp`]).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::process::ProcessStats;
use crate::api::stream::{self, Render};
use crate::api::tickets::{STATUSES, status};
use crate::board::{Board, Table, Ticket};
use crate::clock::Now;
use crate::cluster::view::{ClusterView, Role, ViewSnapshot};
use crate::config::Kind;

/// The content type of OpenMetrics text.
pub(crate) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the Prometheus text format.
pub(crate) const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The text formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// OpenMetrics: counter families are named without `_total`, and the text ends in `# EOF`.
    OpenMetrics,
    /// The Prometheus text format (`promtool check metrics`, older scrapers): counter families
    /// carry their `_total` suffix; no `# EOF`.
    Classic,
}

/// One family of series, as its `# HELP` and `# TYPE` lines name it.
struct Family {
    name: &'static str,
    help: &'static str,
    counter: bool,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family { name, help, counter: false }
}

/// The per-ticket families, one pass over the tickets each, in this order.
const PER_TICKET: [Family; 5] = [
    gauge("ticketd_token_expiry_timestamp_seconds", "When the token every sink holds expires (Unix time)"),
    gauge(
        "ticketd_ticket_expiry_timestamp_seconds",
        "When the ticket the token is derived from expires (Unix time; SLS only)",
    ),
    gauge("ticketd_next_refresh_timestamp_seconds", "When the scheduler acts next on the ticket (Unix time)"),
    gauge("ticketd_last_success_timestamp_seconds", "When the last call for the ticket succeeded (Unix time)"),
    Family { name: "ticketd_refresh", help: "Calls to the cloud API for the ticket, by result", counter: true },
];

const REVOCATIONS: Family = gauge(
    "ticketd_revocations_pending",
    "Replaced TCR long-term tokens not revoked yet (DeleteInstanceToken waiting, or failing and retried)",
);
const TICKET_SERIES: Family = gauge(
    "ticketd_ticket_series",
    "1 when the series per ticket are shown, 0 when the board holds more tickets than metrics_ticket_series",
);
const TICKETS: Family = gauge("ticketd_tickets", "Tickets by kind and status (the status GET /v1/tickets reports)");
// A gauge, not a counter: a reload that removes a ticket takes its calls out of the sum, and a
// counter that goes down reads as a reset to rate() and increase().
const REFRESH_BY_KIND: Family = gauge(
    "ticketd_refresh_calls_by_kind",
    "Calls to the cloud API, by kind and result, summed over the tickets on the board now (removing a ticket lowers it)",
);
const CLUSTER_LEADER: Family = gauge(
    "ticketd_cluster_leader",
    "1 while this node is the fleet's leader (the one that calls the cloud), 0 otherwise",
);
const CLUSTER_LAST_SYNC: Family = gauge(
    "ticketd_cluster_last_sync_timestamp_seconds",
    "When this node last applied what the fleet's etcd holds (Unix time)",
);
const SOONEST: Family = gauge(
    "ticketd_soonest_token_expiry_timestamp_seconds",
    "When the token that expires first expires (Unix time), and its ticket",
);

fn header(out: &mut String, family: &Family, format: Format) {
    let total = if family.counter && format == Format::Classic { "_total" } else { "" };
    let kind = if family.counter { "counter" } else { "gauge" };
    let (name, help) = (family.name, family.help);
    let _ = write!(out, "# HELP {name}{total} {help}.\n# TYPE {name}{total} {kind}\n");
}

/// A label value, escaped as the text formats require (`\`, `"` and newlines).
fn escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A float as `prometheus-client` wrote it (its `dtoa`): the shortest text that reads back the
/// same, always with a decimal point. Rust's `{:?}` writes the same for every value ticketd
/// reports (from 1e-4 up to 1e16: times, bytes, counts, CPU seconds).
fn float(out: &mut String, v: f64) {
    let _ = write!(out, "{v:?}");
}

fn seconds(t: impl Into<SystemTime>) -> f64 {
    let t: SystemTime = t.into();
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// `name{ticket="…",kind="…"` (the caller closes the braces, or adds labels first).
fn ticket_series(out: &mut String, name: &str, ticket: &Ticket) {
    out.push_str(name);
    out.push_str("{ticket=\"");
    escaped(out, ticket.name());
    let _ = write!(out, "\",kind=\"{}\"", ticket.spec().kind().as_str());
}

/// Reads the process metrics (`ProcessStats::read`; tests put a probe here).
type ReadProcess = Box<dyn FnMut() -> Option<ProcessStats> + Send>;

/// The whole scrape: what it renders, read before the first chunk (the small parts), as it goes
/// (the tickets), or after the board's lock is released (the process metrics, from `/proc`).
struct Scrape {
    now: Now,
    format: Format,
    /// Show the per-ticket families (the board holds at most `metrics_ticket_series` tickets).
    per_ticket: bool,
    revocations: usize,
    /// The fleet's view from this node, read before the first chunk (`[cluster]` only).
    cluster: Option<ViewSnapshot>,
    /// Whether the current pass has written its family's header (a family without a series is
    /// left out, as before).
    headed: bool,
    text: String,
    read_process: ReadProcess,
}

impl Scrape {
    fn flush(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text.as_bytes());
        self.text.clear();
    }
}

impl Render for Scrape {
    fn begin(&mut self, _: &Table, pass: usize, _: &mut Vec<u8>) -> bool {
        self.headed = false;
        self.per_ticket && pass < PER_TICKET.len()
    }

    fn row(&mut self, pass: usize, ticket: &Ticket, out: &mut Vec<u8>) {
        let now = self.now;
        let current = ticket.current();
        let value = match pass {
            // Fails closed like every validity check: after the wall clock was set back, the
            // expiry the monotonic clock gives.
            0 => current.map(|c| seconds(c.expiry(now))),
            1 => current.and_then(|c| c.ticket.as_ref()).map(|t| seconds(t.expires_at)),
            2 => ticket.next_at(now).map(seconds),
            3 => ticket.last_success().or(current.map(|c| c.refreshed_at.time())).map(seconds),
            _ => None,
        };
        let family = &PER_TICKET[pass];
        if value.is_none() && !family.counter {
            return;
        }
        if !self.headed {
            header(&mut self.text, family, self.format);
            self.headed = true;
        }
        match value {
            Some(v) => {
                ticket_series(&mut self.text, family.name, ticket);
                self.text.push_str("} ");
                float(&mut self.text, v);
                self.text.push('\n');
            }
            None => {
                let (successes, failures) = ticket.refresh_counts();
                for (result, count) in [("success", successes), ("failure", failures)] {
                    ticket_series(&mut self.text, "ticketd_refresh_total", ticket);
                    let _ = writeln!(self.text, ",result=\"{result}\"}} {count}");
                }
            }
        }
        self.flush(out);
    }

    fn tail(&mut self, table: &Table, out: &mut Vec<u8>) {
        let format = self.format;
        let text = &mut self.text;
        header(text, &REVOCATIONS, format);
        let _ = writeln!(text, "{} {}", REVOCATIONS.name, self.revocations);
        aggregates(text, table, self.now, self.per_ticket, format);
        if let Some(view) = &self.cluster {
            cluster(text, view, format);
        }
        self.flush(out);
    }

    /// `/proc` is read here, with the board unlocked: a readdir of up to the fd limit's entries
    /// must not delay the scheduler's next write (review F11).
    fn unlocked(&mut self, out: &mut Vec<u8>) {
        if let Some(p) = (self.read_process)() {
            process(&mut self.text, &p, self.format);
        }
        if self.format == Format::OpenMetrics {
            self.text.push_str("# EOF\n");
        }
        self.flush(out);
    }
}

/// Every registered API, in registration order (the series' order).
const KINDS: &[Kind] = Kind::ALL;

/// The series that stay few whatever the number of tickets: by kind, and the one ticket whose
/// token expires first.
fn aggregates(text: &mut String, table: &Table, now: Now, per_ticket: bool, format: Format) {
    let mut counts = [[0u64; STATUSES.len()]; KINDS.len()];
    let mut calls = [[0u64; 2]; KINDS.len()];
    let mut soonest: Option<(f64, &Ticket)> = None;
    for ticket in table.tickets() {
        let k = KINDS.iter().position(|&k| k == ticket.spec().kind()).unwrap_or(0);
        let s = STATUSES.iter().position(|&s| s == status(ticket, now)).unwrap_or(0);
        counts[k][s] += 1;
        let (successes, failures) = ticket.refresh_counts();
        calls[k][0] += successes;
        calls[k][1] += failures;
        if let Some(c) = ticket.current() {
            let at = seconds(c.expiry(now));
            // Ties go to the first name, so the series stays put while they last.
            let sooner = soonest.is_none_or(|(t, s)| at < t || (at == t && ticket.name() < s.name()));
            if sooner {
                soonest = Some((at, ticket));
            }
        }
    }
    header(text, &TICKET_SERIES, format);
    let _ = writeln!(text, "{} {}", TICKET_SERIES.name, u8::from(per_ticket));
    let present: Vec<usize> = (0..KINDS.len()).filter(|&k| counts[k].iter().sum::<u64>() > 0).collect();
    if !present.is_empty() {
        header(text, &TICKETS, format);
        for &k in &present {
            for (s, status) in STATUSES.iter().enumerate() {
                let kind = KINDS[k].as_str();
                let _ = writeln!(text, "{}{{kind=\"{kind}\",status=\"{status}\"}} {}", TICKETS.name, counts[k][s]);
            }
        }
        header(text, &REFRESH_BY_KIND, format);
        for &k in &present {
            for (r, result) in ["success", "failure"].iter().enumerate() {
                let kind = KINDS[k].as_str();
                let _ =
                    writeln!(text, "{}{{kind=\"{kind}\",result=\"{result}\"}} {}", REFRESH_BY_KIND.name, calls[k][r]);
            }
        }
    }
    if let Some((at, ticket)) = soonest {
        header(text, &SOONEST, format);
        ticket_series(text, SOONEST.name, ticket);
        text.push_str("} ");
        float(text, at);
        text.push('\n');
    }
}

/// This node's place in the fleet: whether it leads, and when it last synced (once it has).
fn cluster(text: &mut String, view: &ViewSnapshot, format: Format) {
    header(text, &CLUSTER_LEADER, format);
    text.push_str(CLUSTER_LEADER.name);
    text.push_str("{node=\"");
    escaped(text, &view.node);
    let _ = writeln!(text, "\"}} {}", u8::from(view.role == Role::Leader));
    if let Some(at) = view.last_sync {
        header(text, &CLUSTER_LAST_SYNC, format);
        text.push_str(CLUSTER_LAST_SYNC.name);
        text.push_str("{node=\"");
        escaped(text, &view.node);
        text.push_str("\"} ");
        float(text, seconds(at));
        text.push('\n');
    }
}

/// The standard `process_*` metrics, from `/proc/self` (absent where it cannot be read).
fn process(text: &mut String, p: &ProcessStats, format: Format) {
    let cpu =
        Family { name: "process_cpu_seconds", help: "Total user and system CPU time spent in seconds", counter: true };
    header(text, &cpu, format);
    text.push_str("process_cpu_seconds_total ");
    float(text, p.cpu_seconds);
    text.push('\n');
    for (name, help, value) in [
        ("process_resident_memory_bytes", "Resident memory size in bytes", Some(p.resident_bytes)),
        ("process_virtual_memory_bytes", "Virtual memory size in bytes", Some(p.virtual_bytes)),
        ("process_start_time_seconds", "Start time of the process since unix epoch in seconds", p.start_time),
        ("process_open_fds", "Number of open file descriptors", p.open_fds),
        ("process_max_fds", "Maximum number of open file descriptors", p.max_fds),
    ] {
        if let Some(v) = value {
            header(text, &gauge(name, help), format);
            let _ = write!(text, "{name} ");
            float(text, v);
            text.push('\n');
        }
    }
}

fn scrape(board: &Board, now: Now, format: Format, ticket_series: usize, cluster: Option<&ClusterView>) -> Scrape {
    let per_ticket = board.read(Table::len) <= ticket_series;
    let revocations = board.revocations().len();
    let read_process = Box::new(ProcessStats::read);
    let cluster = cluster.map(ClusterView::snapshot);
    Scrape { now, format, per_ticket, revocations, cluster, headed: false, text: String::new(), read_process }
}

/// Every metric as text, in one buffer (tests; answers stream, see [`response`]).
#[cfg(test)]
pub(crate) fn render(board: &Board, now: Now) -> String {
    render_with(board, now, None)
}

/// [`render`] with the fleet's view (tests).
#[cfg(test)]
pub(crate) fn render_with(board: &Board, now: Now, cluster: Option<&ClusterView>) -> String {
    let all = scrape(board, now, Format::OpenMetrics, usize::MAX, cluster);
    stream::collect(board, all)
}

/// The format a scraper asks for in its `Accept` header (the Prometheus text format unless it
/// names OpenMetrics).
pub(crate) fn format_wanted(headers: &HeaderMap) -> Format {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    if openmetrics { Format::OpenMetrics } else { Format::Classic }
}

/// The `/metrics` answer, streamed from the board; per-ticket series while it holds at most
/// `ticket_series` tickets, and the fleet's view from this node when there is one.
pub(crate) fn response(
    board: &Arc<Board>,
    now: Now,
    headers: &HeaderMap,
    ticket_series: usize,
    cluster: Option<&ClusterView>,
) -> Response {
    let format = format_wanted(headers);
    let body = stream::body(board.clone(), scrape(board, now, format, ticket_series, cluster));
    let kind = match format {
        Format::OpenMetrics => OPENMETRICS,
        Format::Classic => CLASSIC,
    };
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
pub(crate) mod tests;
