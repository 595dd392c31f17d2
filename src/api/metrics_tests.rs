//! Tests of the metrics text: the exposition `prometheus-client` wrote, the cardinality policy,
//! and the streaming bound.

use super::*;

/// A board of three tickets at a fixed moment: an SLS ticket holding a ticket and a token
/// (with calls counted), one holding only a token, and one with no token whose name needs
/// escaping.
pub(crate) fn fixture() -> (Board, Now) {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::board::{Ticket, stamp};
    use crate::clock::Mono;
    use crate::secret::Secret;
    use crate::token::{Current, Holding, TicketPart, TokenPart};
    let wall = UNIX_EPOCH + Duration::from_millis(1_764_600_000_250);
    let now = Now { wall, mono: Mono::from_nanos(5_000_000_000) };
    let (minute, hour) = (Duration::from_secs(60), Duration::from_secs(3600));
    let board = Board::default();
    let holding = |ticket: bool, token_life: Duration| Holding {
        current: Some(Current {
            ticket: ticket.then(|| TicketPart {
                value: Secret::new("ticket"),
                issued_at: (wall - minute).into(),
                expires_at: (wall + hour - minute).into(),
            }),
            token: TokenPart {
                value: Secret::new("token"),
                username: None,
                token_id: None,
                issued_at: (wall - minute).into(),
                expires_at: (wall + token_life).into(),
            },
            generation: 4,
            refreshed_at: (wall - Duration::from_millis(1500)).into(),
            expires_mono: None,
        }),
        pending: None,
    };
    let spec = |name: &str| crate::scheduler::tests::sls_ticket(name, 24 * hour, hour);
    let mut a = Ticket::new(spec("alpha"), Holding::default(), 0, 1 << 15);
    a.written_by_this_process(holding(true, 10 * minute));
    a.set_history(7, 2, 0, stamp(wall - Duration::from_millis(2250)));
    a.queued_at(now.mono.nanos() + 420_500_000_000);
    let mut b = Ticket::new(spec("beta"), Holding::default(), 0, 1 << 15);
    b.written_by_this_process(holding(false, 3 * minute));
    b.set_history(1, 0, 0, 0);
    let mut q = Ticket::new(spec("q\"x\\y\nz"), Holding::default(), 0, 1 << 15);
    q.set_history(0, 3, 3, 0);
    q.queued_at(now.mono.nanos() + 2_000_000_000);
    for t in [q, b, a] {
        board.write().insert(t);
    }
    (board, now)
}
/// What `prometheus-client` 0.25 wrote for [`fixture`] (captured from it before it was dropped),
/// with each family's series in name order: everything up to the process metrics.
const GOLDEN: &str = r#"# HELP ticketd_token_expiry_timestamp_seconds When the token every sink holds expires (Unix time).
# TYPE ticketd_token_expiry_timestamp_seconds gauge
ticketd_token_expiry_timestamp_seconds{ticket="alpha",kind="sls"} 1764600600.25
ticketd_token_expiry_timestamp_seconds{ticket="beta",kind="sls"} 1764600180.25
# HELP ticketd_ticket_expiry_timestamp_seconds When the ticket the token is derived from expires (Unix time; SLS only).
# TYPE ticketd_ticket_expiry_timestamp_seconds gauge
ticketd_ticket_expiry_timestamp_seconds{ticket="alpha",kind="sls"} 1764603540.25
# HELP ticketd_next_refresh_timestamp_seconds When the scheduler acts next on the ticket (Unix time).
# TYPE ticketd_next_refresh_timestamp_seconds gauge
ticketd_next_refresh_timestamp_seconds{ticket="alpha",kind="sls"} 1764600420.75
ticketd_next_refresh_timestamp_seconds{ticket="q\"x\\y\nz",kind="sls"} 1764600002.25
# HELP ticketd_last_success_timestamp_seconds When the last call for the ticket succeeded (Unix time).
# TYPE ticketd_last_success_timestamp_seconds gauge
ticketd_last_success_timestamp_seconds{ticket="alpha",kind="sls"} 1764599998.0
ticketd_last_success_timestamp_seconds{ticket="beta",kind="sls"} 1764599998.75
# HELP ticketd_refresh Calls to the cloud API for the ticket, by result.
# TYPE ticketd_refresh counter
ticketd_refresh_total{ticket="alpha",kind="sls",result="success"} 7
ticketd_refresh_total{ticket="alpha",kind="sls",result="failure"} 2
ticketd_refresh_total{ticket="beta",kind="sls",result="success"} 1
ticketd_refresh_total{ticket="beta",kind="sls",result="failure"} 0
ticketd_refresh_total{ticket="q\"x\\y\nz",kind="sls",result="success"} 0
ticketd_refresh_total{ticket="q\"x\\y\nz",kind="sls",result="failure"} 3
# HELP ticketd_revocations_pending Replaced TCR long-term tokens not revoked yet (DeleteInstanceToken waiting, or failing and retried).
# TYPE ticketd_revocations_pending gauge
ticketd_revocations_pending 0
"#;

/// The series added with the cardinality policy, for [`fixture`].
const AGGREGATES: &str = r#"# HELP ticketd_ticket_series 1 when the series per ticket are shown, 0 when the board holds more tickets than metrics_ticket_series.
# TYPE ticketd_ticket_series gauge
ticketd_ticket_series 1
# HELP ticketd_tickets Tickets by kind and status (the status GET /v1/tickets reports).
# TYPE ticketd_tickets gauge
ticketd_tickets{kind="sls",status="fresh"} 2
ticketd_tickets{kind="sls",status="retrying"} 0
ticketd_tickets{kind="sls",status="expired"} 0
ticketd_tickets{kind="sls",status="pending"} 0
ticketd_tickets{kind="sls",status="failing"} 1
# HELP ticketd_refresh_calls_by_kind Calls to the cloud API, by kind and result, summed over the tickets on the board now (removing a ticket lowers it).
# TYPE ticketd_refresh_calls_by_kind gauge
ticketd_refresh_calls_by_kind{kind="sls",result="success"} 8
ticketd_refresh_calls_by_kind{kind="sls",result="failure"} 5
# HELP ticketd_soonest_token_expiry_timestamp_seconds When the token that expires first expires (Unix time), and its ticket.
# TYPE ticketd_soonest_token_expiry_timestamp_seconds gauge
ticketd_soonest_token_expiry_timestamp_seconds{ticket="beta",kind="sls"} 1764600180.25
"#;

fn scrape_text(board: &Board, now: Now, format: Format, limit: usize) -> String {
    stream::collect(board, scrape(board, now, format, limit, None))
}

#[test]
fn the_text_is_what_prometheus_client_wrote_plus_the_aggregates() {
    let (board, now) = fixture();
    let text = render(&board, now);
    let (ours, process) = text.split_at(text.find("# HELP process_cpu_seconds ").expect(&text));
    assert_eq!(ours, format!("{GOLDEN}{AGGREGATES}"));
    let lines: Vec<&str> = process.lines().filter(|l| !l.starts_with('#')).collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds"
        ]
    );
    assert!(process.contains("# TYPE process_cpu_seconds counter\n"), "{process}");
    assert!(lines.iter().all(|l| l.split(' ').nth(1).is_some_and(|v| v.contains('.'))), "floats: {process}");
    assert!(process.ends_with(".0\n# EOF\n"), "{process}");
}

/// The Prometheus text format is what `to_classic` made of the OpenMetrics text before:
/// counter families named with `_total`, no `# EOF`.
#[test]
fn the_classic_text_names_counter_families_with_total_and_has_no_eof() {
    let (board, now) = fixture();
    let text = scrape_text(&board, now, Format::Classic, usize::MAX);
    let classic_golden = GOLDEN
        .replace("# HELP ticketd_refresh Calls", "# HELP ticketd_refresh_total Calls")
        .replace("# TYPE ticketd_refresh counter", "# TYPE ticketd_refresh_total counter");
    assert!(text.starts_with(&classic_golden), "{text}");
    assert!(text.contains("# TYPE ticketd_refresh_calls_by_kind gauge\n"), "{text}");
    assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"), "{text}");
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
}

#[test]
fn float_text_matches_dtoa_for_the_values_ticketd_reports() {
    let text = |v: f64| {
        let mut s = String::new();
        float(&mut s, v);
        s
    };
    for (v, want) in [
        (0.0, "0.0"),
        (1.0, "1.0"),
        (0.05, "0.05"),
        (0.0001, "0.0001"),
        (1764600600.25, "1764600600.25"),
        (1764600000.123456, "1764600000.123456"),
        (98365440.0, "98365440.0"),
        (4_503_599_627_370_496.0, "4503599627370496.0"),
    ] {
        assert_eq!(text(v), want);
    }
}

/// The cardinality policy: per-ticket series while the board holds at most the limit, only the
/// aggregates (which still name the soonest-to-expire ticket) above it, none per ticket at 0.
#[test]
fn above_the_limit_only_the_aggregate_series_are_shown() {
    let (board, now) = fixture();
    for (limit, per_ticket) in [(3, true), (2, false), (0, false)] {
        let text = scrape_text(&board, now, Format::OpenMetrics, limit);
        assert_eq!(text.contains("ticketd_token_expiry_timestamp_seconds{"), per_ticket, "{limit}: {text}");
        assert_eq!(text.contains("ticketd_refresh_total{"), per_ticket, "{limit}: {text}");
        assert_eq!(text.contains("ticketd_refresh Calls"), per_ticket, "{limit}: {text}");
        assert!(text.contains(&format!("ticketd_ticket_series {}\n", u8::from(per_ticket))), "{limit}: {text}");
        assert!(text.contains("ticketd_tickets{kind=\"sls\",status=\"failing\"} 1\n"), "{limit}: {text}");
        assert!(text.contains("ticketd_soonest_token_expiry_timestamp_seconds{ticket=\"beta\""), "{limit}: {text}");
        assert!(text.contains("ticketd_revocations_pending 0\n") && text.ends_with("# EOF\n"), "{limit}: {text}");
    }
    let empty = scrape_text(&Board::default(), now, Format::OpenMetrics, 1000);
    assert!(!empty.contains("ticketd_tickets") && !empty.contains("soonest"), "{empty}");
    assert!(empty.contains("ticketd_ticket_series 1\n"), "{empty}");
}

/// The streaming bound at 20,000 tickets, every series shown: no chunk of the answer is bigger
/// than 256 tickets' series, though the whole answer is about 10 MB.
#[test]
fn a_scrape_of_many_tickets_is_sent_in_small_chunks() {
    let board = Board::default();
    let hour = std::time::Duration::from_secs(3600);
    for i in 0..20_000 {
        let spec = crate::scheduler::tests::sls_ticket(&format!("ticket-{i:06}"), 24 * hour, hour);
        board.write().insert(Ticket::new(spec, crate::token::Holding::default(), 0, 1 << 15));
    }
    let now = crate::clock::Clock::read(&crate::clock::SystemClock);
    let mut chunks = stream::Chunks::new(&board, scrape(&board, now, Format::Classic, usize::MAX, None));
    let (mut total, mut biggest) = (0, 0);
    while let Some(chunk) = chunks.next_chunk() {
        total += chunk.len();
        biggest = biggest.max(chunk.len());
    }
    assert!(total > 20_000 * 2 * 60, "{total}");
    assert!(biggest < 64 * 1024, "{biggest}");
}

/// Review F11: `/proc` is read (a readdir of up to the fd limit's entries) with the board's lock
/// released, so a scrape never delays the scheduler's next write. The probe standing in for the
/// reader asks another thread to take the write lock and waits for it (10 s at most).
#[test]
fn the_process_metrics_are_read_with_the_board_unlocked() {
    use std::sync::{Arc, Mutex, mpsc};
    let (board, now) = fixture();
    let board = Arc::new(board);
    let free = Arc::new(Mutex::new(Vec::new()));
    let (probe_board, probe_free) = (board.clone(), free.clone());
    let mut all = scrape(&board, now, Format::OpenMetrics, usize::MAX, None);
    all.read_process = Box::new(move || {
        let (done, writer_done) = mpsc::channel();
        let writer_board = probe_board.clone();
        std::thread::spawn(move || {
            drop(writer_board.write());
            let _ = done.send(());
        });
        let got_it = writer_done.recv_timeout(std::time::Duration::from_secs(10)).is_ok();
        probe_free.lock().unwrap().push(got_it);
        ProcessStats::read()
    });
    let mut chunks = stream::Chunks::new(board.clone(), all);
    let mut text = Vec::new();
    while let Some(chunk) = chunks.next_chunk() {
        text.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(text).unwrap();
    assert_eq!(*free.lock().unwrap(), [true], "the writer waited for the scrape's read lock");
    assert!(text.contains("\nprocess_open_fds ") && text.ends_with("# EOF\n"), "{text}");
}
