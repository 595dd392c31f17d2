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

/// A key with a pasted `é` or U+200B in the environment: `run` refuses to start and
/// `check-config` fails, both naming the variable and never showing the value. Before the fix the
/// daemon started and signed with the key (a vendor would answer with an error that scrub then
/// panicked on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_16_a_non_ascii_key_in_the_environment_is_refused_at_start_by_name() {
    let h = Harness::start().await;
    let config = h.write_config(TWO_SLS_AND_A_DSW);
    let good = h.key.access_key_secret.expose().to_string();
    for (n, (pasted, code_point)) in [("\u{e9}", "U+00E9"), ("\u{200b}", "U+200B")].into_iter().enumerate() {
        let bad = format!("{}{pasted}{}", &good[..10], &good[10..]);
        for command in ["run", "check-config"] {
            let log = h.path(&format!("refused-{command}-{n}.txt"));
            let mut child = h
                .command(&[command, "-c", config.to_str().unwrap()])
                .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", &bad)
                .stdout(std::fs::File::create(h.path(&format!("refused-{command}-{n}-out.txt"))).unwrap())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("spawn ticketd");
            let status = wait_for(&format!("`ticketd {command}` to refuse the key"), Duration::from_secs(20), || {
                child.try_wait().expect("try_wait")
            })
            .await;
            let output = std::fs::read_to_string(&log).unwrap()
                + &std::fs::read_to_string(h.path(&format!("refused-{command}-{n}-out.txt"))).unwrap();
            assert!(!status.success(), "`ticketd {command}` accepted the key:\n{output}");
            assert!(
                output.contains("environment variable ALIBABA_CLOUD_ACCESS_KEY_SECRET holds a non-ASCII character")
                    && output.contains(code_point),
                "`ticketd {command}`:\n{output}"
            );
            assert!(!output.contains(&good[..10]) && !output.contains(&good[10..]), "the key was shown:\n{output}");
        }
    }
    assert_eq!(h.emulator.stats().create_ticket + h.emulator.stats().rejected, 0, "no call was made");
}
