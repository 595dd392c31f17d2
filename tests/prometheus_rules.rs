//! The alert rules in `examples/prometheus/`: `promtool check rules` accepts them, their unit tests
//! (`promtool test rules`, series that fire and series that must not) pass, and every ticketd
//! metric they or their tests name is one the real binary serves. The promtool tests are reported
//! as ignored where promtool is missing (`apt-get install prometheus`) and required under `CI`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prometheus/ticketd.rules.yaml");
const RULE_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prometheus/ticketd.rules.test.yaml");

/// `promtool ARGS`: its exit status and everything it printed.
fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("promtool cannot run ({e}): apt-get install prometheus"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

#[test]
#[cfg_attr(not(have_promtool), ignore = "needs promtool (apt-get install prometheus)")]
fn promtool_checks_the_alert_rules() {
    let (ok, said) = promtool(&["check", "rules", RULES]);
    assert!(ok && said.contains("SUCCESS: 7 rules found"), "promtool check rules:\n{said}");
    assert!(!said.contains("WARNING"), "promtool check rules warned:\n{said}");
}

#[test]
#[cfg_attr(not(have_promtool), ignore = "needs promtool (apt-get install prometheus)")]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    let (ok, said) = promtool(&["test", "rules", RULE_TESTS]);
    assert!(ok && said.contains("SUCCESS"), "promtool test rules:\n{said}");
    // Each alert has a test that fires it and one that must not.
    let tests = std::fs::read_to_string(RULE_TESTS).unwrap();
    for alert in alert_names() {
        let evaluations: Vec<&str> =
            tests.split("- eval_time:").filter(|e| e.contains(&format!("alertname: {alert}\n"))).collect();
        assert!(evaluations.iter().any(|e| e.contains("exp_alerts: []")), "{alert}: no case that must not fire");
        assert!(evaluations.iter().any(|e| e.contains("- exp_labels:")), "{alert}: no case that fires");
    }
}

/// The alerts the rules file defines.
fn alert_names() -> Vec<String> {
    let rules = std::fs::read_to_string(RULES).unwrap();
    let names: Vec<String> =
        rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).map(str::to_string).collect();
    assert_eq!(names.len(), 7, "{names:?}");
    names
}

/// Every `ticketd_…` name in `text` (word-bounded, so `metrics_ticket_series` is not one).
fn ticketd_names(text: &str) -> BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("ticketd_") {
        if text[..at].chars().next_back().is_some_and(ident) {
            continue;
        }
        let name: String = text[at..].chars().take_while(|&c| ident(c)).collect();
        names.insert(name);
    }
    names
}

/// The metric families and sample names in a scrape.
fn served_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(rest) => rest.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alert_rules_name_is_served() {
    let mut named = BTreeSet::new();
    for file in [RULES, RULE_TESTS] {
        named.extend(ticketd_names(&std::fs::read_to_string(file).unwrap()));
    }
    assert!(named.len() >= 6, "{named:?}");

    let h = Harness::start().await;
    // One SLS ticket (no sink needed): every family the rules use is then served.
    let path = h.write_config(
        "state_dir = \"{dir}/state\"\nsocket = \"{dir}/run/ticketd.sock\"\n[credentials.prod]\nvendor = \"alibaba\"\n\
         [[tickets]]\nname = \"dash\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"{emulator}\"\n",
    );
    let _daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    let socket = h.path("run/ticketd.sock");
    let held = "ticketd_token_expiry_timestamp_seconds{ticket=\"dash\"";
    let mut scrape = String::new();
    for _ in 0..1200 {
        if socket.exists()
            && let Ok((200, body)) = ticketd::api::client::get(Path::new(&socket), "/metrics").await
        {
            scrape = String::from_utf8(body).unwrap();
            if scrape.contains(held) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(scrape.contains(held), "no scrape showed the token within 30 s:\n{scrape}");
    let served = served_names(&scrape);
    let unknown: Vec<&String> = named.difference(&served).collect();
    assert!(unknown.is_empty(), "the rules name metrics ticketd does not serve: {unknown:?}\nserved: {served:?}");
}
