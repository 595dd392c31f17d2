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
