//! The texts a failed call or sink write shows users, pinned word for word: the log lines'
//! `error` field, `last_error` on the board (and so in `ticketd status` and `GET /v1/tickets`),
//! and the events. Written before the errors became types of their own, so the types print
//! exactly what the strings did.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::apply;
use super::call::{self, Call};
use super::reports::{CallReport, Message, PublishReport};
use super::tests::{Running, api_get, credential_store, reliable_sls, sls_ticket, token_file_ticket};
use super::timing::Step;
use super::{Event, Scheduler};
use crate::apis::{BoxFuture, Operation, Provider, ProviderError};
use crate::clock::{Clock, PausedClock, from_unix_seconds};
use crate::config::TicketSpec;
use crate::credentials::Credentials;
use crate::secret::Secret;
use crate::store::record::StateFile;
use crate::token::{Holding, Issued, TicketPart, TokenPart};

const DAY: Duration = Duration::from_secs(86_400);

/// A cloud that accepts the connection and never answers.
struct Silent;

impl Provider for Silent {
    fn call(&self, _: &TicketSpec, _: Operation, _: Credentials) -> BoxFuture<Result<Issued, ProviderError>> {
        Box::pin(std::future::pending())
    }
}

fn called_error(message: Option<Message>) -> String {
    match message {
        Some(Message::Called { result: Err(e), .. }) => e.to_string(),
        Some(Message::Called { result: Ok(_), .. }) => panic!("the call succeeded"),
        Some(Message::Published { .. } | Message::Fenced(_)) | None => panic!("no call report"),
    }
}

fn published_errors(message: Option<Message>) -> Vec<String> {
    match message {
        Some(Message::Published { outcome: Ok(wrote), .. }) => wrote.errors.iter().map(ToString::to_string).collect(),
        Some(Message::Published { outcome: Err(died), .. }) => vec![died.to_string()],
        _ => panic!("no sink report"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_abandoned_at_its_timeout_reads_no_answer_from_the_endpoint() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let calls = tokio_util::task::TaskTracker::new();
    let report = CallReport { tx, id: 1, epoch: 1, step: Step::Mint, sent: false };
    let call =
        Call { spec: sls_ticket("t", DAY, DAY / 24), op: Operation::Mint, timeout: Duration::from_secs(7), report };
    call::spawn(&calls, credential_store(None), Arc::new(clock), Arc::new(Silent), call);
    assert_eq!(called_error(rx.recv().await), "API call: no answer from the endpoint within 7s");
}

#[test]
fn a_call_task_that_ends_without_an_answer_says_how() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    drop(CallReport { tx: tx.clone(), id: 1, epoch: 1, step: Step::Mint, sent: false });
    assert_eq!(
        called_error(rx.try_recv().ok()),
        "API call: the call ended without an answer (its task was cancelled); retrying"
    );
    let report = CallReport { tx: tx.clone(), id: 1, epoch: 1, step: Step::Mint, sent: false };
    let died = std::thread::spawn(move || {
        let _report = report;
        panic!("a call task panics");
    });
    assert!(died.join().is_err());
    assert_eq!(
        called_error(rx.try_recv().ok()),
        "API call: the call ended without an answer (its task panicked); retrying"
    );
    drop(PublishReport { tx, id: 1, epoch: 1, generation: 1, sent: false });
    assert_eq!(
        published_errors(rx.try_recv().ok()),
        ["the sink writer ended without a result (it panicked or was cancelled)"]
    );
}

#[test]
fn an_answer_that_cannot_be_used_reads_unexpected_response() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let now = clock.read();
    let token = |life: Duration| {
        Issued::Token(TokenPart {
            value: Secret::new("texts-token"),
            username: None,
            token_id: None,
            issued_at: now.wall.into(),
            expires_at: (now.wall + life).into(),
        })
    };
    let ticket = |expires_at: SystemTime| {
        Issued::Ticket(TicketPart {
            value: Secret::new("texts-ticket"),
            issued_at: now.wall.into(),
            expires_at: expires_at.into(),
        })
    };
    let refused = |step: Step, issued: Issued| {
        let mut holding = Holding::default();
        match apply::apply(&mut holding, step, issued, None, now) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    };
    let expired = now.wall - Duration::from_secs(1);
    assert_eq!(
        refused(Step::Mint, ticket(expired)),
        "API call: unexpected response: the new ticket is already expired (is the host clock right?)"
    );
    assert_eq!(
        refused(Step::Mint, ticket(now.wall + Duration::from_secs(2))),
        "API call: unexpected response: the new ticket expires in 2s (after capping by its ticket and keys); at least 5s is needed to be of use"
    );
    assert_eq!(
        refused(Step::Mint, token(Duration::ZERO)),
        "API call: unexpected response: the new token is already expired (is the host clock right?)"
    );
    assert_eq!(
        refused(Step::Mint, token(Duration::from_millis(1500))),
        "API call: unexpected response: the new token expires in 1s 500ms (after capping by its ticket and keys); at least 5s is needed to be of use"
    );
    assert_eq!(
        refused(Step::RefreshCurrent, ticket(now.wall + DAY)),
        "API call: unexpected response: a ticket came back where a token was expected"
    );
}

/// The failed call's text is the board's `last_error`, the event's, and the API's.
#[tokio::test(start_paused = true)]
async fn a_failed_call_shows_the_same_text_on_the_board_in_its_event_and_in_the_ticket_list() {
    let (clock, _fake, board, parts) = reliable_sls(19);
    let scheduler = Scheduler::new(parts, vec![sls_ticket("blink", DAY, Duration::from_secs(1))], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    tokio::time::sleep(Duration::from_secs(30)).await;
    running.stop().await;
    let text = "API call: unexpected response: the new token expires in 800ms (after capping by its ticket and keys); at least 5s is needed to be of use";
    assert_eq!(board.get("blink").unwrap().last_error.as_deref(), Some(text));
    let mut failed = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::CallFailed { error, .. } = event {
            failed.push(error.to_string());
        }
    }
    assert!(!failed.is_empty() && failed.iter().all(|e| e == text), "{failed:?}");
    let state = crate::api::routes::ApiState {
        board,
        clock: Arc::new(clock),
        own_uid: 0,
        ticket_series: Arc::new(crate::config::DEFAULT_METRICS_TICKET_SERIES.into()),
        cluster: None,
    };
    let (status, body) = api_get(&crate::api::routes::router(Arc::new(state)), "/v1/tickets").await;
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let shown = list.as_array().and_then(|l| l.first()).map(|t| t["last_error"].clone());
    assert_eq!(shown, Some(serde_json::Value::from(text)), "{body}");
}

/// A sink that cannot be written: each failing sink's text, joined, is the board's `last_error`
/// and the event's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sink_write_names_each_sink_on_the_board_and_in_its_event() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocked"), "").unwrap();
    let (one, two) = (dir.path().join("blocked/one"), dir.path().join("blocked/two"));
    let mut spec = token_file_ticket("texts-sinks", &one);
    let second = token_file_ticket("texts-sinks", &two).sinks.clone();
    spec.sinks.extend(second);
    let clock = PausedClock::starting_at(SystemTime::now());
    let provider = super::tests::FakeSls::new(clock.clone(), 0.0, 1);
    let board = Arc::new(crate::board::Board::default());
    let parts = super::tests::test_parts(&clock, provider, board.clone(), 5);
    let scheduler = Scheduler::new(parts, vec![spec], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    let event = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(Event::PublishFailed { error, .. }) = events.recv().await {
                return error.to_string();
            }
        }
    })
    .await
    .expect("a failed sink write");
    running.stop().await;
    let reason = "Not a directory (os error 20)";
    let text = format!("cannot write {}: {reason}; cannot write {}: {reason}", one.display(), two.display());
    assert_eq!(event, text);
    let shown = board.get("texts-sinks").unwrap().last_error;
    assert!(shown.as_deref() == Some(text.as_str()), "{shown:?}");
}
