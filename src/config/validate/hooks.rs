//! A ticket's `on_change` hook: the program or signal to send, its environment, its timings.

use std::time::Duration;

use crate::config::check::{Checker, names_a_file};
use crate::config::defaults::{DEFAULT_HOOK_DEBOUNCE, DEFAULT_HOOK_TIMEOUT};
use crate::config::locate::KeyPath;
use crate::config::raw::RawHook;
use crate::config::ticket::HookSpec;

pub(super) fn hook(c: &mut Checker<'_>, raw: &RawHook, at: &KeyPath) -> Option<HookSpec> {
    let before = c.problems.len();
    // The program is a path (relative ones against the config file's directory); a bare name is
    // refused, since there is no PATH search.
    let mut exec = raw.exec.clone();
    if let Some(argv) = &mut exec {
        match argv.first_mut() {
            None => c.report(&at.key("exec"), "needs at least the program to run"),
            Some(p) if !p.contains('/') || !names_a_file(p) => c.report(
                &at.key("exec"),
                format!(
                    "`{p}`: give the program's path, absolute or relative to the config file's directory \
                     (e.g. \"/usr/bin/{p}\" or \"./{p}\"; no shell, no PATH search)"
                ),
            ),
            Some(p) => match c.path(p, &at.key("exec")).map(|path| path.into_os_string().into_string()) {
                Some(Ok(resolved)) => *p = resolved,
                Some(Err(_)) => c.report(&at.key("exec"), "the program's resolved path is not UTF-8"),
                None => {}
            },
        }
    }
    let signal = match raw.signal.as_deref() {
        None => None,
        Some(name) => match signal_number(name) {
            Some(n) => Some((n, name.trim_start_matches("SIG").to_string())),
            None => {
                c.report(
                    &at.key("signal"),
                    format!("unknown signal `{name}` (HUP, USR1, USR2, TERM, INT, QUIT, WINCH)"),
                );
                None
            }
        },
    };
    match (&raw.signal, &raw.pid_file) {
        (Some(_), None) => c.report(&at.key("pid_file"), "is required with `signal`"),
        (None, Some(_)) => c.report(&at.key("signal"), "is required with `pid_file`"),
        _ => {}
    }
    if raw.exec.is_none() && raw.signal.is_none() && raw.pid_file.is_none() {
        c.report(at, "needs `exec`, or `signal` with `pid_file`");
    }
    let timeout = c.duration(
        &raw.timeout,
        &at.key("timeout"),
        DEFAULT_HOOK_TIMEOUT,
        Duration::from_millis(100),
        Duration::from_secs(3600),
        "a hook timeout",
    );
    let debounce = c.duration(
        &raw.debounce,
        &at.key("debounce"),
        DEFAULT_HOOK_DEBOUNCE,
        Duration::ZERO,
        Duration::from_secs(3600),
        "a hook debounce",
    );
    let mut env = Vec::new();
    for (name, value) in raw.env.iter().flatten() {
        let key = at.key("env").key(name);
        let valid_name = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_name {
            c.report(&key, "is not a variable name (letters, digits and `_`, not starting with a digit)");
        } else if name.starts_with("TICKETD_") {
            c.report(&key, "`TICKETD_*` variables are set by ticketd itself");
        } else if value.contains('\0') {
            c.report(&key, "the value holds a NUL byte");
        } else {
            env.push((name.clone(), value.clone()));
        }
    }
    let pid_file = raw.pid_file.as_deref().and_then(|p| c.path(p, &at.key("pid_file")));
    (c.problems.len() == before).then(|| HookSpec {
        exec,
        env,
        signal,
        pid_file,
        timeout: timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT),
        debounce: debounce.unwrap_or(DEFAULT_HOOK_DEBOUNCE),
    })
}

fn signal_number(name: &str) -> Option<i32> {
    use signal_hook::consts::*;
    Some(match name.trim_start_matches("SIG") {
        "HUP" => SIGHUP,
        "USR1" => SIGUSR1,
        "USR2" => SIGUSR2,
        "TERM" => SIGTERM,
        "INT" => SIGINT,
        "QUIT" => SIGQUIT,
        "WINCH" => SIGWINCH,
        _ => return None,
    })
}
