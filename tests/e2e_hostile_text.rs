//! Issue #16 items 1 and 14 against the real binary: text that is not what the vendors send (a
//! key with a pasted `é` or U+200B, a hostile server's non-ASCII ticket, a token with a newline,
//! a user name with a `:`) is refused where it enters, never panics a call, never reaches a log
//! or a sink, and never stops the other tickets from refreshing.

mod common;

use std::time::Duration;

use common::*;
use ticketd::emulator::faults::{Fault, FaultPlan, Service, Trigger};

const TWO_SLS_AND_A_DSW: &str = r#"
state_dir = "{dir}/state"

[credentials.ali]
vendor = "alibaba"

[[tickets]]
name = "first"
kind = "sls"
credentials = "ali"
endpoint = "{emulator}"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/first.json"

[[tickets]]
name = "second"
kind = "sls"
credentials = "ali"
endpoint = "{emulator}"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/second.json"

[[tickets]]
name = "notebook"
kind = "dsw"
credentials = "ali"
endpoint = "{emulator}"
instance_id = "dsw-730abcdef"
token_lifetime = "10s"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/notebook.json"
"#;

/// A hostile server hands out a ticket with multi-byte characters, then answers the refresh
/// with that ticket with an error. Before the fix, scrubbing the error of the ticket cut inside a
/// character: the call task panicked with the whole ticket in the panic message (a log line),
/// and never reported. Now the failure is reported (a warning, the ticket redacted), and the
/// other tickets keep refreshing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_non_ascii_ticket_then_an_error_is_reported_and_the_others_keep_refreshing() {
    let h = Harness::start().await;
    h.emulator.inject(Service::Sls, Some(FaultPlan { fault: Fault::NonAsciiSecret, trigger: Trigger::FirstN(1) }));
    let config = h.write_config(TWO_SLS_AND_A_DSW);
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let token = |name: &str| {
        read_json(&h.path(&format!("out/{name}.json"))).and_then(|v| v["access_token"].as_str().map(str::to_string))
    };
    // The refresh with the hostile ticket is rejected by the emulator, and reported as a failure.
    wait_for("the refresh with the hostile ticket to fail and be reported", Duration::from_secs(30), || {
        let log = daemon.log_text();
        (h.emulator.stats().rejected >= 1 && log.contains("SLS RefreshToken: HTTP 401") && log.contains("call failed"))
            .then_some(())
    })
    .await;
    // The other SLS ticket and the DSW ticket have tokens, and the DSW one keeps being refreshed.
    let (first, second) = wait_for("the good SLS ticket's token", Duration::from_secs(30), || {
        let (first, second) = (token("first"), token("second"));
        (first.is_some() || second.is_some()).then_some((first, second))
    })
    .await;
    assert!(first.is_none() || second.is_none(), "one of the two SLS tickets got the hostile ticket");
    let dsw = wait_for("the DSW token", Duration::from_secs(30), || token("notebook")).await;
    let calls = h.emulator.stats().get_token;
    wait_for("a later DSW refresh", Duration::from_secs(30), || {
        (h.emulator.stats().get_token > calls && token("notebook").is_some_and(|t| t != dsw)).then_some(())
    })
    .await;
    let log = daemon.log_text();
    assert!(!log.contains("panicked"), "a call task panicked:\n{log}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, 0);
}
