//! Tests of the fleet's holdings read again, own echoes, dropped long-term tokens (review G5, G11-G13):
//! the scheduler against fakes (no etcd).

use std::time::Duration;

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::cluster::record::FleetRecord;

use crate::board::Board;
use crate::clock::{Clock, PausedClock, from_unix_seconds};
use crate::cluster::fence::Refused;
use crate::cluster::link::{FleetEvent, Reread, Wanted, WriteError};
use crate::cluster::view::Role;
use crate::scheduler::event_loop::Scheduler;
use crate::scheduler::fleet::tests::{
    Answer, DAY, FakeLink, HOUR, fleet_parts, fleet_sls, fleet_tcr, holding, saved, stored,
};
use crate::scheduler::reports::Event;
use crate::scheduler::tests::Running;
use crate::store::memory::Place;
use crate::store::record::StateFile;

/// The `TokenRefreshed` events of ticket `name` left in `events`.
fn refreshed(events: &mut broadcast::Receiver<Event>, name: &str) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::TokenRefreshed { name: n, generation, .. } = event
            && n == name
        {
            out.push(generation);
        }
    }
    out
}

/// The node's answer to a reread of `spec`'s holding.
fn reread(spec: &crate::config::TicketSpec, certain: bool) -> Reread {
    let wanted = Wanted { ticket: spec.name.to_string(), identity: crate::store::record::identity(spec) };
    Reread { wanted, certain }
}

/// A leader over a paused clock whose first fenced write gets no answer, and its writes as made.
fn leader_whose_write_gets_no_answer() -> (PausedClock, Arc<FakeLink>, mpsc::UnboundedReceiver<FleetRecord>) {
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let link = FakeLink::new(Role::Leader);
    let written = link.tell();
    let unreachable = WriteError::Unreachable { endpoints: "http://127.0.0.1:1".into(), reason: "no answer".into() };
    link.answer(Answer::Now(Err(unreachable)));
    (clock, link, written)
}

/// The token ids waiting to be revoked, with their stage.
fn revoking(board: &Board) -> Vec<(String, &'static str)> {
    board.revocations().entries().iter().map(|e| (e.pending.token_id.clone(), e.stage())).collect()
}

/// G5: a follower ignores the holding etcd hands on for a ticket it does not have yet; the reload
/// that adds the ticket asks etcd for it again, and the holding read again is adopted. Fails
/// without the reread after a reload (the follower waits, tokenless, for the leader's next write).
#[tokio::test(start_paused = true)]
async fn a_holding_ignored_before_its_ticket_was_configured_is_read_again_after_the_reload() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Follower);
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let other = fleet_sls("other");
    let web = fleet_sls("web");
    let state = saved(&[(&other, holding("t", "o", 1, t0, DAY))]);
    let running = Running::start(Scheduler::new(parts, vec![other.clone()], state));
    let leaders = stored(&web, holding("ticket-1", "fleet-1", 1, t0, DAY));
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(leaders.clone()),
        writer: "b".into(),
    });
    running.settle(vec![other.clone()]).await;
    assert!(board.get("web").is_none());
    assert!(link.rereads().is_empty(), "nothing to read again before the reload");
    let summary = running.reload(vec![other.clone(), web.clone()]).await;
    assert_eq!(summary.added, ["web"]);
    assert_eq!(link.rereads(), ["web"], "the added ticket is read again; the one etcd was seen holding is not");
    // What the node hands on when it has read etcd again.
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(leaders),
        writer: "b".into(),
    });
    running.fleet(FleetEvent::Reread(vec![reread(&web, true)]));
    running.settle(vec![other.clone(), web.clone()]).await;
    let current = board.get("web").unwrap().current.unwrap();
    assert_eq!((current.generation, current.token.value.expose()), (1, "fleet-1"));
    tokio::time::sleep(HOUR).await;
    assert_eq!(cloud.total(), 0, "a follower calls nothing");
    running.stop().await;
}

/// G5: a node that becomes leader holding nothing for a ticket etcd was never seen holding asks
/// etcd first and mints nothing until it answers: one ticket etcd holds is adopted (never
/// minted), one it does not hold is minted once. Fails without the wait (a mint at once, refused
/// as stale by etcd, every 30 s).
#[tokio::test(start_paused = true)]
async fn a_new_leader_mints_only_once_etcd_says_it_holds_nothing() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Follower);
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let web = fleet_sls("web");
    let fresh = fleet_sls("fresh");
    let tickets = vec![web.clone(), fresh.clone()];
    let running = Running::start(Scheduler::new(parts, tickets.clone(), StateFile::default()));
    running.settle(tickets.clone()).await;
    link.set(Role::Leader, Duration::ZERO);
    running.fleet(FleetEvent::Role(Role::Leader));
    running.settle(tickets.clone()).await;
    let mut asked = link.rereads();
    asked.sort();
    assert_eq!(asked, ["fresh", "web"]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(cloud.total(), 0, "no mint before etcd answers");
    let held = stored(&web, holding("ticket-1", "fleet-1", 1, clock.now(), DAY));
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(held),
        writer: "b".into(),
    });
    running.fleet(FleetEvent::Reread(vec![reread(&fresh, true), reread(&web, true)]));
    running.settle(tickets.clone()).await;
    tokio::time::sleep(HOUR).await;
    assert_eq!(cloud.calls("web"), Vec::<&str>::new(), "the holding etcd has is not minted again");
    assert_eq!(cloud.calls("fresh"), ["mint", "refresh"], "the one etcd does not have is minted once");
    assert_eq!(board.get("web").unwrap().current.unwrap().token.value.expose(), "fleet-1");
    running.stop().await;
}

/// G12: the watch's echo of the leader's write can come before the write's answer; the new
/// token is still published once (one `TokenRefreshed`, one hook run). Fails when the echo is
/// adopted (two events).
#[tokio::test(start_paused = true)]
async fn the_echo_of_the_leader_s_own_write_is_published_once() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Leader);
    let mut written = link.tell();
    let (landed, held) = oneshot::channel();
    link.answer(Answer::Held(held));
    let place = Place::new();
    let (parts, _cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let web = fleet_sls("web");
    let state = saved(&[(&web, holding("ticket-0", "old", 1, t0 - 20 * HOUR, DAY))]);
    let scheduler = Scheduler::new(parts, vec![web.clone()], state);
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    // etcd's holdings are in (none for it): the saved token is written to the sinks (issue #19).
    running.fleet(FleetEvent::Loaded);
    let record = tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("a write").unwrap();
    assert_eq!(record.stored.holding.generation(), 2);
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(record.stored.clone()),
        writer: record.writer.clone(),
    });
    running.settle(vec![web.clone()]).await;
    assert_eq!(board.get("web").unwrap().current.unwrap().generation, 1, "the echo is not taken");
    landed.send(Ok(9)).unwrap();
    running.settle(vec![web.clone()]).await;
    let current = board.get("web").unwrap().current.unwrap();
    assert_eq!(current.generation, 2);
    running.stop().await;
    assert_eq!(refreshed(&mut events, "web"), [2], "published once");
}

/// A role lost while a fenced write is out, and etcd took the write: the fence proved the
/// leadership when it committed, so it is the fleet's holding, and this node (whose echo was not
/// adopted) takes it too. Fails when the answer is dropped for the term (the node keeps the old
/// token etcd no longer holds).
#[tokio::test(start_paused = true)]
async fn a_write_etcd_took_is_the_fleet_s_holding_even_if_the_role_was_lost_meanwhile() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Leader);
    let mut written = link.tell();
    let (landed, held) = oneshot::channel();
    link.answer(Answer::Held(held));
    let place = Place::new();
    let (parts, _cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let spec = fleet_sls("web");
    let state = saved(&[(&spec, holding("ticket-0", "old", 1, t0 - 20 * HOUR, DAY))]);
    let running = Running::start(Scheduler::new(parts, vec![spec.clone()], state));
    let record = tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("a write").unwrap();
    link.set(Role::Follower, Duration::ZERO);
    running.fleet(FleetEvent::Role(Role::Follower));
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(record.stored.clone()),
        writer: record.writer,
    });
    running.settle(vec![spec.clone()]).await;
    landed.send(Ok(9)).unwrap();
    running.settle(vec![spec.clone()]).await;
    let current = board.get("web").unwrap().current.unwrap();
    let written_token = record.stored.holding.current.unwrap().token.value.expose().to_string();
    assert_eq!((current.generation, current.token.value.expose()), (2, written_token.as_str()));
    running.stop().await;
}

/// G11: a TCR long-term token minted by the leader and then refused by etcd (raced, stale,
/// deposed) is held by nobody: it is revoked at once. Fails without the revocation (a live
/// registry token nobody holds).
#[tokio::test(start_paused = true)]
async fn a_long_term_token_etcd_refused_is_revoked() {
    for refused in [Refused::Raced, Refused::Stale { stored: 7, ours: 1 }, Refused::Deposed] {
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        let link = FakeLink::new(Role::Leader);
        let mut written = link.tell();
        let why = refused.to_string();
        link.answer(Answer::Now(Err(WriteError::Refused(refused))));
        let place = Place::new();
        let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
        let registry = fleet_tcr("registry", true);
        let running = Running::start(Scheduler::new(parts, vec![registry.clone()], StateFile::default()));
        tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("a write").unwrap();
        running.settle(vec![registry.clone()]).await;
        assert_eq!(cloud.calls("registry"), ["mint"], "{why}");
        assert!(board.get("registry").unwrap().current.is_none(), "{why}: not published");
        assert_eq!(revoking(&board), [("tid-1".to_string(), "due")], "{why}");
        running.stop().await;
    }
}

/// G11: a long-term token whose write got no answer may be in etcd: etcd is read again, and the
/// token is revoked only when etcd does not hold it. Fails when it is revoked at once (etcd took
/// it: every node serves a revoked token) or never (nobody holds it).
#[tokio::test(start_paused = true)]
async fn a_long_term_token_whose_write_got_no_answer_is_revoked_only_if_etcd_lacks_it() {
    for etcd_took_it in [false, true] {
        let (clock, link, mut written) = leader_whose_write_gets_no_answer();
        let place = Place::new();
        let (parts, _cloud, board, _changes) = fleet_parts(&clock, &link, &place);
        let registry = fleet_tcr("registry", true);
        let running = Running::start(Scheduler::new(parts, vec![registry.clone()], StateFile::default()));
        let record = tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("a write").unwrap();
        running.settle(vec![registry.clone()]).await;
        assert!(revoking(&board).is_empty(), "not before etcd says ({etcd_took_it})");
        assert_eq!(link.rereads(), ["registry"]);
        if etcd_took_it {
            let stored = Box::new(record.stored.clone());
            running.fleet(FleetEvent::Holding {
                revision: 1,
                ticket: "registry".into(),
                stored,
                writer: record.writer,
            });
        }
        running.fleet(FleetEvent::Reread(vec![reread(&registry, true)]));
        running.settle(vec![registry.clone()]).await;
        if etcd_took_it {
            assert!(revoking(&board).is_empty(), "etcd holds it: every node serves it");
            let current = board.get("registry").unwrap().current.unwrap();
            assert_eq!(current.token.token_id.as_deref(), Some("tid-1"));
        } else {
            assert_eq!(revoking(&board), [("tid-1".to_string(), "due")]);
        }
        running.stop().await;
    }
}

/// Review H1: a read in the session whose write got no answer is not certain (etcd may still
/// apply the write): the token stays active; the next session's read, certain, revokes it.
/// Fails when an uncertain read revokes (every node would then serve a revoked token once the
/// late write commits).
#[tokio::test(start_paused = true)]
async fn a_long_term_token_is_revoked_only_on_a_certain_read() {
    let (clock, link, mut written) = leader_whose_write_gets_no_answer();
    let place = Place::new();
    let (parts, _cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let registry = fleet_tcr("registry", true);
    let running = Running::start(Scheduler::new(parts, vec![registry.clone()], StateFile::default()));
    tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("a write").unwrap();
    running.settle(vec![registry.clone()]).await;
    running.fleet(FleetEvent::Reread(vec![reread(&registry, false)]));
    running.settle(vec![registry.clone()]).await;
    assert!(revoking(&board).is_empty(), "etcd may still take it");
    running.fleet(FleetEvent::Reread(vec![reread(&registry, true)]));
    running.settle(vec![registry.clone()]).await;
    assert_eq!(revoking(&board), [("tid-1".to_string(), "due")]);
    running.stop().await;
}

/// Review M2: the leader's re-mint of a long-term token got no answer, and etcd took it: the
/// token it replaced is revoked (once every fleet node has applied the write), not left active.
/// Fails without the revocation in the adoption of this node's own unanswered mint.
#[tokio::test(start_paused = true)]
async fn an_unanswered_re_mint_etcd_took_revokes_the_token_it_replaced() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Leader);
    let mut written = link.tell();
    let unreachable = WriteError::Unreachable { endpoints: "http://127.0.0.1:1".into(), reason: "no answer".into() };
    link.answer(Answer::Now(Err(unreachable)));
    let place = Place::new();
    let (parts, _cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let registry = fleet_tcr("registry", true);
    let mut long_term = holding("unused", "long", 4, t0 - 300 * DAY, 310 * DAY);
    let current = long_term.current.as_mut().unwrap();
    current.ticket = None;
    current.token.token_id = Some("tid-old".into());
    let running = Running::start(Scheduler::new(parts, vec![registry.clone()], saved(&[(&registry, long_term)])));
    let record = tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("the re-mint").unwrap();
    running.settle(vec![registry.clone()]).await;
    assert!(revoking(&board).is_empty(), "{:?}", revoking(&board));
    let stored = Box::new(record.stored.clone());
    running.fleet(FleetEvent::Holding { revision: 40, ticket: "registry".into(), stored, writer: record.writer });
    running.fleet(FleetEvent::Reread(vec![reread(&registry, false)]));
    running.settle(vec![registry.clone()]).await;
    let waiting = "waiting for every fleet node to receive the new token";
    assert_eq!(revoking(&board), [("tid-old".to_string(), waiting)]);
    running.fleet(FleetEvent::Applied(40));
    running.settle(vec![registry.clone()]).await;
    assert_eq!(revoking(&board), [("tid-old".to_string(), "due")]);
    running.stop().await;
}

/// Review M3: a new SLS ticket whose write got no answer is not minted again before etcd has
/// been read again (etcd may hold it: a second CreateTicket would give the fleet two share
/// URLs). Fails when the unanswered mint is retried at the recheck (two CreateTicket).
#[tokio::test(start_paused = true)]
async fn an_unanswered_mint_is_not_minted_again_before_etcd_is_read() {
    let (clock, link, mut written) = leader_whose_write_gets_no_answer();
    let place = Place::new();
    let (parts, cloud, _board, _changes) = fleet_parts(&clock, &link, &place);
    let web = fleet_sls("web");
    let running = Running::start(Scheduler::new(parts, vec![web.clone()], StateFile::default()));
    tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("the mint's write").unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
    running.settle(vec![web.clone()]).await;
    assert_eq!(cloud.calls("web"), ["mint"], "no second CreateTicket before etcd answers");
    assert_eq!(link.rereads(), ["web"]);
    // etcd holds nothing (a certain read): minted again.
    running.fleet(FleetEvent::Reread(vec![reread(&web, true)]));
    running.settle(vec![web.clone()]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(cloud.calls("web")[..2], ["mint", "mint"]);
    running.stop().await;
}

/// G5: a ticket retargeted by a reload (a new identity, a new key in etcd) is read again even
/// though etcd was seen holding it under its old target. Fails when "seen" is kept across the
/// epoch (the new key's holding, ignored before as another target's, is never asked for).
#[tokio::test(start_paused = true)]
async fn a_retargeted_ticket_is_read_again_under_its_new_target() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Follower);
    let place = Place::new();
    let (parts, _cloud, _board, _changes) = fleet_parts(&clock, &link, &place);
    let web = fleet_sls("web");
    let state = saved(&[(&web, holding("t", "o", 1, t0, DAY))]);
    let running = Running::start(Scheduler::new(parts, vec![web.clone()], state));
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "web".into(),
        stored: Box::new(stored(&web, holding("t", "o", 1, t0, DAY))),
        writer: "b".into(),
    });
    running.settle(vec![web.clone()]).await;
    let mut moved = web.clone();
    if let crate::config::ApiSpec::Sls(sls) = &mut moved.api {
        sls.endpoint.base = url::Url::parse("https://elsewhere.example/").unwrap();
    }
    let summary = running.reload(vec![moved.clone()]).await;
    assert_eq!(summary.replaced, ["web"]);
    assert_eq!(link.rereads(), ["web"], "its new key is read");
    running.stop().await;
}

/// G13: the leader replaces a long-term token; the old one is revoked only once every fleet
/// member has applied the write (each member key says up to which revision), not as soon as
/// this node's own sinks hold the new one. Fails without the fleet's wait (due at once: the
/// followers serve a revoked token until their watch delivers the new one).
#[tokio::test(start_paused = true)]
async fn a_replaced_long_term_token_is_revoked_once_every_fleet_node_holds_its_successor() {
    let t0 = from_unix_seconds(1_700_000_000);
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Leader);
    let mut written = link.tell();
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let registry = fleet_tcr("registry", true);
    let mut long_term = holding("unused", "long", 4, t0 - 300 * DAY, 310 * DAY);
    let current = long_term.current.as_mut().unwrap();
    current.ticket = None;
    current.token.token_id = Some("tid-old".into());
    let state = saved(&[(&registry, long_term)]);
    let running = Running::start(Scheduler::new(parts, vec![registry.clone()], state));
    let record =
        tokio::time::timeout(Duration::from_secs(60), written.recv()).await.expect("the re-mint's write").unwrap();
    assert_eq!(record.stored.holding.current.unwrap().token.token_id.as_deref(), Some("tid-1"));
    let waiting = "waiting for every fleet node to receive the new token";
    let mut stage = Vec::new();
    for _ in 0..100 {
        running.settle(vec![registry.clone()]).await;
        stage = revoking(&board);
        if stage.iter().any(|(_, s)| *s == waiting) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stage, [("tid-old".to_string(), waiting)], "this node's sinks hold it; the fleet may not yet");
    // One member has not applied the write (revision 101) yet.
    running.fleet(FleetEvent::Applied(100));
    running.settle(vec![registry.clone()]).await;
    assert_eq!(revoking(&board), [("tid-old".to_string(), waiting)]);
    running.fleet(FleetEvent::Applied(101));
    running.settle(vec![registry.clone()]).await;
    assert_eq!(revoking(&board), [("tid-old".to_string(), "due")]);
    assert_eq!(cloud.calls("registry"), ["mint"]);
    running.stop().await;
}
