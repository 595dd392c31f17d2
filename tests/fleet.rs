//! Issue #19's fleet tests: three etcd members on loopback, three ticketd nodes (the real binary)
//! sharing SLS tickets, the emulator counting and signing-checking every call (each node has its
//! own key, so the emulator says which node called). The recorder of `common::fleet` samples every
//! node's sinks every 10 ms through each test and checks the invariants as it goes: no generation
//! goes back on any node, no live node's sink holds an expired token, one token per ticket and
//! generation across the fleet.
//!
//! The tests run one at a time (a lock): each runs its own fleet with 2-3 s leases, and two
//! fleets at once on two shared cores would test the machine's scheduler rather than ticketd's.
//! Gated on the etcd tools (ignored with the reason where they are missing) and on the `etcd`
//! feature (`needs_etcd_feature!`: one ignored test says so in a default build).

mod common;

needs_etcd_feature!();

#[cfg(feature = "etcd")]
mod three_nodes {
    use std::time::{Duration, Instant};

    use crate::common;
    use crate::common::fleet::{Fleet, FleetSpec, PREFIX, quantile};

    const WAIT: Duration = Duration::from_secs(30);

    /// One fleet at a time (an async lock: each test has its own runtime; a failed test releases it).
    static ONE_FLEET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn ms(d: Duration) -> String {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }

    /// Wait until every ticket's generation on every node in `nodes` is at least `at_least` more than
    /// it was in `before` (the refresh waves went on), bounded by `within`.
    async fn wait_waves(fleet: &Fleet, nodes: &[usize], waves: u64, within: Duration) {
        let before: Vec<u64> = generations(fleet, nodes);
        let start = Instant::now();
        loop {
            let now = generations(fleet, nodes);
            if now.iter().zip(&before).all(|(n, b)| *n >= b + waves) {
                return;
            }
            assert!(
                start.elapsed() < within,
                "{waves} refresh waves did not reach {nodes:?} in {within:?}\n{}",
                fleet.describe().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The generation each of `nodes` holds of each ticket (0 when none yet).
    fn generations(fleet: &Fleet, nodes: &[usize]) -> Vec<u64> {
        fleet.recorder.with(|r| {
            nodes
                .iter()
                .flat_map(|&n| fleet.ticket_names().into_iter().map(move |t| (n, t)))
                .map(|key| r.last.get(&key).map_or(0, |s| s.generation))
                .collect()
        })
    }

    /// No invariant broke and no ticket forked so far.
    async fn assert_invariants(fleet: &Fleet) {
        let (violations, forks) = fleet.recorder.with(|r| (r.violations.clone(), r.forks.clone()));
        assert!(violations.is_empty() && forks.is_empty(), "invariants broken:\n{}", fleet.describe().await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(all(have_etcd, have_etcdctl)), ignore = "needs etcd and etcdctl")]
    async fn issue_19_steady_state_one_node_calls_the_cloud_and_every_node_serves_the_same_token() {
        let _one = ONE_FLEET.lock().await;
        let spec = FleetSpec { tickets: 3, lease_ttl: Duration::from_secs(3), ..FleetSpec::default() };
        let mut fleet = Fleet::new(spec).await;
        let start = Instant::now();
        fleet.start_all();
        let leader = fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        // Two refresh waves of the 10 s tokens on every node.
        wait_waves(&fleet, &[0, 1, 2], 2, WAIT).await;
        fleet.wait_converged(WAIT).await;
        assert_invariants(&fleet).await;
        let callers = fleet.recorder.with(|r| r.callers_since(start));
        assert_eq!(callers, vec![leader], "only the leader calls the cloud\n{}", fleet.describe().await);
        let stats = fleet.stats();
        assert_eq!(stats.create_ticket, 3, "one CreateTicket per ticket across the fleet (1 h tickets): {stats:?}");
        assert!(stats.refresh_token >= 3 * 3, "three tokens per ticket at least: {stats:?}");
        let propagation = fleet.recorder.with(|r| r.propagation(&[0, 1, 2]));
        let (p50, p99) = (quantile(&propagation, 0.5), quantile(&propagation, 0.99));
        println!(
            "propagation to all 3 nodes' sinks over {} generations: p50 {} p99 {} max {}",
            propagation.len(),
            ms(p50),
            ms(p99),
            ms(quantile(&propagation, 1.0))
        );
        assert!(propagation.len() >= 6, "generations seen on every node: {}", propagation.len());
        // The issue's 250 ms is a benchmark target (BENCHMARKS.md measures it); as a test on two
        // shared cores it is a regression bound ten times looser than what this machine measures.
        assert!(p99 <= Duration::from_secs(2), "propagation p99 {}", ms(p99));
        // Without encryption_key_file etcd holds the tokens in clear: the scan sees them (the sealed
        // test's "none found" is a real finding, not a blind scan).
        let dump = fleet.etcd.dump(PREFIX);
        let secrets = fleet.secrets();
        let found = common::etcd::find_secret(&dump, &secrets.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert!(found.is_some(), "an unsealed fleet's tokens are in etcd in clear, and the scan finds them");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // Ignored until 9926c87 (a restarted node rewrote its sinks from an older state.json); since,
    // 5 passes of 5 (3 by the fix's session, 2 in the lead's, all on a loaded machine).
    #[cfg_attr(not(all(have_etcd, have_etcdctl)), ignore = "needs etcd and etcdctl")]
    async fn issue_19_kill_9_of_the_leader_during_a_refresh_wave_20_times_a_new_leader_calls_within_lease_ttl_plus_2s()
    {
        let _one = ONE_FLEET.lock().await;
        // Review G9: 30 s tokens (refreshed at 2/3 of their life, so 7.5 s or more left) against
        // 2 s leases: a failover (lease_ttl + 2 s at most) fits in what a token has left. With 10 s
        // tokens (2.5 s left at the latest refresh) a follower held an expired one. Eight tickets:
        // their refreshes spread, so a round waits less for the next call to kill the leader in.
        let spec = FleetSpec { tickets: 8, token_lifetime: "30s", ..FleetSpec::default() };
        let ttl = spec.lease_ttl;
        let mut fleet = Fleet::new(spec).await;
        fleet.start_all();
        fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        let minted = fleet.stats().create_ticket;
        assert_eq!(minted, 8, "one CreateTicket per ticket");
        let mut failovers = Vec::new();
        for round in 1..=20 {
            let bound = ttl + Duration::from_secs(2);
            let (leader, failover) = fleet.kill_the_leader_mid_call(bound + WAIT).await;
            failovers.push(failover);
            assert!(
                failover <= bound,
                "round {round}: the first call of a new leader came {} after the kill, over lease_ttl + 2 s\n{}",
                ms(failover),
                fleet.describe().await
            );
            fleet.start(leader);
            fleet.wait_serving(leader, WAIT).await;
            assert_invariants(&fleet).await;
        }
        fleet.wait_converged(WAIT).await;
        assert_invariants(&fleet).await;
        let stats = fleet.stats();
        assert_eq!(stats.create_ticket, minted, "no CreateTicket after 20 leader kills: {stats:?}");
        println!(
            "failover over 20 leader kills (kill -9 to the new leader's first call): p50 {} p99 {} max {}; {stats:?}",
            ms(quantile(&failovers, 0.5)),
            ms(quantile(&failovers, 0.99)),
            ms(quantile(&failovers, 1.0))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(all(have_etcd, have_etcdctl)), ignore = "needs etcd and etcdctl")]
    async fn issue_19_a_leader_stopped_past_its_lease_is_fenced_off_and_rejoins_as_a_follower() {
        use emulator::faults::{Fault, FaultPlan, Service, Trigger};
        let _one = ONE_FLEET.lock().await;
        // 30 s tokens: the stopped leader's call (timeout bounded by what its token has left) is still
        // waiting for its answer when it continues.
        let spec = FleetSpec { tickets: 2, token_lifetime: "30s", ..FleetSpec::default() };
        let mut fleet = Fleet::new(spec).await;
        fleet.start_all();
        let old = fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        let old_name = fleet.nodes[old].name.clone();
        let injected = fleet.stats().faults_injected;
        fleet.emulator.inject(
            Service::Sls,
            Some(FaultPlan { fault: Fault::Delay(Duration::from_millis(1500)), trigger: Trigger::FirstN(1) }),
        );
        common::wait_for("the leader's refresh", Duration::from_secs(40), || {
            (fleet.stats().faults_injected > injected).then_some(())
        })
        .await;
        // Stopped with its call in flight; the emulator answers it 1.5 s later, into a stopped process.
        fleet.stop(old);
        let stopped = Instant::now();
        // A stopped process writes nothing more: what it logs from here on is after SIGCONT.
        let logged_before_stop = fleet.nodes[old].logs().len();
        let new = fleet.wait_leader(WAIT).await;
        assert_ne!(new, old);
        let took_over = stopped.elapsed();
        // The held call was answered (signed by the old leader's key) and the new leader has written.
        common::wait_for("the old leader's call answered", WAIT, || {
            fleet.recorder.with(|r| r.calls.iter().any(|(at, n)| *at >= stopped && *n == old)).then_some(())
        })
        .await;
        fleet.cont(old);
        // It rejoins as a follower of the new leader.
        let new_name = fleet.nodes[new].name.clone();
        let start = Instant::now();
        loop {
            let view = fleet.view(old).await.unwrap_or_default();
            if view["role"] == "follower" && view["leader"].as_str() == Some(&new_name) {
                break;
            }
            assert!(
                start.elapsed() < WAIT,
                "{old_name} did not rejoin as a follower: {view}\n{}",
                fleet.describe().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        fleet.wait_converged(WAIT).await;
        // A refresh wave later, still one holding and nobody went back.
        wait_waves(&fleet, &[0, 1, 2], 1, Duration::from_secs(40)).await;
        fleet.wait_converged(WAIT).await;
        assert_invariants(&fleet).await;
        // What it logged once continued: whichever it sees first, etcd refusing its fenced write
        // (deposed), or its lease no longer known alive (review G6: the session ends, and the
        // result it was waiting for finds no leadership or no session: not published).
        let log = fleet.nodes[old].logs();
        let log = log.get(logged_before_stop..).unwrap_or(&log);
        assert!(
            log.contains("deposed") || log.contains("no longer the fleet's leader") || log.contains("not published"),
            "the old leader says its late result was refused or dropped:\n{}",
            fleet.describe().await
        );
        assert_eq!(fleet.stats().create_ticket, 2, "no CreateTicket");
        println!("a stopped leader was replaced {} after SIGSTOP (lease_ttl 2 s)", ms(took_over));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // Issue #19: it failed while etcd-client balanced each session over every endpoint (sessions
    // ended every ~200 ms on the killed member's "tcp connect error"); a session now uses one
    // member that answers (src/cluster/endpoint.rs).
    #[cfg_attr(not(all(have_etcd, have_etcdctl)), ignore = "needs etcd and etcdctl")]
    async fn issue_19_one_etcd_member_lost_changes_nothing_two_lost_the_nodes_serve_on_and_converge_when_back() {
        let _one = ONE_FLEET.lock().await;
        // Review G9: 30 s tokens against 2 s leases (see the kill -9 test); a fallback renewal comes
        // at 5/6 of a token's life, 5 s before it ends.
        let spec = FleetSpec { tickets: 2, token_lifetime: "30s", ..FleetSpec::default() };
        let mut fleet = Fleet::new(spec).await;
        fleet.start_all();
        fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        let minted = fleet.stats().create_ticket;
        // A refresh wave of 30 s tokens comes within 20-22.5 s of the last one.
        let wave = Duration::from_secs(40);

        // One member of three: no effect (a refresh wave goes through, one holding, one caller).
        fleet.etcd.kill(0);
        let one_lost = Instant::now();
        wait_waves(&fleet, &[0, 1, 2], 1, wave).await;
        fleet.wait_converged(WAIT).await;
        assert_invariants(&fleet).await;
        let callers = fleet.recorder.with(|r| r.callers_since(one_lost));
        assert_eq!(
            callers.len(),
            1,
            "one node calls with one etcd member lost: {callers:?}\n{}",
            fleet.describe().await
        );

        // Two: no quorum. The nodes keep serving good tokens (the recorder checks each sample), renew
        // on their own when a token would lapse (issue #19: allowed; each node's renewal of the
        // same ticket gets its own token, which is no fork), and mint nothing.
        fleet.etcd.kill(1);
        fleet.recorder.allow_fallback(true);
        fleet.etcd.wait_no_quorum(WAIT).await;
        let quorum_lost = Instant::now();
        // One renewal on each node: a token renewed before the quorum went lapses within a life.
        wait_waves(&fleet, &[0, 1, 2], 1, wave).await;
        let (violations, callers) = fleet.recorder.with(|r| (r.violations.clone(), r.callers_since(quorum_lost)));
        assert!(violations.is_empty(), "{}", fleet.describe().await);
        assert_eq!(callers, vec![0, 1, 2], "every node renews on its own without a quorum");
        assert_eq!(fleet.stats().create_ticket, minted, "no CreateTicket without a quorum");
        for node in &fleet.nodes {
            assert!(node.log().contains("fallback"), "{} warns of its fallback renewals:\n{}", node.name, node.log());
        }

        // Back: one leader, one holding again.
        fleet.etcd.restart(0);
        fleet.etcd.restart(1);
        fleet.etcd.wait_all_healthy(WAIT).await.expect("etcd healthy again");
        fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        // Reconciled: from here on, two tokens of one generation are a fork again.
        fleet.recorder.allow_fallback(false);
        let back = Instant::now();
        wait_waves(&fleet, &[0, 1, 2], 1, wave).await;
        fleet.wait_converged(WAIT).await;
        assert_invariants(&fleet).await;
        let callers = fleet.recorder.with(|r| r.callers_since(back));
        assert_eq!(callers.len(), 1, "one caller again once etcd is back: {callers:?}\n{}", fleet.describe().await);
        let stats = fleet.stats();
        assert_eq!(stats.create_ticket, minted, "no CreateTicket: {stats:?}");
        let fallbacks = fleet.recorder.with(|r| r.fallbacks.len());
        println!("quorum lost and back: {fallbacks} fallback renewals seen as such, no fork; {stats:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(not(all(have_etcd, have_etcdctl)), ignore = "needs etcd and etcdctl")]
    async fn issue_19_a_restarted_fleet_mints_nothing_and_a_sealed_etcd_holds_no_secret_in_any_encoding() {
        let _one = ONE_FLEET.lock().await;
        let spec = FleetSpec { tickets: 2, sealed: true, ..FleetSpec::default() };
        let mut fleet = Fleet::new(spec).await;
        fleet.start_all();
        fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        let scan = |fleet: &Fleet| {
            let secrets = fleet.secrets();
            let secrets: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
            let (dump, json) = (fleet.etcd.dump(PREFIX), fleet.etcd.dump_json(PREFIX));
            let holdings =
                String::from_utf8_lossy(&dump).lines().filter(|l| l.starts_with(&format!("{PREFIX}/tickets/"))).count();
            assert_eq!(holdings, 2, "etcd holds one holding per ticket");
            for (what, text) in [("etcdctl get --prefix", &dump), ("etcdctl get --prefix -w json", &json)] {
                let found = common::etcd::find_secret(text, &secrets);
                assert_eq!(found, None, "a secret (of {}) is in {what}'s output", secrets.len());
            }
        };
        scan(&fleet);
        let minted = fleet.stats();
        for i in 0..3 {
            assert_eq!(fleet.term(i, WAIT).await, 0, "{}", fleet.nodes[i].log());
        }
        fleet.start_all();
        fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        wait_waves(&fleet, &[0, 1, 2], 1, WAIT).await;
        fleet.wait_converged(WAIT).await;
        assert_invariants(&fleet).await;
        let stats = fleet.stats();
        assert_eq!(stats.create_ticket, minted.create_ticket, "a restarted fleet mints nothing: {stats:?}");
        scan(&fleet);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // Once it has passed: #[cfg_attr(not(all(have_etcd, have_etcdctl)), ignore = "needs etcd and etcdctl")]
    #[ignore = "passed 5 of 5 runs (one seed) since 9926c87 and 98f46c3 mended what it found (a killed node's generation going back at its restart; fallback renewals set off by an etcd member kill with quorum kept); kept out of CI until it has passed on more seeds (issue #19 open): run with --ignored"]
    async fn issue_19_a_seeded_chaos_run_of_node_kills_stops_and_etcd_member_kills_keeps_every_invariant() {
        let _one = ONE_FLEET.lock().await;
        let seed: u64 = std::env::var("TICKETD_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos() as u64
        });
        let secs: u64 = std::env::var("TICKETD_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(90);
        println!("chaos: seed {seed} (TICKETD_CHAOS_SEED={seed} replays it), {secs} s");
        let mut rng = Chaos(seed);
        // 30 s tokens against 2 s leases, as the kill -9 test (review G9).
        let spec = FleetSpec { tickets: 3, token_lifetime: "30s", ..FleetSpec::default() };
        let mut fleet = Fleet::new(spec).await;
        fleet.start_all();
        fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        let minted = fleet.stats().create_ticket;
        let mut counts = [0u32; 4]; // node kills, node stops, etcd kills, rounds
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            counts[3] += 1;
            let down = (0..3).filter(|&i| !fleet.nodes[i].is_up()).count();
            let node = rng.below(3) as usize;
            match rng.below(3) {
                // At most two nodes down at once: one is always there to lead.
                0 if down < 2 && fleet.nodes[node].is_up() => {
                    fleet.kill(node);
                    counts[0] += 1;
                }
                1 if down < 2 && fleet.nodes[node].is_up() => {
                    fleet.stop(node);
                    counts[1] += 1;
                }
                // At most one etcd member down: etcd keeps its quorum (the quorum loss is its own test).
                2 if fleet.etcd.members.iter().all(|m| m.is_running()) => {
                    fleet.etcd.kill(node);
                    counts[2] += 1;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(500 + rng.below(2500))).await;
            // Bring back some of what is down.
            for i in 0..3 {
                if rng.below(2) == 0 {
                    if !fleet.nodes[i].is_running() {
                        fleet.start(i);
                    } else if !fleet.nodes[i].is_up() {
                        fleet.cont(i);
                    }
                    if !fleet.etcd.members[i].is_running() {
                        fleet.etcd.restart(i);
                    }
                }
            }
            assert_invariants(&fleet).await;
        }
        for i in 0..3 {
            if !fleet.nodes[i].is_running() {
                fleet.start(i);
            } else if !fleet.nodes[i].is_up() {
                fleet.cont(i);
            }
            if !fleet.etcd.members[i].is_running() {
                fleet.etcd.restart(i);
            }
        }
        fleet.etcd.wait_all_healthy(WAIT).await.expect("etcd healthy again");
        fleet.wait_leader(WAIT).await;
        fleet.wait_converged(WAIT).await;
        assert_invariants(&fleet).await;
        let stats = fleet.stats();
        let samples = fleet.recorder.with(|r| r.samples);
        println!(
            "chaos: seed {seed}: {} rounds, {} node kills, {} node stops, {} etcd member kills; {samples} samples; {stats:?}",
            counts[3], counts[0], counts[1], counts[2]
        );
        assert_eq!(stats.create_ticket, minted, "no CreateTicket through the chaos (seed {seed})");
    }

    /// A small seeded generator (SplitMix64): the same seed, the same run of actions.
    struct Chaos(u64);

    impl Chaos {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        }
    }
}
