//! Issue 17 item 2, in the scheduler on paused time: a TCR long-term token a re-mint replaced is
//! queued for revocation (and saved), due only once the new token is in every sink and the
//! ticket's `on_change` hook has run; a ticket removed from the config keeps its token.

use std::time::{Duration, SystemTime};

use super::tests::{Running, credential_store, test_parts};
use super::*;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::apis::{BoxFuture, Operation};
use crate::apis::{Provider, ProviderError};
use crate::board::Board;
use crate::clock::Clock;
use crate::clock::{PausedClock, from_unix_seconds};
use crate::config::{ApiSpec, TicketSpec};
use crate::config::{ConsumerSpec, Endpoint, HookSpec, TcrSpec, TcrTokenType, TicketSettings};
use crate::credentials::Credentials;
use crate::secret::Secret;
use crate::store::memory::{MemoryStore, Place};
use crate::store::record::StateFile;
use crate::token::{Issued, ThinStr, TokenPart};

const DAY: Duration = Duration::from_secs(86_400);

/// A TCR that issues ten-day long-term tokens `id-1`, `id-2`, ...
struct FakeTcr {
    clock: PausedClock,
    issued: std::sync::atomic::AtomicU64,
}

impl Provider for FakeTcr {
    fn call(&self, _: &TicketSpec, _: Operation, _: Credentials) -> BoxFuture<Result<Issued, ProviderError>> {
        let n = self.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let now = self.clock.now();
        Box::pin(async move {
            Ok(Issued::Token(TokenPart {
                value: Secret::new(format!("token-{n}")),
                username: Some("100012345678".into()),
                token_id: Some(ThinStr::from(format!("id-{n}"))),
                issued_at: now.into(),
                expires_at: (now + 10 * DAY).into(),
            }))
        })
    }
}

/// An `on_change` hook that runs `/bin/true`.
pub(super) fn true_hook() -> HookSpec {
    HookSpec {
        exec: Some(vec!["/bin/true".into()]),
        signal: None,
        pid_file: None,
        timeout: Duration::from_secs(5),
        debounce: Duration::ZERO,
        env: vec![],
    }
}

fn tcr_ticket(name: &str, hook: bool) -> TicketSpec {
    let on_change = hook.then(true_hook);
    TicketSpec::new(
        name,
        TicketSettings {
            credentials: "prod".into(),
            api: ApiSpec::Tcr(TcrSpec {
                endpoint: Endpoint { base: url::Url::parse("https://tcr.tencentcloudapi.com").unwrap() },
                region: "ap-guangzhou".into(),
                registry_id: "tcr-abcd1234".into(),
                token_type: TcrTokenType::LongTerm,
                token_type_written: true,
                description: None,
                registry: None,
            }),
            sinks: vec![],
            consumers: ConsumerSpec { on_change, ..Default::default() },
            scope: Default::default(),
        },
    )
}

fn token_ids(board: &Board) -> Vec<(String, &'static str)> {
    board.revocations().entries().iter().map(|e| (e.pending.token_id.clone(), e.stage())).collect()
}

#[tokio::test(start_paused = true)]
async fn issue_17_a_replaced_long_term_token_is_queued_and_due_after_every_sink_and_the_hook() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let board = Arc::new(Board::default());
    let memory = Place::new();
    let (changed, mut changes) = mpsc::unbounded_channel();
    let parts = Parts {
        store: Arc::new(MemoryStore::open(&memory).expect("a place of its own")),
        changed: Some(changed),
        ..test_parts(&clock, Arc::new(FakeTcr { clock: clock.clone(), issued: Default::default() }), board.clone(), 3)
    };
    let scheduler =
        Scheduler::new(parts, vec![tcr_ticket("reg", true), tcr_ticket("gone", false)], StateFile::default());
    let running = Running::start(scheduler);
    let (spec, generation, ran) = changes.recv().await.expect("the first token's hook");
    assert_eq!((spec.name.as_str(), generation), ("reg", 1));
    assert!(ran.is_none(), "nothing to revoke yet");
    assert!(board.revocations().is_empty());

    // Nine days on, the re-mint replaces id-1 (or id-2: the two tickets race for the first ids).
    let (_, generation, ran) = changes.recv().await.expect("the re-mint's hook");
    assert_eq!(generation, 2);
    let reg_first = |b: &Board| b.revocations().entries().iter().find(|e| e.pending.ticket == "reg").cloned();
    let entry = reg_first(&board).expect("queued");
    assert_eq!(entry.stage(), "waiting for the on_change hook");
    assert_eq!(entry.pending.after_generation, Some(2));
    let in_use = board.get("reg").unwrap().current.unwrap().token.token_id.unwrap().to_string();
    assert_ne!(entry.pending.token_id, in_use, "never the token in use");
    assert!(!crate::revocation::revoker::in_use(&board, &entry.pending.token_id));
    assert!(crate::revocation::revoker::in_use(&board, &in_use));
    // Saved at once, waiting: a restart does not forget it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let saved = memory.state().revocations.clone();
    assert!(saved.iter().any(|p| p.token_id == entry.pending.token_id && p.after_generation == Some(2)), "{saved:?}");
    // The hook has run: due.
    ran.expect("a revocation waits for the hook").send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(reg_first(&board).unwrap().stage(), "due");
    // "gone" (no hook) re-minted too: its replaced token is due without waiting.
    let gone: Vec<_> =
        board.revocations().entries().iter().filter(|e| e.pending.ticket == "gone").map(|e| e.stage()).collect();
    assert_eq!(gone, ["due"]);

    // A ticket removed from the config keeps its token; what it had queued and due stays queued.
    let summary = running.reload(vec![tcr_ticket("reg", true)]).await;
    assert_eq!(summary.removed, ["gone"]);
    assert_eq!(token_ids(&board).len(), 2);
    let scheduler = running.stop().await;
    let state = scheduler.snapshot();
    assert_eq!(state.revocations.len(), 2, "{:?}", state.revocations);
    assert!(state.tickets["reg"].holding.current.as_ref().unwrap().token.token_id.is_some());
    let _: SystemTime = state.revocations[0].since.time();
}

/// A revocation saved waiting for the successor of a ticket whose saved token is not taken up at
/// start (the ticket left the config while ticketd was stopped, or has no saved token) does not
/// wait for good, nor fire when a later token reaches the old generation number: it is taken
/// out, its token kept active. One already due stays. Failed before: all three stayed queued.
#[tokio::test(start_paused = true)]
async fn issue_17_revocations_saved_for_a_ticket_gone_while_stopped_do_not_wait_for_good() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let board = Arc::new(Board::default());
    let parts = Parts {
        store: Arc::new(MemoryStore::new()),
        changed: None,
        ..test_parts(&clock, Arc::new(FakeTcr { clock: clock.clone(), issued: Default::default() }), board.clone(), 3)
    };
    let pending = |ticket: &str, token_id: &str, after_generation| crate::store::record::PendingRevocation {
        ticket: ticket.into(),
        token_id: token_id.into(),
        endpoint: "https://tcr.tencentcloudapi.com/".into(),
        region: "ap-guangzhou".into(),
        registry_id: "tcr-abcd1234".into(),
        credentials: "prod".into(),
        after_generation,
        since: clock.now().into(),
    };
    let saved = StateFile {
        revocations: vec![
            pending("gone", "id-waits", Some(2)),
            pending("gone", "id-due", None),
            pending("reg", "id-reg", Some(4)),
        ],
        ..StateFile::default()
    };
    let _scheduler = Scheduler::new(parts, vec![tcr_ticket("reg", false)], saved);
    assert_eq!(token_ids(&board), [("id-due".to_string(), "due")]);
}

/// A state file written before `TokenId` and revocations were kept still loads.
#[test]
fn issue_17_a_state_file_without_token_ids_or_revocations_loads() {
    let old = r#"{"version":1,"tickets":{"reg":{"kind":"tcr","identity":"tcr endpoint=https://tcr.tencentcloudapi.com registry_id=tcr-abcd1234 token_type=longterm","current":{"token":{"value":"t","username":"100012345678","issued_at":"2024-01-01T00:00:00Z","expires_at":"2025-01-01T00:00:00Z"},"generation":3,"refreshed_at":"2024-01-01T00:00:00Z"}}}}"#;
    let state: StateFile = serde_json::from_str(old).unwrap();
    assert!(state.revocations.is_empty());
    let current = state.tickets["reg"].holding.current.as_ref().unwrap();
    assert_eq!((current.generation, current.token.token_id.as_deref()), (3, None));
    // And written back the same way: no empty `revocations`, no `token_id: null`.
    let written = serde_json::to_string(&state).unwrap();
    assert!(!written.contains("revocations") && !written.contains("token_id"), "{written}");
}

/// Wait (paused time, bounded) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Issue 17 item 2 follow-up: a long-term token minted, then a crash before any sink holds it.
/// The state records only what the sinks hold, so the new token's `TokenId` must be recorded on
/// its own at once; the restart (which mints again) revokes it once the sinks hold the new token,
/// and never a token a ticket holds.
#[tokio::test(start_paused = true)]
async fn issue_17_a_long_term_token_minted_before_a_crash_and_never_published_is_revoked_after_the_restart() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = Arc::new(FakeTcr { clock: clock.clone(), issued: Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("out");
    // A file where the sink's directory should be: the sink cannot be written.
    std::fs::write(&blocked, "").unwrap();
    let mut spec = tcr_ticket("reg", false);
    spec.sinks = vec![crate::config::SinkSpec::File(crate::config::FileSink {
        path: blocked.join("reg.token"),
        format: crate::config::FileFormat::Token,
        mode: 0o600,
        env_names: crate::config::EnvNames::defaults("TICKETD_", crate::config::Kind::Tcr),
    })];
    let start = |memory: &Arc<Place>, board: &Arc<Board>, saved: StateFile| {
        let parts = Parts {
            clock: Arc::new(clock.clone()),
            provider: provider.clone(),
            credentials: credential_store(None),
            store: Arc::new(MemoryStore::open(memory).expect("a place of its own")),
            board: board.clone(),
            watchdog: None,
            changed: None,
            seed: 3,
            fleet: None,
        };
        Running::start(Scheduler::new(parts, vec![spec.clone()], saved))
    };

    // Run 1: id-1 is minted; its sink fails. The state, saved at once, names it.
    let (memory, board) = (Place::new(), Arc::new(Board::default()));
    let running = start(&memory, &board, StateFile::default());
    until("id-1 recorded in the saved state", || !memory.state().unconfirmed.is_empty()).await;
    // The crash: what the disk holds now is all the restart has.
    let crashed = memory.state().clone();
    assert_eq!(crashed.unconfirmed.iter().map(|u| u.token_id.as_str()).collect::<Vec<_>>(), ["id-1"]);
    assert!(crashed.tickets["reg"].holding.current.is_none(), "the state records only what the sinks hold");
    assert!(crashed.revocations.is_empty(), "nothing is revoked while it may still be published");
    drop(running.stop().await);

    // Run 2 from the crashed state, the sink writable again: id-2 is minted and published; id-1
    // (no ticket holds it, no sink ever had it) is due, id-2 never queued.
    std::fs::remove_file(&blocked).unwrap();
    std::fs::create_dir(&blocked).unwrap();
    let (memory, board) = (Place::new(), Arc::new(Board::default()));
    let running = start(&memory, &board, crashed);
    until("id-1 due", || token_ids(&board) == [("id-1".to_string(), "due")]).await;
    let held = board.get("reg").unwrap().current.unwrap().token.token_id.unwrap().to_string();
    assert_eq!(held, "id-2");
    assert!(std::fs::read_to_string(blocked.join("reg.token")).unwrap().contains("token-2"));
    until("the saved state without the published token as unconfirmed", || {
        let saved = memory.state();
        saved.unconfirmed.is_empty() && saved.revocations.iter().any(|p| p.token_id == "id-1")
    })
    .await;
    let mut published = running.stop().await.snapshot();
    assert!(published.unconfirmed.is_empty(), "{:?}", published.unconfirmed);

    // A recorded token that a saved ticket holds is never revoked (it reached the sinks).
    let mut recorded = published.revocations.remove(0);
    published.revocations.clear();
    recorded.token_id = "id-2".into();
    published.unconfirmed = vec![recorded];
    let (memory, board) = (Place::new(), Arc::new(Board::default()));
    let running = start(&memory, &board, published);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(board.revocations().is_empty(), "{:?}", token_ids(&board));
    assert_eq!(board.get("reg").unwrap().current.unwrap().token.token_id.as_deref(), Some("id-2"));
    drop(running.stop().await);
}

/// A TCR whose first `unusable` long-term answers give no usable expiry (as the vendor's own
/// example in seed 003 does): each created a token at the vendor, `id-1`, `id-2`, ...
struct UnusableFirst {
    clock: PausedClock,
    unusable: u64,
    issued: std::sync::atomic::AtomicU64,
}

impl Provider for UnusableFirst {
    fn call(&self, _: &TicketSpec, _: Operation, _: Credentials) -> BoxFuture<Result<Issued, ProviderError>> {
        let n = self.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let now = self.clock.now();
        let unusable = n <= self.unusable;
        Box::pin(async move {
            if unusable {
                return Err(ProviderError::Unusable {
                    api: crate::apis::tcr::CREATE_INSTANCE_TOKEN,
                    detail: "no usable `ExpTime` and no JWT `exp` in the answer for a long-term token".into(),
                    token_id: format!("id-{n}"),
                });
            }
            Ok(Issued::Token(TokenPart {
                value: Secret::new(format!("token-{n}")),
                username: Some("100012345678".into()),
                token_id: Some(ThinStr::from(format!("id-{n}"))),
                issued_at: now.into(),
                expires_at: (now + 10 * DAY).into(),
            }))
        })
    }
}

/// A long-term token the API created but ticketd cannot use is revoked at once (and saved), so
/// the retries that follow do not leave one more active registry credential each; the token
/// finally kept is never queued. Failed before: the queue stayed empty while three were created.
#[tokio::test(start_paused = true)]
async fn issue_17_a_created_long_term_token_that_cannot_be_used_is_revoked() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let board = Arc::new(Board::default());
    let memory = Place::new();
    let parts = Parts {
        store: Arc::new(MemoryStore::open(&memory).expect("a place of its own")),
        changed: None,
        ..test_parts(
            &clock,
            Arc::new(UnusableFirst { clock: clock.clone(), unusable: 3, issued: Default::default() }),
            board.clone(),
            5,
        )
    };
    let running = Running::start(Scheduler::new(parts, vec![tcr_ticket("reg", false)], StateFile::default()));
    // Retried as slowly as a refusal (7.5 to 15 minutes): within an hour of paused time.
    let held = || board.get("reg").and_then(|t| t.current).is_some_and(|c| c.token.token_id.as_deref() == Some("id-4"));
    for _ in 0..360 {
        if held() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert!(held(), "the fourth answer's token held");
    let mut queued: Vec<String> = token_ids(&board).into_iter().map(|(id, _)| id).collect();
    queued.sort();
    assert_eq!(queued, ["id-1", "id-2", "id-3"], "every created token that cannot be used is revoked");
    assert!(token_ids(&board).iter().all(|(_, stage)| *stage == "due"), "{:?}", token_ids(&board));
    until("the revocations saved", || memory.state().revocations.len() == 3).await;
    running.stop().await;
}

/// With no hook runner (`run --once` runs no hooks), a replaced token whose ticket has an
/// `on_change` hook is not revoked: the consumers were not told of the new one. It stays queued,
/// waiting, and saved, for a run whose hook runs. Failed before: it was due at once.
#[tokio::test(start_paused = true)]
async fn issue_17_without_a_hook_runner_a_ticket_with_a_hook_keeps_its_replaced_token() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let board = Arc::new(Board::default());
    let memory = Place::new();
    let parts = Parts {
        store: Arc::new(MemoryStore::open(&memory).expect("a place of its own")),
        changed: None,
        ..test_parts(&clock, Arc::new(FakeTcr { clock: clock.clone(), issued: Default::default() }), board.clone(), 3)
    };
    let running = Running::start(Scheduler::new(parts, vec![tcr_ticket("reg", true)], StateFile::default()));
    // Ten-day tokens: the re-mint comes within them.
    let second = || board.get("reg").and_then(|t| t.current).is_some_and(|c| c.generation >= 2);
    for _ in 0..2_000 {
        if second() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    assert!(second(), "re-minted");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(token_ids(&board), [("id-1".to_string(), "waiting for the new token to reach every sink")]);
    let scheduler = running.stop().await;
    let saved = scheduler.snapshot().revocations;
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(saved[0].after_generation.is_some(), "{saved:?}");
}
