//! Issue 16 item 3, end to end: the real binary's wall clock is stepped at runtime, without root,
//! by libfaketime (`LD_PRELOAD`, with `FAKETIME_TIMESTAMP_FILE` rewritten by the test and
//! `FAKETIME_NO_CACHE=1`; monotonic time is left alone), against the emulator on true time.
//!
//! `cargo test --test clock_step -- --nocapture` prints the figures:
//! - after a +2 h step held past the token's expiry and then corrected, how long until the sink
//!   holds a valid token again;
//! - after a -60 s step, the longest a token stayed in the sink, against its life.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use common::*;

/// Where Debian and the usual builds install libfaketime.
fn libfaketime() -> PathBuf {
    let mut candidates: Vec<PathBuf> = ["/usr/lib/faketime", "/usr/local/lib/faketime", "/usr/lib64/faketime"]
        .iter()
        .map(|d| PathBuf::from(d).join("libfaketime.so.1"))
        .collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        candidates.extend(entries.flatten().map(|e| e.path().join("faketime/libfaketime.so.1")));
    }
    candidates.into_iter().find(|p| p.is_file()).expect("libfaketime.so.1 (apt-get install faketime)")
}

/// A daemon whose wall clock the test steps by writing `offset` ("+7200", "-60", "+0").
struct Stepped {
    daemon: Daemon,
    file: PathBuf,
}

impl Stepped {
    fn start(h: &Harness, config: &std::path::Path) -> Stepped {
        let file = h.path("faketime.rc");
        std::fs::write(&file, "+0\n").expect("write the faketime file");
        let lib = libfaketime();
        let env: [(&str, &OsStr); 5] = [
            ("LD_PRELOAD", lib.as_os_str()),
            ("FAKETIME_TIMESTAMP_FILE", file.as_os_str()),
            ("FAKETIME_NO_CACHE", OsStr::new("1")),
            // Only the wall clock steps (the names of older and newer libfaketime).
            ("FAKETIME_DONT_FAKE_MONOTONIC", OsStr::new("1")),
            ("DONT_FAKE_MONOTONIC", OsStr::new("1")),
        ];
        let daemon = h.spawn_with_env(&["run", "-c", config.to_str().unwrap()], &env);
        Stepped { daemon, file }
    }

    /// Set the daemon's wall clock `offset` from the true time (written whole: rename over).
    fn step(&self, offset: &str) {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{offset}\n")).expect("write the faketime file");
        std::fs::rename(&tmp, &self.file).expect("replace the faketime file");
    }
}

fn config(h: &Harness, token_lifetime: &str) -> PathBuf {
    h.write_config(&format!(
        r#"
state_dir = "{{dir}}/state"
[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "{{emulator}}"
ticket_lifetime = "1h"
token_lifetime = "{token_lifetime}"
[[tickets.sinks]]
type = "file"
path = "{{dir}}/out/dash.json"
"#
    ))
}

/// The generation and stated expiry of the token in the sink.
fn in_sink(h: &Harness) -> Option<(u64, SystemTime)> {
    let json = read_json(&h.path("out/dash.json"))?;
    let expires = json["token_expires_at"].as_str().and_then(|t| humantime::parse_rfc3339_weak(t).ok())?;
    Some((json["generation"].as_u64()?, expires))
}

/// The daemon's wall clock steps 2 h ahead and stays there until the token in the sink has
/// really expired; every call meanwhile is rejected as clock skew (the emulator is on true time).
/// Then the clock is corrected: a valid token is back in the sink within seconds (on `main` the
/// retries lay 7.5-15 min ahead in the stepped frame: two hours later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_faketime), ignore = "needs faketime (apt-get install faketime)")]
async fn issue_16_a_forward_clock_step_then_its_correction_has_a_valid_token_back_within_seconds() {
    let h = Harness::start().await;
    let config = config(&h, "20s");
    let mut stepped = Stepped::start(&h, &config);
    let (first, expires) = wait_for("the first token", Duration::from_secs(30), || in_sink(&h)).await;
    assert_eq!(first, 1);

    stepped.step("+7200");
    // Until the token in the sink has really expired (its expiry was stated on true time).
    wait_for("the first token to expire", Duration::from_secs(60), || {
        (SystemTime::now() > expires + Duration::from_secs(1)).then_some(())
    })
    .await;
    let rejected = h.emulator.stats().rejected;
    assert!(rejected >= 1, "the stepped daemon's calls were rejected: {:?}", h.emulator.stats());
    assert_eq!(in_sink(&h).map(|s| s.0), Some(1), "nothing new while the clock was off");

    stepped.step("+0");
    let corrected = Instant::now();
    let (generation, _) = wait_for("a valid token after the correction", Duration::from_secs(60), || {
        in_sink(&h).filter(|&(_, expires)| expires > SystemTime::now())
    })
    .await;
    let took = corrected.elapsed();
    assert!(generation > 1);
    // Clock-skew retries come every 5-10 s (before the fix: 7.5-15 min, in the stepped frame);
    // 30 s leaves room for a loaded machine.
    assert!(took < Duration::from_secs(30), "valid again {took:?} after the correction");
    let log = stepped.daemon.log_text();
    assert!(log.contains("the wall clock stepped"), "the step was noticed");
    assert!(log.contains("RequestTimeExpired"), "the clock-skew rejections were logged");
    stepped.daemon.signal("TERM");
    assert_eq!(stepped.daemon.wait_exit(Duration::from_secs(30)).await, 0);
    eprintln!(
        "+2 h step held past the token's expiry: {rejected} calls rejected as clock skew; after the correction a valid token was in the sink again in {took:.2?}"
    );
}

/// Right after the first token is written the daemon's wall clock is set back 60 s. Each token
/// is replaced within its life all the same (on `main` the first stayed in the sink a minute past
/// its refresh point: expired for about 40 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_faketime), ignore = "needs faketime (apt-get install faketime)")]
async fn issue_16_a_clock_set_back_a_minute_keeps_no_expired_token_in_the_sink() {
    let life = Duration::from_secs(20);
    let h = Harness::start().await;
    let config = config(&h, "20s");
    let mut stepped = Stepped::start(&h, &config);
    wait_for("the first token", Duration::from_secs(30), || in_sink(&h)).await;
    stepped.step("-60");

    // When each generation was first seen in the sink: it was issued before that, so it expires
    // no later than `life` after.
    let mut seen: HashMap<u64, Instant> = HashMap::new();
    let (start, mut oldest) = (Instant::now(), Duration::ZERO);
    while start.elapsed() < 2 * life + Duration::from_secs(5) {
        let (generation, _) = in_sink(&h).expect("the sink always parses");
        let first_seen = *seen.entry(generation).or_insert_with(Instant::now);
        oldest = oldest.max(first_seen.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = stepped.daemon.log_text();
    stepped.daemon.signal("TERM");
    assert_eq!(stepped.daemon.wait_exit(Duration::from_secs(30)).await, 0);
    let expired_for = oldest.saturating_sub(life);
    assert!(oldest < life, "a token stayed in the sink {oldest:.1?} ({expired_for:.1?} past its {life:?} life)");
    assert!(seen.len() >= 3, "tokens seen in {:?}: {}", 2 * life, seen.len());
    assert!(log.contains("the wall clock stepped"), "the step was noticed");
    eprintln!(
        "-60 s step: {} tokens; the longest one stayed in the sink was {oldest:.1?} of its {life:?} life (expired in the sink: {expired_for:?})",
        seen.len()
    );
}
