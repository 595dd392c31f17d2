//! The harness's log check (run when every end-to-end harness is dropped) really catches a leak.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_check_catches_a_leaked_token() {
    let h = Harness::start().await;
    let config = h.write_config(
        r#"
state_dir = "{dir}/state"
[credentials.prod]
vendor = "alibaba"
[[tickets]]
name = "t"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
"#,
    );
    let out = h.command(&["run", "--once", "-c", config.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let issued = h.emulator.issued_secrets();
    assert_eq!(issued.len(), 2, "a ticket and a token");
    // A clean log passes; a log line holding the token does not.
    std::fs::write(h.path("clean.txt"), String::from_utf8_lossy(&out.stderr).as_bytes()).unwrap();
    std::fs::write(h.path("leak.txt"), format!("INFO something happened token={}\n", issued[1])).unwrap();
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(h)));
    let message = *dropped.expect_err("the leak is caught").downcast::<String>().unwrap();
    assert!(message.contains("leak.txt:1: a secret (key, ticket or token) reached a log line"), "{message}");
}
