//! Two real ticketd nodes sharing one etcd (issue #19): one leader mints the fleet's long-term TCR
//! token once, the other node serves the same token from etcd; a clean stop of the leader hands
//! the leadership over at once (its lease is revoked), and the new leader mints nothing.

mod common;

needs_etcd_feature!();

#[cfg(feature = "etcd")]
mod nodes {
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::common::etcd::EtcdCluster;
    use crate::common::*;

    const WAIT: Duration = Duration::from_secs(30);

    /// Node `node`'s config: the long-term TCR ticket, its files under `{dir}/<node>/`, the fleet.
    fn config(h: &Harness, etcd: &EtcdCluster, node: &str) -> PathBuf {
        let body = TCR_LONGTERM_CONFIG.replace("{dir}/", &format!("{{dir}}/{node}/"))
            + &format!(
                "\n[cluster]\nbackend = \"etcd\"\nendpoints = {}\nprefix = \"/fleet\"\nnode = \"{node}\"\nlease_ttl = \"3s\"\n",
                etcd.endpoints_toml()
            );
        let path = h.path(&format!("{node}.toml"));
        std::fs::rename(h.write_config(&body), &path).unwrap();
        path
    }

    fn token(h: &Harness, node: &str) -> Option<String> {
        read_json(&h.path(&format!("{node}/out/registry.json")))?["access_token"].as_str().map(str::to_string)
    }

    /// `GET /v1/cluster` through node `node`'s socket, via `ticketd status`.
    fn status(h: &Harness, node: &str) -> String {
        let socket = h.path(&format!("{node}/run/ticketd.sock"));
        let out = h.command(&["status", "--socket", socket.to_str().unwrap()]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_two_nodes_serve_one_token_minted_once_and_a_clean_stop_hands_over_the_leadership() {
        let h = Harness::start().await;
        let etcd = EtcdCluster::start(1).await;
        let (a, b) = (config(&h, &etcd, "a"), config(&h, &etcd, "b"));
        let check = h.command(&["check-config", "-c", a.to_str().unwrap()]).output().unwrap();
        let said = String::from_utf8_lossy(&check.stderr);
        assert!(check.status.success(), "{said}");
        assert!(said.contains("warning: [cluster] has no encryption_key_file"), "{said}");

        let mut node_a = h.spawn(&["run", "-c", a.to_str().unwrap()]);
        let minted = wait_for("a's token", WAIT, || token(&h, "a")).await;
        let mut node_b = h.spawn(&["run", "-c", b.to_str().unwrap()]);
        let served = wait_for("b's token from etcd", WAIT, || token(&h, "b")).await;
        assert_eq!(served, minted, "both nodes serve the one token");
        assert_eq!(h.emulator.stats().create_instance_token, 1, "one mint for the fleet");
        let seen = wait_for("b sees a lead", WAIT, || Some(status(&h, "b")).filter(|s| s.contains("leader a"))).await;
        assert!(seen.contains("node b is follower"), "{seen}");

        // A clean stop revokes a's lease: b leads at once (well within the 3 s TTL), mints nothing.
        node_a.signal("TERM");
        assert_eq!(node_a.wait_exit(WAIT).await, 0, "{}", node_a.log_text());
        let seen = wait_for("b leads", WAIT, || Some(status(&h, "b")).filter(|s| s.contains("node b is leader"))).await;
        assert!(seen.contains("leader b"), "{seen}");
        assert_eq!(token(&h, "b"), Some(minted));
        assert_eq!(h.emulator.stats().create_instance_token, 1, "a new leader never mints while etcd's token is good");
        node_b.signal("TERM");
        assert_eq!(node_b.wait_exit(WAIT).await, 0, "{}", node_b.log_text());
    }

    /// Review G5: a rollout where the leader has a ticket first and a follower gets it by a reload
    /// later. The follower ignored the leader's holding when etcd handed it on (the ticket was not
    /// configured there yet); the reload that adds the ticket reads etcd again, so the follower
    /// serves the leader's token at once, with no second mint and no new write by the leader.
    /// Fails without the read again (the follower waits for the leader's next write: a year).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(all(have_etcd, have_etcdctl)),
        ignore = "needs etcd and etcdctl (apt-get install etcd-server etcd-client)"
    )]
    async fn issue_19_a_follower_that_gets_the_ticket_by_a_reload_serves_the_fleet_s_token_at_once() {
        let h = Harness::start().await;
        let etcd = EtcdCluster::start(1).await;
        let a = config(&h, &etcd, "a");
        let b = config(&h, &etcd, "b");
        let full = std::fs::read_to_string(&b).unwrap();
        // b starts without the registry ticket (another one in its place, which nobody mints).
        let without = full.replace("name = \"registry\"", "name = \"spare\"").replace("registry.json", "spare.json");
        std::fs::write(&b, &without).unwrap();

        let mut node_a = h.spawn(&["run", "-c", a.to_str().unwrap()]);
        let minted = wait_for("a's token", WAIT, || token(&h, "a")).await;
        let mut node_b = h.spawn(&["run", "-c", b.to_str().unwrap()]);
        wait_for("b follows", WAIT, || Some(status(&h, "b")).filter(|s| s.contains("node b is follower"))).await;
        // b has loaded what etcd holds (the registry's holding, for a ticket it does not have).
        wait_for("b synced", WAIT, || Some(status(&h, "b")).filter(|s| s.contains("leader a"))).await;
        assert_eq!(token(&h, "b"), None);

        std::fs::write(&b, &full).unwrap();
        node_b.signal("HUP");
        let served = wait_for("b's token after the reload", WAIT, || token(&h, "b")).await;
        assert_eq!(served, minted, "the follower serves the leader's token");
        assert_eq!(h.emulator.stats().create_instance_token, 1, "one mint for the fleet");
        let log = node_b.log_text();
        assert!(!log.contains("ERROR"), "{log}");
        node_b.signal("TERM");
        assert_eq!(node_b.wait_exit(WAIT).await, 0, "{}", node_b.log_text());
        node_a.signal("TERM");
        assert_eq!(node_a.wait_exit(WAIT).await, 0, "{}", node_a.log_text());
    }
}
