//! `on_change` hooks: after every sink of a ticket holds a new token, run a program (argv, no
//! shell) and/or signal a process named by a pid file. Debounced per ticket, bounded by a timeout,
//! serialized per ticket, and run on tasks of their own: a slow or failing hook is logged and never
//! holds up the scheduler or another ticket. The token is never put in argv or the environment;
//! the hook gets the ticket name, the generation and the sink paths, in an environment cleared of
//! everything else ticketd has (see [`hook_environment`]).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use compact_str::CompactString;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::config::{DEFAULT_HOOK_PATH, HOOK_ENV_PASSED, HookSpec, TicketSpec};

/// A ticket whose sinks now hold `generation`, and who to tell once its hook has run for it (or
/// for a later generation that took its place in the debounce): a superseded TCR long-term token
/// is revoked only then (see [`crate::revocation`]). Dropped unsent when the ticket has no hook.
pub(crate) type Changed = (TicketSpec, u64, Option<tokio::sync::oneshot::Sender<()>>);

#[derive(Default)]
struct Slot {
    latest: Option<(TicketSpec, u64)>,
    /// Told once the next run has ended.
    waiting: Vec<tokio::sync::oneshot::Sender<()>>,
    armed: bool,
    running: Arc<tokio::sync::Mutex<()>>,
}

/// Run hooks for every change received on `changes` until the channel closes.
pub(crate) async fn run_hooks(mut changes: mpsc::UnboundedReceiver<Changed>) {
    let slots: Arc<Mutex<HashMap<CompactString, Slot>>> = Arc::default();
    while let Some((spec, generation, ran)) = changes.recv().await {
        let Some(hook) = spec.consumers.on_change.clone() else { continue };
        let name = spec.name.clone();
        let arm = {
            let mut slots = slots.lock().expect("hook slots");
            let slot = slots.entry(name.clone()).or_default();
            slot.latest = Some((spec, generation));
            slot.waiting.extend(ran);
            !std::mem::replace(&mut slot.armed, true)
        };
        if !arm {
            continue; // A run is already waiting out the debounce; it will take the latest change.
        }
        let slots = slots.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hook.debounce).await;
            let (latest, waiting, running) = {
                let mut slots = slots.lock().expect("hook slots");
                let slot = slots.get_mut(&name).expect("armed slot");
                slot.armed = false;
                (slot.latest.take(), std::mem::take(&mut slot.waiting), slot.running.clone())
            };
            let Some((spec, generation)) = latest else { return };
            let _one_at_a_time = running.lock().await;
            run_hook(&spec, &hook, generation).await;
            for ran in waiting {
                let _ = ran.send(());
            }
        });
    }
}

/// The whole environment of an `exec` hook: [`HOOK_ENV_PASSED`] from ticketd's own (`var`), the
/// hook's `env` entries, then `TICKETD_TICKET`, `TICKETD_GENERATION` and `TICKETD_FILES`. Nothing
/// else of ticketd's environment (its cloud keys above all) reaches the hook.
pub(crate) fn hook_environment(
    hook: &HookSpec,
    var: &dyn Fn(&str) -> Option<String>,
    ticket: &str,
    generation: u64,
    files: &str,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        HOOK_ENV_PASSED.iter().filter_map(|n| var(n).map(|v| (n.to_string(), v))).collect();
    if !env.iter().any(|(n, _)| n == "PATH") {
        env.push(("PATH".into(), DEFAULT_HOOK_PATH.into()));
    }
    for (name, value) in &hook.env {
        env.retain(|(n, _)| n != name);
        env.push((name.clone(), value.clone()));
    }
    env.push(("TICKETD_TICKET".into(), ticket.into()));
    env.push(("TICKETD_GENERATION".into(), generation.to_string()));
    env.push(("TICKETD_FILES".into(), files.into()));
    env
}

async fn run_hook(spec: &TicketSpec, hook: &HookSpec, generation: u64) {
    let name = &spec.name;
    if let Some(argv) = &hook.exec {
        let files: Vec<String> = spec.sinks.iter().map(|s| s.path().display().to_string()).collect();
        let mut command = tokio::process::Command::new(&argv[0]);
        let env = hook_environment(hook, &|n| std::env::var(n).ok(), name, generation, &files.join(":"));
        command.args(&argv[1..]).env_clear().envs(env).stdin(std::process::Stdio::null()).kill_on_drop(true);
        match command.spawn() {
            Err(e) => {
                tracing::error!(ticket = %name, program = %argv[0], error = %e, "cannot start the on_change hook")
            }
            Ok(mut child) => match tokio::time::timeout(hook.timeout, child.wait()).await {
                Ok(Ok(status)) if status.success() => {
                    tracing::info!(ticket = %name, generation, program = %argv[0], "ran the on_change hook")
                }
                Ok(Ok(status)) => {
                    tracing::warn!(ticket = %name, program = %argv[0], %status, "the on_change hook failed")
                }
                Ok(Err(e)) => {
                    tracing::warn!(ticket = %name, program = %argv[0], error = %e, "cannot wait for the on_change hook")
                }
                Err(_) => {
                    let _ = child.kill().await;
                    tracing::error!(
                        ticket = %name,
                        program = %argv[0],
                        timeout = %humantime::format_duration(hook.timeout),
                        "the on_change hook timed out and was killed"
                    );
                }
            },
        }
    }
    if let (Some((signal, signal_name)), Some(pid_file)) = (&hook.signal, &hook.pid_file) {
        let sent = signal_target(pid_file).and_then(|(pidfd, pid)| {
            let signal = rustix::process::Signal::from_named_raw(*signal)
                .ok_or_else(|| SignalError::UnknownSignal { name: signal_name.to_string() })?;
            rustix::process::pidfd_send_signal(&pidfd, signal)
                .map(|()| pid)
                .map_err(|e| SignalError::Send { pid, source: e.into() })
        });
        match sent {
            Ok(pid) => tracing::info!(ticket = %name, generation, pid, signal = %signal_name, "signalled on change"),
            Err(why) => tracing::warn!(
                ticket = %name,
                pid_file = %pid_file.display(),
                signal = %signal_name,
                "not signalling on change: {why}"
            ),
        }
    }
}

/// Why a hook's process was not signalled: the pid file or the process it names is not one
/// ticketd may trust, or the signal could not be sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignalError {
    #[error("cannot open {}: {source}", .file.display())]
    Open { file: PathBuf, source: std::io::Error },
    #[error("{concern}, so another user could choose the process")]
    Directory { concern: crate::fsdir::Concern },
    #[error("{} does not exist or is not a file", .file.display())]
    Missing { file: PathBuf },
    #[error("cannot stat {}: {source}", .file.display())]
    Stat { file: PathBuf, source: std::io::Error },
    #[error("{} {why}, so another user could choose the process", .file.display())]
    Untrusted { file: PathBuf, why: String },
    #[error("{} {source}", .file.display())]
    Read { file: PathBuf, source: std::io::Error },
    #[error("{} holds no pid", .file.display())]
    NoPid { file: PathBuf },
    #[error("no process {pid}: {source}")]
    NoProcess { pid: i32, source: std::io::Error },
    #[error("cannot read the owner of process {pid}")]
    Owner { pid: i32 },
    #[error("process {pid} runs as uid {uid} but {} belongs to uid {owner}; refusing to signal it", .file.display())]
    OtherUser { pid: i32, uid: u32, file: PathBuf, owner: u32 },
    #[error("signal {name} is not a signal this system knows")]
    UnknownSignal { name: String },
    #[error("cannot signal pid {pid}: {source}")]
    Send { pid: i32, source: std::io::Error },
}

/// The process named by `pid_file`, as a pidfd (so a recycled pid cannot be signalled by mistake
/// between the checks and the signal), and its pid. Refused unless no user but root or ticketd's
/// own could have written the pid file (owner, mode, every directory above it: the StrictModes
/// walk) and the process runs as the pid file's owner: otherwise whoever could write the file
/// would choose what ticketd signals.
pub(crate) fn signal_target(pid_file: &Path) -> Result<(OwnedFd, i32), SignalError> {
    use crate::fsdir::{Follow, Trusted, walk};
    let file = || pid_file.to_path_buf();
    let walked = walk(pid_file).map_err(|source| SignalError::Open { file: file(), source })?;
    if let Some(concern) = walked.concerns.first() {
        return Err(SignalError::Directory { concern: concern.clone() });
    }
    let Some(leaf) = walked.leaf.as_deref().filter(|_| walked.missing.is_empty()) else {
        return Err(SignalError::Missing { file: file() });
    };
    let fd = crate::fsdir::read::open_flags(&walked.dir, leaf, Follow::NoSymlinks)
        .map_err(|source| SignalError::Open { file: file(), source })?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| SignalError::Stat { file: file(), source: e.into() })?;
    if let Some(why) = Trusted::of_process().file(&stat) {
        return Err(SignalError::Untrusted { file: file(), why });
    }
    let text = crate::fsdir::read::read_opened(fd, PID_FILE_MAX_BYTES)
        .map_err(|source| SignalError::Read { file: file(), source })?;
    let pid = std::str::from_utf8(&text)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| SignalError::NoPid { file: file() })?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| SignalError::NoProcess { pid: pid.as_raw_nonzero().get(), source: e.into() })?;
    let raw = pid.as_raw_nonzero().get();
    let uids = process_uids(raw).ok_or(SignalError::Owner { pid: raw })?;
    if !uids.contains(&stat.st_uid) {
        return Err(SignalError::OtherUser { pid: raw, uid: uids[0], file: file(), owner: stat.st_uid });
    }
    Ok((pidfd, raw))
}

/// The most bytes of a pid file read.
const PID_FILE_MAX_BYTES: u64 = 4096;

/// The real and effective uid of process `pid` (`/proc/<pid>/status`).
fn process_uids(pid: i32) -> Option<[u32; 2]> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut ids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().map(|v| v.parse().ok());
    Some([ids.next()??, ids.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hook(env: &[(&str, &str)]) -> HookSpec {
        HookSpec {
            exec: Some(vec!["/usr/bin/env".into()]),
            signal: None,
            pid_file: None,
            timeout: Duration::from_secs(1),
            debounce: Duration::ZERO,
            env: env.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn issue_16_hooks_get_the_allow_list_and_their_own_env_but_never_the_cloud_keys() {
        let process = |name: &str| match name {
            "PATH" => Some("/opt/bin:/usr/bin".to_string()),
            "LANG" => Some("C.UTF-8".to_string()),
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET" => Some("s3cret".to_string()),
            "TENCENTCLOUD_SECRET_KEY" => Some("s3cret".to_string()),
            _ => None,
        };
        let env = hook_environment(
            &hook(&[("NGINX_CONF", "/etc/nginx"), ("LANG", "de_DE.UTF-8")]),
            &process,
            "t",
            7,
            "/a:/b",
        );
        let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["PATH", "NGINX_CONF", "LANG", "TICKETD_TICKET", "TICKETD_GENERATION", "TICKETD_FILES"]);
        assert_eq!(env[0].1, "/opt/bin:/usr/bin");
        assert_eq!(env[2].1, "de_DE.UTF-8", "the hook's own entry wins");
        assert_eq!(env[4].1, "7");
        assert!(env.iter().all(|(_, v)| !v.contains("s3cret")));
        // No PATH in ticketd's environment: a standard one, so absolute-path hooks can still run tools.
        let env = hook_environment(&hook(&[]), &|_| None, "t", 1, "");
        assert_eq!(env[0], ("PATH".to_string(), DEFAULT_HOOK_PATH.to_string()));
    }

    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn write_pid(dir: &Path, pid: u32, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("x.pid");
        std::fs::write(&path, format!("{pid}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn issue_16_a_pid_file_others_can_write_is_refused_and_a_good_one_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let child = Reap(std::process::Command::new("sleep").arg("30").spawn().unwrap());
        let good = write_pid(dir.path(), child.0.id(), 0o644);
        let (_, pid) = signal_target(&good).unwrap();
        assert_eq!(pid as u32, child.0.id());
        let open = write_pid(dir.path(), child.0.id(), 0o666);
        let e = signal_target(&open).unwrap_err().to_string();
        assert!(
            e.ends_with("x.pid is writable by every user (mode 666), so another user could choose the process"),
            "{e}"
        );
        // A pid file in a directory everyone can write to could be replaced.
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let e = signal_target(&write_pid(&shared, child.0.id(), 0o644)).unwrap_err().to_string();
        assert!(e.contains("/shared is writable by every user"), "{e}");
        let e = signal_target(&dir.path().join("none.pid")).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
        let good = write_pid(dir.path(), child.0.id(), 0o644);
        std::fs::write(&good, "not a pid\n").unwrap();
        let e = signal_target(&good).unwrap_err().to_string();
        assert!(e.ends_with("holds no pid"), "{e}");
    }

    #[test]
    #[cfg_attr(not(have_root), ignore = "needs root (chown to another uid)")]
    fn issue_16_a_pid_file_owned_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let child = Reap(std::process::Command::new("sleep").arg("30").spawn().unwrap());
        let theirs = write_pid(dir.path(), child.0.id(), 0o644);
        std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
        let e = signal_target(&theirs).unwrap_err().to_string();
        assert!(e.contains("x.pid is owned by uid 65534"), "{e}");
    }

    #[test]
    #[cfg_attr(not(all(have_root, have_setpriv)), ignore = "needs root and setpriv (a process of another uid)")]
    fn issue_16_a_process_not_owned_by_the_pid_files_owner_is_not_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let child = Reap(
            std::process::Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "30"])
                .spawn()
                .unwrap(),
        );
        // setpriv execs sleep in the same process; wait until it has dropped to uid 65534.
        let dropped = (0..1000).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            process_uids(child.0.id() as i32) == Some([65534, 65534])
        });
        assert!(dropped, "setpriv did not drop privileges within 10 s");
        let e = signal_target(&write_pid(dir.path(), child.0.id(), 0o644)).unwrap_err().to_string();
        assert!(e.contains("runs as uid 65534 but") && e.ends_with("belongs to uid 0; refusing to signal it"), "{e}");
    }
}
