//! The etcd backend against a real one-member etcd (tests/common/etcd.rs): the election, fencing a
//! deposed leader whose lease was revoked, generations that never go back, and the watch that
//! hands every node the leader's holding, sealed at rest.

mod common;

needs_etcd_feature!();

#[cfg(feature = "etcd")]
mod backend {

    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use crate::common::etcd::EtcdCluster;
    use ticketd::cluster::etcd::{Change, EtcdFleet, FleetError};
    use ticketd::cluster::fence::{Expect, Refused};
    use ticketd::cluster::prepare::Prepared;
    use ticketd::cluster::record::FleetRecord;
    use ticketd::cluster::seal::Sealer;
    use ticketd::config::ClusterSpec;
    use ticketd::secret::Secret;
    use ticketd::store::record::StoredTicket;
    use ticketd::token::{Current, Holding, TokenPart};

    const TOKEN: &str = "tok-FLEET-SECRET-9";
    const BOUND: Duration = Duration::from_secs(20);

    fn spec(cluster: &EtcdCluster, node: &str) -> ClusterSpec {
        ClusterSpec {
            endpoints: cluster.endpoints(),
            prefix: "/t".into(),
            node: node.into(),
            // Long enough that no lease lapses during the test, even on a loaded machine (no keep-alive
            // runs here): a's leadership ends only by its revoke, which is what the test proves.
            lease_ttl: Duration::from_secs(60),
            encryption_key_file: None,
            ca_file: None,
            client_cert: None,
            auth: None,
        }
    }

    fn record(writer: &str, generation: u64) -> FleetRecord {
        let now = SystemTime::now();
        FleetRecord {
            ticket: "dash".into(),
            writer: writer.into(),
            stored: StoredTicket {
                kind: "dsw".into(),
                identity: "dsw x".into(),
                holding: Holding {
                    current: Some(Current {
                        ticket: None,
                        token: TokenPart {
                            value: Secret::new(format!("{TOKEN}-{generation}")),
                            username: None,
                            token_id: None,
                            issued_at: now.into(),
                            expires_at: (now + Duration::from_secs(3600)).into(),
                        },
                        generation,
                        refreshed_at: now.into(),
                        expires_mono: None,
                    }),
                    pending: None,
                },
            },
        }
    }

    /// `node`'s fenced write of `record`, again while etcd answers "unavailable" (an election
    /// on a loaded machine: "etcdserver: leader changed") or the node's re-read after such an
    /// answer is not in yet (`Raced`); its revision. Panics on anything else, or after [`BOUND`].
    async fn write_through_elections(node: &dyn ticketd::cluster::link::FleetLink, record: FleetRecord) -> i64 {
        use ticketd::cluster::link::WriteError;
        let started = std::time::Instant::now();
        loop {
            match node.write(record.clone()).await {
                Ok(revision) => return revision,
                Err(e @ (WriteError::Unreachable { .. } | WriteError::Refused(Refused::Raced))) => {
                    assert!(started.elapsed() < BOUND, "generation {}: {e:?}", record.generation());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("generation {}: {e:?}", record.generation()),
            }
        }
    }

    async fn fleet(cluster: &EtcdCluster, node: &str, sealer: &Arc<Sealer>) -> EtcdFleet {
        EtcdFleet::connect(&spec(cluster, node), &Prepared::plain(Some(sealer.clone()))).await.unwrap()
    }

    #[tokio::test]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_a_deposed_leader_s_write_is_refused_and_the_watch_hands_every_node_the_new_leader_s() {
        let cluster = EtcdCluster::start(1).await;
        let sealer = Arc::new(Sealer::from_key(&[7; 32]));
        let (a, b, c) = (
            fleet(&cluster, "a", &sealer).await,
            fleet(&cluster, "b", &sealer).await,
            fleet(&cluster, "c", &sealer).await,
        );
        let (held, mut watch) = c.load_and_watch().await.unwrap();
        assert!(held.is_empty());

        let lead_a = tokio::time::timeout(BOUND, a.campaign()).await.expect("a wins in time").unwrap();
        assert_eq!(a.leader().await.unwrap().as_deref(), Some("a"));
        let rev = a.write(&lead_a, &record("a", 1), Expect::Absent).await.unwrap();
        assert!(rev > 0);
        match &watch.next().await.unwrap()[..] {
            [Change::Put(stored)] => assert_eq!(stored.record, record_like(&stored.record, "a", 1)),
            other => panic!("{other:?}"),
        }

        // b campaigns while a leads: it wins only once a's lease is gone.
        let b = Arc::new(b);
        let campaign = tokio::spawn({
            let b = b.clone();
            async move { b.campaign().await }
        });
        // b's candidate key is in etcd (its campaign is under way), yet a still leads.
        let started = std::time::Instant::now();
        while candidates(&cluster) < 2 {
            assert!(started.elapsed() < BOUND, "b's campaign never reached etcd");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.leader().await.unwrap().as_deref(), Some("a"));
        assert!(!campaign.is_finished(), "b won while a's lease was alive");
        a.revoke().await.unwrap();
        let lead_b = tokio::time::timeout(BOUND, campaign).await.expect("b wins in time").unwrap().unwrap();
        assert_eq!(b.leader().await.unwrap().as_deref(), Some("b"));

        // a still believes it leads: its late write is fenced out, and etcd keeps b's line.
        let stored = b.read("dash", "dsw x").await.unwrap().unwrap();
        match a.write(&lead_a, &record("a", 2), Expect::At(stored.revision)).await {
            Err(FleetError::Refused(Refused::Deposed)) => {}
            other => panic!("a deposed leader's write: {other:?}"),
        }
        b.write(&lead_b, &record("b", 2), Expect::At(stored.revision)).await.unwrap();
        match &watch.next().await.unwrap()[..] {
            [Change::Put(stored)] => assert_eq!((stored.record.writer.as_str(), stored.record.generation()), ("b", 2)),
            other => panic!("{other:?}"),
        }
        // Generations never go back, and a write over a holding read before another's is a race.
        let now = b.read("dash", "dsw x").await.unwrap().unwrap();
        match b.write(&lead_b, &record("b", 1), Expect::At(now.revision)).await {
            Err(FleetError::Refused(Refused::Stale { stored: 2, ours: 1 })) => {}
            other => panic!("an older generation: {other:?}"),
        }
        match b.write(&lead_b, &record("b", 3), Expect::At(stored.revision)).await {
            Err(FleetError::Refused(Refused::Raced)) => {}
            other => panic!("a write over a stale read: {other:?}"),
        }

        // What etcd holds is sealed: no token in any encoding.
        let dump = cluster.dump("/t/");
        for needle in [TOKEN.to_string(), hex_of(TOKEN), base64_of(TOKEN)] {
            assert!(!dump.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in etcd");
        }
        // A node that comes later reads the holding whole.
        let (held, _) = a.load_and_watch().await.unwrap();
        let held: Vec<_> = held.into_iter().map(Result::unwrap).collect();
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].record.writer.as_str(), held[0].record.generation()), ("b", 2));
    }

    /// Review F3: a holding the leader cannot read (garbage, another key's seal, plain text on a
    /// sealing node) must not block every later write of that ticket: the revision compare decides.
    /// Review F4: a watch that loses etcd names the endpoints, not the prefix.
    #[tokio::test]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_an_unreadable_holding_is_overwritten_by_the_leader_and_a_lost_watch_names_etcd() {
        let mut cluster = EtcdCluster::start(1).await;
        let sealer = Arc::new(Sealer::from_key(&[9; 32]));
        let a = fleet(&cluster, "a", &sealer).await;
        let lead = tokio::time::timeout(BOUND, a.campaign()).await.expect("a wins in time").unwrap();
        let key = a.keys().ticket("dash", "dsw x");
        cluster.put_bytes(&key, b"\x00 not a holding");
        let garbage = a.revision(&key).await.unwrap();
        assert!(garbage > 0);
        let written = a.write(&lead, &record("a", 1), Expect::At(garbage)).await;
        assert!(matches!(written, Ok(rev) if rev > garbage), "the leader's write over garbage: {written:?}");
        let held = a.read("dash", "dsw x").await.unwrap().expect("a's holding");
        assert_eq!(held.record.generation(), 1);

        let (_, mut watch) = a.load_and_watch().await.unwrap();
        cluster.kill(0);
        let lost = tokio::time::timeout(BOUND, watch.next()).await.expect("the watch ends in time").unwrap_err();
        let said = lost.to_string();
        let endpoint = cluster.endpoints()[0].clone();
        assert!(said.contains(&endpoint), "{said}");
        assert!(!said.starts_with("etcd at /t/"), "{said}");
    }

    /// The fleet task itself (cluster/node.rs) on two nodes: the first leads, its fenced write reaches
    /// the other as a `Holding` event, the follower's write is refused (not the leader), and a clean
    /// stop of the leader (its lease revoked) makes the other leader at once, told as `Role(Leader)`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_the_fleet_task_elects_one_leader_hands_its_writes_to_the_others_and_hands_over_at_a_stop() {
        use ticketd::cluster::link::{FleetEvent, FleetLink, Wanted, WriteError};
        use ticketd::cluster::node::FleetNode;
        use ticketd::cluster::view::{ClusterView, Role};
        use tokio::sync::mpsc;

        let cluster = EtcdCluster::start(1).await;
        let sealer = Arc::new(Sealer::from_key(&[5; 32]));
        let start = |name: &str| {
            let mut spec = spec(&cluster, name);
            spec.lease_ttl = Duration::from_secs(3);
            let node = FleetNode::new(spec, ClusterView::new(name), Prepared::plain(Some(sealer.clone())));
            let (tx, rx) = mpsc::unbounded_channel();
            let stop = tokio_util::sync::CancellationToken::new();
            let task = tokio::spawn(node.clone().run(Box::new(move |e| drop(tx.send(e))), stop.clone()));
            (node, rx, stop, task)
        };
        async fn role(rx: &mut mpsc::UnboundedReceiver<FleetEvent>, want: Role) {
            loop {
                match tokio::time::timeout(BOUND, rx.recv()).await.expect("in time").expect("open") {
                    FleetEvent::Role(r) if r == want => return,
                    _ => {}
                }
            }
        }
        let (a, mut a_rx, a_stop, a_task) = start("a");
        role(&mut a_rx, Role::Leader).await;
        let (b, mut b_rx, _b_stop, _b_task) = start("b");
        role(&mut b_rx, Role::Follower).await;
        assert_eq!(a.standing().role, Role::Leader);
        assert_eq!(b.standing().role, Role::Follower);

        let revision = a.write(record("a", 1)).await.expect("the leader's write");
        assert!(revision > 0);
        loop {
            match tokio::time::timeout(BOUND, b_rx.recv()).await.expect("b hears of it").expect("open") {
                FleetEvent::Holding { ticket, stored, writer, .. } => {
                    assert_eq!((ticket.as_str(), writer.as_str(), stored.holding.generation()), ("dash", "a", 1));
                    break;
                }
                FleetEvent::Role(_) | FleetEvent::Reread(_) | FleetEvent::Applied(_) | FleetEvent::Loaded => {}
            }
        }
        match b.write(record("b", 2)).await {
            Err(WriteError::Refused(Refused::Deposed)) => {}
            other => panic!("a follower's write: {other:?}"),
        }
        // a's next write expects the revision it wrote: it lands without a re-read.
        let second = a.write(record("a", 2)).await.expect("a's second write");
        assert!(second > revision);
        // Review G13: both members' keys come to say they applied it; a is told so.
        loop {
            match tokio::time::timeout(BOUND, a_rx.recv()).await.expect("a hears every node applied it").expect("open")
            {
                FleetEvent::Applied(applied) if applied >= second => break,
                _ => {}
            }
        }
        loop {
            match tokio::time::timeout(BOUND, b_rx.recv()).await.expect("b hears of it").expect("open") {
                FleetEvent::Holding { stored, .. } if stored.holding.generation() == 2 => break,
                _ => {}
            }
        }
        // Review G5: b reads again what etcd holds (its scheduler ignored it, say): the holding it
        // already handed on comes again, a key etcd lacks comes as nothing, then the answer.
        let wanted = |ticket: &str, identity: &str| Wanted { ticket: ticket.into(), identity: identity.into() };
        b.reread(vec![wanted("dash", "dsw x"), wanted("nowhere", "dsw y")]);
        let mut again = Vec::new();
        loop {
            match tokio::time::timeout(BOUND, b_rx.recv()).await.expect("b reads again").expect("open") {
                FleetEvent::Holding { ticket, stored, .. } => again.push((ticket, stored.holding.generation())),
                FleetEvent::Reread(answers) => {
                    let mut names: Vec<String> = answers.into_iter().map(|r| r.wanted.ticket).collect();
                    names.sort();
                    assert_eq!(names, ["dash", "nowhere"]);
                    break;
                }
                FleetEvent::Role(_) | FleetEvent::Applied(_) | FleetEvent::Loaded => {}
            }
        }
        assert_eq!(again, [("dash".to_string(), 2)]);

        let stopped = std::time::Instant::now();
        a_stop.cancel();
        tokio::time::timeout(BOUND, a_task).await.expect("a stops in time").unwrap();
        role(&mut b_rx, Role::Leader).await;
        // The lease was revoked: no wait for the 3 s TTL to run out.
        assert!(stopped.elapsed() < Duration::from_secs(3), "{:?}", stopped.elapsed());
        assert_eq!(b.view().snapshot().leader.as_deref(), Some("b"));
        // b expects the revision it watched a write: its first write as leader lands.
        b.write(record("b", 3)).await.expect("the new leader's write");
    }

    /// Review G7: a node rewrites its member key after applying changes at most every 500 ms, not
    /// once per watch answer: a burst of 30 writes costs the follower a handful of puts. Fails with
    /// a put per answer (up to 30).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_a_burst_of_writes_costs_each_node_a_member_put_per_half_second_at_most() {
        use ticketd::cluster::link::{FleetEvent, FleetLink};
        use ticketd::cluster::node::FleetNode;
        use ticketd::cluster::view::{ClusterView, Role};
        use tokio::sync::mpsc;

        let cluster = EtcdCluster::start(1).await;
        let sealer = Arc::new(Sealer::from_key(&[6; 32]));
        let start = |name: &str| {
            let node =
                FleetNode::new(spec(&cluster, name), ClusterView::new(name), Prepared::plain(Some(sealer.clone())));
            let (tx, rx) = mpsc::unbounded_channel();
            let stop = tokio_util::sync::CancellationToken::new();
            tokio::spawn(node.clone().run(Box::new(move |e| drop(tx.send(e))), stop.clone()));
            (node, rx, stop)
        };
        let (a, mut a_rx, _a_stop) = start("a");
        loop {
            if let FleetEvent::Role(Role::Leader) = tokio::time::timeout(BOUND, a_rx.recv()).await.unwrap().unwrap() {
                break;
            }
        }
        let (_b, mut b_rx, _b_stop) = start("b");
        let version = |node: &str| -> u64 {
            let out = cluster.etcdctl(&["get", &format!("/t/members/{node}"), "-w", "json"]);
            let json: serde_json::Value = serde_json::from_slice(&out).expect("etcdctl's json");
            json["kvs"][0]["version"].as_u64().unwrap_or(0)
        };
        // b has joined and put its key.
        let deadline = std::time::Instant::now() + BOUND;
        while version("b") == 0 {
            assert!(std::time::Instant::now() < deadline, "b never put its member key");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let before = version("b");
        let started = std::time::Instant::now();
        let mut last = 0;
        for generation in 1..=30 {
            last = a.write(record("a", generation)).await.expect("the leader's write");
        }
        let elapsed = started.elapsed();
        // Every write reached b, and b's key came to say so.
        loop {
            match tokio::time::timeout(BOUND, a_rx.recv()).await.expect("both applied the burst").expect("open") {
                FleetEvent::Applied(applied) if applied >= last => break,
                _ => {}
            }
        }
        while b_rx.try_recv().is_ok() {}
        let puts = version("b") - before;
        // One put per 500 ms of the burst, one more for its end, one for a straggling answer.
        let bound = elapsed.as_millis() as u64 / 500 + 2;
        assert!(puts >= 1 && puts <= bound, "b put its member key {puts} times for 30 writes in {elapsed:?}");
    }

    /// A follower away while the leader wrote twice and etcd compacted its history resumes its
    /// watch, finds the history gone, reads the holdings again and hands on only the latest, once
    /// (nothing it had, nothing older). Fails when the compacted resume is not caught (the session
    /// fails for good) or when the reload hands on what was handed on before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_a_follower_resuming_after_a_compaction_reads_the_holdings_again_and_hands_on_the_latest_once() {
        use ticketd::cluster::link::{FleetEvent, FleetLink};
        use ticketd::cluster::node::FleetNode;
        use ticketd::cluster::view::{ClusterView, Role};
        use tokio::sync::mpsc;

        let mut cluster = EtcdCluster::start(3).await;
        let sealer = Arc::new(Sealer::from_key(&[7; 32]));
        let start = |name: &str, endpoints: Vec<String>| {
            let mut spec = spec(&cluster, name);
            spec.endpoints = endpoints;
            let node = FleetNode::new(spec, ClusterView::new(name), Prepared::plain(Some(sealer.clone())));
            let (tx, rx) = mpsc::unbounded_channel();
            let stop = tokio_util::sync::CancellationToken::new();
            tokio::spawn(node.clone().run(Box::new(move |e| drop(tx.send(e))), stop.clone()));
            (node, rx, stop)
        };
        let endpoints = cluster.endpoints();
        let (a, mut a_rx, _a_stop) = start("a", endpoints[..2].to_vec());
        loop {
            if let FleetEvent::Role(Role::Leader) = tokio::time::timeout(BOUND, a_rx.recv()).await.unwrap().unwrap() {
                break;
            }
        }
        // b talks to the third member only.
        let (b, mut b_rx, _b_stop) = start("b", endpoints[2..].to_vec());
        a.write(record("a", 1)).await.expect("the first write");
        let holdings = |rx: &mut mpsc::UnboundedReceiver<FleetEvent>| {
            let mut out = Vec::new();
            while let Ok(event) = rx.try_recv() {
                if let FleetEvent::Holding { stored, .. } = event {
                    out.push(stored.holding.generation());
                }
            }
            out
        };
        let deadline = std::time::Instant::now() + BOUND;
        let mut seen = Vec::new();
        while !seen.contains(&1) {
            assert!(std::time::Instant::now() < deadline, "b never got generation 1: {seen:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen.extend(holdings(&mut b_rx));
        }
        assert_eq!(seen, [1]);
        // b's member goes; a's two keep their leader (no election for a's writes to run into).
        cluster.lead_elsewhere(2).await;
        cluster.kill(2);
        let deadline = std::time::Instant::now() + BOUND;
        while b.standing().role != Role::Unreachable {
            assert!(std::time::Instant::now() < deadline, "b never saw its member go");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        write_through_elections(&*a, record("a", 2)).await;
        let last = write_through_elections(&*a, record("a", 3)).await;
        cluster.etcdctl(&["compact", &last.to_string()]);
        cluster.restart(2);
        let deadline = std::time::Instant::now() + BOUND;
        let mut after = Vec::new();
        while !after.contains(&3) {
            assert!(std::time::Instant::now() < deadline, "b never got generation 3 after its return: {after:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
            after.extend(holdings(&mut b_rx));
        }
        // Nothing more comes for it (the reload's answer is handed on once).
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        while std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            after.extend(holdings(&mut b_rx));
        }
        assert_eq!(after, [3], "only the latest, once");
    }

    /// Issue #19: a connection is to one member that answers, never balanced over all: with a
    /// member of three killed, or SIGSTOPped (it holds its port and answers nothing), every node
    /// connects to another within a probe per endpoint; with none up, the error names each
    /// endpoint and why.
    #[tokio::test]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_a_connection_skips_a_dead_or_silent_member_and_names_every_endpoint_when_none_answers() {
        let mut cluster = EtcdCluster::start(3).await;
        let sealer = Arc::new(Sealer::from_key(&[4; 32]));
        let endpoints = cluster.endpoints();
        // Three names that start their probes at three different members (see cluster/endpoint.rs).
        let nodes = ["ticketd-0", "ticketd-1", "ticketd-2"];
        let mut used = std::collections::HashSet::new();
        for node in nodes {
            used.insert(fleet(&cluster, node, &sealer).await.endpoints().to_string());
        }
        assert_eq!(used.len(), 3, "the nodes spread over the members: {used:?}");

        // lease_ttl 60 s: a probe waits 1 s at most; three members cost 2 s at worst.
        // Followers only, so that the chosen member's put runs into no election.
        cluster.lead_elsewhere(1).await;
        cluster.stop(1);
        for node in nodes {
            let started = std::time::Instant::now();
            let a = fleet(&cluster, node, &sealer).await;
            assert_ne!(a.endpoints(), endpoints[1], "{node} chose the stopped member");
            assert!(started.elapsed() < Duration::from_secs(5), "{node}: {:?}", started.elapsed());
            a.put_member(1, 1).await.expect("the chosen member answers");
        }
        cluster.cont(1);
        cluster.lead_elsewhere(2).await;
        cluster.kill(2);
        for node in nodes {
            let a = fleet(&cluster, node, &sealer).await;
            assert_ne!(a.endpoints(), endpoints[2], "{node} chose the killed member");
            a.put_member(2, 2).await.expect("the chosen member answers");
        }

        cluster.kill(0);
        cluster.kill(1);
        let spec = spec(&cluster, "ticketd-0");
        let none = EtcdFleet::connect(&spec, &Prepared::plain(None)).await.expect_err("no member is up");
        let said = none.to_string();
        assert!(said.starts_with("no etcd endpoint answered: "), "{said}");
        for endpoint in &endpoints {
            assert_eq!(said.matches(&format!("{endpoint}: ")).count(), 1, "{endpoint} named once: {said}");
        }
    }

    /// Issue #19 ("kill one etcd member: no effect"): three nodes on three members; one member is
    /// killed. The nodes on the others notice nothing, a node on the killed one ends its session
    /// once and connects to another (on a loaded machine a slow first probe can put two nodes on
    /// one member); no session ends again while the rest of the window runs (it ended every ~200 ms
    /// when requests were balanced over every member, the dead one too). The nodes' log is shown
    /// when it fails (which endpoint each session used, why each ended).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_one_etcd_member_killed_ends_each_session_once_at_most() {
        use ticketd::cluster::link::{FleetEvent, FleetLink};
        use ticketd::cluster::node::FleetNode;
        use ticketd::cluster::view::{ClusterView, Role};
        use tokio::sync::mpsc;

        async fn one_leader(nodes: &[Arc<FleetNode>]) {
            let started = std::time::Instant::now();
            while nodes.iter().filter(|node| node.standing().role == Role::Leader).count() != 1 {
                assert!(started.elapsed() < BOUND, "one leader in time");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let _ = tracing_subscriber::fmt().with_test_writer().with_ansi(false).try_init();
        let mut cluster = EtcdCluster::start(3).await;
        let sealer = Arc::new(Sealer::from_key(&[8; 32]));
        let start = |name: &str| {
            let mut spec = spec(&cluster, name);
            spec.lease_ttl = Duration::from_secs(3);
            let node = FleetNode::new(spec, ClusterView::new(name), Prepared::plain(Some(sealer.clone())));
            let (tx, rx) = mpsc::unbounded_channel();
            let stop = tokio_util::sync::CancellationToken::new();
            let task = tokio::spawn(node.clone().run(Box::new(move |e| drop(tx.send(e))), stop.clone()));
            (node, rx, stop, task)
        };
        let mut nodes: Vec<_> = ["ticketd-0", "ticketd-1", "ticketd-2"].map(start).into();
        // Every node in a session (leader or follower), one leader.
        for (node, rx, ..) in &mut nodes {
            while !matches!(node.standing().role, Role::Leader | Role::Follower) {
                tokio::time::timeout(BOUND, rx.recv()).await.expect("in a session in time").expect("open");
            }
        }
        let handles: Vec<Arc<FleetNode>> = nodes.iter().map(|(node, ..)| node.clone()).collect();
        one_leader(&handles).await;
        for (_, rx, ..) in &mut nodes {
            while rx.try_recv().is_ok() {}
        }

        cluster.kill(0);
        // The window: every role change each node reports within it (event-driven, no sleep).
        let window = Duration::from_secs(10);
        let until = tokio::time::Instant::now() + window;
        let mut unreachable = [0_usize; 3];
        for (i, (_, rx, ..)) in nodes.iter_mut().enumerate() {
            while let Ok(event) = tokio::time::timeout_at(until, rx.recv()).await {
                if let FleetEvent::Role(Role::Unreachable) = event.expect("the node's task runs") {
                    unreachable[i] += 1;
                }
            }
        }
        println!("sessions ended per node in the {window:?} after the kill: {unreachable:?}");
        assert!(unreachable.iter().all(|&n| n <= 1), "sessions ended per node in {window:?}: {unreachable:?}");
        for (node, ..) in &nodes {
            let role = node.standing().role;
            assert!(
                matches!(role, Role::Leader | Role::Follower),
                "{} after the window: {role:?}",
                node.view().snapshot().node
            );
        }
        one_leader(&handles).await;
        for (_, _, stop, task) in nodes {
            stop.cancel();
            tokio::time::timeout(BOUND, task).await.expect("stops in time").unwrap();
        }
    }

    /// How many election candidates etcd holds (keys under `/t/leader/`, one per campaigning lease).
    fn candidates(cluster: &EtcdCluster) -> usize {
        let dump = cluster.dump("/t/leader");
        String::from_utf8_lossy(&dump).lines().filter(|line| line.starts_with("/t/leader")).count()
    }

    /// `record(writer, generation)` with `got`'s timestamps (made at another instant).
    fn record_like(got: &FleetRecord, writer: &str, generation: u64) -> FleetRecord {
        let mut want = record(writer, generation);
        want.stored.holding = got.stored.holding.clone();
        assert_eq!(want.generation(), generation);
        want
    }

    fn hex_of(text: &str) -> String {
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn base64_of(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }
}
