//! `[cluster]` as the real binary takes it (issue #19): refused at its line by a build without the
//! `etcd` feature; with it, run (etcd unreachable: nothing minted, also after the fallback for
//! renewals opened a lease TTL on), and a reload that changes it is
//! refused, keeping the running config.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// One DSW ticket on the emulator, state and sink in the temp dir.
const ALONE: &str = r#"
state_dir = "{dir}/state"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "one"
kind = "dsw"
credentials = "prod"
endpoint = "{emulator}"
instance_id = "dsw-fleet0123"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/one.json"
"#;

/// An SLS ticket: with no ticket held, its first call is a CreateTicket (a mint), which no node
/// makes without proven leadership.
const MINTED: &str = r#"
[[tickets]]
name = "two"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"
token_lifetime = "10s"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/two.json"
"#;

/// A 2 s lease: the fallback opens 2 s after etcd was first found unreachable.
const CLUSTER: &str = "\n[cluster]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:1\"]\nlease_ttl = \"2s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_a_cluster_section_runs_with_the_feature_and_is_refused_at_its_line_without() {
    let h = Harness::start().await;
    let path = h.write_config(&format!("{ALONE}{MINTED}{CLUSTER}"));
    let written = std::fs::read_to_string(&path).unwrap();
    let line = 1 + written.lines().position(|l| l == "[cluster]").expect("the [cluster] line");
    let check = h.command(&["check-config", "-c", path.to_str().unwrap()]).output().unwrap();
    let said = String::from_utf8_lossy(&check.stderr).into_owned() + &String::from_utf8_lossy(&check.stdout);
    if cfg!(feature = "etcd") {
        // Review F1: check-config agrees with `run` (which now runs the fleet), and warns without a key.
        assert!(check.status.success(), "{said}");
        assert!(
            said.contains(&format!("{}:{line}: warning: [cluster] has no encryption_key_file", path.display())),
            "{said}"
        );
    } else {
        assert!(!check.status.success(), "{said}");
        let want = format!(
            "{}:{line}:2: cluster: built without the `etcd` feature: cargo build --features etcd",
            path.display()
        );
        assert!(said.contains(&want), "{said}");
    }
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    if cfg!(feature = "etcd") {
        // etcd (port 1) never answers: the node serves what it holds, and mints nothing without a
        // leader, also once the fallback has opened (review G15: looking before a lease TTL could
        // not catch a mint after one). The fallback opening is seen by the DSW ticket: a renewal of
        // what the fleet shares, allowed on this node alone once etcd has been away a lease TTL.
        wait_for("etcd unreachable", WAIT, || {
            Some(daemon.log_text()).filter(|t| t.contains("cannot reach the fleet's etcd"))
        })
        .await;
        const FALLBACK: &str = "renewing it on this node alone (fallback)";
        let log = wait_for("the fallback opening for the DSW ticket", WAIT, || {
            Some(daemon.log_text()).filter(|t| t.lines().any(|l| l.contains(FALLBACK) && l.contains("ticket=one")))
        })
        .await;
        let opened = log.lines().position(|l| l.contains(FALLBACK)).expect("the fallback line");
        // The SLS ticket's next look after that (a held-back mint is looked at again every 30 s):
        // the gate holds it back again, with the fallback open.
        let held_back =
            |l: &str| l.contains("not this node's call") && l.contains("ticket=two") && l.contains("kind=Mint");
        let log = wait_for("the mint held back after the fallback opened", Duration::from_secs(60), || {
            let log = daemon.log_text();
            log.lines().skip(opened + 1).any(held_back).then_some(log)
        })
        .await;
        assert!(!log.lines().any(|l| l.contains(FALLBACK) && l.contains("ticket=two")), "a mint fell back: {log}");
        let stats = h.emulator.stats();
        assert_eq!(stats.create_ticket, 0, "a node without proven leadership minted: {stats:?}\n{log}");
        assert!(!h.path("out/two.json").exists(), "a node without proven leadership minted: {log}");
        wait_for("the DSW fallback renewal in its sink", WAIT, || read_json(&h.path("out/one.json"))).await;
        daemon.signal("TERM");
        assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
    } else {
        assert_ne!(daemon.wait_exit(WAIT).await, 0);
        assert!(daemon.log_text().contains("built without the `etcd` feature"), "{}", daemon.log_text());
    }
    if !cfg!(feature = "etcd") {
        assert!(!h.path("out/one.json").exists(), "a node that cannot run the fleet called on its own");
    }
    assert!(!h.path("out/two.json").exists(), "a node that cannot run the fleet minted on its own");
}

#[cfg(feature = "etcd")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_a_reload_that_changes_cluster_is_refused_and_the_running_config_stays() {
    let h = Harness::start().await;
    let path = h.write_config(ALONE);
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let first = wait_for("the first token", WAIT, || read_json(&h.path("out/one.json"))).await;
    h.write_config(&format!("{ALONE}{CLUSTER}"));
    daemon.signal("HUP");
    let log =
        wait_for("the refused reload", WAIT, || Some(daemon.log_text()).filter(|t| t.contains("reload refused"))).await;
    assert!(
        log.contains(
            "[cluster] cannot change on reload; restart ticketd to apply it (the running configuration stays)"
        ),
        "{log}"
    );
    assert_eq!(read_json(&h.path("out/one.json")), Some(first), "still the first config's token");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}
