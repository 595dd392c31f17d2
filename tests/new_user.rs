//! What a new user trips on (issue 17): client commands in a shell without cloud keys, the
//! commands `ticketd dev` and the README print, and a config for `ticketd emulator`.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// `ticketd args...` in a shell that holds no cloud keys (a consumer's, an admin's): only `PATH`.
fn keyless(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).stdin(Stdio::null());
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The daemon's credentials come from the environment (`source = "env"`, as in
/// `config.example.toml`); its clients' shells have none of them.
const ENV_CONFIG: &str = r#"
state_dir = "{dir}/state"
socket = "{dir}/run/ticketd.sock"

[credentials.prod]
vendor = "alibaba"
source = "env"

[credentials.tc]
vendor = "tencent"
source = "env"

[[tickets]]
name = "dash"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
ticket_lifetime = "1h"
token_lifetime = "10m"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/dash.json"

[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
endpoint = "{emulator}"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
registry = "myreg.tencentcloudcr.com"
[[tickets.sinks]]
type = "file"
path = "{dir}/out/registry.json"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue17_status_get_and_the_credential_helper_need_no_cloud_keys() {
    let h = Harness::start().await;
    let config = h.write_config(ENV_CONFIG);
    let config = config.to_str().unwrap();
    let mut daemon = h.spawn(&["run", "-c", config]);
    let token = wait_for("both tokens", WAIT, || {
        read_json(&h.path("out/registry.json"))?;
        read_json(&h.path("out/dash.json")).map(|j| j["access_token"].as_str().unwrap().to_string())
    })
    .await;

    let out = keyless(&["status", "-c", config]).output().unwrap();
    assert!(out.status.success() && text(&out).contains("dash  "), "{}", text(&out));
    // The socket named by a variable, and no config at all.
    let out = keyless(&["status"]).env("TICKETD_SOCKET", h.path("run/ticketd.sock")).output().unwrap();
    assert!(out.status.success() && text(&out).contains("registry  tcr"), "{}", text(&out));
    let out = keyless(&["get", "dash", "-c", config]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), token);
    // The helper answers through the daemon, then (daemon stopped) from the saved state.
    let helper = |input: &str| {
        let mut child = keyless(&["docker-credential", "get"])
            .env("TICKETD_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = helper("https://myreg.tencentcloudcr.com\n");
    assert!(out.status.success(), "{}", text(&out));
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0);
    let out = helper("myreg.tencentcloudcr.com\n");
    assert!(out.status.success(), "{}", text(&out));
}

/// The `README.md` at the crate root.
fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The lines of the fenced block that follows `marker` (an HTML comment) in the README.
fn readme_block(readme: &str, marker: &str) -> Vec<String> {
    let (_, after) = readme.split_once(marker).unwrap_or_else(|| panic!("README.md has no {marker}"));
    let mut lines = after.lines().skip_while(|l| !l.starts_with("```")).skip(1);
    lines.by_ref().take_while(|l| !l.starts_with("```")).map(str::to_string).collect()
}

/// A shell line without its trailing `# comment`.
fn without_comment(line: &str) -> &str {
    line.find(" #").map_or(line, |i| &line[..i]).trim()
}

/// The ticketd arguments of a README command line: `None` when the line does not run ticketd
/// (`cargo test`, `podman ...`), else the words after the program (`ticketd`, `target/.../ticketd`
/// or `cargo run [--release] --`).
fn ticketd_args(line: &str) -> Option<Vec<String>> {
    let words: Vec<&str> = without_comment(line).split_whitespace().collect();
    let rest = match words.as_slice() {
        ["cargo", "run", "--", rest @ ..] | ["cargo", "run", "--release", "--", rest @ ..] => rest,
        [program, rest @ ..] if *program == "ticketd" || program.ends_with("/ticketd") => rest,
        _ => return None,
    };
    Some(rest.iter().map(|w| w.to_string()).collect())
}

/// Every `ticketd` command in the README's `sh` blocks names a subcommand and options that exist.
#[test]
fn issue17_readme_commands_use_subcommands_and_options_that_exist() {
    let readme = readme();
    let mut checked = 0;
    for block in readme.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap();
        for line in block.lines() {
            let Some(args) = ticketd_args(line) else { continue };
            let subcommand = args.first().filter(|a| !a.starts_with('-')).cloned();
            let mut help = Command::new(BIN);
            help.args(subcommand.iter()).arg("--help");
            let help = help.output().unwrap();
            assert!(help.status.success(), "README: `{line}`: {}", text(&help));
            let help = String::from_utf8_lossy(&help.stdout).into_owned();
            for word in &args {
                let word = word.trim_matches(|c| c == '[' || c == ']');
                let Some(flag) = word.strip_prefix('-').map(|_| word.split('=').next().unwrap()) else { continue };
                let listed = help.split(|c: char| c.is_whitespace() || c == ',').any(|w| w == flag);
                assert!(
                    listed,
                    "README: `{line}`: `{flag}` is not an option of `ticketd {}`:\n{help}",
                    subcommand.as_deref().unwrap_or("")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} ticketd commands found in README.md");
}

/// `ticketd dev`, started as the README's quick start says (its default `--dir`, in a fresh
/// directory), with its stdout read line by line.
struct Dev {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Dev {
    fn start(cwd: &std::path::Path) -> Dev {
        let mut child = keyless(&["dev", "--duration", "10m"])
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(cwd.join("dev-stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Dev { child, lines, seen: Vec::new() }
    }

    /// Read lines until `done` holds for what was seen; panics after `WAIT`.
    fn read_until(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = std::time::Instant::now() + WAIT;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("waiting for {what}: {e:?}; dev printed:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `command` with `sh -c` in `cwd`, in a shell without cloud keys; its stdout, or a panic
/// naming the command and what it printed.
fn sh(command: &str, cwd: &std::path::Path, origin: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", command])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{origin}: `{command}` failed ({}):\n{}", out.status, text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.trim().is_empty(), "{origin}: `{command}` printed nothing");
    stdout
}

/// Every command `ticketd dev` prints runs as printed, from any directory and in a shell without
/// keys; every command of the README's quick start runs as printed from the clone; and the
/// README's sample screen is what `dev` prints.
#[test]
#[cfg_attr(not(have_curl), ignore = "needs curl (apt-get install curl)")]
fn issue17_every_command_dev_and_the_readme_print_works_as_printed() {
    let clone = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(clone.path());
    let tickets = ["dev-dashboard", "dev-notebook", "dev-registry"];
    dev.read_until("the banner and every ticket's first token", |seen| {
        seen.iter().any(|l| l == "ticketd dev: Ctrl-C stops.")
            && tickets.iter().all(|t| seen.iter().any(|l| l.contains(&format!("] {t}: wrote token #1 "))))
    });
    let banner_end = dev.seen.iter().position(|l| l == "ticketd dev: Ctrl-C stops.").unwrap();
    let banner: Vec<String> = dev.seen[..=banner_end].to_vec();

    // The banner's commands, as printed.
    let start =
        banner.iter().position(|l| l.ends_with(ticketd::cli::dev::TRY_THESE)).expect("the banner lists commands");
    let commands: Vec<&str> = banner[start + 1..].iter().map_while(|l| l.strip_prefix("  ")).collect();
    assert!(commands.len() >= 4 && commands[0].contains(" status --socket "), "{banner:#?}");
    for command in &commands {
        sh(command, std::path::Path::new("/"), "ticketd dev's banner");
    }

    // The README's quick start, from the clone (the binary `cargo run` built is this one).
    let mut ran = 0;
    for line in readme_block(&readme(), "<!-- quick-start") {
        let line = without_comment(&line);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let command = match ticketd_args(line) {
            Some(args) if args.first().is_some_and(|a| a == "dev") => continue, // it is running
            Some(args) => format!("{BIN} {}", args.join(" ")),
            None if line.starts_with("cargo ") => continue,
            None => line.to_string(),
        };
        let out = sh(&command, clone.path(), "README.md quick start");
        if command.contains(" status ") {
            assert!(out.contains("dev-dashboard"), "{out}");
        }
        ran += 1;
    }
    assert!(ran >= 3, "the README's quick start runs only {ran} commands besides dev");

    // The README's sample screen: the banner line for line (with the README's paths and port),
    // then events of the shapes `dev` prints.
    let exe = std::fs::canonicalize(BIN).unwrap().display().to_string();
    let dir = clone.path().join("ticketd-dev").display().to_string();
    let port = banner[0].rsplit(':').next().unwrap().to_string();
    let sample = readme_block(&readme(), "<!-- dev-screen");
    let shown = |l: &str| {
        l.replace(&exe, "/home/you/ticketd/target/debug/ticketd")
            .replace(&dir, "/home/you/ticketd/ticketd-dev")
            .replace(&format!("127.0.0.1:{port}"), "127.0.0.1:37123")
    };
    let printed: Vec<String> = banner.iter().map(|l| shown(l)).collect();
    assert_eq!(
        sample[..printed.len().min(sample.len())],
        printed[..],
        "README.md's sample screen is not what dev prints"
    );
    let shape = |l: &str| l.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect::<String>();
    let events: Vec<String> = dev.seen[banner_end + 1..].iter().map(|l| shape(l)).collect();
    for line in &sample[printed.len()..] {
        assert!(
            events.contains(&shape(line)),
            "README.md's sample event `{line}` is not one dev printed:\n{events:#?}"
        );
    }

    assert!(Command::new("kill").args(["-TERM", &dev.child.id().to_string()]).status().unwrap().success());
    let status = dev.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// The README names every library the binary links, and only those.
#[test]
#[cfg_attr(not(have_ldd), ignore = "needs ldd (apt-get install libc-bin)")]
fn issue17_the_readme_names_the_libraries_the_binary_links() {
    let out = Command::new("ldd").arg(BIN).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut linked: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !name.starts_with("linux-vdso") && !name.contains("ld-linux"))
        .map(|name| name.split(".so").next().unwrap().to_string())
        .collect();
    linked.sort();
    let readme = readme();
    let (_, sentence) = readme.split_once("`ldd target/debug/ticketd` lists ").expect("README.md says what ldd lists");
    let sentence = sentence.split(" (").next().unwrap();
    let mut named: Vec<String> =
        sentence.split([',', ' ']).filter(|w| w.starts_with("lib")).map(String::from).collect();
    named.sort();
    assert_eq!(named, linked, "README.md: `ldd target/debug/ticketd` lists {sentence}");
}

/// `ticketd emulator --print-config` prints a config that works against it as printed, with the
/// keys it prints, in a shell without keys: saved to a file, it validates, and `ticketd run` gets
/// every ticket's token and refreshes one.
#[test]
fn issue17_the_emulator_prints_a_config_that_works_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator = StopOnDrop(
        keyless(&["emulator", "--listen", "127.0.0.1:0", "--print-config"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("emulator-log.txt")).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut printed = String::new();
    let mut stdout = std::io::BufReader::new(emulator.0.stdout.take().unwrap());
    // Bounded: the emulator prints the config and this line at once, then serves.
    for _ in 0..1000 {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stdout, &mut line).unwrap() == 0 {
            panic!("the emulator exited; it printed:\n{printed}");
        }
        printed.push_str(&line);
        if line.starts_with("# emulator listening on ") {
            break;
        }
    }
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    let config = conf.join("ticketd.toml");
    std::fs::write(&config, &printed).unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = config.to_str().unwrap();

    let out = keyless(&["check-config", "-c", config]).output().unwrap();
    assert!(out.status.success(), "{}\n{printed}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (3 tickets, 2 credential sets"), "{}", text(&out));
    let _daemon = StopOnDrop(
        keyless(&["run", "-c", config])
            .stderr(std::fs::File::create(dir.path().join("daemon-log.txt")).unwrap())
            .spawn()
            .unwrap(),
    );
    let out = conf.join("out");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let generation = |name: &str| {
            read_json(&out.join(format!("{name}.json"))).and_then(|j| j["generation"].as_u64()).unwrap_or(0)
        };
        if generation("emulator-dashboard") >= 2
            && generation("emulator-notebook") >= 1
            && generation("emulator-registry") >= 1
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refreshed token in {}; daemon log:\n{}",
            out.display(),
            std::fs::read_to_string(dir.path().join("daemon-log.txt")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(read_json(&conf.join("docker/config.json")).unwrap()["auths"]["emulator.tencentcloudcr.com"].is_object());
}

/// A child process, killed and reaped when the test ends, passed or not.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
