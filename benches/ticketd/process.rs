//! Child processes and what /proc says about them: peak RSS, CPU time, context switches.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The fake keys every benchmark's emulator accepts (emulator-only, not real credentials).
pub const ACCESS_KEY_ID: &str = "LTAIbenchmark";
pub const ACCESS_KEY_SECRET: &str = "bench-secret-0123456789abcdef";

/// The `ticketd` binary cargo built for this benchmark (release profile), or the one
/// `TICKETD_BENCH_BINARY` names (an older build, for a before/after comparison).
pub fn ticketd_binary() -> PathBuf {
    std::env::var_os("TICKETD_BENCH_BINARY").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ticketd")), PathBuf::from)
}

/// The highest resident set size since the last [`reset_peak`] (VmHWM), KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_field(&PathBuf::from(format!("/proc/{pid}/status")), "VmHWM").unwrap_or(0)
}

/// Start a new peak: VmHWM is set back to the RSS now (`clear_refs` 5).
pub fn reset_peak(pid: u32) {
    let _ = fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Send SIGHUP (reload) to a child.
pub fn hangup(pid: u32) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our child, not yet reaped.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
}

/// Wait until `log` holds `count` lines containing `needle` (bounded by `timeout`).
pub fn wait_for_log(log: &Path, needle: &str, count: usize, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if fs::read_to_string(log).is_ok_and(|t| t.lines().filter(|l| l.contains(needle)).count() >= count) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A command with the benchmark keys in its environment and nothing inherited that could change
/// ticketd's behaviour (systemd variables, log settings).
pub fn command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "TICKETD_LOG", "JOURNAL_STREAM"] {
        command.env_remove(var);
    }
    command.env("ALIBABA_CLOUD_ACCESS_KEY_ID", ACCESS_KEY_ID).env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET);
    command
}

/// How a child that ran to completion used the machine (from `wait4`).
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub success: bool,
    pub peak_rss_kib: u64,
    pub cpu: Duration,
}

/// Wait for `child` and read its resource usage.
pub fn wait_with_usage(child: &mut Child) -> Usage {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed: {}", std::io::Error::last_os_error());
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        peak_rss_kib: usage.ru_maxrss as u64,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    }
}

/// The child's own peak RSS (VmHWM), read every 5 ms on a thread of its own until [`PeakWatch::done`]:
/// for children that exit by themselves, whose `wait4` peak would include the bench's (see
/// [`Running::stop`]).
pub struct PeakWatch {
    done: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<Option<u64>>,
}

impl PeakWatch {
    pub fn start(pid: u32) -> PeakWatch {
        let (done, stop) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let status = PathBuf::from(format!("/proc/{pid}/status"));
            let mut peak = None;
            loop {
                peak = peak.max(status_field(&status, "VmHWM"));
                if !matches!(
                    stop.recv_timeout(Duration::from_millis(5)),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                ) {
                    return peak;
                }
            }
        });
        PeakWatch { done, thread }
    }

    /// The highest VmHWM read (`None` if the child had exited before the first read).
    pub fn done(self) -> Option<u64> {
        let _ = self.done.send(());
        self.thread.join().expect("the peak watch")
    }
}

/// A number from a `Key:   value kB` line of /proc/<pid>/status.
fn status_field(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

/// Resident set size now (VmRSS), KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(&PathBuf::from(format!("/proc/{pid}/status")), "VmRSS").unwrap_or(0)
}

/// User plus system CPU time of a live process.
pub fn cpu_time(pid: u32) -> Duration {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name and state.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

/// Context switches (voluntary + involuntary) of every thread of a live process, by thread.
pub fn context_switches(pid: u32) -> Vec<(String, u64)> {
    let mut threads = Vec::new();
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/task")) else { return threads };
    for entry in entries.flatten() {
        let status = entry.path().join("status");
        let switches = status_field(&status, "voluntary_ctxt_switches").unwrap_or(0)
            + status_field(&status, "nonvoluntary_ctxt_switches").unwrap_or(0);
        let name = fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_string();
        threads.push((format!("{name}/{}", entry.file_name().to_string_lossy()), switches));
    }
    threads.sort();
    threads
}

/// A child that is killed (SIGTERM, then SIGKILL) when dropped.
pub struct Running {
    pub child: Child,
    /// Reaped by [`Running::stop`]: nothing left for drop to do.
    reaped: bool,
}

impl Running {
    pub fn new(child: Child) -> Running {
        Running { child, reaped: false }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait (SIGKILL after 10 s); the usage of the whole run. Its peak RSS is the
    /// child's own VmHWM (since its last [`reset_peak`]) as last read before it exited, not
    /// `wait4`'s `ru_maxrss`: Linux carries the spawning process's peak over `execve` into the
    /// child's (`setmax_mm_hiwater_rss` of the old mm, the bench's own with `posix_spawn`), so a
    /// daemon started by a bench that had just read a big file reported the bench's memory.
    pub fn stop(mut self) -> Usage {
        let own_peak = terminate(&mut self.child);
        self.reaped = true;
        let usage = wait_with_usage(&mut self.child);
        Usage { peak_rss_kib: own_peak.unwrap_or(usage.peak_rss_kib), ..usage }
    }
}

/// SIGTERM, then wait for the child to exit (SIGKILL after 10 s), reading its VmHWM every 10 ms
/// meanwhile: the highest read (`None` if it had exited already). VmHWM only grows, so the last
/// read misses at most the last 10 ms of the child's exit, which frees memory.
fn terminate(child: &mut Child) -> Option<u64> {
    let status = PathBuf::from(format!("/proc/{}/status", child.id()));
    let mut peak = status_field(&status, "VmHWM");
    // SAFETY: kill has no memory-safety preconditions; the pid is our child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        peak = peak.max(status_field(&status, "VmHWM"));
        // Peek without reaping (WNOWAIT), so wait_with_usage still gets the rusage.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        let r = unsafe { libc::waitid(libc::P_PID, child.id(), &mut info, flags) };
        if r == 0 && unsafe { info.si_pid() } != 0 {
            return peak;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    peak
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let _ = terminate(&mut self.child);
        let _ = self.child.wait();
    }
}

/// `ticketd emulator` in a process of its own, so ticketd's figures are its own.
pub struct Emulator {
    pub process: Running,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    http: reqwest::Client,
}

impl Emulator {
    pub fn start(log: &Path) -> Emulator {
        let mut child = command(&ticketd_binary())
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .env("TENCENTCLOUD_SECRET_ID", "AKIDbenchmark")
            .env("TENCENTCLOUD_SECRET_KEY", "bench-tencent-secret")
            .stdout(Stdio::piped())
            .stderr(fs::File::create(log).expect("emulator log"))
            .spawn()
            .expect("start ticketd emulator");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("# emulator listening on ") {
                        break url.trim_end_matches('/').to_string();
                    }
                }
                _ => panic!("the emulator exited before listening; see {}", log.display()),
            }
        };
        Emulator { process: Running::new(child), url, http: ticketd::http::client() }
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// The emulator's call counters (`GET /_emulator/stats`).
    pub fn stats(&self) -> serde_json::Value {
        let url = format!("{}/_emulator/stats", self.url);
        block_on(async { self.http.get(url).send().await?.error_for_status()?.json().await }).expect("emulator stats")
    }

    /// CreateTicket plus RefreshToken calls answered so far.
    pub fn sls_calls(&self) -> u64 {
        let stats = self.stats();
        ["create_ticket", "refresh_token"].iter().map(|c| stats[c].as_u64().unwrap_or(0)).sum()
    }

    pub fn count(&self, counter: &str) -> u64 {
        self.stats()[counter].as_u64().unwrap_or(0)
    }
}

/// Run `future` on a small runtime of the harness's own (its HTTP calls are ticketd's client code).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime"))
        .block_on(future)
}

/// A `GET` on a unix socket, by the client `ticketd status` uses.
pub fn socket_get(socket: &Path, path: &str) -> Result<(u16, Vec<u8>), ticketd::api::client::ClientError> {
    block_on(ticketd::api::client::get(socket, path))
}

/// A `GET` on a unix socket whose answer may be big: HTTP/1.0, read to the end through a 64 KiB
/// buffer and counted, not kept. The status and the body's length.
pub fn socket_get_len(socket: &Path, path: &str) -> std::io::Result<(u16, usize)> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: ticketd\r\n\r\n")?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut head, mut total, mut header_len) = (Vec::new(), 0usize, None);
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
        if header_len.is_none() {
            head.extend_from_slice(&buf[..n]);
            header_len = head.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        }
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(64)]).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, total - header_len.unwrap_or(total)))
}

/// `ticketd run -c config`, logging to `log`.
pub fn start_daemon(config: &Path, log: &Path, extra_env: &[(&str, &str)]) -> Running {
    let mut command = command(&ticketd_binary());
    command.arg("--config").arg(config).arg("run").envs(extra_env.iter().copied());
    let child = command
        .stdout(Stdio::null())
        .stderr(fs::File::create(log).expect("daemon log"))
        .spawn()
        .expect("start ticketd");
    Running::new(child)
}

/// Poll `GET /readyz` on the socket until every required ticket holds a token.
pub fn wait_ready(daemon: &mut Running, socket: &Path, timeout: Duration, log: &Path) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok((200, _)) = socket_get(socket, "/readyz") {
            return start.elapsed();
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            panic!("ticketd exited ({status}) before it was ready; see {}", log.display());
        }
        assert!(start.elapsed() < timeout, "ticketd not ready after {timeout:?}; see {}", log.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sum of the lengths of every `"value"` string in a state file: the secrets (tickets and
/// tokens) a daemon holds.
pub fn secret_bytes_in_state(state: &Path) -> u64 {
    fn walk(v: &serde_json::Value) -> u64 {
        match v {
            serde_json::Value::Object(map) => map
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("value", serde_json::Value::String(s)) => s.len() as u64,
                    _ => walk(v),
                })
                .sum(),
            serde_json::Value::Array(items) => items.iter().map(walk).sum(),
            _ => 0,
        }
    }
    let text = fs::read(state).expect("read state.json");
    walk(&serde_json::from_slice(&text).expect("state.json is JSON"))
}
