//! Faults from the cloud, injected by the emulator: each is recognised for what it is (retry soon,
//! retry after, clock skew, malformed), never panics, and never lets a secret into the error.
//! Then the real binary under 30% failures keeps every token fresh, and a hanging API does not
//! hold up the other tickets.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use emulator::faults::{Fault, FaultPlan, Service, Trigger};
use ticketd::apis::{CloudProvider, Operation, Provider};
use ticketd::clock::SystemClock;
use ticketd::config::{ApiSpec, DswSpec, Endpoint, SlsSpec, TcrSpec, TcrTokenType, TicketSettings, TicketSpec};
use ticketd::scheduler::timing::RetryClass;
use ticketd::signing::sls::V1Mac;

fn spec(name: &str, api: ApiSpec) -> TicketSpec {
    TicketSpec::new(
        name,
        TicketSettings {
            credentials: "x".into(),
            api,
            sinks: vec![],
            consumers: Default::default(),
            scope: Default::default(),
        },
    )
}

fn tickets(url: &str) -> [(Service, TicketSpec); 3] {
    let endpoint = Endpoint { base: url::Url::parse(url).unwrap() };
    [
        (
            Service::Sls,
            spec(
                "sls",
                ApiSpec::Sls(SlsSpec {
                    endpoint: endpoint.clone(),
                    ticket_lifetime: Duration::from_secs(3600),
                    token_lifetime: Duration::from_secs(600),
                    ticket_renew_before: Duration::from_secs(600),
                    signature: V1Mac::HmacSha256,
                    console_url: None,
                    console_params: vec![],
                }),
            ),
        ),
        (
            Service::Dsw,
            spec(
                "dsw",
                ApiSpec::Dsw(DswSpec {
                    endpoint: endpoint.clone(),
                    instance_id: "dsw-1".into(),
                    token_lifetime: Duration::from_secs(600),
                    token_type: None,
                    audience: None,
                }),
            ),
        ),
        (
            Service::Tcr,
            spec(
                "tcr",
                ApiSpec::Tcr(TcrSpec {
                    endpoint,
                    region: "ap-guangzhou".into(),
                    registry_id: "tcr-1".into(),
                    token_type: TcrTokenType::Temp,
                    token_type_written: false,
                    description: None,
                    registry: None,
                }),
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_mode_is_recognised_for_what_it_is() {
    let h = Harness::start().await;
    let provider = CloudProvider::new(Arc::new(SystemClock));
    let tencent = h.tencent_key.clone();
    let modes: [(Fault, &str); 8] = [
        (Fault::ServerError, "transient"),
        (Fault::Throttle { retry_after_secs: 7 }, "throttled"),
        (Fault::Reset, "transient"),
        (Fault::SlowBody(Duration::from_millis(10)), "transient"),
        (Fault::MalformedJson, "malformed"),
        (Fault::WrongContentType, "malformed"),
        (Fault::Oversized, "malformed"),
        (Fault::ClockSkew, "clock"),
    ];
    let mut checked = 0;
    for (service, ticket) in tickets(&h.emulator.url()) {
        let key = if service == Service::Tcr { credentials(&tencent) } else { credentials(&h.key) };
        for (fault, expected) in modes {
            h.emulator.inject(service, Some(FaultPlan { fault, trigger: Trigger::FirstN(1) }));
            let err = provider
                .call(&ticket, Operation::Mint, key.clone())
                .await
                .expect_err("the injected fault fails the call");
            let class = ticketd::scheduler::timing::retry_class(&err);
            let text = err.to_string();
            match expected {
                "clock" => assert!(err.is_clock_skew(), "{service:?} {fault:?}: {text}"),
                "malformed" => {
                    // A 200 that is not the expected JSON is a malformed answer; TCR's JSON error
                    // shapes can also surface as malformed: both retry soon.
                    assert!(matches!(class, RetryClass::Transient { .. }), "{service:?} {fault:?}: {text}");
                }
                "throttled" => match service {
                    Service::Dsw => {
                        assert_eq!(class, RetryClass::Transient { after: Some(Duration::from_secs(7)) }, "{text}")
                    }
                    _ => assert!(matches!(class, RetryClass::Transient { .. }), "{service:?}: {text}"),
                },
                _ => assert!(matches!(class, RetryClass::Transient { .. }), "{service:?} {fault:?}: {text}"),
            }
            assert!(!text.contains(key.access_key_secret.expose()));
            // The next call goes through.
            provider
                .call(&ticket, Operation::Mint, key.clone())
                .await
                .unwrap_or_else(|e| panic!("{service:?} after {fault:?}: {e}"));
            checked += 1;
        }
        h.emulator.inject(service, None);
    }
    assert_eq!(checked, 24);
    assert_eq!(h.emulator.stats().faults_injected, 24);
}

/// Parse a sink's token expiry.
fn expiry(h: &Harness, file: &str) -> Option<SystemTime> {
    read_json(&h.path(file))?["token_expires_at"].as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_failures_lapse_no_token_and_a_hanging_api_stalls_nobody_else() {
    let h = Harness::start().await;
    h.emulator.inject(
        Service::Sls,
        Some(FaultPlan { fault: Fault::ServerError, trigger: Trigger::Fraction { p: 0.3, seed: 7 } }),
    );
    // DSW hangs for longer than the test: its calls time out on their own; SLS must not notice.
    h.emulator.inject(
        Service::Dsw,
        Some(FaultPlan { fault: Fault::Hang(Duration::from_secs(120)), trigger: Trigger::EveryKth(1) }),
    );
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
path = "{dir}/out/dash.json"

[[tickets]]
name = "notebook"
kind = "dsw"
credentials = "prod"
endpoint = "{emulator}"
instance_id = "dsw-1"
token_lifetime = "10m"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/notebook.json"
"#,
    );
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    wait_for("the first SLS token", Duration::from_secs(30), || expiry(&h, "out/dash.json")).await;
    // For 35 s (3+ token lifetimes), the token in the sink is never expired when looked at.
    let start = std::time::Instant::now();
    let mut observations = 0;
    while start.elapsed() < Duration::from_secs(35) {
        let exp = expiry(&h, "out/dash.json").expect("the sink always parses");
        assert!(exp > SystemTime::now(), "the SLS token lapsed while the cloud failed only 30% of calls");
        observations += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = h.emulator.stats();
    assert!(stats.faults_injected >= 2, "{stats:?}");
    assert!(stats.refresh_token >= 4, "refreshes went on while DSW hung: {stats:?}");
    assert!(!h.path("out/notebook.json").exists(), "the hanging API never answered");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, 0);
    let log = daemon.log_text();
    assert!(log.contains("InternalServerError"), "the failures were logged");
    eprintln!(
        "faults: {} injected, {} refreshes, {observations} observations, no lapse",
        stats.faults_injected, stats.refresh_token
    );
}
