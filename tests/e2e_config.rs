//! The config file as the real binary reads it: every problem in one run (`check-config`, a
//! refused reload), and relative paths resolved against the config file's directory.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// A good config: one SLS ticket on the emulator, state and sink in the temp dir. Its
/// `ticket_lifetime` alone is valid: the token's default follows it (issue #17 item 5).
const GOOD: &str = r#"
state_dir = "{dir}/state"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "one"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/one.json"
"#;

/// Problems of every sort, one per line noted (line: what).
const BAD: &str = r#"state_dir = 5
stat_dir = "/x"
[credentials.prod]
vendor = "alibaba"
[[tickets]]
name = "a"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
token_lifetime = 600
ticket_lifetme = "1h"
required = "yes"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/a.json"
mode = 600
[[tickets]]
name = "b"
kind = "sls"
credentials = "nope"
endpoint = "{emulator}"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/a.json"
"#;

/// What `BAD` must be told, in this order.
fn bad_problems(file: &str, dir: &str) -> Vec<String> {
    [
        "1:1: state_dir: is an integer, expected a string".to_string(),
        "2:1: stat_dir: unknown key; did you mean `state_dir`?".to_string(),
        "10:1: tickets[0].token_lifetime: is an integer, expected a string: a duration in quotes".to_string(),
        "11:1: tickets[0].ticket_lifetme: unknown key; did you mean `ticket_lifetime`?".to_string(),
        "12:1: tickets[0].required: is a string, expected a boolean".to_string(),
        "16:1: tickets[0].sinks[0].mode: is an integer, expected a string: an octal mode in quotes".to_string(),
        "20:1: tickets[1].credentials: unknown credentials `nope`".to_string(),
        format!(
            "24:1: tickets[1].sinks[0].path: {dir}/out/a.json is written by another sink too (tickets[0].sinks[0].path, line 15)"
        ),
    ]
    .into_iter()
    .map(|p| format!("{file}:{p}"))
    .collect()
}

/// The lines of `text` that name a problem in `file`, in order.
fn problem_lines<'t>(text: &'t str, file: &str) -> Vec<&'t str> {
    text.lines().map(str::trim_start).filter(|l| l.starts_with(&format!("{file}:"))).collect()
}

fn assert_all_in_order(found: &[&str], want: &[String], context: &str) {
    assert_eq!(found.len(), want.len(), "{context}");
    for (f, w) in found.iter().zip(want) {
        assert!(f.starts_with(w.as_str()), "{f}\n  does not start with\n{w}\n{context}");
    }
}

/// Issue #17 item 10: `check-config` reports every problem of the file in one run, in file order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_check_config_reports_every_problem_in_one_run_in_file_order() {
    let h = Harness::start().await;
    let path = h.write_config(BAD);
    let out = h.command(&["check-config", "-c", path.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let file = path.display().to_string();
    let want = bad_problems(&file, &h.dir.path().display().to_string());
    assert!(err.starts_with(&format!("{} problems in the configuration:", want.len())), "{err}");
    assert_all_in_order(&problem_lines(&err, &file), &want, &err);
}

/// Issue #17 item 10: a reload of a file with many problems keeps the running config and logs
/// every problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_refused_reload_logs_every_problem_and_keeps_running() {
    let h = Harness::start().await;
    let path = h.write_config(GOOD);
    let mut daemon = h.spawn(&["run", "-c", path.to_str().unwrap()]);
    wait_for("the first token", WAIT, || read_json(&h.path("out/one.json"))).await;
    h.write_config(BAD);
    daemon.signal("HUP");
    let log =
        wait_for("the refused reload", WAIT, || Some(daemon.log_text()).filter(|t| t.contains("reload refused"))).await;
    let file = path.display().to_string();
    let want = bad_problems(&file, &h.dir.path().display().to_string());
    assert_all_in_order(&problem_lines(&log, &file), &want, &log);
    // Still serving the first config: its ticket is there, the reloaded one's sink is not.
    assert!(read_json(&h.path("out/one.json")).is_some());
    assert!(!h.path("out/a.json").exists());
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}

/// Every path key relative: resolved against the config file's directory (`conf/`).
const RELATIVE: &str = r#"
state_dir = "state"
socket = "run/ticketd.sock"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "one"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"
on_change = { exec = ["./hook.sh"], debounce = "0s" }

[[tickets.sinks]]
type = "file"
path = "out/one.json"

[[tickets.sinks]]
type = "file"
path = "./out/one.token"
format = "token"
"#;

const SECOND_RELATIVE: &str = r#"
[[tickets]]
name = "two"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"

[[tickets.sinks]]
type = "file"
path = "out/two.json"
"#;

/// Issue #17 item 11: the real binary, run from another directory with a relative `-c`, puts the
/// state, socket and sinks next to the config file and runs the hook found there; `check-config`,
/// `status` and a reload from elsewhere resolve the same way. Nothing lands in the current
/// directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_relative_paths_land_next_to_the_config_file_from_any_current_directory() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start().await;
    let conf = h.path("conf");
    let elsewhere = h.path("elsewhere");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let write = |body: &str| std::fs::write(conf.join("ticketd.toml"), body.replace("{emulator}", &h.emulator.url()));
    write(RELATIVE).unwrap();
    let marker = h.path("hooked");
    let hook = conf.join("hook.sh");
    std::fs::write(&hook, format!("#!/bin/sh\necho \"$TICKETD_TICKET\" > {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_arg = "../conf/ticketd.toml";

    let out = h.command(&["check-config", "-c", config_arg]).current_dir(&elsewhere).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("state in {}", conf.join("state").display())), "{text}");

    let mut daemon = h.spawn_in(&elsewhere, &["run", "-c", config_arg]);
    wait_for("the token next to the config", WAIT, || read_json(&conf.join("out/one.json"))).await;
    wait_for("the hook next to the config", WAIT, || std::fs::read_to_string(&marker).ok()).await;
    assert!(conf.join("out/one.token").is_file());
    assert!(conf.join("state/state.json").is_file());
    assert!(conf.join("run/ticketd.sock").exists());

    let out = h.command(&["status", "-c", config_arg]).current_dir(&elsewhere).output().unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{status}{}", String::from_utf8_lossy(&out.stderr));
    assert!(status.contains("one"), "{status}");

    // A reload (the daemon's current directory is still `elsewhere`) resolves the same way.
    write(&format!("{RELATIVE}{SECOND_RELATIVE}")).unwrap();
    daemon.signal("HUP");
    wait_for("the reloaded ticket next to the config", WAIT, || read_json(&conf.join("out/two.json"))).await;

    let stray: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(stray.is_empty(), "files in the current directory: {stray:?}");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
}
