//! Issue #16 item 11 against the real binary: what a core dump of ticketd would hold.
//!
//! The daemon refreshes short-lived tokens against the emulator (and answers socket API reads)
//! until every ticket has had several tokens; then, as root, the test reads every mapping a core
//! dump would contain (readable, private, not file-backed, not marked don't-dump: the heap, the
//! threads' stacks and heaps, anonymous mappings; the secret pool's blocks are marked
//! `MADV_DONTDUMP`) through `/proc/<pid>/mem`, and counts the issued tokens and tickets found.
//! A token replaced long ago (two generations back) must not be anywhere. It also checks that the daemon is not
//! dumpable by default (`PR_SET_DUMPABLE`), and is with `core_dumps = true`.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Duration;

use common::*;

const CONFIG: &str = r#"
state_dir = "{dir}/state"
socket = "{dir}/ticketd.sock"
{core_dumps}

[credentials.ali]
vendor = "alibaba"

[[tickets]]
name = "logs-a"
kind = "sls"
credentials = "ali"
endpoint = "{emulator}"
token_lifetime = "10s"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/logs-a.json"

[[tickets]]
name = "logs-b"
kind = "sls"
credentials = "ali"
endpoint = "{emulator}"
token_lifetime = "10s"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/logs-b.token"
format = "token"

[[tickets]]
name = "notebook-a"
kind = "dsw"
credentials = "ali"
endpoint = "{emulator}"
instance_id = "dsw-730abcdef"
token_lifetime = "10s"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/notebook-a.env"
format = "env"

[[tickets]]
name = "notebook-b"
kind = "dsw"
credentials = "ali"
endpoint = "{emulator}"
instance_id = "dsw-730abcdef"
token_lifetime = "10s"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/notebook-b.json"
"#;

const NAMES: [&str; 4] = ["logs-a", "logs-b", "notebook-a", "notebook-b"];

/// The bytes of every mapping of `pid` a core dump would hold: `(what, bytes)`.
fn dumpable_memory(pid: u32) -> Vec<(String, Vec<u8>)> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("/proc/<pid>/mem (as root)");
    let mut regions = Vec::new();
    let mut current: Option<(u64, u64, String, bool)> = None;
    let mut finish = |region: Option<(u64, u64, String, bool)>, dont_dump: bool| {
        let Some((start, end, what, wanted)) = region else { return };
        if !wanted || dont_dump {
            return;
        }
        let mut bytes = vec![0; (end - start) as usize];
        if mem.read_exact_at(&mut bytes, start).is_ok() {
            regions.push((what, bytes));
        }
    };
    let mut dont_dump = false;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let Some(range) = fields.first().filter(|f| f.contains('-') && !f.ends_with(':')) {
            finish(current.take(), dont_dump);
            dont_dump = false;
            let (start, end) = range.split_once('-').unwrap();
            let (start, end) = (u64::from_str_radix(start, 16).unwrap(), u64::from_str_radix(end, 16).unwrap());
            let perms = fields[1];
            let inode = fields.get(4).copied().unwrap_or("0");
            let name = fields.get(5).copied().unwrap_or("[anonymous]").to_string();
            let wanted = perms.starts_with('r')
                && perms.ends_with('p')
                && inode == "0"
                && name != "[vvar]"
                && name != "[vsyscall]"
                && name != "[vdso]";
            current = Some((start, end, name, wanted));
        } else if line.starts_with("VmFlags:") {
            dont_dump = fields.contains(&"dd");
        }
    }
    finish(current.take(), dont_dump);
    regions
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_root), ignore = "needs root (reads /proc/<pid>/mem of the daemon)")]
async fn issue_16_replaced_tokens_are_not_left_in_the_daemons_memory() {
    let h = Harness::start().await;
    let config = h.write_config(&CONFIG.replace("{core_dumps}", ""));
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let socket = h.path("ticketd.sock");
    // Until every ticket has had at least four tokens, read each one through the socket API too
    // (its answers carry the token).
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); NAMES.len()];
    let mut reads = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while seen.iter().any(|s| s.len() < 4) {
        assert!(
            std::time::Instant::now() < deadline,
            "tokens seen so far: {:?}",
            seen.iter().map(Vec::len).collect::<Vec<_>>()
        );
        for (i, name) in NAMES.iter().enumerate() {
            if let Ok((200, body)) = ticketd::api::client::get(&socket, &format!("/v1/tickets/{name}")).await {
                let view: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let token = view["access_token"].as_str().unwrap().to_string();
                if !seen[i].contains(&token) {
                    seen[i].push(token);
                }
                reads += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Stopped, for a consistent picture (as gcore does).
    daemon.signal("STOP");
    let regions = dumpable_memory(daemon.pid());
    daemon.signal("CONT");
    let issued = h.emulator.issued_secrets();
    // Replaced long ago: every token of a ticket but its last two. (The one just replaced may
    // still sit in a live buffer, e.g. the read buffer of the idle pooled connection that
    // fetched it, until that connection is next used or closed.)
    let old: HashSet<&String> = seen.iter().flat_map(|s| &s[..s.len() - 2]).collect();
    let bytes: usize = regions.iter().map(|(_, b)| b.len()).sum();
    let found = |secret: &String| {
        regions.iter().filter(|(_, b)| contains(b, secret.as_bytes())).map(|(what, _)| what.clone()).collect::<Vec<_>>()
    };
    let found_any = issued.iter().filter(|s| !found(s).is_empty()).count();
    let found_old: Vec<Vec<String>> = old.iter().map(|s| found(s)).filter(|places| !places.is_empty()).collect();
    eprintln!(
        "memory check: {} tokens and tickets issued, {} replaced long ago; {reads} socket reads; {} regions \
         ({} KiB) read: {found_any} issued found, {} of them replaced long ago ({found_old:?})",
        issued.len(),
        old.len(),
        regions.len(),
        bytes / 1024,
        found_old.len(),
    );
    // Reported, not asserted: where the long-term key is (the process environment, at the top
    // of the main thread's stack, holds it for the process' life).
    let key = h.key.access_key_secret.expose().to_string();
    eprintln!("memory check: the access key secret is in {:?}", found(&key));
    assert!(regions.iter().any(|(what, _)| what == "[heap]"), "the heap was read");
    // The scan sees the daemon's data: its config's endpoint is in there.
    let endpoint = h.emulator.url();
    assert!(regions.iter().any(|(_, b)| contains(b, endpoint.as_bytes())), "the scan finds the config's endpoint");
    assert!(
        found_old.is_empty(),
        "{} replaced tokens are still in the daemon's memory: {found_old:?}",
        found_old.len()
    );
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, 0);
}

/// Not dumpable by default: the kernel gives its `/proc/<pid>` files to root instead of its
/// user, and writes no core file. `core_dumps = true` turns that back on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(all(have_root, have_setpriv)), ignore = "needs root and setpriv (runs the daemon as another user)")]
async fn issue_16_the_daemon_is_not_dumpable_unless_core_dumps_is_set() {
    for (setting, dumpable) in [("", false), ("core_dumps = false", false), ("core_dumps = true", true)] {
        let h = Harness::start().await;
        std::fs::set_permissions(h.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let config = h.write_config(&CONFIG.replace("{core_dumps}", setting));
        let cmd = h.command(&["run", "-c", config.to_str().unwrap()]);
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let log = std::fs::File::create(h.path("log-nobody.txt")).unwrap();
        let mut child = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .args(args)
            .env_clear()
            .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))))
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("setpriv");
        let pid = child.id();
        let out = h.path("out/logs-a.json");
        wait_for("the first token", Duration::from_secs(30), || out.exists().then_some(())).await;
        let owner = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap().uid();
        assert_eq!(owner == 65534, dumpable, "{setting:?}: /proc/<pid>/environ is owned by uid {owner}");
        let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
        assert!(status.success());
        let code = wait_for("the daemon to exit", Duration::from_secs(30), || child.try_wait().unwrap()).await;
        assert!(code.success(), "{setting:?}: {}", std::fs::read_to_string(h.path("log-nobody.txt")).unwrap());
    }
}
