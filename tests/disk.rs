//! The disk fills up, then turns read-only, under a sink: each time a clear error, the previous
//! file intact, and the write retried until it succeeds. Uses a small tmpfs (needs root).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(40);

fn mount(args: &[&str]) -> bool {
    Command::new("mount").args(args).status().is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_root), ignore = "needs root (mounts a tmpfs)")]
async fn a_full_or_read_only_disk_keeps_the_previous_file_and_retries() {
    let h = Harness::start().await;
    let small = h.path("small");
    std::fs::create_dir(&small).unwrap();
    assert!(mount(&["-t", "tmpfs", "-o", "size=64k", "tmpfs", small.to_str().unwrap()]), "cannot mount a tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let config = h.write_config(
        r#"
state_dir = "{dir}/state"
[credentials.prod]
vendor = "alibaba"
[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"
token_lifetime = "10s"
[[tickets.sinks]]
type = "file"
path = "{dir}/small/dash.json"
"#,
    );
    let sink = small.join("dash.json");
    let generation = |h: &Harness| read_json(&h.path("small/dash.json")).and_then(|j| j["generation"].as_u64());
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let first = wait_for("the first token", WAIT, || generation(&h)).await;

    // Fill the disk: the next refresh cannot be written.
    let filler = small.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 64 * 1024]);
    let log = wait_for("the ENOSPC error", WAIT, || {
        let log = daemon.log_text();
        log.contains("cannot write a sink").then_some(log)
    })
    .await;
    assert!(log.contains("No space left on device") && log.contains("dash.json"), "{log}");
    assert_eq!(generation(&h), Some(first), "the previous file is intact");
    // Space again: the retry writes the newest token.
    std::fs::remove_file(&filler).unwrap();
    let second = wait_for("the retried write", WAIT, || generation(&h).filter(|g| *g > first)).await;

    // Read-only now.
    assert!(mount(&["-o", "remount,ro", small.to_str().unwrap()]));
    let before = daemon.log_text().matches("Read-only file system").count();
    wait_for("the EROFS error", WAIT, || {
        (daemon.log_text().matches("Read-only file system").count() > before).then_some(())
    })
    .await;
    assert_eq!(generation(&h), Some(second), "the previous file is intact");
    assert!(mount(&["-o", "remount,rw", small.to_str().unwrap()]));
    wait_for("the write after remounting", WAIT, || generation(&h).filter(|g| *g > second)).await;
    let leftovers = std::fs::read_dir(&small).unwrap().flatten().filter(|e| e.file_name() != "dash.json").count();
    assert_eq!(leftovers, 0, "no temp file is left behind");
    assert!(sink.exists());
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}
