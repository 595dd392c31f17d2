//! End-to-end harness: the real `ticketd` binary against the in-process emulator on loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The etcd test cluster (issue #19's fleet tests).
pub mod etcd;
pub mod feature;
/// Three etcd members, the emulator and N ticketd nodes (issue #19's fleet tests).
pub mod fleet;

use emulator::{Emulator, EmulatorKey, generate_key, generate_tencent_key};

pub const BIN: &str = env!("CARGO_BIN_EXE_ticketd");

/// One long-term TCR ticket `registry` (credentials `tc`, a file sink `out/registry.json`) against
/// the emulator; `{dir}` and `{emulator}` are filled by `Harness::write_config`.
pub const TCR_LONGTERM_CONFIG: &str = r#"
state_dir = "{dir}/state"
socket = "{dir}/run/ticketd.sock"

[credentials.tc]
vendor = "tencent"

[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
endpoint = "{emulator}"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
token_type = "longterm"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/registry.json"
"#;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub emulator: Emulator,
    pub key: EmulatorKey,
    /// A Tencent SecretId/SecretKey the emulator accepts (TCR).
    pub tencent_key: EmulatorKey,
    runs: std::cell::Cell<u32>,
}

impl Harness {
    pub async fn start() -> Harness {
        let key = generate_key("LTAItest");
        let tencent_key = generate_tencent_key("AKIDtest");
        let keys = vec![key.clone(), tencent_key.clone()];
        let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), keys, SystemTime::now).await.expect("emulator");
        Harness {
            dir: tempfile::tempdir().expect("temp dir"),
            emulator,
            key,
            tencent_key,
            runs: std::cell::Cell::new(0),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `ticketd.toml`; `{emulator}` and `{dir}` in `body` are replaced.
    pub fn write_config(&self, body: &str) -> PathBuf {
        let text =
            body.replace("{emulator}", &self.emulator.url()).replace("{dir}", &self.dir.path().display().to_string());
        let path = self.path("ticketd.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// The environment the daemon needs for the emulator's keys.
    pub fn command(&self, args: &[&str]) -> Command {
        self.wrapped_command(&[], args)
    }

    /// Like [`Harness::command`], with the binary run by `wrapper` (e.g. `["prlimit", "--nofile=1024", "--"]`).
    pub fn wrapped_command(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &self.key.access_key_id)
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", self.key.access_key_secret.expose())
            .env("TENCENTCLOUD_SECRET_ID", &self.tencent_key.access_key_id)
            .env("TENCENTCLOUD_SECRET_KEY", self.tencent_key.access_key_secret.expose())
            .env("TICKETD_LOG", "ticketd=debug,info")
            .stdin(Stdio::null());
        cmd
    }

    /// Start the daemon; its stderr goes to `log-N.txt` in the temp dir.
    pub fn spawn(&self, args: &[&str]) -> Daemon {
        self.spawn_wrapped(&[], args)
    }

    /// Start the daemon run by `wrapper` (see [`Harness::wrapped_command`]).
    pub fn spawn_wrapped(&self, wrapper: &[&str], args: &[&str]) -> Daemon {
        self.spawn_full(wrapper, args, &[])
    }

    /// Start the daemon with `env` added to its environment (e.g. `LD_PRELOAD` of libfaketime).
    pub fn spawn_with_env(&self, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        self.spawn_full(&[], args, env)
    }

    /// Start the daemon with `dir` as its current directory.
    pub fn spawn_in(&self, dir: &Path, args: &[&str]) -> Daemon {
        let mut command = self.command(args);
        command.current_dir(dir);
        self.spawn_command(command)
    }

    fn spawn_full(&self, wrapper: &[&str], args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        let mut command = self.wrapped_command(wrapper, args);
        command.envs(env.iter().copied());
        self.spawn_command(command)
    }

    fn spawn_command(&self, mut command: Command) -> Daemon {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let log = self.path(&format!("log-{n}.txt"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = command.stdout(Stdio::null()).stderr(file).spawn().expect("spawn ticketd");
        Daemon { child: Some(child), log }
    }

    /// Every log line written by every run so far.
    pub fn all_logs(&self) -> String {
        (1..=self.runs.get())
            .map(|n| std::fs::read_to_string(self.path(&format!("log-{n}.txt"))).unwrap_or_default())
            .collect()
    }
}

pub struct Daemon {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success());
    }

    /// Wait for the process to exit; its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let child = self.child.as_mut().expect("running");
        let status = wait_for("the daemon to exit", timeout, || child.try_wait().expect("try_wait")).await;
        self.child = None;
        status.code().unwrap_or(-1)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A stand-in for a consumer that reloads on SIGHUP: a shell that writes its pid to `pid_file`,
/// appends a line to `log` for each HUP and keeps running, until dropped.
pub struct HupReader(pub Child);

impl HupReader {
    pub fn spawn(pid_file: &Path, log: &Path) -> HupReader {
        let script = format!(
            "echo $$ > {pid}; trap 'echo hup >> {log}' HUP; while :; do sleep 0.1; done",
            pid = pid_file.display(),
            log = log.display()
        );
        let mut reader = Command::new("/bin/sh");
        reader.args(["-c", &script]);
        // A shell cannot trap a signal that was ignored when it started (POSIX `trap`): run under
        // `nohup` (as CI runners and stress loops may), the reader would inherit SIGHUP ignored
        // and never record one (issue 17 item 14: 4 of 4 runs failed so). It starts with the
        // default disposition, as a real consumer would.
        // SAFETY: between fork and exec only `signal` runs, which is async-signal-safe.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut reader, || {
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                Ok(())
            });
        }
        HupReader(reader.spawn().expect("/bin/sh runs"))
    }
}

impl Drop for HupReader {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll `probe` every 25 ms until it gives a value, or panic after `timeout`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The JSON in `path`, once it exists and parses.
/// The credentials ticketd signs with for an emulator key (its STS token too, if it has one).
pub fn credentials(key: &EmulatorKey) -> ticketd::credentials::Credentials {
    use ticketd::secret::Secret;
    ticketd::credentials::Credentials {
        access_key_id: Secret::new(key.access_key_id.clone()),
        access_key_secret: Secret::new(key.access_key_secret.expose()),
        security_token: key.security_token.as_ref().map(|t| Secret::new(t.expose())),
        expires_at: None,
    }
}

pub fn read_json(path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Every end-to-end test's logs go through this check when its harness is dropped: no key secret,
/// and no ticket or token the emulator ever issued, may appear in any log line.
impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let mut secrets: Vec<String> = self.emulator.issued_secrets();
        secrets.push(self.key.access_key_secret.expose().to_string());
        secrets.push(self.tencent_key.access_key_secret.expose().to_string());
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else { return };
        let mut checked = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "txt") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                for secret in &secrets {
                    assert!(
                        !line.contains(secret.as_str()),
                        "{}:{}: a secret (key, ticket or token) reached a log line",
                        path.display(),
                        n + 1
                    );
                }
            }
            checked += 1;
        }
        eprintln!("log check: {checked} log files, {} secrets looked for: none found", secrets.len());
    }
}
