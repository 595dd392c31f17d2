//! Issue 17 item 2, in the scheduler on paused time: a TCR long-term token a re-mint replaced is
//! queued for revocation (and saved), due only once the new token is in every sink and the
//! ticket's `on_change` hook has run; a ticket removed from the config keeps its token.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::tests::{Running, credential_store};
use super::*;
use crate::clock::{PausedClock, from_unix_seconds};
use crate::config::{ConsumerSpec, Endpoint, HookSpec, TcrSpec, TcrTokenType, TicketSettings};
use crate::credentials::Credentials;
use crate::providers::{BoxFuture, Operation};
use crate::secret::Secret;
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

fn tcr_ticket(name: &str, hook: bool) -> TicketSpec {
    let on_change = hook.then(|| HookSpec {
        exec: Some(vec!["/bin/true".into()]),
        signal: None,
        pid_file: None,
        timeout: Duration::from_secs(5),
        debounce: Duration::ZERO,
        env: vec![],
    });
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
    let memory = Arc::new(Mutex::new(StateFile::default()));
    let (changed, mut changes) = mpsc::unbounded_channel();
    let parts = Parts {
        clock: Arc::new(clock.clone()),
        provider: Arc::new(FakeTcr { clock: clock.clone(), issued: Default::default() }),
        credentials: credential_store(None),
        persistence: Persistence::Memory(memory.clone()),
        board: board.clone(),
        watchdog: None,
        changed: Some(changed),
        seed: 3,
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
    assert!(!crate::revocation::in_use(&board, &entry.pending.token_id));
    assert!(crate::revocation::in_use(&board, &in_use));
    // Saved at once, waiting: a restart does not forget it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let saved = memory.lock().unwrap().revocations.clone();
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
