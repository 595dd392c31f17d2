//! Crash test: the real binary is killed with SIGKILL at random moments, 200 times, and restarted.
//! After every kill, every state file and sink must parse, no sink may hold an older token than
//! the state, and a ticket saved as valid must never be minted again.

mod common;

use std::time::Duration;

use common::*;
use rand::Rng;

const TICKETS: usize = 6;
const KILLS: usize = 200;

fn config() -> String {
    let mut text = String::from("state_dir = \"{dir}/state\"\n\n[credentials.prod]\nvendor = \"alibaba\"\n");
    for i in 0..TICKETS {
        text.push_str(&format!(
            r#"
[[tickets]]
name = "t{i}"
kind = "sls"
credentials = "prod"
endpoint = "{{emulator}}"
ticket_lifetime = "1h"
token_lifetime = "10s"
console_url = "https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d{i}"

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/t{i}.json"

[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/t{i}.url"
format = "url"
"#
        ));
    }
    text
}

/// Per ticket: (has a saved, still-valid ticket, saved generation).
fn saved(h: &Harness) -> Vec<(bool, u64)> {
    let state = match std::fs::read(h.path("state/state.json")) {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes).expect("state.json always parses"),
        Err(_) => serde_json::Value::Null,
    };
    let now = std::time::SystemTime::now();
    (0..TICKETS)
        .map(|i| {
            let t = &state["tickets"][format!("t{i}")];
            let ticket_valid = ["current", "pending"].iter().any(|k| {
                t[k]["ticket"]["expires_at"]
                    .as_str()
                    .or_else(|| t[k]["expires_at"].as_str().filter(|_| *k == "pending"))
                    .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
                    .is_some_and(|e| e > now + Duration::from_secs(60))
            });
            (ticket_valid, t["current"]["generation"].as_u64().unwrap_or(0))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_kill_9s_lose_nothing_and_never_re_mint_a_saved_ticket() {
    let h = Harness::start().await;
    let config = h.write_config(&config());
    let config = config.to_str().unwrap();
    let mut rng = rand::rng();
    let (mut files_checked, mut mints_after_restart) = (0usize, 0u64);
    for round in 0..KILLS {
        let before = saved(&h);
        let minted_before = h.emulator.stats().create_ticket;
        let daemon = h.spawn(&["run", "-c", config]);
        // Die at a random moment: during start-up, a call, a sink write or a state save.
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..400))).await;
        daemon.signal("KILL");
        drop(daemon);
        let minted = h.emulator.stats().create_ticket - minted_before;
        let saved_valid = before.iter().filter(|(valid, _)| *valid).count() as u64;
        // Only tickets with no valid saved ticket may be minted (once each).
        assert!(
            minted <= TICKETS as u64 - saved_valid,
            "round {round}: {minted} mints with {saved_valid} valid tickets saved"
        );
        mints_after_restart += minted;

        let after = saved(&h);
        for (i, &(_, state_generation)) in after.iter().enumerate() {
            if let Ok(text) = std::fs::read_to_string(h.path(&format!("out/t{i}.json"))) {
                let sink: serde_json::Value = serde_json::from_str(&text).expect("a sink is never half-written");
                files_checked += 1;
                assert!(
                    sink["generation"].as_u64().unwrap() >= state_generation,
                    "round {round}: t{i}'s sink is older than its state"
                );
            }
            // Sinks are written one after the other: the url file may lag the json one by a crash.
            if let Ok(url) = std::fs::read_to_string(h.path(&format!("out/t{i}.url"))) {
                assert!(url.starts_with("https://") && url.ends_with('\n'), "round {round}: url sink: {url:?}");
                files_checked += 1;
            }
        }
    }
    // Finally, a clean run settles every ticket without minting saved ones again.
    let before = saved(&h);
    let minted_before = h.emulator.stats().create_ticket;
    let out = h.command(&["run", "--once", "-c", config]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let valid_saved = before.iter().filter(|(v, _)| *v).count() as u64;
    assert!(h.emulator.stats().create_ticket - minted_before <= TICKETS as u64 - valid_saved);
    eprintln!(
        "crash test: {KILLS} kills, {files_checked} sink files checked, {} CreateTicket calls in all ({mints_after_restart} during the kill rounds), {} RefreshToken",
        h.emulator.stats().create_ticket,
        h.emulator.stats().refresh_token
    );
    assert!(h.emulator.stats().create_ticket >= TICKETS as u64);
}
