//! `on_change` hooks: after every sink of a ticket holds a new token, run a program (argv, no
//! shell) and/or signal a process named by a pid file. Debounced per ticket, bounded by a timeout,
//! serialized per ticket, and run on tasks of their own: a slow or failing hook is logged and never
//! holds up the scheduler or another ticket. The token is never put in argv or the environment;
//! the hook gets the ticket name, the generation and the sink paths.

use std::collections::HashMap;

use compact_str::CompactString;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::config::{HookSpec, TicketSpec};

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

async fn run_hook(spec: &TicketSpec, hook: &HookSpec, generation: u64) {
    let name = &spec.name;
    if let Some(argv) = &hook.exec {
        let files: Vec<String> = spec.sinks.iter().map(|s| s.path().display().to_string()).collect();
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env("TICKETD_TICKET", name)
            .env("TICKETD_GENERATION", generation.to_string())
            .env("TICKETD_FILES", files.join(":"))
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
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
