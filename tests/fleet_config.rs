//! `[cluster]` as the real binary takes it (issue #19): refused at its line by a build without the
//! `etcd` feature; with it, run (etcd unreachable: nothing minted), and a reload that changes it is
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

const CLUSTER: &str = "\n[cluster]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:1\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_19_a_cluster_section_runs_with_the_feature_and_is_refused_at_its_line_without() {
    let h = Harness::start().await;
    let path = h.write_config(&format!("{ALONE}{CLUSTER}"));
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
        // etcd (port 1) never answers: the node serves what it holds, and mints nothing without a leader.
        let log = wait_for("etcd unreachable", WAIT, || {
            Some(daemon.log_text()).filter(|t| t.contains("cannot reach the fleet's etcd"))
        })
        .await;
        assert!(!h.path("out/one.json").exists(), "a node without proven leadership minted: {log}");
        daemon.signal("TERM");
        assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
    } else {
        assert_ne!(daemon.wait_exit(WAIT).await, 0);
        assert!(daemon.log_text().contains("built without the `etcd` feature"), "{}", daemon.log_text());
    }
    assert!(!h.path("out/one.json").exists(), "a node that cannot run the fleet minted on its own");
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
