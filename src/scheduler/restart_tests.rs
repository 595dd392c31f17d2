//! Issue #19: a fleet node restarted from a state older than its sinks (killed inside the save
//! debounce) never writes the older token over the newer one: the start-up republish of a
//! cluster-scoped ticket waits for etcd's holdings ([`FleetEvent::Loaded`]), or a lease TTL.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

use crate::clock::PausedClock;
use crate::cluster::link::FleetEvent;
use crate::cluster::view::Role;
use crate::config::{Scope, TicketSpec};
use crate::scheduler::event_loop::Scheduler;
use crate::scheduler::fleet::tests::{DAY, FakeLink, TTL, fleet_parts, holding, next, saved, stored};
use crate::scheduler::reports::Event;
use crate::scheduler::tests::{Running, token_file_ticket};
use crate::store::memory::Place;

/// Every generation a sink writer wrote, by ticket name (each test's ticket has a name of its own).
static WRITES: LazyLock<Mutex<HashMap<String, Vec<u64>>>> = LazyLock::new(Mutex::default);

/// Called by the sink writer (on its blocking thread) once it wrote ticket `name`'s sinks.
pub(crate) fn wrote(name: &str, generation: u64) {
    if name.starts_with("restart-") {
        WRITES.lock().unwrap().entry(name.to_string()).or_default().push(generation);
    }
}

/// The generations written to ticket `name`'s sinks so far, in order.
fn writes(name: &str) -> Vec<u64> {
    WRITES.lock().unwrap().get(name).cloned().unwrap_or_default()
}

fn fleet_file_ticket(name: &str, path: &Path) -> TicketSpec {
    let mut spec = token_file_ticket(name, path);
    spec.scope = Scope::Cluster;
    spec
}

fn file(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// The generations `events` says were written to ticket `name`'s sinks so far.
fn published(events: &mut broadcast::Receiver<Event>, name: &str) -> Vec<u64> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::Published { name: n, generation } = event
            && n == name
        {
            out.push(generation);
        }
    }
    out
}

/// Saved at generation 1, the sink holding generation 2 (the kill came inside the debounce),
/// etcd holding generation 2: the sink is never written with generation 1; it gets etcd's
/// holding once. Failed before (the restart wrote the saved token at once: 2, 1, then 2).
#[tokio::test(start_paused = true)]
async fn issue_19_a_restart_from_an_older_state_never_writes_its_generation_over_the_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart-older.token");
    std::fs::write(&path, "newer\n").unwrap();
    let spec = fleet_file_ticket("restart-older", &path);
    let t0 = SystemTime::now();
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Unreachable);
    let place = Place::new();
    let (parts, cloud, board, _changes) = fleet_parts(&clock, &link, &place);
    let state = saved(&[(&spec, holding("ticket-1", "saved", 1, t0, DAY))]);
    let scheduler = Scheduler::new(parts, vec![spec.clone()], state);
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    running.settle(vec![spec.clone()]).await;
    assert_eq!(file(&path).as_deref(), Some("newer"), "nothing is written before etcd's holdings are in");
    assert_eq!(published(&mut events, "restart-older"), Vec::<u64>::new());
    // The fleet's task connects: etcd's holding, then the end of the load.
    let fleets = holding("ticket-1", "newer", 2, t0, DAY);
    let writer = "node-b".to_string();
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "restart-older".into(),
        stored: Box::new(stored(&spec, fleets)),
        writer,
    });
    running.fleet(FleetEvent::Loaded);
    running.fleet(FleetEvent::Role(Role::Follower));
    let written = next(&mut events, TTL, |e| match e {
        Event::Published { name, generation } if name == "restart-older" => Some(*generation),
        _ => None,
    });
    assert_eq!(written.await, Some(2), "the first write is etcd's generation");
    // Past the bound too: the saved generation is never written back.
    tokio::time::sleep(2 * TTL).await;
    running.settle(vec![spec.clone()]).await;
    let scheduler = running.stop().await;
    assert_eq!(published(&mut events, "restart-older"), Vec::<u64>::new(), "published once");
    assert_eq!(writes("restart-older"), [2], "the sink was written once, with etcd's generation");
    assert_eq!(file(&path).as_deref(), Some("newer"));
    assert_eq!(scheduler.holding("restart-older").generation(), 2);
    let on_record = place.state().tickets["restart-older"].holding.generation();
    assert_eq!(on_record, 2, "the state records etcd's generation");
    assert!(board.get("restart-older").is_some());
    assert_eq!(cloud.total(), 0);
}

/// etcd does not answer (no load comes): the saved token is written to the missing sink once a
/// lease TTL has passed, not before; a node-scoped ticket's at once, as on one host. And a load
/// with nothing newer for a ticket writes its saved token at once.
#[tokio::test(start_paused = true)]
async fn issue_19_with_etcd_away_the_saved_token_is_written_after_a_lease_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart-away.token");
    let local_path = dir.path().join("restart-local.token");
    let spec = fleet_file_ticket("restart-away", &path);
    let mut local = token_file_ticket("restart-local", &local_path);
    local.scope = Scope::Node;
    let t0 = SystemTime::now();
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Unreachable);
    let place = Place::new();
    let (parts, _cloud, _board, _changes) = fleet_parts(&clock, &link, &place);
    let tickets = vec![spec.clone(), local.clone()];
    let state = saved(&[(&spec, holding("ticket-1", "saved", 1, t0, DAY)), (&local, holding("t", "mine", 1, t0, DAY))]);
    let started = tokio::time::Instant::now();
    let scheduler = Scheduler::new(parts, tickets.clone(), state);
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    let local_written = next(&mut events, TTL / 2, |e| match e {
        Event::Published { name, generation } if name == "restart-local" => Some(*generation),
        _ => None,
    });
    assert_eq!(local_written.await, Some(1), "a node-scoped ticket is written at once");
    assert_eq!(file(&path), None, "the cluster-scoped one waits for etcd");
    let written = next(&mut events, 2 * TTL, |e| match e {
        Event::Published { name, generation } if name == "restart-away" => Some(*generation),
        _ => None,
    });
    assert_eq!(written.await, Some(1));
    assert!(started.elapsed() >= TTL, "written after {:?}, before a lease TTL", started.elapsed());
    assert_eq!(file(&path).as_deref(), Some("saved"));
    // etcd answers later, holding nothing newer: nothing more is written.
    running.fleet(FleetEvent::Loaded);
    running.settle(tickets).await;
    running.stop().await;
    assert_eq!(published(&mut events, "restart-away"), Vec::<u64>::new());
    assert_eq!(writes("restart-away"), [1]);
}

/// A load that brings nothing newer for the ticket (etcd holds what was saved) writes the saved
/// token at once, not after the bound.
#[tokio::test(start_paused = true)]
async fn issue_19_a_load_with_nothing_newer_writes_the_saved_token_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart-same.token");
    let spec = fleet_file_ticket("restart-same", &path);
    let t0 = SystemTime::now();
    let clock = PausedClock::starting_at(t0);
    let link = FakeLink::new(Role::Unreachable);
    let place = Place::new();
    let (parts, _cloud, _board, _changes) = fleet_parts(&clock, &link, &place);
    let held = holding("ticket-1", "same", 4, t0, DAY);
    let state = saved(&[(&spec, held.clone())]);
    let started = tokio::time::Instant::now();
    let scheduler = Scheduler::new(parts, vec![spec.clone()], state);
    let mut events = scheduler.events();
    let running = Running::start(scheduler);
    let writer = "node-b".to_string();
    running.fleet(FleetEvent::Holding {
        revision: 1,
        ticket: "restart-same".into(),
        stored: Box::new(stored(&spec, held)),
        writer,
    });
    running.fleet(FleetEvent::Loaded);
    let written = next(&mut events, TTL, |e| match e {
        Event::Published { name, generation } if name == "restart-same" => Some(*generation),
        _ => None,
    });
    assert_eq!(written.await, Some(4));
    assert!(started.elapsed() < TTL, "written only after {:?}", started.elapsed());
    assert_eq!(file(&path).as_deref(), Some("same"));
    running.stop().await;
    assert_eq!(writes("restart-same"), [4]);
}
