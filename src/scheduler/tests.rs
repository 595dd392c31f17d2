//! Scheduler tests on paused time against an in-memory provider: months pass in milliseconds.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::apply::{call_timeout, outlook};
use super::reports::{CallReport, Message, PublishReport};
use super::timing::{RetryClass, Step};
use super::*;
use crate::clock::Clock;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::apis::{ApiErrorKind, BoxFuture, Operation};
use crate::apis::{Provider, ProviderError};
use crate::board::Board;
use crate::clock::{PausedClock, from_unix_seconds};
use crate::config::{ApiSpec, Endpoint, TicketSpec};
use crate::credentials::CredentialStore;
use crate::credentials::Credentials;
use crate::secret::Secret;
use crate::store::memory::{MemoryStore, Place};
use crate::store::record::StateFile;
use crate::token::{Issued, TicketPart, TokenPart};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);
/// How far from its own time the fake cloud accepts a signed request (SLS: 15 minutes).
const SERVER_SKEW: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Mint,
    Refresh,
}

/// A provider that behaves like SLS, records calls, and fails a seeded fraction of them.
pub(super) struct FakeSls {
    clock: PausedClock,
    /// The cloud's own (true) time: requests signed more than [`SERVER_SKEW`] away from it are
    /// rejected as clock skew, as SLS does. `None`: no check.
    server: Option<PausedClock>,
    calls: Mutex<Vec<(SystemTime, CallKind, bool)>>,
    fail: Mutex<(StdRng, f64)>,
    /// CreateTicket calls made in this window fail (the cloud refusing re-mints for a while).
    mint_outage: Mutex<Option<(SystemTime, SystemTime)>>,
    serial: Mutex<u64>,
}

impl FakeSls {
    pub(super) fn new(clock: PausedClock, failure_rate: f64, seed: u64) -> Arc<Self> {
        Arc::new(FakeSls {
            clock,
            server: None,
            calls: Mutex::new(Vec::new()),
            fail: Mutex::new((StdRng::seed_from_u64(seed), failure_rate)),
            mint_outage: Mutex::new(None),
            serial: Mutex::new(0),
        })
    }

    /// A fake that, like the cloud, rejects a request signed more than [`SERVER_SKEW`] away from
    /// `server`'s time.
    fn checking_skew(clock: PausedClock, server: PausedClock) -> Arc<Self> {
        let fake = FakeSls::new(clock, 0.0, 1);
        let mut fake = Arc::try_unwrap(fake).unwrap_or_else(|_| unreachable!("just made"));
        fake.server = Some(server);
        Arc::new(fake)
    }

    fn count(&self, kind: CallKind, ok: bool) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.1 == kind && c.2 == ok).count()
    }
}

impl Provider for FakeSls {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        _credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        let ApiSpec::Sls(sls) = &spec.api else { panic!("FakeSls serves sls tickets only") };
        let now = self.clock.now();
        let failed = {
            let mut f = self.fail.lock().unwrap();
            let rate = f.1;
            f.0.random::<f64>() < rate
        };
        let skewed = self.server.as_ref().is_some_and(|server| {
            let t = server.now();
            now.duration_since(t).unwrap_or_else(|e| e.duration()) > SERVER_SKEW
        });
        let kind = match op {
            Operation::Mint => CallKind::Mint,
            Operation::Refresh { .. } => CallKind::Refresh,
        };
        let outage = *self.mint_outage.lock().unwrap();
        let refused = kind == CallKind::Mint && outage.is_some_and(|(from, to)| now >= from && now < to);
        let failed = failed || skewed || refused;
        self.calls.lock().unwrap().push((now, kind, !failed));
        let serial = {
            let mut s = self.serial.lock().unwrap();
            *s += 1;
            *s
        };
        let result = if skewed {
            Err(ProviderError::Api {
                api: "fake",
                status: 400,
                code: "RequestTimeExpired".into(),
                message: "the request time is too far from the server's".into(),
                request_id: None,
                kind: ApiErrorKind::ClockSkew,
                retry_after: None,
            })
        } else if failed {
            Err(ProviderError::Api {
                api: "fake",
                status: 503,
                code: "ServerBusy".into(),
                message: "try later".into(),
                request_id: None,
                kind: ApiErrorKind::Transient,
                retry_after: None,
            })
        } else {
            Ok(match op {
                Operation::Mint => Issued::Ticket(TicketPart {
                    value: Secret::new(format!("ticket-{serial}")),
                    issued_at: now.into(),
                    expires_at: (now + sls.ticket_lifetime).into(),
                }),
                Operation::Refresh { .. } => Issued::Token(TokenPart {
                    value: Secret::new(format!("token-{serial}")),
                    username: None,
                    token_id: None,
                    issued_at: now.into(),
                    expires_at: (now + sls.token_lifetime).into(),
                }),
            })
        };
        // A call takes a little time, as on a network.
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            result
        })
    }
}

pub(crate) use crate::testing::sls_ticket;

pub(super) use crate::testing::credential_store;

/// Scheduler parts for a test: in-memory state, long-term credentials, no watchdog.
pub(super) fn test_parts(clock: &PausedClock, provider: Arc<dyn Provider>, board: Arc<Board>, seed: u64) -> Parts {
    Parts {
        clock: Arc::new(clock.clone()),
        provider,
        credentials: credential_store(None),
        store: Arc::new(MemoryStore::new()),
        board,
        watchdog: None,
        changed: None,
        seed,
        fleet: None,
    }
}

/// A paused clock, a fake SLS that never fails, a board, and scheduler parts over them.
pub(super) fn reliable_sls(seed: u64) -> (PausedClock, Arc<FakeSls>, Arc<Board>, Parts) {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let board = Arc::new(Board::default());
    let parts = test_parts(&clock, provider.clone(), board.clone(), seed);
    (clock, provider, board, parts)
}

struct Run {
    events: Vec<(SystemTime, Event)>,
    scheduler: Scheduler,
}

/// A scheduler running on a task of its own, as the daemon runs it.
pub(super) struct Running {
    stop: CancellationToken,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<Scheduler>,
}

impl Running {
    pub(super) fn start(scheduler: Scheduler) -> Self {
        let stop = CancellationToken::new();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(scheduler.run(stop.clone(), command_rx));
        Running { stop, commands, task }
    }

    /// Reload with `tickets` (static test credentials) and wait for the summary.
    pub(super) async fn reload(&self, tickets: Vec<TicketSpec>) -> ReloadSummary {
        let (reply, answer) = oneshot::channel();
        let credentials = credential_store(None);
        let sent = self.commands.send(Command::Reconfigure { tickets, credentials, reply });
        assert!(sent.is_ok(), "the loop is running");
        answer.await.expect("the loop answers a reload")
    }

    /// Stop the loop (in-flight work finishes, state is saved) and get the scheduler back.
    pub(super) async fn stop(self) -> Scheduler {
        self.stop.cancel();
        self.task.await.expect("the scheduler loop does not panic")
    }
}

/// Run `tickets` for `length` of simulated time, collecting events.
async fn simulate(
    clock: &PausedClock,
    provider: Arc<FakeSls>,
    tickets: &[TicketSpec],
    saved: &StateFile,
    credentials: CredentialStore,
    length: Duration,
) -> Run {
    let memory = Place::new();
    let parts = Parts {
        clock: Arc::new(clock.clone()),
        provider,
        credentials,
        store: Arc::new(MemoryStore::open(&memory).expect("a place of its own")),
        board: Arc::new(Board::default()),
        watchdog: None,
        changed: None,
        seed: 7,
        fleet: None,
    };
    let scheduler = Scheduler::new(parts, tickets.to_vec(), saved.clone());
    let mut rx = scheduler.events();
    let running = Running::start(scheduler);
    let collector_clock = clock.clone();
    let done = CancellationToken::new();
    let collector_done = done.clone();
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        loop {
            tokio::select! {
                Ok(e) = rx.recv() => events.push((collector_clock.now(), e)),
                () = collector_done.cancelled() => break,
            }
        }
        while let Ok(e) = rx.try_recv() {
            events.push((collector_clock.now(), e));
        }
        events
    });
    tokio::time::sleep(length).await;
    let scheduler = running.stop().await;
    done.cancel();
    Run { events: collector.await.unwrap(), scheduler }
}

/// Check that consumers always held a valid token once the first arrived: every new token came
/// before the previous one expired. Returns the number of tokens.
fn assert_no_lapse(events: &[(SystemTime, Event)], name: &str) -> usize {
    let mut previous: Option<SystemTime> = None;
    let mut count = 0;
    for (at, event) in events {
        if let Event::TokenRefreshed { name: n, expires_at, .. } = event
            && n == name
        {
            if let Some(p) = previous {
                assert!(*at < p, "{name}: token lapsed: previous expired at {p:?}, next came at {at:?}");
            }
            previous = Some(*expires_at);
            count += 1;
        }
    }
    count
}

#[tokio::test(start_paused = true)]
async fn ninety_days_refresh_about_daily_and_mint_once_per_ceiling() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let tickets = [sls_ticket("dash", 30 * DAY, DAY)];
    let run =
        simulate(&clock, provider.clone(), &tickets, &StateFile::default(), credential_store(None), 90 * DAY).await;

    let tokens = assert_no_lapse(&run.events, "dash");
    let mints = provider.count(CallKind::Mint, true);
    let refreshes = provider.count(CallKind::Refresh, true);
    // A new ticket a day before each 30-day ceiling: at day 0, ~29, ~58, ~87.
    assert_eq!(mints, 4, "CreateTicket calls");
    // A refresh after 2/3 to 3/4 of each day-long token: 120 to 135 in 90 days, plus one per ticket.
    assert!((120..=140).contains(&refreshes), "RefreshToken calls: {refreshes}");
    assert_eq!(tokens, refreshes);

    // Each new ticket got its first token before the previous ticket's ceiling.
    let mut ceiling: Option<SystemTime> = None;
    for (at, event) in &run.events {
        match event {
            Event::TicketMinted { .. } => {
                if let Some(c) = ceiling {
                    assert!(*at < c, "minted after the ceiling");
                }
            }
            Event::TokenRefreshed { new_ticket: true, .. } => {
                if let Some(c) = ceiling {
                    assert!(*at < c, "the new ticket's first token came after the old ceiling");
                }
                let holding = run.scheduler.holding("dash");
                ceiling =
                    holding.current.as_ref().and_then(|c| c.ticket.as_ref()).map(|t| t.expires_at.time()).max(ceiling);
            }
            _ => {}
        }
    }
    // Never two mints within one ticket's life.
    let mint_times: Vec<SystemTime> =
        provider.calls.lock().unwrap().iter().filter(|c| c.1 == CallKind::Mint).map(|c| c.0).collect();
    for pair in mint_times.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(gap > 28 * DAY && gap < 30 * DAY, "gap between mints: {gap:?}");
    }
}

/// Issue 17 item 13: a RefreshToken whose token would serve less than a normal refresh interval
/// (2/3 of the token's life) before the ticket's re-mint is not made: the re-mint comes instead, at
/// the refresh point, and no token lapses. Counted over three ceilings, for several shapes, with
/// and without failing calls.
#[tokio::test(start_paused = true)]
async fn issue_17_no_refresh_is_wasted_just_before_a_re_mint() {
    for (ticket_life, token_life, failure_rate) in
        [(30 * DAY, DAY, 0.0), (30 * DAY, DAY, 0.3), (10 * DAY, 6 * HOUR, 0.0), (12 * HOUR, HOUR, 0.2)]
    {
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        let provider = FakeSls::new(clock.clone(), failure_rate, 17);
        let tickets = [sls_ticket("dash", ticket_life, token_life)];
        let length = 3 * ticket_life;
        let run =
            simulate(&clock, provider.clone(), &tickets, &StateFile::default(), credential_store(None), length).await;
        let case = format!("ticket {ticket_life:?}, token {token_life:?}, {failure_rate} failing");
        assert_no_lapse(&run.events, "dash");
        let calls: Vec<(SystemTime, CallKind)> =
            provider.calls.lock().unwrap().iter().filter(|c| c.2).map(|c| (c.0, c.1)).collect();
        let mints: Vec<SystemTime> = calls.iter().filter(|c| c.1 == CallKind::Mint).map(|c| c.0).collect();
        assert!(mints.len() >= 3, "{case}: {} mints", mints.len());
        let normal = token_life.mul_f64(timing::REFRESH_AT);
        let mut wasted = Vec::new();
        for (i, &(at, kind)) in calls.iter().enumerate() {
            // A refresh of the current ticket (not the first token of one just minted).
            let first_of_new = i > 0 && calls[i - 1].1 == CallKind::Mint;
            if kind != CallKind::Refresh || first_of_new {
                continue;
            }
            if let Some(&mint) = mints.iter().find(|&&m| m > at) {
                let served = mint.duration_since(at).unwrap();
                if served < normal {
                    wasted.push(served);
                }
            }
        }
        assert!(wasted.is_empty(), "{case}: refreshes serving less than {normal:?} before a re-mint: {wasted:?}");
        let refreshes = calls.iter().filter(|c| c.1 == CallKind::Refresh).count();
        eprintln!("{case}: {} mints, {refreshes} refreshes in {length:?}, none wasted", mints.len());
    }
}

/// A re-mint refused for days does not let the token lapse while the old ticket is good: the
/// token is refreshed on the old ticket near its end, and the re-mint comes once the cloud takes it.
#[tokio::test(start_paused = true)]
async fn issue_17_a_re_mint_refused_for_days_keeps_the_token_alive_on_the_old_ticket() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    // CreateTicket fails from day 20 until 2 hours before the first ticket's 30-day ceiling.
    *provider.mint_outage.lock().unwrap() = Some((t0 + 20 * DAY, t0 + 30 * DAY - 2 * HOUR));
    let tickets = [sls_ticket("dash", 30 * DAY, DAY)];
    let run =
        simulate(&clock, provider.clone(), &tickets, &StateFile::default(), credential_store(None), 32 * DAY).await;
    assert_no_lapse(&run.events, "dash");
    let calls = provider.calls.lock().unwrap().clone();
    assert!(calls.iter().any(|c| c.1 == CallKind::Mint && !c.2), "the outage refused some re-mints");
    let last_mint = calls.iter().filter(|c| c.1 == CallKind::Mint && c.2).map(|c| c.0).max().unwrap();
    assert!(last_mint >= t0 + 30 * DAY - 2 * HOUR && last_mint < t0 + 30 * DAY, "re-minted at {last_mint:?}");
    let kept_alive = calls.iter().filter(|c| c.1 == CallKind::Refresh && c.2 && c.0 > t0 + 29 * DAY && c.0 < last_mint);
    assert!(kept_alive.count() >= 1, "the old ticket's token was refreshed during the outage");
}

/// Issue 17 item 13: a failed call says what is true for the consumers: no token yet (and when
/// the next attempt is), the last good token kept, the token about to lapse, or lapsed. The log
/// line's sentence is the event's `outlook` (see `Scheduler::failed`).
#[tokio::test(start_paused = true)]
async fn issue_17_a_failed_call_says_whether_there_is_a_token_to_lapse() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = FakeSls::new(clock.clone(), 1.0, 1);
    let board = Arc::new(Board::default());
    let parts = test_parts(&clock, provider.clone(), board, 3);
    let scheduler = Scheduler::new(parts, vec![sls_ticket("dash", DAY, HOUR)], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    let mut outlooks = move || {
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let Event::CallFailed { outlook, retry_at, .. } = event {
                seen.push((outlook, retry_at));
            }
        }
        seen
    };
    // Every call fails before the first token.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let seen = outlooks();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.iter().all(|(o, _)| *o == Outlook::NoTokenYet { retry_helps: true }), "{seen:?}");
    // Calls succeed: a token is held. Then they fail again from the first refresh on, until it lapses.
    provider.fail.lock().unwrap().1 = 0.0;
    tokio::time::sleep(Duration::from_secs(30 * 60)).await;
    assert!(provider.count(CallKind::Refresh, true) >= 1);
    provider.fail.lock().unwrap().1 = 1.0;
    let _ = outlooks();
    tokio::time::sleep(2 * HOUR).await;
    let seen: Vec<Outlook> = outlooks().into_iter().map(|(o, _)| o).collect();
    let first = |what: Outlook| seen.iter().position(|o| *o == what).unwrap_or_else(|| panic!("{what:?}: {seen:?}"));
    let (kept, lapsing, lapsed) =
        (first(Outlook::Keeps), first(Outlook::WillLapse), first(Outlook::Lapsed { retry_helps: true }));
    assert!(kept < lapsing && lapsing < lapsed, "{seen:?}");
    assert!(!seen.iter().any(|o| matches!(o, Outlook::NoTokenYet { .. })), "{seen:?}");
    running.stop().await;
}

#[test]
fn issue_17_the_outlook_of_a_failed_call() {
    let now = from_unix_seconds(1_700_000_000);
    let transient = RetryClass::Transient { after: None };
    let minute = Duration::from_secs(60);
    assert_eq!(outlook(false, None, transient, now + minute, minute), Outlook::NoTokenYet { retry_helps: true });
    assert_eq!(
        outlook(false, None, RetryClass::Permanent, now + minute, minute),
        Outlook::NoTokenYet { retry_helps: false }
    );
    assert_eq!(outlook(true, None, transient, now + minute, minute), Outlook::Lapsed { retry_helps: true });
    assert_eq!(outlook(true, Some(now + HOUR), transient, now + minute, minute), Outlook::Keeps);
    assert_eq!(outlook(true, Some(now + HOUR), RetryClass::Permanent, now + minute, minute), Outlook::WillLapse);
    // The retry after next would come at expiry: it will lapse should the failures go on.
    assert_eq!(outlook(true, Some(now + 2 * minute), transient, now + minute, minute), Outlook::WillLapse);
    assert_eq!(Outlook::NoTokenYet { retry_helps: true }.message(), "call failed; no token yet, retrying");
    assert_eq!(Outlook::WillLapse.message(), "call failed; the token will lapse without help");
    for o in [Outlook::Keeps, Outlook::NoTokenYet { retry_helps: false }, Outlook::Lapsed { retry_helps: true }] {
        assert!(!o.message().contains("lapse without help"), "{o:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn with_thirty_percent_of_calls_failing_no_token_lapses_in_sixty_days() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = FakeSls::new(clock.clone(), 0.3, 42);
    let tickets = [sls_ticket("a", 30 * DAY, DAY), sls_ticket("b", 10 * DAY, 6 * 3600 * Duration::from_secs(1))];
    let run =
        simulate(&clock, provider.clone(), &tickets, &StateFile::default(), credential_store(None), 60 * DAY).await;
    let failures = provider.count(CallKind::Mint, false) + provider.count(CallKind::Refresh, false);
    let successes = provider.count(CallKind::Mint, true) + provider.count(CallKind::Refresh, true);
    assert!(failures > 50, "faults injected: {failures}");
    let (tokens_a, tokens_b) = (assert_no_lapse(&run.events, "a"), assert_no_lapse(&run.events, "b"));
    assert!(tokens_a > 80 && tokens_b > 300);
    eprintln!(
        "60 days at 30% failures: {failures} faults, {successes} successful calls, {tokens_a}+{tokens_b} tokens, 0 lapses"
    );
    // Every retry was scheduled before the token it protects expired.
    for (_, event) in &run.events {
        if let Event::CallFailed { retry_at, token_expires_at: Some(exp), .. } = event {
            assert!(retry_at < exp, "a retry was scheduled past expiry");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_restart_reuses_a_valid_ticket_without_create_ticket() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let tickets = [sls_ticket("dash", 30 * DAY, DAY)];
    let first =
        simulate(&clock, provider.clone(), &tickets, &StateFile::default(), credential_store(None), 3 * DAY).await;
    assert_eq!(provider.count(CallKind::Mint, true), 1);
    let saved = first.scheduler.snapshot();

    // Down for two days: the token expired meanwhile, the ticket did not.
    tokio::time::sleep(2 * DAY).await;
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let second = simulate(&clock, provider.clone(), &tickets, &saved, credential_store(None), 10 * DAY).await;
    assert_eq!(provider.count(CallKind::Mint, true), 0, "no CreateTicket for a ticket that is still good");
    assert!(provider.count(CallKind::Refresh, true) >= 13);
    // The first call after the restart was a refresh, at once (the saved token had expired).
    let first_call = provider.calls.lock().unwrap()[0];
    assert_eq!(first_call.1, CallKind::Refresh);
    assert_no_lapse(&second.events, "dash");
}

/// Issue 18 (memory): a restart writes once the sinks of every ticket that holds a valid token;
/// a ticket with no sinks has nothing to write, and its report is taken at once, not left in the
/// loop's channel until all are started (at 100,000 tickets those reports held ~10 MB at the
/// restart's peak). Every restored token is shown before the loop runs.
#[tokio::test(start_paused = true)]
async fn issue_18_a_restart_leaves_no_report_waiting_for_tickets_without_sinks() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let tickets: Vec<TicketSpec> = (0..50).map(|i| sls_ticket(&format!("t{i}"), 30 * DAY, DAY)).collect();
    let first = simulate(&clock, provider.clone(), &tickets, &StateFile::default(), credential_store(None), HOUR).await;
    let saved = first.scheduler.snapshot();
    assert_eq!(
        saved.tickets.values().filter(|t| t.holding.current.is_some()).count(),
        50,
        "every ticket saved a token"
    );
    let memory = Place::new();
    let parts = Parts {
        clock: Arc::new(clock.clone()),
        provider,
        credentials: credential_store(None),
        store: Arc::new(MemoryStore::open(&memory).expect("a place of its own")),
        board: Arc::new(Board::default()),
        watchdog: None,
        changed: None,
        seed: 7,
        fleet: None,
    };
    let scheduler = Scheduler::new(parts, tickets.clone(), saved);
    assert_eq!(scheduler.reports_waiting(), 0, "no report waits in the channel");
    let board = scheduler.board();
    let table = board.table();
    for spec in &tickets {
        let ticket = table.by_name(&spec.name).expect("on the board");
        assert!(ticket.current().is_some() && !ticket.unpublished(), "{}: its token is shown at once", spec.name);
    }
}

#[tokio::test(start_paused = true)]
async fn sts_credentials_cap_the_token_and_failures_keep_the_last_good_token() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let tickets = [sls_ticket("dash", 30 * DAY, DAY)];
    let sts_expiry = clock.now() + Duration::from_secs(3600);
    let run = simulate(
        &clock,
        provider.clone(),
        &tickets,
        &StateFile::default(),
        credential_store(Some(sts_expiry)),
        Duration::from_secs(600),
    )
    .await;
    let token = run.scheduler.holding("dash").current.unwrap().token.clone();
    assert_eq!(token.expires_at, sts_expiry, "a token never outlives the STS credentials it was minted with");

    // Now every call fails: the held token stays exactly as it was.
    let provider = FakeSls::new(clock.clone(), 1.0, 1);
    let saved = run.scheduler.snapshot();
    let run = simulate(
        &clock,
        provider.clone(),
        &tickets,
        &saved,
        credential_store(Some(sts_expiry)),
        Duration::from_secs(3000),
    )
    .await;
    let kept = run.scheduler.holding("dash").current.unwrap().token.clone();
    assert_eq!(kept, token);
    assert!(provider.count(CallKind::Refresh, false) >= 3);
    assert!(run.scheduler.board().get("dash").unwrap().last_error.unwrap().contains("ServerBusy"));
}

#[tokio::test(start_paused = true)]
async fn reload_keeps_unchanged_tickets_replans_changed_ones_and_drops_removed_ones() {
    let (_, provider, board, parts) = reliable_sls(3);
    let keep = sls_ticket("keep", 30 * DAY, DAY);
    let tune = sls_ticket("tune", 30 * DAY, DAY);
    let moved = sls_ticket("moved", 30 * DAY, DAY);
    let gone = sls_ticket("gone", 30 * DAY, DAY);
    let scheduler =
        Scheduler::new(parts, vec![keep.clone(), tune.clone(), moved.clone(), gone.clone()], StateFile::default());
    let running = Running::start(scheduler);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(provider.count(CallKind::Mint, true), 4);
    let before = |name: &str| board.get(name).unwrap().current.unwrap();
    let (keep_before, tune_before) = (before("keep"), before("tune"));

    let mut tuned = tune.clone();
    let ApiSpec::Sls(sls) = &mut tuned.api else { unreachable!() };
    sls.token_lifetime = Duration::from_secs(3600);
    let mut retargeted = moved.clone();
    let ApiSpec::Sls(sls) = &mut retargeted.api else { unreachable!() };
    sls.endpoint = Endpoint { base: url::Url::parse("https://ap-southeast-1.log.aliyuncs.com").unwrap() };
    let added = sls_ticket("new", 30 * DAY, DAY);
    let summary = running.reload(vec![keep.clone(), tuned, retargeted, added]).await;
    assert_eq!(
        summary,
        ReloadSummary {
            added: vec!["new".into()],
            removed: vec!["gone".into()],
            changed: vec!["tune".into()],
            replaced: vec!["moved".into()],
            unchanged: 1,
        }
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    // Only the new and the retargeted tickets were minted again.
    assert_eq!(provider.count(CallKind::Mint, true), 6);
    assert_eq!(before("keep"), keep_before);
    assert_eq!(before("tune").ticket, tune_before.ticket, "a settings change keeps the ticket");
    assert!(board.get("gone").is_none());
    assert!(board.get("new").unwrap().current.is_some());
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_is_pinged_from_the_loop_while_nothing_is_due() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let pings = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = pings.clone();
    let parts = Parts {
        clock: Arc::new(clock.clone()),
        provider: FakeSls::new(clock.clone(), 0.0, 1),
        credentials: credential_store(None),
        store: Arc::new(MemoryStore::new()),
        board: Arc::new(Board::default()),
        watchdog: Some(Watchdog {
            interval: Duration::from_secs(30),
            ping: Arc::new(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }),
        }),
        changed: None,
        seed: 3,
        fleet: None,
    };
    let scheduler = Scheduler::new(parts, vec![sls_ticket("a", 30 * DAY, DAY)], StateFile::default());
    let running = Running::start(scheduler);
    tokio::time::sleep(Duration::from_secs(600)).await;
    running.stop().await;
    // One ping per half interval: about 40 in ten minutes.
    let n = pings.load(std::sync::atomic::Ordering::SeqCst);
    assert!((38..=42).contains(&n), "pings: {n}");
}

#[tokio::test(start_paused = true)]
async fn a_suspend_or_a_wall_clock_jump_past_a_deadline_refreshes_at_once() {
    for suspend in [true, false] {
        // A laptop or VM suspended past a deadline: both clocks move on, tokio's timers do not.
        // Or the wall clock alone steps past it.
        let (clock, provider, board, parts) = reliable_sls(5);
        let scheduler = Scheduler::new(parts, vec![sls_ticket("a", 30 * DAY, DAY)], StateFile::default());
        let running = Running::start(scheduler);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let refreshes = provider.count(CallKind::Refresh, true);
        assert_eq!(refreshes, 1);
        // Sleep through the 16-18 h refresh point and past the token's expiry.
        if suspend {
            clock.suspend(DAY + HOUR);
        } else {
            clock.jump(DAY + HOUR);
        }
        let held = board.get("a").unwrap().current.unwrap();
        assert!(!held.is_valid(clock.read()), "expired on waking, before any refresh (suspend: {suspend})");
        tokio::time::sleep(WALL_CLOCK_RECHECK + Duration::from_secs(1)).await;
        assert_eq!(provider.count(CallKind::Refresh, true), refreshes + 1, "refreshed on waking (suspend: {suspend})");
        let current = board.get("a").unwrap().current.unwrap();
        assert!(current.is_valid(clock.read()));
        running.stop().await;
    }
}

/// Wait (paused time) for the next `Published` event; `None` after `limit`.
async fn next_published(events: &mut broadcast::Receiver<Event>, limit: Duration) -> Option<u64> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event::Published { generation, .. }) => return generation,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    };
    tokio::time::timeout(limit, wait).await.ok()
}

/// Issue 16 item 3: the wall clock steps 2 h ahead for 15 minutes (longer than a token's life),
/// then is corrected. The cloud, on true time, rejects every request signed meanwhile as clock
/// skew. Retries come every few seconds, in monotonic time, and the correction is noticed at
/// once: a valid token is back within seconds, and the next refresh is planned in the corrected
/// frame (on `main` the retries lay 7.5-15 min ahead in the stepped frame: over two hours).
#[tokio::test(start_paused = true)]
async fn issue_16_after_a_forward_clock_step_is_corrected_a_valid_token_is_back_within_seconds() {
    let base = from_unix_seconds(1_700_000_000);
    let (clock, server) = (PausedClock::starting_at(base), PausedClock::starting_at(base));
    let provider = FakeSls::checking_skew(clock.clone(), server.clone());
    let board = Arc::new(Board::default());
    let parts = test_parts(&clock, provider.clone(), board.clone(), 5);
    let life = Duration::from_secs(600);
    let scheduler = Scheduler::new(parts, vec![sls_ticket("a", 30 * DAY, life)], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    assert_eq!(next_published(&mut events, Duration::from_secs(60)).await, Some(1));

    clock.jump(2 * HOUR);
    tokio::time::sleep(Duration::from_secs(900)).await;
    let rejected = provider.count(CallKind::Refresh, false) + provider.count(CallKind::Mint, false);
    assert!(rejected >= 60, "clock-skew rejections are retried every few seconds: {rejected} in 15 min");
    let held = board.get("a").unwrap().current.expect("the last good token is kept");
    assert_eq!(held.generation, 1);
    assert!(!held.is_valid(clock.read()), "by the stepped wall clock it has expired: fail closed");

    while events.try_recv().is_ok() {}
    clock.jump_back(2 * HOUR);
    let corrected = tokio::time::Instant::now();
    let published = next_published(&mut events, 3 * HOUR).await;
    let took = corrected.elapsed();
    assert_eq!(published, Some(2), "a new token after the correction");
    assert!(took <= timing::CLOCK_SKEW_RETRY + Duration::from_secs(1), "valid again {took:?} after the correction");
    let now = clock.read();
    let ticket = board.get("a").unwrap().current.unwrap();
    assert!(ticket.is_valid(now));
    let next = board.read(|t| t.by_name("a").unwrap().next_at(now)).unwrap();
    assert!(next > now.wall && next < now.wall + life, "next refresh in the corrected frame: {next:?} at {now:?}");
    eprintln!("+2 h step held 15 min: {rejected} clock-skew rejections; valid again {took:?} after the correction");
    running.stop().await;
}

/// Issue 16 item 3: right after a token is received the wall clock is set back 60 s. The token
/// is replaced on time all the same (its refresh point counts in monotonic time): no token is
/// held past its real expiry (on `main` it was refreshed a minute late, after it had expired).
#[tokio::test(start_paused = true)]
async fn issue_16_a_clock_set_back_a_minute_never_keeps_an_expired_token() {
    let (clock, _, _, parts) = reliable_sls(6);
    let life = Duration::from_secs(90);
    let scheduler = Scheduler::new(parts, vec![sls_ticket("a", 30 * DAY, life)], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    // When each token arrived, in true (tokio) time; it was issued 200 ms earlier (the call).
    let mut received = Vec::new();
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(600) {
        let left = Duration::from_secs(600).saturating_sub(start.elapsed());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(Event::TokenRefreshed { .. })) => {
                received.push(tokio::time::Instant::now());
                if received.len() == 1 {
                    clock.jump_back(Duration::from_secs(60));
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    running.stop().await;
    assert!(received.len() >= 7, "tokens in 10 minutes: {}", received.len());
    let mut worst = Duration::ZERO;
    for pair in received.windows(2) {
        let expired = pair[0] + life - Duration::from_millis(200);
        worst = worst.max(pair[1].saturating_duration_since(expired));
        assert!(pair[1] < expired, "a token was held {:?} past its expiry", pair[1] - expired);
    }
    eprintln!("-60 s step: {} tokens in 10 min, the longest an expired token was held: {worst:?}", received.len());
}

/// Issue 16 item 3: every reader fails closed on either clock. After the wall clock is set back
/// 60 s and every call fails, the token counts as expired when its life has passed in monotonic
/// time, although the wall clock says it has a minute left.
#[tokio::test(start_paused = true)]
async fn issue_16_a_token_counts_as_expired_when_either_clock_says_so() {
    let (clock, provider, board, parts) = reliable_sls(7);
    let life = Duration::from_secs(90);
    let scheduler = Scheduler::new(parts, vec![sls_ticket("a", 30 * DAY, life)], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    assert_eq!(next_published(&mut events, Duration::from_secs(60)).await, Some(1));
    let received = tokio::time::Instant::now();
    provider.fail.lock().unwrap().1 = 1.0;
    clock.jump_back(Duration::from_secs(60));
    let held = board.get("a").unwrap().current.unwrap();
    // `/readyz` lists the required tickets without a valid token.
    let ready = |now| board.not_ready(now, |names| names.is_empty());
    tokio::time::sleep_until(received + life - Duration::from_secs(2)).await;
    let now = clock.read();
    assert!(held.is_valid(now) && board.get("a").unwrap().valid(now).is_some());
    assert!(ready(now));
    tokio::time::sleep_until(received + life).await;
    let now = clock.read();
    assert!(now.wall < held.token.expires_at, "the wall clock says it is still valid");
    assert!(!held.is_valid(now), "the monotonic clock says it has expired");
    assert!(board.get("a").unwrap().valid(now).is_none());
    assert!(!ready(now), "not ready once the token expired by either clock");
    let metrics = crate::api::metrics::render(&board, now);
    let gauge = metrics.lines().find(|l| l.starts_with("ticketd_token_expiry_timestamp_seconds{")).unwrap();
    let expiry: f64 = gauge.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(expiry <= crate::clock::unix_seconds(now.wall) as f64 + 1.0, "the gauge fails closed too: {gauge}");
    running.stop().await;
}

/// FakeSls behind the same per-endpoint rate limiter the cloud provider uses.
struct Limited {
    inner: Arc<FakeSls>,
    limit: Arc<crate::apis::ratelimit::RateLimiter>,
}

impl Provider for Limited {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        let (inner, limit, spec) = (self.inner.clone(), self.limit.clone(), spec.clone());
        Box::pin(async move {
            limit.acquire("cn-shanghai.log.aliyuncs.com").await;
            inner.call(&spec, op, credentials).await
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_tickets_due_at_once_stay_under_the_rate_limit() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let fake = FakeSls::new(clock.clone(), 0.0, 1);
    let rate = crate::config::DEFAULT_ALIBABA_RATE_LIMIT;
    let provider = Arc::new(Limited {
        inner: fake.clone(),
        limit: Arc::new(crate::apis::ratelimit::RateLimiter::per_second(rate)),
    });
    let tickets: Vec<TicketSpec> = (0..1000).map(|i| sls_ticket(&format!("t{i}"), 30 * DAY, DAY)).collect();
    let board = Arc::new(Board::default());
    let parts = test_parts(&clock, provider, board.clone(), 9);
    let scheduler = Scheduler::new(parts, tickets, StateFile::default());
    let running = Running::start(scheduler);
    tokio::time::sleep(Duration::from_secs(120)).await;
    running.stop().await;
    let mut times: Vec<SystemTime> = fake.calls.lock().unwrap().iter().map(|c| c.0).collect();
    times.sort();
    assert_eq!(times.len(), 2000, "a CreateTicket and a first RefreshToken per ticket");
    let rate = rate as usize;
    for window in times.windows(rate + 1) {
        assert!(
            window[rate].duration_since(window[0]).unwrap() >= Duration::from_secs(1),
            "more than {rate} calls in a second"
        );
    }
    assert!(board.snapshot().iter().all(|v| v.current.is_some()), "every ticket got its token");
}

/// FakeSls answering after 100 ms, counting the calls in progress.
struct Slow {
    inner: Arc<FakeSls>,
    now: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
}

impl Provider for Slow {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        use std::sync::atomic::Ordering::SeqCst;
        let (inner, now, most, spec) = (self.inner.clone(), self.now.clone(), self.most.clone(), spec.clone());
        Box::pin(async move {
            most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            now.fetch_sub(1, SeqCst);
            inner.call(&spec, op, credentials).await
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_due_tickets_spawns_no_more_tasks_than_calls_allowed() {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let fake = FakeSls::new(clock.clone(), 0.0, 1);
    let (now, most) = (Arc::default(), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
    let provider = Arc::new(Slow { inner: fake.clone(), now, most: most.clone() });
    let tickets: Vec<TicketSpec> = (0..2000).map(|i| sls_ticket(&format!("t{i}"), 30 * DAY, DAY)).collect();
    let board = Arc::new(Board::default());
    let parts = test_parts(&clock, provider, board.clone(), 9);
    let scheduler = Scheduler::new(parts, tickets, StateFile::default());
    let running = Running::start(scheduler);
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut most_tasks = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        most_tasks = most_tasks.max(metrics.num_alive_tasks());
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    running.stop().await;
    assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), MAX_IN_FLIGHT, "calls in progress at once");
    // The scheduler loop and the calls; not a task per due ticket.
    assert!(most_tasks <= MAX_IN_FLIGHT + 1, "{most_tasks} tasks alive at once");
    assert!(board.snapshot().iter().all(|v| v.current.is_some()), "every ticket got its token");
}

#[tokio::test(start_paused = true)]
async fn a_late_result_for_a_removed_ticket_never_lands_on_the_ticket_that_takes_its_place() {
    let (_, provider, board, parts) = reliable_sls(5);
    let scheduler = Scheduler::new(parts, vec![sls_ticket("old", 30 * DAY, DAY)], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    // `old` is minting (a call takes 200 ms) when a reload replaces it with `new`, which is given
    // the board slot `old` had.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(provider.count(CallKind::Mint, true), 1);
    assert_eq!(running.reload(vec![sls_ticket("new", 30 * DAY, DAY)]).await.removed, ["old"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let scheduler = running.stop().await;

    let mut minted = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::TicketMinted { name, .. } = event {
            minted.push(name);
        }
    }
    assert_eq!(provider.count(CallKind::Mint, true), 2);
    assert_eq!(minted, ["new"], "the ticket minted for `old` was dropped when it came back");
    let current = scheduler.holding("new").current.expect("`new` holds a token");
    assert_eq!(current.ticket.as_ref().unwrap().value.expose(), "ticket-2", "`new` holds the ticket minted for it");
    assert!(board.get("old").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_ticket_just_minted_gets_its_token_before_later_tickets_are_minted() {
    let (_, provider, board, parts) = reliable_sls(11);
    let tickets: Vec<TicketSpec> = (0..1000).map(|i| sls_ticket(&format!("t{i:04}"), 30 * DAY, DAY)).collect();
    let running = Running::start(Scheduler::new(parts, tickets, StateFile::default()));
    tokio::time::sleep(Duration::from_secs(60)).await;
    running.stop().await;
    // Tickets minted and still waiting for their first token, after each call: never more than
    // the calls in progress at once plus the new tickets waiting for a save (not the whole
    // config, as when every mint came first).
    let calls = provider.calls.lock().unwrap().clone();
    let (mut waiting, mut most) = (0i64, 0i64);
    for (_, kind, _) in &calls {
        waiting += if *kind == CallKind::Mint { 1 } else { -1 };
        most = most.max(waiting);
    }
    assert_eq!(calls.len(), 2000, "one mint and one refresh per ticket");
    assert!(most <= (MAX_IN_FLIGHT + MAX_AWAITING_SAVE) as i64, "{most} tickets held a pending ticket at once");
    assert!(board.snapshot().iter().all(|v| v.current.is_some()), "every ticket got its token");
}

/// FakeSls, except that calls for tickets named `bad…` panic inside the call, as a provider bug
/// would (issue #16, item 1).
struct Panicking {
    inner: Arc<FakeSls>,
    panics: std::sync::atomic::AtomicUsize,
}

impl Provider for Panicking {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        if spec.name.starts_with("bad") {
            self.panics.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!("a provider bug (test)");
            });
        }
        self.inner.call(spec, op, credentials)
    }
}

#[tokio::test(start_paused = true)]
async fn issue_16_a_panicking_call_is_reported_and_retried_and_never_wedges_other_tickets() {
    let (clock, fake, board, mut parts) = reliable_sls(13);
    let provider = Arc::new(Panicking { inner: fake.clone(), panics: Default::default() });
    parts.provider = provider.clone();
    // More panicking tickets than calls may run at once, plus one good ticket.
    let mut tickets: Vec<TicketSpec> =
        (0..MAX_IN_FLIGHT + 16).map(|i| sls_ticket(&format!("bad{i:03}"), 30 * DAY, DAY)).collect();
    tickets.push(sls_ticket("good", 30 * DAY, DAY));
    let scheduler = Scheduler::new(parts, tickets, StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    tokio::time::sleep(2 * DAY).await;
    let scheduler = running.stop().await;

    assert_eq!(scheduler.in_flight, 0, "every call slot was given back");
    assert!(board.read(|table| table.tickets().all(|t| !t.in_flight())), "no ticket is left in flight");
    // The good ticket kept refreshing (about every 16-18 h) although hundreds of calls panicked.
    assert!(fake.count(CallKind::Refresh, true) >= 3, "good refreshes: {}", fake.count(CallKind::Refresh, true));
    let good = board.get("good").unwrap();
    assert!(good.valid(clock.read()).is_some());
    // Each panicking ticket was retried with backoff, and says why.
    let panics = provider.panics.load(std::sync::atomic::Ordering::SeqCst);
    assert!(panics > 4 * MAX_IN_FLIGHT, "panicking calls: {panics}");
    let bad = board.get("bad000").unwrap();
    assert!(bad.failures > 2, "{bad:?}");
    assert!(bad.last_error.as_deref().unwrap().contains("its task panicked"), "{:?}", bad.last_error);
    let mut failed = 0;
    loop {
        match events.try_recv() {
            Ok(Event::CallFailed { name, .. }) if name.starts_with("bad") => failed += 1,
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert!(failed > MAX_IN_FLIGHT, "failures reported: {failed}");
}

#[test]
fn issue_16_a_call_task_dropped_before_it_reports_reports_a_failure() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    drop(CallReport { tx: tx.clone(), id: 7, epoch: 3, step: Step::Mint, sent: false });
    let Ok(Message::Called { id: 7, epoch: 3, step: Step::Mint, result: Err(e), .. }) = rx.try_recv() else {
        panic!("no failure reported")
    };
    assert!(e.to_string().contains("its task was cancelled"), "{e}");
    drop(PublishReport { tx, id: 7, epoch: 3, generation: 2, sent: false });
    let Ok(Message::Published { id: 7, generation: 2, outcome: Err(died), .. }) = rx.try_recv() else {
        panic!("no failed write reported")
    };
    assert!(died.to_string().contains("sink writer ended without a result"), "{died:?}");
}

/// FakeSls whose first `hangs` RefreshToken calls never answer (a server that accepts the
/// connection and goes quiet).
struct Hanging {
    inner: Arc<FakeSls>,
    hangs: std::sync::atomic::AtomicUsize,
}

impl Provider for Hanging {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        use std::sync::atomic::Ordering::SeqCst;
        if matches!(op, Operation::Refresh { .. })
            && fake_refreshes(&self.inner) > 0
            && self.hangs.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            return Box::pin(std::future::pending());
        }
        self.inner.call(spec, op, credentials)
    }
}

fn fake_refreshes(fake: &FakeSls) -> usize {
    fake.count(CallKind::Refresh, true)
}

#[tokio::test(start_paused = true)]
async fn issue_16_a_hung_call_is_abandoned_in_time_for_another_attempt_before_the_token_lapses() {
    let (_, fake, _, mut parts) = reliable_sls(17);
    // The second refresh (the first of a held 60 s token) hangs; the next call would succeed.
    parts.provider = Arc::new(Hanging { inner: fake.clone(), hangs: 1.into() });
    let scheduler =
        Scheduler::new(parts, vec![sls_ticket("short", DAY, Duration::from_secs(60))], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    tokio::time::sleep(Duration::from_secs(300)).await;
    running.stop().await;
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    let timeouts =
        seen.iter().filter(|e| matches!(e, Event::CallFailed { error, .. } if error.to_string().contains("no answer")));
    assert_eq!(timeouts.count(), 1, "{seen:?}");
    // Every new token came before the one it replaced expired (seen in the events' own fields:
    // a 60 s token refreshed before its predecessor lapsed expires at most 60 s after it).
    let mut expiry: Option<SystemTime> = None;
    for event in &seen {
        match event {
            Event::CallFailed { retry_at, token_expires_at: Some(exp), .. } => {
                assert!(retry_at < exp, "the retry after the hung call comes after the token lapsed");
            }
            Event::TokenRefreshed { expires_at, .. } => {
                if let Some(previous) = expiry {
                    assert!(*expires_at <= previous + Duration::from_secs(60), "a token lapsed before the next came");
                }
                expiry = Some(*expires_at);
            }
            _ => {}
        }
    }
    assert!(fake_refreshes(&fake) >= 5, "refreshes: {}", fake_refreshes(&fake));
}

#[test]
fn issue_16_the_call_timeout_is_bounded_by_what_the_held_token_has_left() {
    assert_eq!(call_timeout(None), CALL_TIMEOUT);
    assert_eq!(call_timeout(Some(DAY)), CALL_TIMEOUT);
    assert_eq!(call_timeout(Some(Duration::from_secs(20))), Duration::from_secs(10));
    assert_eq!(call_timeout(Some(Duration::from_secs(2))), MIN_CALL_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn issue_16_a_token_too_short_to_be_useful_is_a_failed_call_with_backoff() {
    let (clock, fake, board, parts) = reliable_sls(19);
    // The cloud hands out tokens that live one second.
    let scheduler = Scheduler::new(parts, vec![sls_ticket("blink", DAY, Duration::from_secs(1))], StateFile::default());
    let running = Running::start(scheduler);
    tokio::time::sleep(Duration::from_secs(120)).await;
    running.stop().await;
    let refreshes = fake_refreshes(&fake);
    // Backing off 2, 4, 8 ... s (full jitter): a handful in two minutes, not five a second.
    assert!(refreshes <= 20, "{refreshes} token calls in two minutes");
    let view = board.get("blink").unwrap();
    assert!(view.valid(clock.read()).is_none(), "a one-second token is not handed out");
    assert!(view.failures as usize >= refreshes.saturating_sub(1), "{view:?}");
    let error = view.last_error.unwrap();
    assert!(error.contains("the new token expires in 800ms") && error.contains("at least 5s"), "{error}");
}

/// FakeSls that, on each RefreshToken, looks whether the ticket it is asked to use is in the state
/// saved so far, and counts the calls that came first (issue #16, item 16).
struct SavedFirst {
    inner: Arc<FakeSls>,
    state: Arc<Place>,
    unsaved: std::sync::atomic::AtomicUsize,
    checked: std::sync::atomic::AtomicUsize,
}

impl Provider for SavedFirst {
    fn call(
        &self,
        spec: &TicketSpec,
        op: Operation,
        credentials: Credentials,
    ) -> BoxFuture<Result<Issued, ProviderError>> {
        use std::sync::atomic::Ordering::SeqCst;
        if let Operation::Refresh { ticket } = &op {
            let state = self.state.state();
            let saved = state.tickets.get(spec.name.as_str()).is_some_and(|t| {
                let held = t.holding.current.as_ref().and_then(|c| c.ticket.as_ref());
                held.into_iter().chain(t.holding.pending.as_deref()).any(|p| p.value.expose() == ticket.expose())
            });
            self.checked.fetch_add(1, SeqCst);
            if !saved {
                self.unsaved.fetch_add(1, SeqCst);
            }
        }
        self.inner.call(spec, op, credentials)
    }
}

#[tokio::test(start_paused = true)]
async fn issue_16_a_new_ticket_is_saved_before_its_first_token_is_asked_for() {
    let (_, fake, board, mut parts) = reliable_sls(23);
    let state = Place::new();
    // Each save takes 25 ms of real time, as a big state does: saves are then spaced (the next
    // comes at least 9 x 25 ms later), which once let a new ticket's first call run ahead of it.
    parts.store = Arc::new(MemoryStore::open(&state).expect("a place of its own").slow(Duration::from_millis(25)));
    let provider = Arc::new(SavedFirst { inner: fake.clone(), state, unsaved: 0.into(), checked: 0.into() });
    parts.provider = provider.clone();
    let scheduler = Scheduler::new(parts, vec![sls_ticket("a", 30 * DAY, DAY)], StateFile::default());
    let running = Running::start(scheduler);
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Added by a reload (which saves, so the next save is spaced) and minted at once.
    let summary = running.reload(vec![sls_ticket("a", 30 * DAY, DAY), sls_ticket("b", 30 * DAY, DAY)]).await;
    assert_eq!(summary.added, ["b"]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    running.stop().await;
    use std::sync::atomic::Ordering::SeqCst;
    assert_eq!(fake.count(CallKind::Mint, true), 2);
    assert_eq!(provider.checked.load(SeqCst), 2, "one first token per ticket");
    assert_eq!(provider.unsaved.load(SeqCst), 0, "a ticket was used before the state file held it");
    assert!(board.get("b").unwrap().current.is_some(), "the saved ticket got its token");
}

/// One sink writer per ticket at a time. A token that arrives while the sinks are still being
/// written with the one before waits for that write: two writers finishing out of order renamed
/// the older token's file over the newer one's while the board and the state recorded the newer
/// (the `tests/crash.rs` flake "sink is older than its state"), and the sinks kept the older
/// token until the next refresh, past its expiry. Writer 1 is held right after its rename while
/// token 2 arrives: no second writer may start until it is let go. Failed before the fix: the
/// second writer wrote and reached the gate while the first was held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_new_token_waits_for_the_sink_write_of_the_one_before() {
    let name = "issue-17-one-writer";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.token");
    let spec = token_file_ticket(name, &path);
    let (written_tx, mut written) = mpsc::unbounded_channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let gate = Arc::new(WriteGate { written: written_tx, release: Mutex::new(release_rx) });
    WRITE_GATES.lock().unwrap().insert(name.to_string(), gate);
    let clock = PausedClock::starting_at(SystemTime::now());
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let board = Arc::new(Board::default());
    let parts = test_parts(&clock, provider, board.clone(), 5);
    let running = Running::start(Scheduler::new(parts, vec![spec], StateFile::default()));
    let file = || std::fs::read_to_string(&path).unwrap().trim().to_string();
    let held = |board: &Board| {
        let view = board.get(name).unwrap();
        view.current.map(|c| (c.generation, c.token.value.expose().to_string()))
    };
    tokio::time::timeout(Duration::from_secs(30), written.recv()).await.expect("the first write").unwrap();
    let first = file();
    // Token 2 arrives while writer 1 is held after its rename.
    let mut changes = board.subscribe();
    tokio::time::timeout(Duration::from_secs(30), async {
        while board.read(|t| t.by_name(name).and_then(|t| t.holding().current.as_ref()).map(|c| c.generation))
            != Some(2)
        {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("token 2 arrives");
    // A second writer (the old code) writes token 2 and reaches the gate within milliseconds.
    let second = tokio::time::timeout(Duration::from_millis(500), written.recv()).await;
    assert!(second.is_err(), "a second writer ran while the first was still writing");
    assert_eq!(file(), first, "the file is writer 1's until it is let go");
    release.send(()).unwrap();
    // Then token 2 is written, and the file ends with what the board holds.
    tokio::time::timeout(Duration::from_secs(30), written.recv()).await.expect("the second write").unwrap();
    release.send(()).unwrap();
    WRITE_GATES.lock().unwrap().remove(name);
    drop(release);
    let mut changes = board.subscribe();
    let token = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let quiet = board.read(|t| t.by_name(name).is_some_and(|t| !t.writing()));
            if let Some((generation, token)) = held(&board).filter(|(g, _)| quiet && *g >= 2) {
                let _ = generation;
                return token;
            }
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("token 2 written");
    assert_eq!(file(), token, "the file holds what the board holds");
    running.stop().await;
}

/// Sink writes of the tickets named here stop right after the files are in place, until the test
/// lets them go on: the window between a file's rename and the loop hearing of it, held open.
static WRITE_GATES: std::sync::LazyLock<Mutex<std::collections::HashMap<String, Arc<WriteGate>>>> =
    std::sync::LazyLock::new(Mutex::default);

struct WriteGate {
    written: mpsc::UnboundedSender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

/// Called by the sink writer (on its blocking thread) once a ticket's sinks are written.
pub(crate) fn after_sink_write(name: &str) {
    let gate = WRITE_GATES.lock().unwrap().get(name).cloned();
    if let Some(gate) = gate {
        let _ = gate.written.send(());
        // Bounded: a test that never lets go does not hang the writer for good.
        let _ = gate.release.lock().unwrap().recv_timeout(Duration::from_secs(60));
    }
}

/// Writers a test holds before they write (by ticket name, so each test's ticket name must be its own:
/// two tests sharing one ran into each other's gates when run at once): the first to come waits for
/// `release`; every one that comes is told on `entered`.
static BEFORE_GATES: std::sync::LazyLock<Mutex<std::collections::HashMap<String, Arc<BeforeGate>>>> =
    std::sync::LazyLock::new(Mutex::default);

struct BeforeGate {
    entered: mpsc::UnboundedSender<()>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
    held_one: std::sync::atomic::AtomicBool,
}

/// Called by the sink writer (on its blocking thread) before it writes a ticket's sinks.
pub(crate) fn before_sink_write(name: &str) {
    let gate = BEFORE_GATES.lock().unwrap().get(name).cloned();
    if let Some(gate) = gate {
        let _ = gate.entered.send(());
        if !gate.held_one.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // Bounded: a test that never lets go does not hang the writer for good.
            let _ = gate.release.lock().unwrap().recv_timeout(Duration::from_secs(60));
        }
    }
}

/// A token that arrives while the previous one is still being written is written after it, never
/// beside it: two writers could rename in either order and leave the older token in the file
/// while the board (and the state file) say the sinks hold the newer (the `tests/crash.rs`
/// flake: "sink is older than its state"). The first writer is held before it writes until the
/// next token is on the board.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_token_written_while_the_one_before_is_being_written_ends_up_in_the_file() {
    let name = "issue-17-before-write";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-writer.token");
    let spec = token_file_ticket(name, &path);
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let before = BeforeGate {
        entered: entered_tx,
        release: Mutex::new(release_rx),
        held_one: std::sync::atomic::AtomicBool::new(false),
    };
    BEFORE_GATES.lock().unwrap().insert(name.to_string(), Arc::new(before));
    // Told after each writer has written (never held: `release` is loaded in advance).
    let (written_tx, mut written) = mpsc::unbounded_channel();
    let (after_release, after_rx) = std::sync::mpsc::channel();
    for _ in 0..16 {
        after_release.send(()).unwrap();
    }
    WRITE_GATES
        .lock()
        .unwrap()
        .insert(name.to_string(), Arc::new(WriteGate { written: written_tx, release: Mutex::new(after_rx) }));
    let clock = PausedClock::starting_at(SystemTime::now());
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let board = Arc::new(Board::default());
    let scheduler = Scheduler::new(test_parts(&clock, provider, board.clone(), 5), vec![spec], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    let within = Duration::from_secs(30);
    // The first token's writer is held before it writes...
    tokio::time::timeout(within, entered.recv()).await.expect("the first write starts").unwrap();
    // ...until the second token is on the board.
    let second = async {
        loop {
            if let Ok(Event::TokenRefreshed { name: n, generation: 2, .. }) = events.recv().await
                && n == name
            {
                return;
            }
        }
    };
    tokio::time::timeout(within, second).await.expect("the second token");
    // A second writer beside the held one would start now; none may before the first is done.
    let beside = tokio::time::timeout(Duration::from_secs(2), entered.recv()).await;
    release.send(()).unwrap();
    // Both writes done, and every sink holds generation 2 by the scheduler's account.
    let mut published_2 = false;
    let mut writes = 0;
    let both = async {
        while !(published_2 && writes >= 2) {
            tokio::select! {
                Some(()) = written.recv() => writes += 1,
                event = events.recv() => {
                    if let Ok(Event::Published { name: n, generation: 2 }) = event && n == name {
                        published_2 = true;
                    }
                }
            }
        }
    };
    tokio::time::timeout(within, both).await.expect("both writes and generation 2 published");
    let in_file = std::fs::read_to_string(&path).unwrap().trim().to_string();
    let view = board.get(name).unwrap();
    let current = view.current.as_ref().unwrap();
    assert_eq!(current.generation, 2);
    assert_eq!(in_file, current.token.value.expose(), "the file holds the token the board says the sinks hold");
    assert!(beside.is_err(), "a second writer started while the first was still writing");
    BEFORE_GATES.lock().unwrap().remove(name);
    WRITE_GATES.lock().unwrap().remove(name);
    drop(release);
    running.stop().await;
}

/// An SLS ticket with tokens of 6 s (the second comes 4 to 4.5 s after the first), written raw
/// to the file `path`.
pub(super) fn token_file_ticket(name: &str, path: &std::path::Path) -> TicketSpec {
    let mut spec = sls_ticket(name, Duration::from_secs(120), Duration::from_secs(6));
    spec.sinks = vec![crate::config::SinkSpec::File(crate::config::FileSink {
        path: path.to_path_buf(),
        format: crate::config::FileFormat::Token,
        mode: 0o600,
        env_names: crate::config::EnvNames::defaults("TICKETD_", crate::config::Kind::Sls),
    })];
    spec
}

/// Send a GET for `uri` to the socket API's routes, as root.
pub(super) async fn api_get(router: &axum::Router, uri: &str) -> (u16, String) {
    use tower_service::Service;
    let mut request = axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
    request.extensions_mut().insert(crate::api::peer::Peer::without_groups(0, 0));
    let response = router.clone().call(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Issue 17 item 14: a consumer that sees a new sink file and asks the API at once gets that
/// token, and `/metrics` shows its expiry: for the first token (none on the board before) and for
/// the next (the one before it still valid). The sink writer is held right after the rename, and
/// the requests are made (and looked at once) inside that window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_consumer_that_sees_a_new_file_gets_that_token_from_the_api() {
    use std::future::Future;
    use std::task::Poll;
    let name = "issue-17-window";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("window.token");
    let spec = token_file_ticket(name, &path);
    let (written_tx, mut written) = mpsc::unbounded_channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let gate = Arc::new(WriteGate { written: written_tx, release: Mutex::new(release_rx) });
    WRITE_GATES.lock().unwrap().insert(name.to_string(), gate);
    let clock = PausedClock::starting_at(SystemTime::now());
    let provider = FakeSls::new(clock.clone(), 0.0, 1);
    let board = Arc::new(Board::default());
    let parts = test_parts(&clock, provider, board.clone(), 5);
    let running = Running::start(Scheduler::new(parts, vec![spec], StateFile::default()));
    let shown = board.clone();
    let state = crate::api::routes::ApiState {
        board,
        clock: Arc::new(clock.clone()),
        own_uid: 0,
        ticket_series: Arc::new(crate::config::DEFAULT_METRICS_TICKET_SERIES.into()),
        cluster: None,
    };
    let router = crate::api::routes::router(Arc::new(state));
    let token_uri = format!("/v1/tickets/{name}/token");
    for generation in 1..=2 {
        tokio::time::timeout(Duration::from_secs(30), written.recv()).await.expect("a sink write").unwrap();
        let in_file = std::fs::read_to_string(&path).unwrap().trim().to_string();
        assert!(in_file.starts_with("token-"), "{in_file}");
        // Asked inside the window: each request is looked at before the writer goes on.
        let mut get = std::pin::pin!(api_get(&router, &token_uri));
        let mut metrics = std::pin::pin!(api_get(&router, "/metrics"));
        let early = std::future::poll_fn(|cx| {
            Poll::Ready((get.as_mut().poll(cx).map(|a| a.clone()), metrics.as_mut().poll(cx).map(|a| a.clone())))
        })
        .await;
        release.send(()).unwrap();
        let (got, scraped) = match early {
            (Poll::Ready(got), Poll::Ready(scraped)) => (got, scraped),
            (Poll::Ready(got), Poll::Pending) => (got, metrics.await),
            (Poll::Pending, Poll::Ready(scraped)) => (get.await, scraped),
            (Poll::Pending, Poll::Pending) => (get.await, metrics.await),
        };
        assert_eq!(got, (200, in_file.clone()), "generation {generation}: the API answers what the file holds");
        let view = shown.get(name).unwrap();
        let current = view.current.as_ref().unwrap();
        assert_eq!((current.generation, current.token.value.expose()), (generation, in_file.as_str()));
        let expiry = current.token.expires_at.time().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let gauge =
            scraped.1.lines().find(|l| l.starts_with("ticketd_token_expiry_timestamp_seconds{") && l.contains(name));
        let value: Option<f64> = gauge.and_then(|l| l.rsplit(' ').next()?.parse().ok());
        assert!(
            value.is_some_and(|v| (v - expiry).abs() < 1e-3),
            "generation {generation}: the scrape's expiry gauge {gauge:?} is not the file's token's ({expiry})"
        );
    }
    WRITE_GATES.lock().unwrap().remove(name);
    drop(release);
    running.stop().await;
}
