//! Writing a sink leaves no copy of a secret in freed heap memory (issue #16, item 11): every
//! buffer that held the rendered contents of a sink is zeroed before it goes back to the
//! allocator, and none grows (a grown buffer's old copy would be freed as it is).
//!
//! This test binary's allocator looks into every block freed (or moved by a reallocation, which
//! it always does) while a sink is written, for the token, the ticket and the docker `auth`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ticketd::clock::from_unix_seconds;
use ticketd::config::{
    ApiSpec, DockerConfigSink, EnvNames, FileFormat, FileSink, Kind, SinkSpec, SlsSpec, TicketSettings, TicketSpec,
};
use ticketd::secret::Secret;
use ticketd::token::{Current, TicketPart, TokenPart};

const TOKEN: &[u8] = b"tok-7Hq2Zp9Lw4Xc8Rv1";
const TICKET: &[u8] = b"tkt-Mv3Nb6Qs0Ky5Jd2F";
/// base64("user:" + TOKEN), the docker `auth` value.
const AUTH: &[u8] = b"dXNlcjp0b2stN0hxMlpwOUx3NFhjOFJ2MQ==";

/// Only the scan's own test frees this unzeroed (on purpose).
const CANARY: &[u8] = b"canary-Xw8Pq3Lm5Tz1Vb7";

thread_local! {
    /// What is looked for in blocks this thread frees (nothing: not armed). Per thread, so one
    /// test's secrets left in freed memory never count against another running beside it.
    static NEEDLES: Cell<&'static [&'static [u8]]> = const { Cell::new(&[]) };
}
static FOUND: AtomicUsize = AtomicUsize::new(0);

struct Scanning;

fn needles() -> &'static [&'static [u8]] {
    NEEDLES.try_with(Cell::get).unwrap_or(&[])
}

fn armed() -> bool {
    !needles().is_empty()
}

/// Whether `size` bytes at `ptr` hold a secret.
unsafe fn holds_secret(ptr: *const u8, size: usize) -> bool {
    // SAFETY: the caller passes a block it owns, of `size` initialised-or-not bytes; reading them
    // as bytes is what the allocator itself would do.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, size) };
    needles().iter().any(|needle| bytes.windows(needle.len()).any(|w| w == *needle))
}

// SAFETY: every call is passed to `System` with the same layouts; the scan only reads blocks
// still owned.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if armed() && unsafe { holds_secret(ptr, layout.size()) } {
            FOUND.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !armed() {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Always moved, as a reallocation may be: the old block is freed as it is.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { System.alloc(new_layout) };
        if !new.is_null() {
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

/// Blocks holding one of `needles` freed by this thread while `f` ran. (`FOUND` is shared, so the
/// tests that use this run one at a time.)
fn found_while(needles: &'static [&'static [u8]], f: impl FnOnce()) -> usize {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = FOUND.load(Ordering::SeqCst);
    NEEDLES.with(|n| n.set(needles));
    f();
    NEEDLES.with(|n| n.set(&[]));
    FOUND.load(Ordering::SeqCst) - before
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
const SECRETS: &[&[u8]] = &[TOKEN, TICKET, AUTH];

fn current() -> Current {
    let t = from_unix_seconds(1_700_000_000);
    // Straight from the constants: no copy of a secret is freed before the scan starts (a stale
    // copy in a freed block could be handed out again and found later).
    let text = |bytes: &'static [u8]| std::str::from_utf8(bytes).unwrap();
    Current {
        ticket: Some(TicketPart {
            value: Secret::new(text(TICKET)),
            issued_at: t.into(),
            expires_at: (t + Duration::from_secs(86_400)).into(),
        }),
        token: TokenPart {
            value: Secret::new(text(TOKEN)),
            username: Some("user".into()),
            token_id: None,
            issued_at: t.into(),
            expires_at: (t + Duration::from_secs(3600)).into(),
        },
        generation: 4,
        refreshed_at: t.into(),
        expires_mono: None,
    }
}

fn spec(sinks: Vec<SinkSpec>) -> TicketSpec {
    let (ticket, token) = (Duration::from_secs(86_400), Duration::from_secs(3600));
    TicketSpec::new(
        "t",
        TicketSettings {
            credentials: "prod".into(),
            api: ApiSpec::Sls(SlsSpec {
                endpoint: ticketd::config::Endpoint {
                    base: url::Url::parse("https://cn-shanghai.log.aliyuncs.com").unwrap(),
                },
                ticket_lifetime: ticket,
                token_lifetime: token,
                ticket_renew_before: SlsSpec::default_renew_before(ticket, token),
                signature: ticketd::signing::sls::V1Mac::HmacSha256,
                console_url: Some("https://sls.console.aliyun.com/lognext/project/p?hideTopbar=true#frag".into()),
                console_params: vec![("theme".into(), "dark".into())],
            }),
            sinks,
            consumers: Default::default(),
            scope: Default::default(),
        },
    )
}

#[test]
fn issue_16_writing_any_sink_leaves_no_secret_in_freed_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, format: FileFormat| {
        SinkSpec::File(FileSink {
            path: dir.path().join(name),
            format,
            mode: 0o600,
            env_names: EnvNames::defaults("TICKETD_", Kind::Tcr),
        })
    };
    let sinks = vec![
        file("t.json", FileFormat::Json),
        file("t.token", FileFormat::Token),
        file("t.url", FileFormat::Url),
        file("t.env", FileFormat::Env),
        SinkSpec::DockerConfig(DockerConfigSink {
            path: dir.path().join("config.json"),
            registry: "reg.example".into(),
            mode: 0o600,
        }),
    ];
    let spec = spec(sinks);
    let current = current();
    let mut leaks = Vec::new();
    for round in 0..2 {
        // The second round reads back the docker config the first wrote (its `auth` included).
        for sink in &spec.sinks {
            let mut result = Ok(());
            let found = found_while(SECRETS, || result = ticketd::sinks::publish_one(&spec, sink, &current));
            result.unwrap();
            if found > 0 {
                leaks.push(format!("round {round}: {}: {found} blocks", sink.path().display()));
            }
        }
    }
    assert!(leaks.is_empty(), "blocks freed holding a secret while writing a sink: {leaks:#?}");
    // The sinks do hold the secrets.
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    assert_eq!(read("t.token"), TOKEN);
    let url = String::from_utf8(read("t.url")).unwrap();
    assert_eq!(
        url,
        format!(
            "https://sls.console.aliyun.com/lognext/project/p?hideTopbar=true&sls_ticket={}&supportRefreshToken=true&theme=dark#frag\n",
            std::str::from_utf8(TICKET).unwrap()
        )
    );
    assert!(read("t.json").windows(TOKEN.len()).any(|w| w == TOKEN));
    assert!(read("t.env").windows(TOKEN.len()).any(|w| w == TOKEN));
    assert!(read("config.json").windows(AUTH.len()).any(|w| w == AUTH));
}

/// The scan itself finds a secret freed as it is.
#[test]
fn the_scan_catches_a_secret_freed_unzeroed() {
    let found = found_while(&[CANARY], || drop(format!("x{}", std::str::from_utf8(CANARY).unwrap())));
    assert_eq!(found, 1);
}
