//! Issue #18: a config file is read a piece at a time (`config::split`). Checking a big one never
//! holds a tree of the whole document (about 3.5 KiB per ticket), whether it is valid or not and
//! whatever its layout: a problem's line is found in its own ticket's piece, a quoted header or a
//! sub-table away from its ticket is cut like any other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Taken by each test: the counters count every thread's allocations.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is passed to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as `GlobalAlloc::realloc` requires of its caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `n` tickets, the last one ending with `tail`.
fn config(n: usize, tail: &str) -> String {
    let mut text =
        String::from("state_dir = \"/var/lib/t\"\n[credentials.c]\nvendor = \"alibaba\"\nsource = \"env\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[tickets]]\nname = \"t{i:06}\"\nkind = \"sls\"\ncredentials = \"c\"\nendpoint = \"cn-shanghai.log.aliyuncs.com\"\n\
             ticket_lifetime = \"12h\"\ntoken_lifetime = \"1h\"\n"
        ));
    }
    text.push_str(tail);
    text
}

/// What `f` answers, with the most heap it held at once beyond what it answers.
fn transient<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let answer = f();
    let kept = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    (answer, PEAK.load(Ordering::Relaxed).saturating_sub(before).saturating_sub(kept))
}

#[test]
fn checking_a_big_config_holds_far_less_than_its_text_valid_or_not_whatever_its_layout() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let n = 10_000;
    let quoted = "[[\"tickets\"]]\nname = \"quoted\"\nkind = \"sls\"\ncredentials = \"c\"\nendpoint = \"x.example\"\n";
    for (what, tail, ok) in [
        ("a valid file", "", true),
        ("a problem in its last ticket", "ticket_renew_before = \"5h\"\n", false),
        ("a syntax error in its last ticket", "required = yes\n", false),
        ("a quoted header", quoted, true),
        (
            "a sub-table after another table",
            "[rate_limits]\nalibaba = 5\n[tickets.on_change]\nsignal = \"SIGHUP\"\n",
            false,
        ),
        ("an unknown top-level key at its end", "[[tickets.sinks]]\ntype = \"file\"\npath = \"/x\"\n[nope]\n", false),
    ] {
        let text = config(n, tail);
        let (answer, peak) = transient(|| ticketd::config::parse(&text, "big.toml"));
        let outcome = answer.map(|c| c.tickets.len()).map_err(|p| (p.0.len(), p.0[0].to_string()));
        assert_eq!(outcome.is_ok(), ok, "{what}: {outcome:?}");
        println!("{what}: peak {peak} B beside a text of {} B ({outcome:?})", text.len());
        assert!(peak < n * 200, "{what}: the check held {peak} B at its peak beside its answer, for {n} tickets");
    }
}

#[test]
fn loading_a_big_valid_config_file_never_holds_its_whole_text() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // What the daemon does at start and on each reload: a valid file is read a window and a
    // piece at a time (`config::stream`); before, its whole text (14 MiB at 100,000 tickets) was
    // held through the parse, beside the running daemon's tokens.
    let n = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    let env: std::collections::HashMap<String, String> =
        [("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI5tExampleKeyId00"), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s3cr3t")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let later = "[rate_limits]\nalibaba = 5\n[[tickets.sinks]]\ntype = \"file\"\npath = \"/x\"\n";
    for (what, tail) in [("a valid file", ""), ("a sub-table after another table", later)] {
        let text = config(n, tail);
        std::fs::write(&path, &text).unwrap();
        let (answer, peak) = transient(|| ticketd::config::load(&path));
        assert_eq!(answer.map(|c| c.tickets.len()).ok(), Some(n), "{what}");
        println!("{what}: loading held {peak} B at its peak beside a text of {} B", text.len());
        assert!(peak < text.len() / 2, "{what}: loading held {peak} B at its peak, for a text of {} B", text.len());
        let (answer, peak) = transient(|| ticketd::credentials::environment::load(&path, &env));
        assert_eq!(answer.map(|c| c.tickets.len()).ok(), Some(n), "{what}, with the environment");
        assert!(peak < text.len() / 2, "{what}: loading held {peak} B with the environment, for {} B", text.len());
    }
}
