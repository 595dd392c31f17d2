//! Prometheus metrics, rendered from the [`Board`] on each scrape (OpenMetrics text, which
//! Prometheus reads): per ticket the expiry and schedule gauges and the refresh counters the
//! scheduler keeps on the board, plus process metrics read from `/proc/self`.
//!
//! Served at `/metrics` on the socket API and, when `metrics_listen` is set, on a plain TCP
//! listener ([`crate::api::tcp`]).

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::board::Board;
use crate::clock::Now;

/// The content type of [`render`]'s output.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`to_classic`]'s output, the Prometheus text format.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TicketLabels {
    ticket: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    ticket: String,
    kind: String,
    result: String,
}

type TimeGauge = Family<TicketLabels, Gauge<f64, AtomicU64>>;

fn seconds(t: impl Into<SystemTime>) -> f64 {
    let t: SystemTime = t.into();
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Every metric, as OpenMetrics text, at `now`.
pub fn render(board: &Board, now: Now) -> String {
    let mut registry = Registry::default();
    let token_expiry = TimeGauge::default();
    let ticket_expiry = TimeGauge::default();
    let next_refresh = TimeGauge::default();
    let last_success = TimeGauge::default();
    let refreshes = Family::<RefreshLabels, Counter>::default();
    board.by_name(|tickets| {
        for ticket in tickets {
            let labels =
                TicketLabels { ticket: ticket.name().to_string(), kind: ticket.spec().kind().as_str().to_string() };
            let current = ticket.current();
            if let Some(c) = current {
                // Fails closed like every validity check: after the wall clock was set back,
                // the expiry the monotonic clock gives.
                token_expiry.get_or_create(&labels).set(seconds(c.expiry(now)));
            }
            if let Some(t) = current.and_then(|c| c.ticket.as_ref()) {
                ticket_expiry.get_or_create(&labels).set(seconds(t.expires_at));
            }
            if let Some(at) = ticket.next_at(now) {
                next_refresh.get_or_create(&labels).set(seconds(at));
            }
            if let Some(at) = ticket.last_success().or(current.map(|c| c.refreshed_at.time())) {
                last_success.get_or_create(&labels).set(seconds(at));
            }
            let (successes, failures) = ticket.refresh_counts();
            for (result, count) in [("success", successes), ("failure", failures)] {
                let labels =
                    RefreshLabels { ticket: labels.ticket.clone(), kind: labels.kind.clone(), result: result.into() };
                refreshes.get_or_create(&labels).inc_by(count);
            }
        }
    });
    registry.register(
        "ticketd_token_expiry_timestamp_seconds",
        "When the token every sink holds expires (Unix time)",
        token_expiry,
    );
    registry.register(
        "ticketd_ticket_expiry_timestamp_seconds",
        "When the ticket the token is derived from expires (Unix time; SLS only)",
        ticket_expiry,
    );
    registry.register(
        "ticketd_next_refresh_timestamp_seconds",
        "When the scheduler acts next on the ticket (Unix time)",
        next_refresh,
    );
    registry.register(
        "ticketd_last_success_timestamp_seconds",
        "When the last call for the ticket succeeded (Unix time)",
        last_success,
    );
    registry.register("ticketd_refresh", "Calls to the cloud API for the ticket, by result", refreshes);
    let revocations = Gauge::<i64>::default();
    revocations.set(i64::try_from(board.revocations().len()).unwrap_or(i64::MAX));
    registry.register(
        "ticketd_revocations_pending",
        "Replaced TCR long-term tokens not revoked yet (DeleteInstanceToken waiting, or failing and retried)",
        revocations,
    );
    process_metrics(&mut registry);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

/// The standard `process_*` metrics, from `/proc/self` (absent where it cannot be read).
fn process_metrics(registry: &mut Registry) {
    let Some(p) = ProcessStats::read() else { return };
    let gauge = |v: f64| {
        let g = Gauge::<f64, AtomicU64>::default();
        g.set(v);
        g
    };
    let cpu = Counter::<f64, AtomicU64>::default();
    cpu.inc_by(p.cpu_seconds);
    registry.register("process_cpu_seconds", "Total user and system CPU time spent in seconds", cpu);
    registry.register("process_resident_memory_bytes", "Resident memory size in bytes", gauge(p.resident_bytes));
    registry.register("process_virtual_memory_bytes", "Virtual memory size in bytes", gauge(p.virtual_bytes));
    if let Some(t) = p.start_time {
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            gauge(t),
        );
    }
    if let Some(n) = p.open_fds {
        registry.register("process_open_fds", "Number of open file descriptors", gauge(n));
    }
    if let Some(n) = p.max_fds {
        registry.register("process_max_fds", "Maximum number of open file descriptors", gauge(n));
    }
}

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub start_time: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

impl ProcessStats {
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Unreadable under systemd's ProcSubset=pid: then there is no start time.
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse::<f64>().ok());
        let (ticks, page) = (rustix::param::clock_ticks_per_second(), rustix::param::page_size());
        let mut stats = parse_stat(&stat, ticks.max(1) as f64, page.max(1) as f64, boot_time)?;
        stats.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
        stats.max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.map(|n| n as f64);
        Some(stats)
    }
}

/// Parse `/proc/<pid>/stat` (fields after the command name, which may hold spaces and parentheses).
pub fn parse_stat(stat: &str, ticks_per_second: f64, page_size: f64, boot_time: Option<f64>) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")", field 3 (state) is index 0; utime is field 14, so index 11.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks_per_second,
        start_time: boot_time.map(|b| b + field(22).unwrap_or(0.0) / ticks_per_second),
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
        open_fds: None,
        max_fds: None,
    })
}

/// OpenMetrics text turned into the Prometheus text format (what `promtool check metrics` and
/// older scrapers read): counter families are named with their `_total` suffix, and the
/// OpenMetrics-only `# UNIT` and `# EOF` lines go.
pub fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let name = if counters.contains(name) { format!("{name}_total") } else { name.to_string() };
                out.push_str(&format!("{prefix}{name} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// An axum response with every metric: OpenMetrics when the scraper asks for it (`Accept`), the
/// Prometheus text format otherwise.
pub fn response(board: &Board, now: Now, headers: &axum::http::HeaderMap) -> Response {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("application/openmetrics-text")));
    let text = render(board, now);
    let (body, kind) = if wants_openmetrics { (text, OPENMETRICS) } else { (to_classic(&text), CLASSIC) };
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_a_tricky_name() {
        let stat = "4242 (tick (d) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 50 0 0 20 0 5 0 1000 123456789 2048 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse_stat(stat, 100.0, 4096.0, Some(1_700_000_000.0)).unwrap();
        assert_eq!(s.cpu_seconds, 2.0);
        assert_eq!(s.start_time, Some(1_700_000_010.0));
        assert_eq!(s.virtual_bytes, 123_456_789.0);
        assert_eq!(s.resident_bytes, 2048.0 * 4096.0);
    }

    #[test]
    fn classic_text_names_counters_with_total_and_drops_eof() {
        let om = "# HELP a_total x.\n# HELP a Calls.\n# TYPE a counter\na_total{b=\"c\"} 1\n# UNIT g seconds\n# TYPE g gauge\ng 2.0\n# EOF\n";
        assert_eq!(
            to_classic(om),
            "# HELP a_total x.\n# HELP a_total Calls.\n# TYPE a_total counter\na_total{b=\"c\"} 1\n# TYPE g gauge\ng 2.0\n"
        );
    }

    #[test]
    fn reads_this_process() {
        let s = ProcessStats::read().expect("/proc/self is readable on Linux");
        assert!(s.resident_bytes > 0.0 && s.open_fds.unwrap() >= 1.0 && s.start_time.unwrap() > 1e9);
    }
}
