//! Tests of the fleet's side of the scheduler, against fakes (no etcd).
//!
//! A fake [`FleetLink`] records writes and answers as scripted, a fake cloud counts calls, the
//! clock is injected.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

use super::*;
use crate::apis::{BoxFuture, Operation, Provider, ProviderError};
use crate::board::Board;
use crate::clock::{Clock, PausedClock, from_unix_seconds};
use crate::cluster::link::{FleetEvent, Standing, Wanted, WriteError};
use crate::cluster::record::FleetRecord;
use crate::config::{ApiSpec, TicketSpec};
use crate::credentials::Credentials;
use crate::scheduler::event_loop::{Command, Parts, Scheduler};
use crate::scheduler::tests::{Running, test_parts, token_file_ticket};
use crate::secret::Secret;
use crate::store::memory::{MemoryStore, Place};
use crate::store::record::StateFile;
use crate::token::{Issued, TicketPart, TokenPart};

pub(in crate::scheduler) const DAY: Duration = Duration::from_secs(86_400);
pub(in crate::scheduler) const HOUR: Duration = Duration::from_secs(3_600);
pub(in crate::scheduler) const TTL: Duration = Duration::from_secs(10);

/// A write's scripted answer: now, or when the test says.
pub(in crate::scheduler) enum Answer {
    Now(Result<i64, WriteError>),
    Held(oneshot::Receiver<Result<i64, WriteError>>),
}

/// The fleet as a test scripts it: a settable standing, every write recorded (and told on
/// `written`), answered from the script (`Ok` at the next revision when it is empty).
#[derive(Debug)]
pub(in crate::scheduler) struct FakeLink {
    standing: Mutex<Standing>,
    writes: Mutex<Vec<FleetRecord>>,
    script: Mutex<VecDeque<Answer>>,
    written: Mutex<Option<mpsc::UnboundedSender<FleetRecord>>>,
    rereads: Mutex<Vec<Wanted>>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Answer::Now(_) => "Answer::Now",
            Answer::Held(_) => "Answer::Held",
        })
    }
}

impl FakeLink {
    pub(in crate::scheduler) fn new(role: Role) -> Arc<FakeLink> {
        Arc::new(FakeLink {
            standing: Mutex::new(Standing { role, unreachable_for: Duration::ZERO, lease_ttl: TTL }),
            writes: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            written: Mutex::new(None),
            rereads: Mutex::new(Vec::new()),
        })
    }

    /// The tickets asked to be read again so far ([`FleetLink::reread`]), by name.
    pub(in crate::scheduler) fn rereads(&self) -> Vec<String> {
        self.rereads.lock().unwrap().iter().map(|w| w.ticket.clone()).collect()
    }

    pub(in crate::scheduler) fn set(&self, role: Role, unreachable_for: Duration) {
        *self.standing.lock().unwrap() = Standing { role, unreachable_for, lease_ttl: TTL };
    }

    pub(in crate::scheduler) fn answer(&self, answer: Answer) {
        self.script.lock().unwrap().push_back(answer);
    }

    pub(in crate::scheduler) fn writes(&self) -> Vec<FleetRecord> {
        self.writes.lock().unwrap().clone()
    }

    /// Each write from now on is also sent here.
    pub(in crate::scheduler) fn tell(&self) -> mpsc::UnboundedReceiver<FleetRecord> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.written.lock().unwrap() = Some(tx);
        rx
    }
}

impl FleetLink for FakeLink {
    fn node(&self) -> &str {
        "node-a"
    }

    fn reread(&self, tickets: Vec<Wanted>) {
        self.rereads.lock().unwrap().extend(tickets);
    }

    fn standing(&self) -> Standing {
        *self.standing.lock().unwrap()
    }

    fn write(&self, record: FleetRecord) -> BoxFuture<Result<i64, WriteError>> {
        let revision = {
            let mut writes = self.writes.lock().unwrap();
            writes.push(record.clone());
            i64::try_from(writes.len()).unwrap() + 100
        };
        if let Some(tx) = self.written.lock().unwrap().as_ref() {
            let _ = tx.send(record);
        }
        let answer = self.script.lock().unwrap().pop_front();
        Box::pin(async move {
            match answer {
                None => Ok(revision),
                Some(Answer::Now(result)) => result,
                Some(Answer::Held(rx)) => rx.await.unwrap_or(Ok(revision)),
            }
        })
    }
}

/// A cloud that answers every call at once and counts them: SLS CreateTicket/RefreshToken by
/// the ticket's lifetimes, any other kind a token of a day.
#[derive(Default)]
pub(in crate::scheduler) struct FakeCloud {
    calls: Mutex<Vec<(String, &'static str)>>,
}

impl FakeCloud {
    /// The calls made for ticket `name`: "mint" (CreateTicket, a single-call token) or "refresh".
    pub(in crate::scheduler) fn calls(&self, name: &str) -> Vec<&'static str> {
        self.calls.lock().unwrap().iter().filter(|(n, _)| n == name).map(|(_, k)| *k).collect()
    }

    pub(in crate::scheduler) fn total(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

pub(in crate::scheduler) struct Cloud {
    pub(in crate::scheduler) fake: Arc<FakeCloud>,
    pub(in crate::scheduler) clock: PausedClock,
}

impl Provider for Cloud {
    fn call(&self, spec: &TicketSpec, op: Operation, _: Credentials) -> BoxFuture<Result<Issued, ProviderError>> {
        let now = self.clock.now();
        let mut calls = self.fake.calls.lock().unwrap();
        let serial = calls.len() + 1;
        let kind = if matches!(op, Operation::Mint) { "mint" } else { "refresh" };
        calls.push((spec.name.to_string(), kind));
        let long_term =
            matches!(&spec.api, ApiSpec::Tcr(tcr) if tcr.token_type == crate::apis::tcr::spec::TcrTokenType::LongTerm);
        let token = |life: Duration| TokenPart {
            value: Secret::new(format!("token-{serial}")),
            username: None,
            token_id: long_term.then(|| format!("tid-{serial}").as_str().into()),
            issued_at: now.into(),
            expires_at: (now + life).into(),
        };
        let issued = match (&spec.api, op) {
            (ApiSpec::Sls(sls), Operation::Mint) => Issued::Ticket(TicketPart {
                value: Secret::new(format!("ticket-{serial}")),
                issued_at: now.into(),
                expires_at: (now + sls.ticket_lifetime).into(),
            }),
            (ApiSpec::Sls(sls), Operation::Refresh { .. }) => Issued::Token(token(sls.token_lifetime)),
            _ => Issued::Token(token(DAY)),
        };
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(issued)
        })
    }
}

/// An SLS ticket of the fleet: tickets of 30 days, tokens of a day.
pub(in crate::scheduler) fn fleet_sls(name: &str) -> TicketSpec {
    let mut spec = crate::scheduler::tests::sls_ticket(name, 30 * DAY, DAY);
    spec.scope = Scope::Cluster;
    spec
}

/// A holding of generation `generation`: token `token` issued at `issued`, living `life`, from
/// ticket `ticket` (30 days from `issued`).
pub(in crate::scheduler) fn holding(
    ticket: &str,
    token: &str,
    generation: u64,
    issued: SystemTime,
    life: Duration,
) -> Holding {
    let ticket =
        TicketPart { value: Secret::new(ticket), issued_at: issued.into(), expires_at: (issued + 30 * DAY).into() };
    let token = TokenPart {
        value: Secret::new(token),
        username: None,
        token_id: None,
        issued_at: issued.into(),
        expires_at: (issued + life).into(),
    };
    let current = Current { ticket: Some(ticket), token, generation, refreshed_at: issued.into(), expires_mono: None };
    Holding { current: Some(current), pending: None }
}

pub(in crate::scheduler) fn stored(spec: &TicketSpec, holding: Holding) -> StoredTicket {
    StoredTicket { kind: spec.kind().as_str().to_string(), identity: identity(spec), holding }
}

pub(in crate::scheduler) fn saved(entries: &[(&TicketSpec, Holding)]) -> StateFile {
    let mut state = StateFile::default();
    for (spec, holding) in entries {
        state.tickets.insert(spec.name.to_string(), stored(spec, holding.clone()));
    }
    state
}

/// Scheduler parts over `clock`, a counting cloud, the fleet `link`, a state `place` and the
/// hook channel.
pub(in crate::scheduler) fn fleet_parts(
    clock: &PausedClock,
    link: &Arc<FakeLink>,
    place: &Arc<Place>,
) -> (Parts, Arc<FakeCloud>, Arc<Board>, mpsc::UnboundedReceiver<crate::sinks::notify::Changed>) {
    let fake = Arc::new(FakeCloud::default());
    let board = Arc::new(Board::default());
    let (changed, changes) = mpsc::unbounded_channel();
    let cloud = Arc::new(Cloud { fake: fake.clone(), clock: clock.clone() });
    let parts = Parts {
        store: Arc::new(MemoryStore::open(place).expect("a place of its own")),
        changed: Some(changed),
        fleet: Some(link.clone() as Arc<dyn FleetLink>),
        ..test_parts(clock, cloud, board.clone(), 11)
    };
    (parts, fake, board, changes)
}

impl Running {
    /// Send `event` as the fleet's task does.
    pub(in crate::scheduler) fn fleet(&self, event: FleetEvent) {
        assert!(self.commands.send(Command::Fleet(event)).is_ok(), "the loop is running");
    }

    /// Wait until the loop has handled every command sent before (a reload of `tickets`, which
    /// changes nothing, is answered in order).
    pub(in crate::scheduler) async fn settle(&self, tickets: Vec<TicketSpec>) {
        let summary = self.reload(tickets).await;
        assert!(summary.added.is_empty() && summary.replaced.is_empty(), "a reload to the same tickets keeps them");
    }
}

/// The next event of `events` matching `pick`, within `limit` (tokio's time).
pub(in crate::scheduler) async fn next<T>(
    events: &mut broadcast::Receiver<Event>,
    limit: Duration,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(limit, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(&event) {
                        return found;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            }
        }
    })
    .await
    .ok()
}

fn now_at(t: SystemTime) -> Now {
    Now { wall: t, mono: crate::clock::Mono::from_nanos(1_000_000_000) }
}

// --- The pure rule.

#[test]
fn adoption_takes_what_differs_and_never_what_is_older_than_etcd_held() {
    let t0 = from_unix_seconds(1_700_000_000);
    let now = now_at(t0 + HOUR);
    let held = holding("t1", "a", 5, t0, DAY);
    assert_eq!(adoption(&held.clone(), &held, Some(5), now), Adopt::Ignore("already held"));
    // The leader's next token.
    let next = holding("t1", "b", 6, t0 + HOUR, DAY);
    assert_eq!(adoption(&next, &held, Some(5), now), Adopt::Take { generation: 6, new_token: true });
    // Older than what etcd was seen holding: ignored.
    let old = holding("t1", "z", 4, t0, DAY);
    assert_eq!(adoption(&old, &held, Some(5), now), Adopt::Ignore("older than a generation etcd held before"));
    // Review F9: this node renewed on its own (fallback) up to 9 while etcd held 6; the leader's
    // 7 reconciles it, renumbered above this node's 9 so consumers see a rotation, not a step back.
    let forked = holding("t1", "fallback", 9, t0 + HOUR, DAY);
    let leader = holding("t1", "leader", 7, t0 + HOUR, DAY);
    assert_eq!(adoption(&leader, &forked, Some(6), now), Adopt::Take { generation: 10, new_token: true });
    // Nothing seen yet (just started): etcd's holding wins when it differs.
    assert_eq!(adoption(&leader, &forked, None, now), Adopt::Take { generation: 10, new_token: true });
    // An expired token never replaces a valid one.
    let expired = holding("t1", "e", 8, t0 - DAY, HOUR);
    let adopted = adoption(&expired, &held, Some(5), now);
    assert_eq!(adopted, Adopt::Ignore("its token has expired and this node holds a valid one"));
    // A new ticket waiting for its first token: the same token and generation, a pending ticket.
    let mut pending = held.clone();
    pending.pending = Some(Box::new(TicketPart {
        value: Secret::new("t2"),
        issued_at: (t0 + HOUR).into(),
        expires_at: (t0 + 31 * DAY).into(),
    }));
    assert_eq!(adoption(&pending, &held, Some(5), now), Adopt::Take { generation: 5, new_token: false });
}

// --- Adopting etcd's holdings.

/// A follower takes the leader's holding into its sink, runs its hook once, saves it, and
/// ignores the echo of it and an older one. Fails without [`Scheduler::adopt`] (the event
/// ignored: no hook, the file keeps the old token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_adopts_the_leader_s_holding_into_its_sinks_hook_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.token");
    let mut spec = token_file_ticket("web", &path);
    spec.scope = Scope::Cluster;
    spec.consumers.on_change = Some(crate::scheduler::revocation_tests::true_hook());
    let t0 = SystemTime::now();
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Follower);
    let place = Place::new();
    let (parts, cloud, board, mut changes) = fleet_parts(&clock, &link, &place);
    // A day's token held (the 6 s tokens of the spec aside): nothing is due for hours.
    let state = saved(&[(&spec, holding("ticket-1", "old", 3, t0, DAY))]);
    let scheduler = Scheduler::new(parts, vec![spec.clone()], state);
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    // The restart's rewrite of the sink (generation 3) comes first, once etcd's holdings are in.
    running.fleet(FleetEvent::Loaded);
    let first = tokio::time::timeout(Duration::from_secs(10), changes.recv()).await.expect("the hook").unwrap();
    assert_eq!(first.1, 3);
    let leaders = holding("ticket-1", "fleet-4", 4, t0, DAY);
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(stored(&spec, leaders.clone())),
        writer: "node-b".into(),
    });
    let (hooked, generation, _) =
        tokio::time::timeout(Duration::from_secs(10), changes.recv()).await.expect("the hook").unwrap();
    assert_eq!((hooked.name.as_str(), generation), ("web", 4));
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), "fleet-4");
    let published = next(&mut events, Duration::from_secs(10), |e| match e {
        Event::Published { name, generation: 4 } if name == "web" => Some(()),
        _ => None,
    });
    assert_eq!(published.await, Some(()), "generation 4 is published");
    // The echo, and an older holding: nothing.
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(stored(&spec, leaders)),
        writer: "node-b".into(),
    });
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(stored(&spec, holding("ticket-1", "older", 2, t0, DAY))),
        writer: "node-c".into(),
    });
    running.settle(vec![spec.clone()]).await;
    let scheduler = running.stop().await;
    assert!(changes.try_recv().is_err(), "the hook ran once for generation 4");
    let current = board.get("web").unwrap().current.unwrap();
    assert_eq!((current.generation, current.token.value.expose()), (4, "fleet-4"));
    let saved = place.state();
    let record = saved.tickets.get("web").expect("the state records the ticket");
    let on_record = record.holding.current.as_ref().unwrap();
    assert_eq!((on_record.generation, on_record.token.value.expose()), (4, "fleet-4"));
    assert_eq!(scheduler.holding("web").generation(), 4);
    assert_eq!(cloud.total(), 0, "a follower holding a good token calls nothing");
}

/// Holdings for a ticket not configured here, for another target, or for a node-scoped ticket
/// are ignored. Fails when the identity or scope check is dropped (the board takes them).
#[tokio::test(start_paused = true)]
async fn holdings_for_unknown_tickets_other_targets_or_node_tickets_are_ignored() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Follower);
    let place = Place::new();
    let (parts, _cloud, _board, _changes) = fleet_parts(&clock, &link, &place);
    let spec = fleet_sls("web");
    let mut local = crate::scheduler::tests::sls_ticket("local", 30 * DAY, DAY);
    local.scope = Scope::Node;
    let tickets = vec![spec.clone(), local.clone()];
    let state = saved(&[(&spec, holding("t", "mine", 3, t0, DAY)), (&local, holding("t", "mine", 3, t0, DAY))]);
    let running = Running::start(Scheduler::new(parts, tickets.clone(), state));
    let newer = holding("t", "theirs", 4, t0, DAY);
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "nowhere".into(),
        stored: Box::new(stored(&spec, newer.clone())),
        writer: "b".into(),
    });
    let mut other = stored(&spec, newer.clone());
    other.identity = "sls endpoint=https://elsewhere.example/".into();
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(other),
        writer: "b".into(),
    });
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "local".into(),
        stored: Box::new(stored(&local, newer)),
        writer: "b".into(),
    });
    running.settle(tickets).await;
    let scheduler = running.stop().await;
    assert_eq!(scheduler.holding("web").generation(), 3);
    assert_eq!(scheduler.holding("local").generation(), 3);
    assert!(scheduler.holding("web").current.unwrap().token.value.expose() == "mine");
}

/// A TCR ticket of the fleet: long-term (a mint the fleet shares) or temporary.
pub(in crate::scheduler) fn fleet_tcr(name: &str, long_term: bool) -> TicketSpec {
    use crate::apis::tcr::spec::{TcrSpec, TcrTokenType};
    let mut spec = fleet_sls(name);
    spec.api = ApiSpec::Tcr(TcrSpec {
        endpoint: crate::config::Endpoint { base: url::Url::parse("https://tcr.tencentcloudapi.com").unwrap() },
        region: "ap-guangzhou".into(),
        registry_id: "tcr-abcd1234".into(),
        token_type: if long_term { TcrTokenType::LongTerm } else { TcrTokenType::Temp },
        token_type_written: true,
        description: None,
        registry: None,
    });
    spec
}

/// Each API says which of its calls mint what the fleet shares: SLS CreateTicket and a TCR
/// long-term token; SLS RefreshToken, DSW tokens and TCR temporary tokens renew.
#[test]
fn each_api_tells_a_mint_from_a_renewal() {
    use crate::apis::CallKind;
    use crate::apis::dsw::spec::DswSpec;
    let sls = fleet_sls("s");
    let refresh = Operation::Refresh { ticket: Secret::new("t") };
    assert_eq!(sls.api.call_kind(&Operation::Mint), CallKind::Mint);
    assert_eq!(sls.api.call_kind(&refresh), CallKind::Renew);
    assert_eq!(fleet_tcr("l", true).api.call_kind(&Operation::Mint), CallKind::Mint);
    assert_eq!(fleet_tcr("t", false).api.call_kind(&Operation::Mint), CallKind::Renew);
    let dsw = ApiSpec::Dsw(DswSpec {
        endpoint: crate::config::Endpoint {
            base: url::Url::parse("https://pai-dsw.cn-hangzhou.aliyuncs.com").unwrap(),
        },
        instance_id: "dsw-1".into(),
        token_lifetime: HOUR,
        token_type: None,
        audience: None,
    });
    assert_eq!(dsw.call_kind(&Operation::Mint), CallKind::Renew);
}

/// A late report of a call from a ticket's earlier epoch (a reload retargeted it meanwhile) does
/// not take the gate's word on the call now out: that one still goes through the fence. Failed
/// before (the entry was removed by any report of the ticket).
#[test]
fn a_late_report_of_an_older_epoch_leaves_the_current_gated_call_alone() {
    let mut fleet = Fleet::new(FakeLink::new(Role::Leader));
    let gated = Gated { fenced: true, kind: crate::apis::CallKind::Renew, term: 0 };
    fleet.called(7, 2, gated);
    assert_eq!(fleet.returned(7, 1), None, "the older epoch's report");
    assert_eq!(fleet.returned(7, 2), Some(gated));
    assert_eq!(fleet.returned(7, 2), None, "reported once");
}
