//! Tests of the example API through the whole path: config text, validation, the scheduler.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::apis::example::spec::ExampleSpec;
use crate::apis::kinds::{ApiSpec, Kind};
use crate::apis::provider::CloudProvider;
use crate::board::Board;
use crate::clock::{Clock, PausedClock, from_unix_seconds};
use crate::scheduler::{Event, Parts, Scheduler};
use crate::store::memory::MemoryStore;
use crate::store::record::StateFile;
use crate::testing::credential_store;

const CONFIG: &str = r#"
state_dir = "/tmp/ticketd-example"

[credentials.prod]
vendor = "alibaba"
source = "static"
access_key_id = "id"
access_key_secret = "secret"

[[tickets]]
name = "hello"
kind = "example"
credentials = "prod"
endpoint = "example.invalid"
greeting = "hi"
token_lifetime = "1h"
"#;

/// A config naming `kind = "example"` validates into its spec; its keys' problems come at
/// file:line:key like every API's, and its keys do not apply to the other kinds (and theirs not
/// to it): the registry line is all config needed.
#[test]
fn a_config_naming_the_example_api_validates_with_its_own_keys() {
    assert_eq!(Kind::from_name("example"), Some(Kind::Example));
    assert!(Kind::names().ends_with("tcr or example"), "{}", Kind::names());
    let config = crate::config::parse(CONFIG, "example.toml").unwrap_or_else(|p| panic!("{p}"));
    let [ticket] = &config.tickets[..] else { panic!("one ticket") };
    let ApiSpec::Example(spec) = &ticket.api else { panic!("an example ticket: {:?}", ticket.api) };
    assert_eq!(
        spec,
        &ExampleSpec {
            endpoint: crate::http::Endpoint { base: reqwest::Url::parse("https://example.invalid").unwrap() },
            greeting: "hi".into(),
            token_lifetime: Duration::from_secs(3_600),
        }
    );
    assert_eq!(ticket.api.identity(), "example endpoint=https://example.invalid greeting=hi");

    let missing = CONFIG.replace("greeting = \"hi\"\n", "instance_id = \"dsw-1\"\n");
    let problems = crate::config::parse(&missing, "example.toml").unwrap_err().to_string();
    assert!(
        problems.contains("example.toml:15:1: tickets[0].instance_id: does not apply to kind = \"example\""),
        "{problems}"
    );
    assert!(problems.contains("example.toml:10:1: tickets[0].greeting: is required"), "{problems}");

    let sls = "[credentials.prod]\nvendor = \"alibaba\"\n\n[[tickets]]\nname = \"s\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"cn-shanghai.log.aliyuncs.com\"\ngreeting = \"hi\"\n";
    let problems = crate::config::parse(sls, "s.toml").unwrap_err().to_string();
    assert!(problems.contains("s.toml:9:1: tickets[0].greeting: does not apply to kind = \"sls\""), "{problems}");
}

/// The example ticket is scheduled and kept fresh through the registry's dispatch
/// (`CloudProvider` → `ApiSpec::call` → `ExampleSpec::call`, no cloud): its first token at once,
/// then each new one before the one before expires, with the spec's greeting in it.
#[tokio::test(start_paused = true)]
async fn an_example_ticket_is_scheduled_and_refreshed_through_the_registry() {
    let config = crate::config::parse(CONFIG, "example.toml").unwrap_or_else(|p| panic!("{p}"));
    let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
    let board = Arc::new(Board::default());
    let parts = Parts {
        clock: Arc::new(clock.clone()),
        provider: Arc::new(CloudProvider::new(Arc::new(clock.clone()))),
        credentials: credential_store(None),
        store: Arc::new(MemoryStore::new()),
        board: board.clone(),
        watchdog: None,
        changed: None,
        seed: 3,
        fleet: None,
    };
    let scheduler = Scheduler::new(parts, config.tickets, StateFile::default());
    let mut events = scheduler.events();
    let (stop, (_commands, command_rx)) = (CancellationToken::new(), mpsc::unbounded_channel());
    let task = tokio::spawn(scheduler.run(stop.clone(), command_rx));

    // Three tokens in at most three simulated hours (1 h tokens): each before the last expired.
    let mut previous_expiry = None;
    for n in 1..=3u64 {
        let (generation, expires_at) = tokio::time::timeout(Duration::from_secs(3 * 3_600), async {
            loop {
                match events.recv().await.expect("the scheduler runs") {
                    Event::TokenRefreshed { name, generation, expires_at, .. } if name == "hello" => {
                        break (generation, expires_at);
                    }
                    Event::CallFailed { error, .. } => panic!("the example call failed: {error}"),
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("token {n} within three simulated hours"));
        let now = clock.now();
        assert_eq!(generation, n);
        assert_eq!(expires_at, now + Duration::from_secs(3_600), "token {n} lives token_lifetime");
        if let Some(before) = previous_expiry {
            assert!(now < before, "token {n} came before token {} expired", n - 1);
        }
        previous_expiry = Some(expires_at);
        let held = board.get("hello").expect("on the board").current.expect("a token held");
        assert!(held.token.value.expose().starts_with("hi-"), "made from the spec's greeting");
    }
    stop.cancel();
    task.await.expect("the loop stops");
}
