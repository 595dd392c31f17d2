//! Tests of the fleet's gate on calls, against fakes of the fleet link (no etcd).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use super::*;
use crate::clock::{Clock, PausedClock, from_unix_seconds};
use crate::cluster::link::FleetEvent;
use crate::config::TicketSpec;
use crate::scheduler::event_loop::Scheduler;
use crate::scheduler::fleet::tests::{
    Answer, DAY, FakeLink, HOUR, TTL, fleet_parts, fleet_sls, fleet_tcr, holding, next, saved, stored,
};
use crate::scheduler::reports::Event;
use crate::scheduler::tests::{Running, token_file_ticket};
use crate::store::memory::Place;
use crate::store::record::StateFile;

fn now_at(t: SystemTime) -> Now {
    Now { wall: t, mono: Mono::from_nanos(1_000_000_000) }
}

/// Log lines written on this thread while the guard lives (a paused-time test runs its tasks on
/// its one thread).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut *self.0.lock().unwrap(), bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn capture() -> (Log, tracing::subscriber::DefaultGuard) {
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

// --- The pure rules.

#[test]
fn a_token_would_lapse_past_five_sixths_of_its_life_or_when_none_is_valid() {
    let t0 = from_unix_seconds(1_700_000_000);
    let held = holding("t", "a", 1, t0, 6 * HOUR);
    assert!(!would_lapse(&held, now_at(t0 + 4 * HOUR)));
    assert!(!would_lapse(&held, now_at(t0 + 5 * HOUR - Duration::from_secs(1))));
    assert!(would_lapse(&held, now_at(t0 + 5 * HOUR)));
    assert!(would_lapse(&held, now_at(t0 + 7 * HOUR)), "expired");
    assert!(would_lapse(&Holding::default(), now_at(t0)), "none held");
}

#[test]
fn a_held_back_ticket_is_looked_at_again_when_something_could_change() {
    let t0 = from_unix_seconds(1_700_000_000);
    let now = now_at(t0 + 4 * HOUR);
    let held = holding("t", "a", 1, t0, 6 * HOUR);
    let standing = |role, unreachable_for| Standing { role, unreachable_for, lease_ttl: TTL };
    // A follower: at the token's expiry (the leader's holding or a role change comes first).
    let follower = recheck(standing(Role::Follower, Duration::ZERO), CallKind::Renew, &held, now);
    assert_eq!(follower, now.mono + 2 * HOUR);
    // Nothing valid held: every FLEET_RECHECK.
    let none = recheck(standing(Role::Follower, Duration::ZERO), CallKind::Mint, &Holding::default(), now);
    assert_eq!(none, now.mono + FLEET_RECHECK);
    // etcd unreachable, a renewal: once the token would lapse (at 5 h) ...
    let renew = recheck(standing(Role::Unreachable, Duration::ZERO), CallKind::Renew, &held, now);
    assert_eq!(renew, now.mono + HOUR);
    // ... or once etcd has been unreachable a lease TTL, whichever is later.
    let late = now_at(t0 + 5 * HOUR);
    let renew = recheck(standing(Role::Unreachable, Duration::from_secs(3)), CallKind::Renew, &held, late);
    assert_eq!(renew, late.mono + Duration::from_secs(7));
    // A mint while unreachable: at the token's keep-alive point (a renewal may come then), then
    // at its expiry (only a role change helps, and re-plans it).
    assert_eq!(recheck(standing(Role::Unreachable, TTL), CallKind::Mint, &held, now), now.mono + HOUR);
    assert_eq!(recheck(standing(Role::Unreachable, TTL), CallKind::Mint, &held, late), late.mono + HOUR);
}

// --- The scheduler through the gate.

/// The leader's new SLS ticket is in etcd before its first token is asked for, and the token is
/// in etcd before any sink holds it. Fails with the fence skipped (publishing at once): the file
/// is written while the write is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_writes_each_new_holding_to_etcd_before_it_asks_on_or_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.token");
    let mut spec = token_file_ticket("web", &path);
    spec.scope = Scope::Cluster;
    let clock = PausedClock::starting_at(SystemTime::now());
    let link = FakeLink::new(Role::Leader);
    let mut written = link.tell();
    let (ticket_landed, ticket_held) = oneshot::channel();
    let (token_landed, token_held) = oneshot::channel();
    link.answer(Answer::Held(ticket_held));
    link.answer(Answer::Held(token_held));
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let scheduler = Scheduler::new(parts, vec![spec.clone()], StateFile::default());
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    let limit = Duration::from_secs(20);
    let first = tokio::time::timeout(limit, written.recv()).await.expect("the new ticket's write").unwrap();
    assert_eq!((first.ticket.as_str(), first.writer.as_str()), ("web", "node-a"));
    assert!(first.stored.holding.pending.is_some() && first.stored.holding.current.is_none());
    // Held: no token is asked for on a ticket etcd does not hold yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cloud.calls("web"), ["mint"]);
    ticket_landed.send(Ok(7)).unwrap();
    let second = tokio::time::timeout(limit, written.recv()).await.expect("the token's write").unwrap();
    let token = second.stored.holding.current.as_ref().expect("a token").token.value.expose().to_string();
    assert_eq!(cloud.calls("web"), ["mint", "refresh"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!path.exists(), "no sink holds a token etcd does not hold");
    assert!(board.get("web").unwrap().current.is_none(), "nor does the board");
    token_landed.send(Ok(8)).unwrap();
    let published = next(&mut events, limit, |e| matches!(e, Event::Published { generation: 1, .. }).then_some(()));
    assert_eq!(published.await, Some(()));
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), token);
    running.stop().await;
    let saved = place.state();
    assert_eq!(saved.tickets["web"].holding.current.as_ref().unwrap().token.value.expose(), token);
}

/// A ticket due for a refresh, the leader's write refused: deposed (nothing published, the board
/// unchanged), then raced (the same), then landed on a later try. Fails with the refusal ignored
/// (generation 2 published at once).
#[tokio::test(start_paused = true)]
async fn a_refused_write_publishes_nothing_and_the_board_keeps_its_holding() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Leader);
    let mut written = link.tell();
    link.answer(Answer::Now(Err(WriteError::Refused(Refused::Deposed))));
    link.answer(Answer::Now(Err(WriteError::Refused(Refused::Raced))));
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let spec = fleet_sls("web");
    // A day's token 20 h old: due now.
    let state = saved(&[(&spec, holding("ticket-0", "old", 1, t0 - 20 * HOUR, DAY))]);
    let scheduler = Scheduler::new(parts, vec![spec.clone()], state);
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    // etcd's holdings are in (none for it): the saved token is written to the sinks (issue #19).
    running.fleet(FleetEvent::Loaded);
    for _ in 0..2 {
        let refused = tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("a write").unwrap();
        assert_eq!(refused.generation(), 2);
        running.settle(vec![spec.clone()]).await;
        let held = board.get("web").unwrap().current.unwrap();
        assert_eq!((held.generation, held.token.value.expose()), (1, "old"), "nothing of the refused write");
    }
    // Tried again after FLEET_RECHECK; this one lands.
    let landed = next(&mut events, 2 * FLEET_RECHECK, |e| match e {
        Event::TokenRefreshed { generation, .. } => Some(*generation),
        _ => None,
    });
    assert_eq!(landed.await, Some(2), "the first token the board takes is the landed one");
    assert_eq!(link.writes().len(), 3);
    assert_eq!(cloud.calls("web"), ["refresh", "refresh", "refresh"]);
    running.stop().await;
}

/// A follower never calls for the fleet's tickets, due or not, and calls for its node-scoped
/// one as ever (no write). A new leader then refreshes the overdue SLS ticket at once on its
/// stored ticket (F2: never CreateTicket while the stored one is good), and leaves the TCR
/// long-term token that is still good alone. Fails without the gate (the follower calls) or
/// without the re-plan on becoming leader (the overdue call waits for its recheck).
#[tokio::test(start_paused = true)]
async fn a_follower_never_calls_and_a_new_leader_continues_from_the_stored_holding() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Follower);
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let web = fleet_sls("web");
    let registry = fleet_tcr("registry", true);
    let mut local = crate::scheduler::tests::sls_ticket("local", 30 * DAY, DAY);
    local.scope = Scope::Node;
    let tickets: Vec<TicketSpec> = vec![web.clone(), registry.clone(), local.clone()];
    let mut long_term = holding("unused", "long", 4, t0 - 30 * DAY, 365 * DAY);
    long_term.current.as_mut().unwrap().ticket = None;
    // The old leader died in web's refresh: its token is 20 h into a day.
    let state = saved(&[(&web, holding("ticket-0", "old", 3, t0 - 20 * HOUR, DAY)), (&registry, long_term)]);
    let scheduler = Scheduler::new(parts, tickets.clone(), state);
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    tokio::time::sleep(HOUR).await;
    assert_eq!(cloud.calls("web"), Vec::<&str>::new(), "a follower never calls for the fleet");
    assert_eq!(cloud.calls("registry"), Vec::<&str>::new());
    assert_eq!(cloud.calls("local"), ["mint", "refresh"], "its own ticket is called as ever");
    assert!(link.writes().iter().all(|w| w.ticket != "local"), "and never written to etcd");
    assert!(link.writes().is_empty());
    let before = clock.now();
    link.set(Role::Leader, Duration::ZERO);
    running.fleet(FleetEvent::Role(Role::Leader));
    let refreshed = next(&mut events, Duration::from_secs(30), |e| match e {
        Event::TokenRefreshed { name, generation, .. } if name == "web" => Some(*generation),
        _ => None,
    });
    assert_eq!(refreshed.await, Some(4));
    assert!(clock.now().duration_since(before).unwrap() < Duration::from_secs(2), "called at once");
    assert_eq!(cloud.calls("web"), ["refresh"], "RefreshToken on the stored ticket, never CreateTicket");
    assert_eq!(cloud.calls("registry"), Vec::<&str>::new(), "a good long-term token is not minted again");
    let current = board.get("web").unwrap().current.unwrap();
    assert_eq!(current.ticket.as_ref().unwrap().value.expose(), "ticket-0");
    assert_eq!(link.writes().iter().map(|w| w.ticket.as_str()).collect::<Vec<_>>(), ["web"]);
    running.stop().await;
}

/// etcd unreachable: a long-term TCR token is never minted; a renewal falls back only once etcd
/// has been unreachable a lease TTL and the token would lapse (a warning naming the ticket, no
/// secret), and its result is published here without a write; when etcd returns, its holding
/// wins (renumbered above the fallback's generation). Fails with the fallback rule dropped from
/// the gate (a mint, or an early renewal) or with the generation compared with this node's own.
#[tokio::test(start_paused = true)]
async fn unreachable_etcd_never_mints_and_renews_only_when_the_token_would_lapse() {
    let (log, _guard) = Log::capture();
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Unreachable);
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let web = fleet_sls("web");
    let later = fleet_sls("later");
    let registry = fleet_tcr("registry", true);
    let tickets: Vec<TicketSpec> = vec![web.clone(), later.clone(), registry.clone()];
    let mut long_term = holding("unused", "long", 4, t0 - 300 * DAY, 310 * DAY);
    long_term.current.as_mut().unwrap().ticket = None;
    let state = saved(&[
        // 21 h into a day: past 5/6, it would lapse.
        (&web, holding("ticket-0", "old", 3, t0 - 21 * HOUR, DAY)),
        // 19 h into a day: due, not yet lapsing (at 20 h).
        (&later, holding("ticket-0", "old", 3, t0 - 19 * HOUR, DAY)),
        // Ten days left of 310: due for its re-mint.
        (&registry, long_term),
    ]);
    let running = Running::start(Scheduler::new(parts, tickets.clone(), state));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(cloud.total(), 0, "not before etcd has been unreachable a lease TTL");
    link.set(Role::Unreachable, TTL);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(cloud.calls("web"), ["refresh"], "the lapsing renewal falls back");
    assert_eq!(cloud.calls("later"), Vec::<&str>::new(), "one that does not lapse yet waits");
    let fallback = board.get("web").unwrap().current.unwrap();
    assert_eq!(fallback.generation, 4);
    let fallback_token = fallback.token.value.expose().to_string();
    tokio::time::sleep(2 * HOUR).await;
    assert_eq!(cloud.calls("later"), ["refresh"], "renewed once it would lapse");
    assert_eq!(cloud.calls("registry"), Vec::<&str>::new(), "never a mint without proven leadership");
    assert!(link.writes().is_empty(), "the fallback writes nothing");
    let logged = log.text();
    let warned = logged.lines().filter(|l| l.contains("WARN") && l.contains("fallback")).collect::<Vec<_>>();
    assert!(warned.iter().any(|l| l.contains("ticket=web")), "{logged}");
    assert!(!logged.contains(&fallback_token) && !logged.contains("ticket-0"), "no secret in the log");
    // etcd is back: the fleet's holding (generation 4 in etcd) wins over this node's fallback 4.
    link.set(Role::Follower, Duration::ZERO);
    running.fleet(FleetEvent::Role(Role::Follower));
    let fleets = holding("ticket-0", "fleet", 4, clock.now(), DAY);
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(stored(&web, fleets)),
        writer: "b".into(),
    });
    running.settle(tickets).await;
    let current = board.get("web").unwrap().current.unwrap();
    assert_eq!((current.generation, current.token.value.expose()), (5, "fleet"));
    running.stop().await;
}

/// A node-scoped ticket is called as on one host in every role, and never written to etcd.
#[tokio::test(start_paused = true)]
async fn node_scoped_tickets_are_called_as_ever_in_every_role() {
    for role in [Role::Leader, Role::Follower, Role::Unreachable] {
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        let link = FakeLink::new(role);
        let place = Place::new();
        let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
        let mut local = fleet_tcr("local", false);
        local.scope = Scope::Node;
        let running = Running::start(Scheduler::new(parts, vec![local], StateFile::default()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(cloud.calls("local"), ["mint"], "{role:?}");
        assert_eq!(board.get("local").unwrap().current.unwrap().generation, 1, "{role:?}");
        assert!(link.writes().is_empty(), "{role:?}");
        running.stop().await;
    }
}
