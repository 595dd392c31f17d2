//! Tests of the config validation: every section's problems, with file, line, key.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::document::{parse as parse_by_pieces, parse_whole};
use crate::config::check::Checker;
use crate::config::split;
use crate::config::*;
use crate::credentials::Environment;
use crate::credentials::sources::chain_members;

fn env() -> HashMap<String, String> {
    HashMap::from([
        (ALIBABA_ACCESS_KEY_ID_ENV.to_string(), "id".to_string()),
        (ALIBABA_ACCESS_KEY_SECRET_ENV.to_string(), "secret".to_string()),
    ])
}

const GOOD: &str = r#"
state_dir = "/tmp/ticketd-test"

[credentials.prod]
vendor = "alibaba"

[[tickets]]
name = "ops-dashboard"
kind = "sls"
credentials = "prod"
endpoint = "cn-shanghai.log.aliyuncs.com"
ticket_lifetime = "30d"
token_lifetime = "1d"
console_url = "https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d"
console_params = { hideTopbar = "true", hideSidebar = true }

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/ops-dashboard.json"
format = "json"
mode = "0640"
"#;

#[test]
fn a_good_config_validates() {
    let config = parse(GOOD, "t.toml", &env()).unwrap();
    assert_eq!(config.tickets.len(), 1);
    let t = &config.tickets[0];
    let ApiSpec::Sls(sls) = &t.api else { panic!("not sls") };
    assert_eq!(sls.endpoint.base.as_str(), "https://cn-shanghai.log.aliyuncs.com/");
    assert_eq!(sls.ticket_lifetime, Duration::from_secs(30 * 86400));
    assert_eq!(sls.ticket_renew_before, Duration::from_secs(86400));
    assert_eq!(sls.console_params, vec![("hideTopbar".into(), "true".into()), ("hideSidebar".into(), "true".into())]);
    let SinkSpec::File(f) = &t.sinks[0] else { panic!("not a file sink") };
    assert_eq!(f.mode, 0o640);
}

#[test]
fn section_by_section_parsing_gives_what_the_whole_document_gives() {
    let credentials = "[credentials.prod]\nvendor = \"alibaba\"\n";
    let tickets = "[[tickets]]\nname = \"a\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpont = \"x\"\n\
                       [[tickets]]\nname = \"a\"\nkind = \"dsw\"\ncredentials = \"nope\"\n\
                       [tickets.on_change]\nsignal = \"SIGNOPE\"\n\
                       [rate_limits]\nalibaba = 0\n";
    let bad_tickets = format!("{credentials}{tickets}");
    let example = include_str!("../../../config.example.toml");
    // Tickets as an inline array: checked like sections (review F11: they were dropped).
    let inline = format!(
        "tickets = [{{ name = \"a\", kind = \"sls\", credentials = \"prod\", endpont = \"x\" }},\n           {{ name = \"b\", kind = \"dsw\", credentials = \"nope\" }}]\n{credentials}"
    );
    let inline_problems = problems(&inline, &env()).join("\n");
    assert!(inline_problems.contains("tickets[0].endpont: unknown key"), "{inline_problems}");
    assert!(inline_problems.contains("tickets[1].credentials: unknown credentials `nope`"), "{inline_problems}");
    let whole = env_finish(parse_whole(Checker::new("t.toml", &inline, None)), &both_env());
    assert_eq!(env_finish(parse_by_pieces(&inline, "t.toml", None), &both_env()), whole, "{inline}");
    for text in [GOOD, DSW_TCR, &bad_tickets, example, &format!("{GOOD}\n{tickets}")] {
        assert!(split::split(text).tickets() > 0);
        let whole = env_finish(parse_whole(Checker::new("t.toml", text, None)), &both_env());
        let by_sections = env_finish(parse_by_pieces(text, "t.toml", None), &both_env());
        assert_eq!(by_sections, whole, "{text}");
    }
    let found = problems(&bad_tickets, &env()).join("\n");
    for expected in [
        "t.toml:7:1: tickets[0].endpont: unknown key",
        "t.toml:9:1: tickets[1].name: duplicate ticket name `a`",
        "t.toml:11:1: tickets[1].credentials: unknown credentials `nope`",
        "t.toml:8:1: tickets[1].instance_id: is required",
        "t.toml:15:1: rate_limits.alibaba: 0 is not a rate",
    ] {
        assert!(found.contains(expected), "{expected} in:\n{found}");
    }
    let lines: Vec<&str> = found.lines().map(|l| l.split(':').nth(1).unwrap()).collect();
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l.parse::<usize>().unwrap());
    assert_eq!(lines, sorted, "problems are listed in file order");
}

#[test]
fn a_syntax_error_inside_a_ticket_names_its_line_in_the_file() {
    let text = format!("{GOOD}\n[[tickets]]\nname = \"b\"\nkind = sls\n");
    let line = text.lines().count();
    let found = problems(&text, &env()).join("\n");
    assert!(found.starts_with(&format!("t.toml:{line}:8: string values must be quoted")), "{found}");
}

/// Issue #17 item 10: one config with problems of every sort (types, unknown keys, a clash of
/// sinks in a rejected ticket, a misplaced section) reports each of them, in file order.
#[test]
fn issue_17_every_problem_of_a_config_is_reported_in_one_pass_in_file_order() {
    let text = "state_dir = 5\n\
                stat_dir = \"/x\"\n\
                [credentials.prod]\nvendor = \"alibaba\"\n\
                [[tickets]]\nname = \"a\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n\
                token_lifetime = 600\n\
                ticket_lifetme = \"1h\"\n\
                required = \"yes\"\n\
                [[tickets.sinks]]\ntype = \"file\"\npath = \"/run/t/a.json\"\nmode = 600\n\
                [[tickets]]\nname = \"b\"\nkind = \"sls\"\ncredentials = \"nope\"\nendpoint = \"http://127.0.0.1:1\"\n\
                [[tickets.sinks]]\ntype = \"file\"\npath = \"/run/t/a.json\"\n";
    // A quoted header is a ticket like any other: the same problems.
    let whole = format!(
        "{text}[[\"tickets\"]]\nname = \"c\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n"
    );
    assert_eq!((split::split(text).tickets(), split::split(&whole).tickets()), (2, 3));
    let want = [
        "t.toml:1:1: state_dir: is an integer, expected a string",
        "t.toml:2:1: stat_dir: unknown key; did you mean `state_dir`?",
        "t.toml:10:1: tickets[0].token_lifetime: is an integer, expected a string: a duration in quotes",
        "t.toml:11:1: tickets[0].ticket_lifetme: unknown key; did you mean `ticket_lifetime`?",
        "t.toml:12:1: tickets[0].required: is a string, expected a boolean",
        "t.toml:16:1: tickets[0].sinks[0].mode: is an integer, expected a string: an octal mode in quotes",
        "t.toml:20:1: tickets[1].credentials: unknown credentials `nope`",
        "t.toml:24:1: tickets[1].sinks[0].path: /run/t/a.json is written by another sink too (tickets[0].sinks[0].path, line 15)",
    ];
    for text in [text, &whole] {
        let found = problems(text, &env());
        assert_eq!(found.len(), want.len(), "{found:#?}");
        for (f, w) in found.iter().zip(want) {
            assert!(f.starts_with(w), "{f}\n  does not start with\n{w}");
        }
    }
    // A sink with no ticket above it, in the words of the file.
    let found = problems(
        "[credentials.prod]\nvendor = \"alibaba\"\n[[tickets.sinks]]\ntype = \"file\"\npath = \"/x\"\n",
        &env(),
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("t.toml:3:3: tickets: `[[tickets.sinks]]` comes before any `[[tickets]]`"),
        "{found:#?}"
    );
}

/// Issue #17 item 10: a syntax error in a ticket leaves the other tickets checked (each
/// ticket section is parsed alone), and every problem keeps its line; a `[[tickets]]` after a
/// sink section with no ticket above it is explained, not just "duplicate key".
#[test]
fn issue_17_syntax_errors_in_tickets_do_not_hide_the_other_problems() {
    let text = "state_dir = \"/tmp/s\"\nstat_dir = \"x\"\n[credentials.prod]\nvendor = \"alibaba\"\n\
                [[tickets]]\nname = \"a\"\nkind = sls\n\
                [[tickets]]\nname = \"b\"\nkind = \"sls\n\
                [[tickets]]\nname = \"c\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\ntoken_lifetime = 5\n";
    let found = problems(text, &env());
    let want = [
        "t.toml:2:1: stat_dir: unknown key; did you mean `state_dir`?",
        "t.toml:7:8: string values must be quoted",
        "t.toml:10:12: invalid basic string",
        "t.toml:16:1: tickets[2].token_lifetime: is an integer, expected a string",
    ];
    assert_eq!(found.len(), want.len(), "{found:#?}");
    for (f, w) in found.iter().zip(want) {
        assert!(f.starts_with(w), "{f}\n  does not start with\n{w}");
    }
    let text = "[credentials.prod]\nvendor = \"alibaba\"\n[[tickets.sinks]]\ntype = \"file\"\npath = \"/x\"\n\
                [[tickets]]\nname = \"a\"\n";
    assert_eq!(
        problems(text, &env()),
        ["t.toml:6:3: `[[tickets]]` comes after a ticket's sink or hook section (line 3) that has no `[[tickets]]` \
          above it: a sink or hook belongs to the ticket whose `[[tickets]]` header is above it, so start each \
          ticket with `[[tickets]]` and its keys"]
    );
    let found = problems("socket = \"/a\"\nsocket = \"/b\"\n", &env());
    assert_eq!(found, ["t.toml:2:1: duplicate key `socket`: it is already defined above"]);
}

/// Issue #17 item 5: a short `ticket_lifetime` alone is valid (the token's default follows it);
/// only a value written in the file is refused, and the message points at it.
#[test]
fn issue_17_lifetime_defaults_follow_the_ticket_and_only_written_values_are_refused() {
    let with = |keys: &str| GOOD.replace("ticket_lifetime = \"30d\"\ntoken_lifetime = \"1d\"\n", keys);
    let lifetimes = |keys: &str| {
        let config = parse(&with(keys), "t.toml", &env()).unwrap_or_else(|p| panic!("{keys}: {p}"));
        let ApiSpec::Sls(sls) = &config.tickets[0].api else { panic!("not sls") };
        [sls.ticket_lifetime, sls.token_lifetime, sls.ticket_renew_before].map(|d| d.as_secs())
    };
    assert_eq!(lifetimes("ticket_lifetime = \"12h\"\n"), [43_200, 43_200, 14_400]);
    assert_eq!(lifetimes("ticket_lifetime = \"10s\"\n"), [10, 10, 3]);
    assert_eq!(lifetimes("token_lifetime = \"2h\"\n"), [30 * 86_400, 7_200, 7_200]);
    assert_eq!(lifetimes(""), [30 * 86_400, 86_400, 86_400]);
    let found = problems(&with("ticket_lifetime = \"12h\"\ntoken_lifetime = \"13h\"\n"), &env());
    assert_eq!(
        found,
        [
            "t.toml:13:1: tickets[0].token_lifetime: 13h is longer than ticket_lifetime (12h, line 12); SLS caps a token at its ticket"
        ]
    );
}

/// Issue #17 item 12: `ticket_renew_before` is at most a third of the ticket, as documented.
#[test]
fn issue_17_ticket_renew_before_is_at_most_a_third_of_the_ticket_lifetime() {
    let with = |keys: &str| GOOD.replace("ticket_lifetime = \"30d\"\ntoken_lifetime = \"1d\"\n", keys);
    let config = parse(&with("ticket_lifetime = \"12h\"\nticket_renew_before = \"4h\"\n"), "t.toml", &env()).unwrap();
    let ApiSpec::Sls(sls) = &config.tickets[0].api else { panic!("not sls") };
    assert_eq!(sls.ticket_renew_before, Duration::from_secs(4 * 3600));
    let found = problems(&with("ticket_lifetime = \"12h\"\nticket_renew_before = \"5h\"\n"), &env());
    assert_eq!(
        found,
        [
            "t.toml:13:1: tickets[0].ticket_renew_before: 5h is longer than a third of ticket_lifetime (12h, line 12) allows (max 4h)"
        ]
    );
    let found = problems(&with("ticket_renew_before = \"11d\"\n"), &env());
    assert_eq!(
        found,
        [
            "t.toml:12:1: tickets[0].ticket_renew_before: 11d is longer than a third of ticket_lifetime (30days, the default) allows (max 10days)"
        ]
    );
}

/// Issue #17 item 3: an Alibaba SLS host of a region that issues no tickets is refused with
/// the reason and the two accepted hosts; Shanghai and Singapore (public, intranet, share),
/// loopback and custom hosts pass.
#[test]
fn issue_17_sls_tickets_come_from_the_shanghai_or_singapore_endpoint() {
    let with = |endpoint: &str| GOOD.replace("cn-shanghai.log.aliyuncs.com", endpoint);
    for good in [
        "cn-shanghai.log.aliyuncs.com",
        "ap-southeast-1.log.aliyuncs.com",
        "cn-shanghai-intranet.log.aliyuncs.com",
        "ap-southeast-1-intranet.log.aliyuncs.com",
        "cn-shanghai-share.log.aliyuncs.com",
        "https://CN-Shanghai.log.aliyuncs.com.",
        "http://127.0.0.1:8080",
        "http://localhost:1/prefix",
        "sls-proxy.example.com",
        "https://log.example.com:8443",
    ] {
        parse(&with(good), "t.toml", &env()).unwrap_or_else(|p| panic!("{good}: {p}"));
    }
    let accepted = "SLS issues tickets (CreateTicket, RefreshToken) only at the endpoint of China (Shanghai) or \
                    Singapore: use cn-shanghai.log.aliyuncs.com or ap-southeast-1.log.aliyuncs.com";
    for (bad, why) in [
        ("cn-hangzhou.log.aliyuncs.com", "`cn-hangzhou.log.aliyuncs.com` is the SLS endpoint of region cn-hangzhou; "),
        (
            "cn-hangzhou-intranet.log.aliyuncs.com",
            "`cn-hangzhou-intranet.log.aliyuncs.com` is the SLS endpoint of region cn-hangzhou; ",
        ),
        (
            "https://ap-southeast-5.log.aliyuncs.com/",
            "`ap-southeast-5.log.aliyuncs.com` is the SLS endpoint of region ap-southeast-5; ",
        ),
        (
            "us-west-1-share.log.aliyuncs.com",
            "`us-west-1-share.log.aliyuncs.com` is the SLS endpoint of region us-west-1; ",
        ),
        (
            "myproj.cn-beijing.log.aliyuncs.com",
            "`myproj.cn-beijing.log.aliyuncs.com` is the SLS endpoint of region cn-beijing; ",
        ),
        ("log-global.aliyuncs.com", "`log-global.aliyuncs.com` is not a region's SLS endpoint; "),
    ] {
        let found = problems(&with(bad), &env());
        assert_eq!(found.len(), 1, "{bad}: {found:#?}");
        assert!(
            found[0].starts_with(&format!("t.toml:11:1: tickets[0].endpoint: {why}{accepted}")),
            "{bad}: {found:#?}"
        );
    }
    let found = problems(&with("myproj.cn-shanghai.log.aliyuncs.com"), &env());
    assert_eq!(
        found,
        ["t.toml:11:1: tickets[0].endpoint: `myproj.cn-shanghai.log.aliyuncs.com` names a project (`myproj.`), \
          which CreateTicket and RefreshToken do not take: use cn-shanghai.log.aliyuncs.com"]
    );
}

/// Issue #17 item 11: every path key, relative, is resolved against the config file's
/// directory (`out/x` and `./out/x` alike, so they clash); without a file it is refused.
#[test]
fn issue_17_relative_paths_resolve_against_the_config_file_s_directory() {
    let text = "state_dir = \"state\"\nsocket = \"./run/t.sock\"\n\
                [credentials.prod]\nvendor = \"alibaba\"\nsource = \"profile\"\nprofile_file = \"keys/creds.ini\"\n\
                [[tickets]]\nname = \"a\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n\
                [tickets.on_change]\nexec = [\"bin/reload\", \"now\"]\n\
                [[tickets.sinks]]\ntype = \"file\"\npath = \"out/dash.json\"\n\
                [[tickets.sinks]]\ntype = \"file\"\npath = \"./out/dash.token\"\nformat = \"token\"\n\
                [[tickets.sinks]]\ntype = \"file\"\npath = \"/abs/dash.env\"\nformat = \"env\"\n\
                [[tickets]]\nname = \"b\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n\
                [tickets.on_change]\nsignal = \"HUP\"\npid_file = \"../run/nginx.pid\"\n";
    let base = Path::new("/etc/ticketd");
    let config =
        env_finish(super::parse(text, "t.toml", Some(base.to_path_buf())), &env()).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(config.state_dir, Path::new("/etc/ticketd/state"));
    assert_eq!(config.socket.unwrap().path, Path::new("/etc/ticketd/run/t.sock"));
    let SourceSpec::Profile { file, .. } = &config.credentials["prod"].source else { panic!("not profile") };
    assert_eq!(file.as_deref(), Some(Path::new("/etc/ticketd/keys/creds.ini")));
    let paths: Vec<&Path> = config.tickets[0].sinks.iter().map(SinkSpec::path).collect();
    assert_eq!(
        paths,
        [Path::new("/etc/ticketd/out/dash.json"), Path::new("/etc/ticketd/out/dash.token"), Path::new("/abs/dash.env")]
    );
    let hook = config.tickets[0].consumers.on_change.as_ref().unwrap();
    assert_eq!(hook.exec.as_deref(), Some(&["/etc/ticketd/bin/reload".to_string(), "now".to_string()][..]));
    let hook = config.tickets[1].consumers.on_change.as_ref().unwrap();
    assert_eq!(hook.pid_file.as_deref(), Some(Path::new("/etc/ticketd/../run/nginx.pid")));

    // A sink or program path must end in a file name.
    for (from, to) in [
        ("path = \"out/dash.json\"", "path = \".\""),
        ("path = \"out/dash.json\"", "path = \"out/\""),
        ("path = \"out/dash.json\"", "path = \"out/..\""),
    ] {
        let found = env_finish(super::parse(&text.replace(from, to), "t.toml", Some(base.to_path_buf())), &env())
            .unwrap_err()
            .to_string();
        assert!(
            found.contains("tickets[0].sinks[0].path: `")
                && found.contains("` names a directory: give the sink's file path"),
            "{to}: {found}"
        );
    }
    let found = env_finish(
        super::parse(&text.replace("\"bin/reload\"", "\"bin/\""), "t.toml", Some(base.to_path_buf())),
        &env(),
    )
    .unwrap_err()
    .to_string();
    assert!(found.contains("tickets[0].on_change.exec: `bin/`: give the program's path"), "{found}");
    // `out/x` and `./out/x` are the same file.
    let clash = text.replace("path = \"./out/dash.token\"", "path = \"./out/dash.json\"");
    let found = env_finish(super::parse(&clash, "t.toml", Some(base.to_path_buf())), &env()).unwrap_err().to_string();
    assert!(found.contains("tickets[0].sinks[1].path: /etc/ticketd/out/dash.json is written by another sink too (tickets[0].sinks[0].path, line 16)"), "{found}");
    // A bare program name is not a path (no PATH search).
    let bare = text.replace("exec = [\"bin/reload\"", "exec = [\"reload\"");
    let found = env_finish(super::parse(&bare, "t.toml", Some(base.to_path_buf())), &env()).unwrap_err().to_string();
    assert!(found.contains("t.toml:13:1: tickets[0].on_change.exec: `reload`: give the program's path, absolute or relative to the config file's directory"), "{found}");
    // Text not read from a file: each relative path is refused by key.
    let found = problems(text, &env());
    for key in [
        "state_dir",
        "socket",
        "credentials.prod.profile_file",
        "tickets[0].on_change.exec",
        "tickets[0].sinks[0].path",
        "tickets[0].sinks[1].path",
        "tickets[1].on_change.pid_file",
    ] {
        assert!(
            found.iter().any(|p| p.contains(&format!(" {key}: `"))
                && p.contains("is relative, and this configuration was not read from a file")),
            "{key}: {found:#?}"
        );
    }
    assert_eq!(found.len(), 7, "{found:#?}");
}

/// Text not read from a file (no directory for relative paths).
/// A valid file is checked without indexing the whole file for lines (which a message that
/// names a line needs): at 100,000 tickets that index peaked the daemon at 341 MiB, against 29.
#[test]
fn a_valid_file_is_checked_without_indexing_it_for_lines() {
    let with = |keys: &str| GOOD.replace("ticket_lifetime = \"30d\"\ntoken_lifetime = \"1d\"\n", keys);
    let keys = "ticket_lifetime = \"12h\"\ntoken_lifetime = \"1h\"\nticket_renew_before = \"2h\"\n";
    let before = crate::config::locate::BUILT.with(std::cell::Cell::get);
    parse(&with(keys), "t.toml", &env()).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(crate::config::locate::BUILT.with(std::cell::Cell::get), before, "a locator was built");
    // A problem that names a line still gets it.
    let found = parse(&with("ticket_lifetime = \"12h\"\nticket_renew_before = \"5h\"\n"), "t.toml", &env())
        .unwrap_err()
        .to_string();
    assert!(found.contains("a third of ticket_lifetime (12h, line "), "{found}");
}

/// The file checked with the environment `env` too, as the daemon and `check-config` load it.
fn parse(text: &str, file: &str, env: &dyn Environment) -> Result<Config, Problems> {
    env_finish(super::parse(text, file, None), env)
}

fn env_finish(checked: crate::config::Checked<'_>, env: &dyn Environment) -> Result<Config, Problems> {
    crate::credentials::environment::finish(checked, env)
}

fn problems(text: &str, env: &HashMap<String, String>) -> Vec<String> {
    parse(text, "t.toml", env).unwrap_err().0.iter().map(|p| p.to_string()).collect()
}

#[test]
fn metrics_ticket_series_is_a_count_of_tickets() {
    assert_eq!(parse(GOOD, "t.toml", &env()).unwrap().metrics_ticket_series, DEFAULT_METRICS_TICKET_SERIES);
    for n in [0, 5, 100_000] {
        let text = format!("metrics_ticket_series = {n}\n{GOOD}");
        assert_eq!(parse(&text, "t.toml", &env()).unwrap().metrics_ticket_series, n);
    }
    // Each bad value is exactly one problem, on its line, at the key, saying what is wrong (a value
    // of the wrong type is the parser's problem).
    for (bad, message) in [
        ("-1", "-1 is not a number of tickets (0 or more; 0 shows no series per ticket)"),
        ("\"many\"", "is a string, expected an integer"),
        ("1.5", "is a number, expected an integer"),
    ] {
        assert_eq!(
            problems(&format!("metrics_ticket_series = {bad}\n{GOOD}"), &env()),
            [format!("t.toml:1:1: metrics_ticket_series: {message}")],
            "{bad}"
        );
    }
}

#[test]
fn metrics_listen_takes_an_address_and_port() {
    assert_eq!(parse(GOOD, "t.toml", &env()).unwrap().metrics_listen, None);
    for (given, want) in
        [("127.0.0.1:9464", "127.0.0.1:9464"), ("[::]:9100", "[::]:9100"), ("0.0.0.0:80", "0.0.0.0:80")]
    {
        let text = format!("metrics_listen = \"{given}\"\n{GOOD}");
        let config = parse(&text, "t.toml", &env()).unwrap();
        assert_eq!(config.metrics_listen, Some(want.parse().unwrap()));
    }
    for bad in ["localhost:9464", "127.0.0.1", "127.0.0.1:0", ":9464"] {
        let text = format!("metrics_listen = \"{bad}\"\n{GOOD}");
        let found = problems(&text, &env()).join("\n");
        assert!(found.contains("t.toml:1:1: metrics_listen:"), "{bad}: {found}");
    }
}

#[test]
fn rate_limits_default_to_the_vendor_rates_and_take_a_range() {
    let limits = parse(GOOD, "t.toml", &env()).unwrap().rate_limits;
    assert_eq!((limits.alibaba, limits.tencent), (50, 100));
    let text = format!("{GOOD}\n[rate_limits]\nalibaba = 1000000\n");
    let limits = parse(&text, "t.toml", &env()).unwrap().rate_limits;
    assert_eq!((limits.alibaba, limits.tencent), (1_000_000, 100));
    let text = format!("{GOOD}\n[rate_limits]\nalibaba = 0\ntencent = 2000000\nsls = 5\n");
    let first = GOOD.lines().count() + 3;
    let found = problems(&text, &env()).join("\n");
    let expected = [
        format!("t.toml:{first}:1: rate_limits.alibaba: 0 is not a rate from 1 to 1000000"),
        format!("t.toml:{}:1: rate_limits.tencent: 2000000 is not a rate", first + 1),
        format!("t.toml:{}:1: rate_limits.sls: unknown key", first + 2),
    ];
    for e in expected {
        assert!(found.contains(&e), "{e} not in {found}");
    }
}

#[test]
fn every_problem_is_reported_at_once_with_its_line() {
    let text = GOOD
        .replace("ticket_lifetime = \"30d\"", "ticket_lifetime = \"31d\"\ncolour = \"blue\"")
        .replace("token_lifetime = \"1d\"", "token_lifetime = \"2d\"")
        .replace("cn-shanghai.log.aliyuncs.com\"", "http://10.0.0.1:8080\"")
        .replace("mode = \"0640\"", "mode = \"0640\"\nshape = \"round\"");
    let found = problems(&text, &env());
    let joined = found.join("\n");
    assert!(joined.contains("t.toml:13:1: tickets[0].colour: unknown key"), "{joined}");
    assert!(joined.contains("t.toml:23:1: tickets[0].sinks[0].shape: unknown key"), "{joined}");
    assert!(
        joined.contains(
            "t.toml:12:1: tickets[0].ticket_lifetime: 31d is longer than SLS (expirationTime) allows (max 30days)"
        ),
        "{joined}"
    );
    assert!(joined.contains("t.toml:14:1: tickets[0].token_lifetime: 2d is longer than SLS (accessTokenExpirationTime) allows (max 1day)"), "{joined}");
    assert!(
        joined.contains(
            "t.toml:11:1: tickets[0].endpoint: `http://10.0.0.1:8080`: plain http is allowed only on loopback"
        ),
        "{joined}"
    );
    assert_eq!(found.len(), 5, "{joined}");
}

#[test]
fn each_repeated_name_is_reported_once_whether_its_first_ticket_was_good_or_rejected() {
    let ticket = |name: &str, kind: &str| {
        format!(
            "[[tickets]]\nname = \"{name}\"\nkind = \"{kind}\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n"
        )
    };
    let mut text = String::from("[credentials.prod]\nvendor = \"alibaba\"\n");
    for i in 0..500 {
        text += &ticket(&format!("n{i}"), "sls");
    }
    // 500: a good ticket's name again; 501: rejected (bad kind); 502: the rejected one's name;
    // 503: a name from the middle; 504: the same name a third time.
    for (name, kind) in [("n0", "sls"), ("r", "nope"), ("r", "sls"), ("n250", "sls"), ("n250", "sls")] {
        text += &ticket(name, kind);
    }
    let found = problems(&text, &HashMap::new());
    let duplicates: Vec<&String> = found.iter().filter(|p| p.contains("duplicate")).collect();
    let want = [(500, "n0"), (502, "r"), (503, "n250"), (504, "n250")];
    assert_eq!(duplicates.len(), want.len(), "{found:#?}");
    for ((i, name), problem) in want.iter().zip(&duplicates) {
        assert!(problem.contains(&format!("tickets[{i}].name: duplicate ticket name `{name}`")), "{problem}");
    }
}

#[test]
fn duplicate_names_unknown_credentials_and_missing_env_are_named() {
    let text = format!(
        "{GOOD}\n[[tickets]]\nname = \"ops-dashboard\"\nkind = \"sls\"\ncredentials = \"staging\"\nendpoint = \"http://127.0.0.1:1\"\n"
    )
    .replace("vendor = \"alibaba\"", "vendor = \"alibaba\"\nsource = \"env\"");
    let joined = problems(&text, &HashMap::new()).join("\n");
    assert!(joined.contains("t.toml:25:1: tickets[1].name: duplicate ticket name `ops-dashboard`"), "{joined}");
    assert!(joined.contains("tickets[1].credentials: unknown credentials `staging`"), "{joined}");
    assert!(
        joined.contains("t.toml:4:14: credentials.prod: environment variable ALIBABA_CLOUD_ACCESS_KEY_ID is not set"),
        "{joined}"
    );
    assert!(joined.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set"), "{joined}");
}

#[test]
fn syntax_and_type_errors_name_the_line() {
    let joined = problems("state_dir = \n", &env()).join("\n");
    assert!(joined.starts_with("t.toml:1:"), "{joined}");
    let joined = problems("state_dir = 5\n", &env()).join("\n");
    assert_eq!(joined, "t.toml:1:1: state_dir: is an integer, expected a string");
}

#[test]
fn loopback_http_bare_host_and_url_sink_rules() {
    let text = GOOD.replace("cn-shanghai.log.aliyuncs.com\"", "http://127.0.0.1:18080\"");
    let config = parse(&text, "t.toml", &env()).unwrap();
    let ApiSpec::Sls(sls) = &config.tickets[0].api else { panic!("not sls") };
    assert_eq!(sls.endpoint.host_header(), "127.0.0.1:18080");
    let no_console = GOOD
        .replace("console_url = \"https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d\"\n", "")
        .replace("format = \"json\"", "format = \"url\"");
    let joined = problems(&no_console, &env()).join("\n");
    assert!(joined.contains("console_url: is required by the `url` sink format"), "{joined}");
}

fn both_env() -> HashMap<String, String> {
    let mut e = env();
    e.insert(TENCENT_SECRET_ID_ENV.into(), "AKIDx".into());
    e.insert(TENCENT_SECRET_KEY_ENV.into(), "key".into());
    e
}

const DSW_TCR: &str = r#"[credentials.ali]
vendor = "alibaba"

[credentials.tc]
vendor = "tencent"

[[tickets]]
name = "notebook"
kind = "dsw"
credentials = "ali"
region = "cn-hangzhou"
network = "vpc"
instance_id = "dsw-730abc"
token_lifetime = "30m"
token_type = "View"
audience = "ThirdParty"

[[tickets.sinks]]
type = "file"
path = "/run/ticketd/notebook.env"
format = "env"
env_token = "DSW_TOKEN"

[[tickets]]
name = "registry"
kind = "tcr"
credentials = "tc"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
token_type = "longterm"
description = "ci"
registry = "myreg.tencentcloudcr.com"

[[tickets.sinks]]
type = "docker-config"
path = "/root/.docker/config.json"
"#;

#[test]
fn dsw_and_tcr_tickets_validate_with_defaults() {
    let config = parse(DSW_TCR, "t.toml", &both_env()).unwrap();
    let ApiSpec::Dsw(dsw) = &config.tickets[0].api else { panic!("not dsw") };
    assert_eq!(dsw.endpoint.base.as_str(), "https://pai-dsw-vpc.cn-hangzhou.aliyuncs.com/");
    assert_eq!(dsw.token_lifetime, Duration::from_secs(1800));
    assert_eq!(dsw.token_type, Some(DswTokenType::View));
    assert_eq!(dsw.audience.as_deref(), Some("ThirdParty"));
    let SinkSpec::File(f) = &config.tickets[0].sinks[0] else { panic!("not a file sink") };
    assert_eq!(f.format, FileFormat::Env);
    assert_eq!(
        f.env_names,
        EnvNames { token: "DSW_TOKEN".into(), username: None, expires_at: Some("TICKETD_EXPIRES_AT".into()) }
    );
    let ApiSpec::Tcr(tcr) = &config.tickets[1].api else { panic!("not tcr") };
    assert_eq!(tcr.endpoint.base.as_str(), "https://tcr.tencentcloudapi.com/");
    assert_eq!(tcr.token_type, TcrTokenType::LongTerm);
    assert_eq!(tcr.registry.as_deref(), Some("myreg.tencentcloudcr.com"));
    assert_eq!(
        config.tickets[1].sinks[0],
        SinkSpec::DockerConfig(DockerConfigSink {
            path: "/root/.docker/config.json".into(),
            registry: "myreg.tencentcloudcr.com".into(),
            mode: 0o600
        })
    );
    let public = DSW_TCR.replace("network = \"vpc\"\n", "");
    let config = parse(&public, "t.toml", &both_env()).unwrap();
    let ApiSpec::Dsw(dsw) = &config.tickets[0].api else { panic!("not dsw") };
    assert_eq!(dsw.endpoint.host_header(), "pai-dsw.cn-hangzhou.aliyuncs.com");
}

/// Issue 17 item 4: an unset `token_type` stays unset, so the request does not carry it.
#[test]
fn issue_17_an_unset_token_type_is_not_filled_in() {
    let text = DSW_TCR.replace("token_type = \"View\"\n", "").replace("token_type = \"longterm\"\n", "");
    let config = parse(&text, "t.toml", &both_env()).unwrap();
    let ApiSpec::Dsw(dsw) = &config.tickets[0].api else { panic!("not dsw") };
    assert_eq!(dsw.token_type, None);
    let ApiSpec::Tcr(tcr) = &config.tickets[1].api else { panic!("not tcr") };
    assert_eq!((tcr.token_type, tcr.token_type_written), (TcrTokenType::Temp, false));
    let config = parse(DSW_TCR, "t.toml", &both_env()).unwrap();
    let ApiSpec::Tcr(tcr) = &config.tickets[1].api else { panic!("not tcr") };
    assert_eq!((tcr.token_type, tcr.token_type_written), (TcrTokenType::LongTerm, true));
}

#[test]
fn dsw_and_tcr_problems_are_all_reported_with_file_line_and_key() {
    let text = DSW_TCR
        .replace("credentials = \"ali\"", "credentials = \"tc\"\nconsole_url = \"https://x\"")
        .replace("token_type = \"View\"", "token_type = \"Edit\"")
        .replace("instance_id = \"dsw-730abc\"\n", "")
        .replace("token_type = \"longterm\"", "token_type = \"forever\"\nticket_lifetime = \"1d\"")
        .replace("registry_id = \"tcr-abcd1234\"\n", "")
        .replace("env_token = \"DSW_TOKEN\"", "env_token = \"DSW-TOKEN\"");
    let found = problems(&text, &both_env());
    let joined = found.join("\n");
    for expected in [
        "t.toml:10:1: tickets[0].credentials: a dsw ticket needs alibaba credentials",
        "t.toml:11:1: tickets[0].console_url: does not apply to kind = \"dsw\"",
        "t.toml:7:1: tickets[0].instance_id: is required",
        "t.toml:15:1: tickets[0].token_type: unknown token_type `Edit` (expected Access or View)",
        "t.toml:22:1: tickets[0].sinks[0].env_token: `DSW-TOKEN` is not an environment variable name",
        "t.toml:29:1: tickets[1].token_type: unknown token_type `forever` (expected temp or longterm)",
        "t.toml:30:1: tickets[1].ticket_lifetime: does not apply to kind = \"tcr\"",
        "t.toml:24:1: tickets[1].registry_id: is required",
    ] {
        assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
    }
    assert_eq!(found.len(), 8, "{joined}");
}

#[test]
fn docker_config_sinks_need_a_tcr_ticket_with_a_registry() {
    let no_registry = DSW_TCR.replace("registry = \"myreg.tencentcloudcr.com\"\n", "");
    let joined = problems(&no_registry, &both_env()).join("\n");
    assert!(
        joined.contains("t.toml:34:1: tickets[1].sinks[0].type: a docker-config sink needs the ticket's `registry`"),
        "{joined}"
    );
    let on_dsw = DSW_TCR.replace("type = \"file\"", "type = \"docker-config\"");
    let joined = problems(&on_dsw, &both_env()).join("\n");
    assert!(joined.contains("tickets[0].sinks[0].type: a docker-config sink needs a tcr ticket, not dsw"), "{joined}");
    assert!(joined.contains("tickets[0].sinks[0].format: does not apply to type = \"docker-config\""), "{joined}");
    let bad = DSW_TCR
        .replace("registry = \"myreg.tencentcloudcr.com\"", "registry = \"https://myreg.tencentcloudcr.com/\"")
        .replace("region = \"ap-guangzhou\"\n", "")
        .replace("network = \"vpc\"", "network = \"internal\"");
    let joined = problems(&bad, &both_env()).join("\n");
    assert!(
        joined.contains("tickets[1].registry: `https://myreg.tencentcloudcr.com/` is not a registry host"),
        "{joined}"
    );
    assert!(joined.contains("tickets[1].region: is required"), "{joined}");
    assert!(joined.contains("tickets[0].network: unknown network `internal` (expected public or vpc)"), "{joined}");
}

#[test]
fn tencent_credentials_default_to_the_chain_with_the_tencentcloud_variables_first() {
    let explicit = DSW_TCR.replace("vendor = \"tencent\"", "vendor = \"tencent\"\nsource = \"env\"");
    let joined = problems(&explicit, &env()).join("\n");
    assert!(joined.contains("credentials.tc: environment variable TENCENTCLOUD_SECRET_ID is not set"), "{joined}");
    assert!(joined.contains("TENCENTCLOUD_SECRET_KEY is not set"), "{joined}");
    let config = parse(DSW_TCR, "t.toml", &env()).unwrap();
    let SourceSpec::Chain(chain) = &config.credentials["tc"].source else { panic!("not a chain") };
    let members = chain_members(Vendor::Tencent, chain);
    let names: Vec<&str> = members.iter().map(SourceSpec::name).collect();
    assert_eq!(names, ["env", "profile", "cvm_role", "oidc"]);
    assert_eq!(
        members[0],
        SourceSpec::Env {
            id_var: TENCENT_SECRET_ID_ENV.into(),
            secret_var: TENCENT_SECRET_KEY_ENV.into(),
            token_var: TENCENT_SESSION_TOKEN_ENV.into()
        }
    );
}

#[test]
fn credential_sources_validate_their_keys_and_endpoints() {
    let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
    let none = HashMap::new();
    // The default is the SDK chain, in the SDK's order; nothing is required up front.
    let config = parse(GOOD, "t.toml", &none).unwrap();
    let SourceSpec::Chain(chain) = &config.credentials["prod"].source else { panic!("not a chain") };
    let members = chain_members(Vendor::Alibaba, chain);
    let names: Vec<&str> = members.iter().map(SourceSpec::name).collect();
    assert_eq!(names, ["env", "oidc", "profile", "ecs_ram_role", "credentials_uri"]);
    // oidc with overrides.
    let text = with(
        "source = \"oidc\"\nsts_endpoint = \"http://127.0.0.1:9\"\nrole_session_name = \"ticketd\"\nduration = \"20m\"",
    );
    let config = parse(&text, "t.toml", &none).unwrap();
    let SourceSpec::Oidc(o) = &config.credentials["prod"].source else { panic!("not oidc") };
    assert_eq!((o.duration, o.role_session_name.as_deref()), (Duration::from_secs(1200), Some("ticketd")));
    assert_eq!(o.sts_endpoint.as_ref().unwrap().base.as_str(), "http://127.0.0.1:9/");
    // ecs_ram_role defaults.
    let config = parse(&with("source = \"ecs_ram_role\"\nrole_name = \"web\""), "t.toml", &none).unwrap();
    let SourceSpec::EcsRamRole(m) = &config.credentials["prod"].source else { panic!("not ecs") };
    assert!(m.imdsv1_fallback && m.metadata_endpoint.is_none() && m.role_name.as_deref() == Some("web"));
    // static keys.
    let config =
        parse(&with("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"s\""), "t.toml", &none)
            .unwrap();
    let SourceSpec::Static(c) = &config.credentials["prod"].source else { panic!("not static") };
    assert_eq!(c.access_key_id.expose(), "LTAIx");
    // Every mistake at once, located.
    let text = with(
        "source = \"oidc\"\nsts_endpoint = \"http://10.0.0.1\"\nduration = \"5m\"\nprofile = \"x\"\nsecret_id = \"AKID\"",
    );
    let joined = problems(&text, &none).join("\n");
    assert!(
        joined.contains(
            "t.toml:7:1: credentials.prod.sts_endpoint: `http://10.0.0.1`: plain http is allowed only on loopback"
        ),
        "{joined}"
    );
    assert!(
        joined.contains("credentials.prod.duration: 5m is shorter than STS (DurationSeconds) allows (min 15m)"),
        "{joined}"
    );
    assert!(joined.contains("credentials.prod.profile: does not apply to source = \"oidc\""), "{joined}");
    assert!(joined.contains("credentials.prod.secret_id: is not used with vendor = \"alibaba\""), "{joined}");
    let joined = problems(&with("source = \"cvm_role\""), &none).join("\n");
    assert!(joined.contains("unknown source `cvm_role` for vendor = \"alibaba\" (expected chain, env, static, profile, oidc, ecs_ram_role, ram_role_arn, credentials_uri)"), "{joined}");
    let joined = problems(&with("source = \"static\"\naccess_key_id = \"LTAIx\""), &none).join("\n");
    assert!(joined.contains("credentials.prod.access_key_secret: is required"), "{joined}");
}

/// `prod` (the ticket's set) assumes a role on top of `base`; `extra` is added as given.
fn assumed(prod: &str, extra: &str) -> String {
    GOOD.replace(
        "[credentials.prod]\nvendor = \"alibaba\"\n",
        &format!("[credentials.base]\nvendor = \"alibaba\"\nsource = \"ecs_ram_role\"\n\n[credentials.prod]\nvendor = \"alibaba\"\n{prod}\n{extra}\n"),
    )
}

#[test]
fn issue_17_assume_role_sources_take_their_keys_and_need_a_base_of_the_same_vendor_without_a_cycle() {
    let none = HashMap::new();
    let role = "source = \"ram_role_arn\"\nbase_credentials = \"base\"\nrole_arn = \"acs:ram::123:role/x\"";
    let full = format!(
        "{role}\nrole_session_name = \"ticketd\"\nexternal_id = \"ext-1\"\npolicy = '{{\"Version\": \"1\"}}'\n\
         session_duration = \"2h\"\nsts_endpoint = \"http://127.0.0.1:9\""
    );
    let config = parse(&assumed(&full, ""), "t.toml", &none).unwrap();
    let SourceSpec::AssumeRole(a) = &config.credentials["prod"].source else { panic!("not ram_role_arn") };
    assert_eq!(
        (a.base.as_str(), a.role_arn.as_str(), a.duration),
        ("base", "acs:ram::123:role/x", Duration::from_secs(7200))
    );
    assert_eq!((a.external_id.as_deref(), a.policy.as_deref()), (Some("ext-1"), Some("{\"Version\": \"1\"}")));
    assert!(a.sts_endpoint.is_some() && a.role_session_name.as_deref() == Some("ticketd"));
    let config = parse(&assumed(role, ""), "t.toml", &none).unwrap();
    let SourceSpec::AssumeRole(a) = &config.credentials["prod"].source else { panic!() };
    assert_eq!((a.duration, a.external_id.is_none(), a.policy.is_none()), (Duration::from_secs(3600), true, true));
    // A missing base, with its line.
    let joined = problems(&assumed(&role.replace("\"base\"", "\"nope\""), ""), &none).join("\n");
    assert!(
        joined.contains(
            "t.toml:11:1: credentials.prod.base_credentials: unknown credentials `nope` (no [credentials.nope] section)"
        ),
        "{joined}"
    );
    // A cycle, on itself and through another set.
    let joined = problems(&assumed(&role.replace("\"base\"", "\"prod\""), ""), &none).join("\n");
    assert!(
        joined.contains(
            "credentials.prod.base_credentials: a cycle: the role is assumed on top of itself (prod -> prod)"
        ),
        "{joined}"
    );
    let other = "[credentials.other]\nvendor = \"alibaba\"\nsource = \"ram_role_arn\"\nbase_credentials = \"prod\"\nrole_arn = \"acs:ram::1:role/y\"";
    let joined = problems(&assumed(&role.replace("\"base\"", "\"other\""), other), &none).join("\n");
    assert!(
        joined.contains(
            "credentials.prod.base_credentials: a cycle: the role is assumed on top of itself (prod -> other -> prod)"
        ),
        "{joined}"
    );
    assert!(
        joined.contains(
            "credentials.other.base_credentials: a cycle: the role is assumed on top of itself (other -> prod -> other)"
        ),
        "{joined}"
    );
    assert!(joined.contains("t.toml:11:1: credentials.prod.base_credentials: a cycle"), "{joined}");
    // A Tencent base for an Alibaba role; the wrong source for the vendor.
    let tc = "[credentials.tc]\nvendor = \"tencent\"\nsource = \"cvm_role\"";
    let joined = problems(&assumed(&role.replace("\"base\"", "\"tc\""), tc), &none).join("\n");
    assert!(joined.contains("credentials.prod.base_credentials: `tc` are tencent credentials; a alibaba role is assumed with alibaba keys"), "{joined}");
    let joined = problems(&assumed(&role.replace("ram_role_arn", "role_arn"), ""), &none).join("\n");
    assert!(joined.contains("unknown source `role_arn` for vendor = \"alibaba\""), "{joined}");
    // Bad values, all at once; and the role keys under another source.
    let bad = "source = \"ram_role_arn\"\nrole_arn = \"arn:aws:iam::1:role/x\"\npolicy = \"allow all\"\nsession_duration = \"5m\"\nexternal_id = \"x\"";
    let joined = problems(&assumed(bad, ""), &none).join("\n");
    for part in [
        "credentials.prod.base_credentials: is required",
        "credentials.prod.role_arn: `arn:aws:iam::1:role/x` is not a role ARN (e.g. \"acs:ram::123456789012:role/name\")",
        "credentials.prod.policy: is not a JSON policy document",
        "credentials.prod.session_duration: 5m is shorter than STS AssumeRole (DurationSeconds) allows (min 15m)",
        "credentials.prod.external_id: 2 to 1224 of letters",
    ] {
        assert!(joined.contains(part), "missing `{part}` in {joined}");
    }
    let joined =
        problems(&assumed("role_arn = \"acs:ram::1:role/x\"\nbase_credentials = \"base\"", ""), &none).join("\n");
    assert!(joined.contains("credentials.prod.role_arn: does not apply to source = \"chain\""), "{joined}");
    assert!(joined.contains("credentials.prod.base_credentials: does not apply to source = \"chain\""), "{joined}");
    // Tencent role_arn.
    let text = DSW_TCR.replace(
        "vendor = \"tencent\"",
        "vendor = \"tencent\"\nsource = \"role_arn\"\nbase_credentials = \"base\"\nrole_arn = \"qcs::cam::uin/1:roleName/r\"",
    ) + "\n[credentials.base]\nvendor = \"tencent\"\nsource = \"cvm_role\"\n";
    let config = parse(&text, "t.toml", &both_env()).unwrap();
    let SourceSpec::AssumeRole(a) = &config.credentials["tc"].source else { panic!("not role_arn") };
    assert_eq!((a.vendor, a.duration), (Vendor::Tencent, Duration::from_secs(7200)));
    assert_eq!(config.credentials["tc"].source.name(), "role_arn");
}

#[test]
fn issue_17_profile_takes_the_sts_and_metadata_endpoints_its_cli_role_modes_call() {
    let none = HashMap::new();
    let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
    let text =
        with("source = \"profile\"\nsts_endpoint = \"http://127.0.0.1:9\"\nmetadata_endpoint = \"http://127.0.0.1:8\"");
    let config = parse(&text, "t.toml", &none).unwrap();
    let SourceSpec::Profile { sts_endpoint: Some(sts), metadata_endpoint: Some(md), .. } =
        &config.credentials["prod"].source
    else {
        panic!("no endpoints")
    };
    assert_eq!((sts.base.port(), md.base.port()), (Some(9), Some(8)));
    let joined = problems(&with("source = \"profile\"\nrole_name = \"web\""), &none).join("\n");
    assert!(joined.contains("credentials.prod.role_name: does not apply to source = \"profile\""), "{joined}");
}

#[test]
fn issue_17_credentials_uri_takes_an_http_url_and_ends_the_alibaba_chain() {
    let none = HashMap::new();
    let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
    let config =
        parse(&with("source = \"credentials_uri\"\ncredentials_uri = \"http://10.0.0.5:8080/creds\""), "t.toml", &none)
            .unwrap();
    let SourceSpec::CredentialsUri(Some(u)) = &config.credentials["prod"].source else { panic!() };
    assert_eq!(u.as_str(), "http://10.0.0.5:8080/creds");
    let config = parse(&with("source = \"credentials_uri\""), "t.toml", &none).unwrap();
    assert_eq!(config.credentials["prod"].source, SourceSpec::CredentialsUri(None));
    let joined = problems(&with("source = \"credentials_uri\"\ncredentials_uri = \"ftp://x/\""), &none).join("\n");
    assert!(joined.contains("credentials.prod.credentials_uri: `ftp://x/`: scheme ftp is not http(s)"), "{joined}");
    let joined = problems(
        &with("source = \"env\"\ncredentials_uri = \"http://x/\""),
        &HashMap::from([
            ("ALIBABA_CLOUD_ACCESS_KEY_ID".to_string(), "LTAI".to_string()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET".to_string(), "s".to_string()),
        ]),
    )
    .join("\n");
    assert!(joined.contains("credentials.prod.credentials_uri: does not apply to source = \"env\""), "{joined}");
}

#[test]
fn issue_16_hook_env_takes_variable_names_and_leaves_ticketd_variables_alone() {
    let with = |env: &str| format!("{GOOD}[tickets.on_change]\nexec = [\"/bin/true\"]\nenv = {{ {env} }}\n");
    let config = parse(&with("NGINX_CONF = \"/etc/nginx\", _X = \"\""), "t.toml", &env()).unwrap();
    let hook = config.tickets[0].consumers.on_change.clone().unwrap();
    assert_eq!(hook.env, vec![("NGINX_CONF".to_string(), "/etc/nginx".to_string()), ("_X".into(), "".into())]);
    let joined = problems(&with("\"1X\" = \"a\", TICKETD_TICKET = \"b\", \"A-B\" = \"c\""), &env()).join("\n");
    assert!(joined.contains("on_change.env.1X: is not a variable name"), "{joined}");
    assert!(joined.contains("on_change.env.A-B: is not a variable name"), "{joined}");
    assert!(
        joined.contains("on_change.env.TICKETD_TICKET: `TICKETD_*` variables are set by ticketd itself"),
        "{joined}"
    );
}

/// Issue #16 item 12: no problem ever shows a value from a field that may hold a secret
/// (type errors, a key pasted into a `*_env` line, syntax errors inside the value), and empty
/// keys or keys with NUL, newline or non-ASCII characters are refused by key. Item 1: keys in
/// the environment are checked at load too, by variable name.
#[test]
fn issue_16_secret_fields_are_never_echoed_and_bad_key_text_is_refused() {
    let with = |body: &str| GOOD.replace("vendor = \"alibaba\"", &format!("vendor = \"alibaba\"\n{body}"));
    let none = HashMap::new();
    let secret = "9876543210987654";
    let mixed = "aZ3kQ9vX2mP7wL5nR8tY1bC4dF6gH0";
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = {secret}"), secret, "an integer"),
        (format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = {secret}.5"), secret, "a number"),
        (format!("source = \"static\"\naccess_key_id = {secret}\naccess_key_secret = \"s\""), secret, "an integer"),
        (
            format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = [\"{mixed}\"]"),
            mixed,
            "an array",
        ),
        (
            format!("source = \"env\"\naccess_key_secret_env = \"{mixed}\""),
            mixed,
            "access_key_secret_env: is not an environment variable name",
        ),
        (
            format!("source = \"env\"\naccess_key_secret_env = \"{mixed}=x\""),
            mixed,
            "is not an environment variable name",
        ),
        (format!("source = \"env\"\nsecurity_token_env = {secret}"), secret, "an integer"),
        (format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = {mixed}"), mixed, "t.toml:"),
        (
            format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\\q\""),
            mixed,
            "t.toml:",
        ),
        (format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}"), mixed, "t.toml:"),
        (format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = '{mixed}\n'"), mixed, "t.toml:"),
        (
            format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\\u0000\""),
            mixed,
            "access_key_secret: holds a control character (U+0000) at character 31",
        ),
        (
            format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\\n\""),
            mixed,
            "access_key_secret: holds a control character (U+000A)",
        ),
        (
            format!("source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"\u{200b}{mixed}\""),
            mixed,
            "access_key_secret: holds a non-ASCII character (U+200B) at character 1",
        ),
        (
            format!(
                "source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"{mixed}\"\nsecurity_token = \"{mixed} x\""
            ),
            mixed,
            "security_token: holds a space",
        ),
        (
            "source = \"static\"\naccess_key_id = \"LTAIx\"\naccess_key_secret = \"\"".to_string(),
            "\u{0}",
            "access_key_secret: is empty",
        ),
        (
            "source = \"static\"\naccess_key_id = \"\"\naccess_key_secret = \"s\"".to_string(),
            "\u{0}",
            "access_key_id: is empty",
        ),
    ];
    for (body, value, expected) in &cases {
        let joined = problems(&with(body), &none).join("\n");
        assert!(joined.contains(expected), "expected {expected:?} for {body:?} in\n{joined}");
        assert!(
            !joined.contains(value) && !joined.contains(&value[..8.min(value.len())]),
            "a secret echoed:\n{joined}"
        );
    }
    // Keys in the environment: refused at load (`env` and the default chain), by name only.
    for source in ["source = \"env\"", ""] {
        for bad in [format!("{mixed}\u{e9}"), format!("{mixed}\u{200b}"), format!("{mixed}\n")] {
            let env = HashMap::from([
                (ALIBABA_ACCESS_KEY_ID_ENV.to_string(), "LTAIx".to_string()),
                (ALIBABA_ACCESS_KEY_SECRET_ENV.to_string(), bad.clone()),
            ]);
            let joined = problems(&with(source), &env).join("\n");
            assert!(
                joined
                    .contains(&format!("credentials.prod: environment variable {ALIBABA_ACCESS_KEY_SECRET_ENV} holds")),
                "{joined}"
            );
            assert!(!joined.contains(&mixed[..8]), "{joined}");
        }
    }
    // Conventional names and good keys still pass.
    let env = HashMap::from([("MY_KEY_1".to_string(), "LTAIx".to_string()), ("_SK".to_string(), mixed.to_string())]);
    parse(&with("source = \"env\"\naccess_key_id_env = \"MY_KEY_1\"\naccess_key_secret_env = \"_SK\""), "t.toml", &env)
        .unwrap();
}

/// Issue #18: one parse path. The layouts the old cut gave up on (sending the file to a parse of
/// the whole document) are read a piece at a time too, with the problems and places a read of
/// the whole document gives: sub-tables away from their ticket, quoted headers, `tickets` as a
/// table, unbalanced brackets, malformed headers, a table defined twice in two distant parts.
#[test]
fn issue_18_every_layout_is_read_by_pieces_with_the_whole_document_s_problems() {
    let ticket = "kind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\n";
    let cred = "[credentials.prod]\nvendor = \"alibaba\"\n";
    let sink = "[[tickets.sinks]]\ntype = \"file\"\npath = \"/x\"\n";
    for text in [
        format!("[[tickets]]\nname = \"a\"\n{ticket}{cred}{sink}mode = 600\n[[tickets]]\nname = \"a\"\n{ticket}{sink}"),
        format!(
            "{cred}[[\"tickets\"]]\nname = \"a\"\n{ticket}token_lifetime = 5\n[ 'tickets' . on_change ]\nsignal = \"SIGNOPE\"\n"
        ),
        format!("{cred}[tickets]\nname = \"a\"\n"),
        format!("{cred}{sink}[[tickets]]\nname = \"a\"\n"),
        format!("[[tickets]]\nname = \"a\"\n{cred}[tickets]\nname = \"b\"\n"),
        format!("{cred}x = [1, 2\n[[tickets]]\nname = \"a\"\n"),
        format!("{cred}[[tickets]]\nname = \"a\"\n{ticket}allow_uids = [1,\n[[tickets]]\nname = \"b\"\n"),
        format!("x = ]\n{cred}[[tickets]]\nname = \"a\"\n"),
        format!("{cred}[[tickets\nname = \"a\"\n"),
        format!("{cred}[[tickets]] x\nname = \"a\"\n"),
        format!("{cred}[[tickets]]\nname = \"a\"\n{ticket}{cred}"),
        format!("tickets = [{{ name = \"i\" }}]\n{cred}[[tickets]]\nname = \"a\"\n{ticket}"),
    ] {
        let whole = problems_of(parse_whole(Checker::new("t.toml", &text, None)));
        assert!(!whole.is_empty(), "{text}");
        assert_eq!(problems_of(super::parse(&text, "t.toml", None)), whole, "{text}");
    }
    // Where the whole document stops at its first syntax error, the pieces report each one.
    let text = format!("{cred}[[tickets]]\nname = \"a\"\n{ticket}[tickets.on_change]\n{cred}[tickets.on_change]\n");
    assert_eq!(
        problems_of(parse_whole(Checker::new("t.toml", &text, None))),
        ["t.toml:9:14: duplicate key `prod`: it is already defined above"]
    );
    assert_eq!(
        problems_of(super::parse(&text, "t.toml", None)),
        [
            "t.toml:9:14: duplicate key `prod`: it is already defined above",
            "t.toml:11:10: duplicate key `on_change`: it is already defined above"
        ]
    );
}

fn problems_of(checked: crate::config::Checked<'_>) -> Vec<String> {
    match env_finish(checked, &both_env()) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.0.iter().map(|p| p.to_string()).collect(),
    }
}
