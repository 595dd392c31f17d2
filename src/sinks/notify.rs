//! `on_change` hooks: after every sink of a ticket holds a new token, run a program (argv, no
//! shell) and/or signal a process named by a pid file. Debounced per ticket, bounded by a timeout,
//! serialized per ticket, and run on tasks of their own: a slow or failing hook is logged and never
//! holds up the scheduler or another ticket. The token is never put in argv or the environment;
//! the hook gets the ticket name, the generation and the sink paths, in an environment cleared of
//! everything else ticketd has (see [`hook_environment`]).

use std::collections::HashMap;

use compact_str::CompactString;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::config::{DEFAULT_HOOK_PATH, HOOK_ENV_PASSED, HookSpec, TicketSpec};

/// A ticket whose sinks now hold `generation`.
pub type Changed = (TicketSpec, u64);

#[derive(Default)]
struct Slot {
    latest: Option<Changed>,
    armed: bool,
    running: Arc<tokio::sync::Mutex<()>>,
}

/// Run hooks for every change received on `changes` until the channel closes.
pub async fn run_hooks(mut changes: mpsc::UnboundedReceiver<Changed>) {
    let slots: Arc<Mutex<HashMap<CompactString, Slot>>> = Arc::default();
    while let Some((spec, generation)) = changes.recv().await {
        let Some(hook) = spec.consumers.on_change.clone() else { continue };
        let name = spec.name.clone();
        let arm = {
            let mut slots = slots.lock().expect("hook slots");
            let slot = slots.entry(name.clone()).or_default();
            slot.latest = Some((spec, generation));
            !std::mem::replace(&mut slot.armed, true)
        };
        if !arm {
            continue; // A run is already waiting out the debounce; it will take the latest change.
        }
        let slots = slots.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hook.debounce).await;
            let (latest, running) = {
                let mut slots = slots.lock().expect("hook slots");
                let slot = slots.get_mut(&name).expect("armed slot");
                slot.armed = false;
                (slot.latest.take(), slot.running.clone())
            };
            let Some((spec, generation)) = latest else { return };
            let _one_at_a_time = running.lock().await;
            run_hook(&spec, &hook, generation).await;
        });
    }
}

/// The whole environment of an `exec` hook: [`HOOK_ENV_PASSED`] from ticketd's own (`var`), the
/// hook's `env` entries, then `TICKETD_TICKET`, `TICKETD_GENERATION` and `TICKETD_FILES`. Nothing
/// else of ticketd's environment (its cloud keys above all) reaches the hook.
pub fn hook_environment(
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
        let pid = std::fs::read_to_string(pid_file).ok().and_then(|t| t.trim().parse::<i32>().ok()).filter(|p| *p > 0);
        match pid {
            None => tracing::warn!(ticket = %name, pid_file = %pid_file.display(), "no pid in the on_change pid_file"),
            Some(pid) => {
                // SAFETY: kill has no memory-safety preconditions; pid is positive, so one process is named.
                let sent = unsafe { libc::kill(pid, *signal) } == 0;
                if sent {
                    tracing::info!(ticket = %name, generation, pid, signal = %signal_name, "signalled on change");
                } else {
                    let e = std::io::Error::last_os_error();
                    tracing::warn!(ticket = %name, pid, signal = %signal_name, error = %e, "cannot signal on change");
                }
            }
        }
    }
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
}
