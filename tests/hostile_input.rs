//! Hostile input: random and adversarial bytes into the config parser, every response parser and
//! the JWT reader never panic, stay bounded, and errors name what was wrong without echoing
//! secrets. The socket server shrugs off garbage and oversized requests.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use proptest::prelude::*;
use ticketd::apis::{dsw, sls, tcr};
use ticketd::secret::scrub;

fn env() -> HashMap<String, String> {
    HashMap::from([
        ("ALIBABA_CLOUD_ACCESS_KEY_ID".into(), "x".into()),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET".into(), "x".into()),
    ])
}

/// Fragments that make random documents look like configs, so the fuzzing reaches validation.
fn config_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("[[tickets]]\n".to_string()),
        Just("[[tickets.sinks]]\n".to_string()),
        Just("[credentials.prod]\nvendor = \"alibaba\"\n".to_string()),
        Just("kind = \"sls\"\n".to_string()),
        Just("kind = \"tcr\"\n".to_string()),
        Just("kind = \"dsw\"\n".to_string()),
        Just("credentials = \"prod\"\n".to_string()),
        Just("endpoint = \"http://127.0.0.1:1\"\n".to_string()),
        Just("token_lifetime = \"1d\"\n".to_string()),
        Just("type = \"file\"\npath = \"/tmp/x\"\n".to_string()),
        Just("on_change = { exec = [] }\n".to_string()),
        Just("socket = \"rel\"\n".to_string()),
        "[a-z_]{1,12} = \"[ -~]{0,20}\"\n",
        "[a-z_]{1,12} = [0-9]{1,20}\n",
        "name = \"[ -~]{0,10}\"\n",
        "[\\PC]{0,30}",
    ];
    proptest::collection::vec(piece, 0..25).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_config_parser_never_panics_and_locates_every_problem(text in config_text()) {
        if let Err(problems) = ticketd::credentials::environment::parse(&text, "fuzz.toml", &env()) {
            prop_assert!(!problems.0.is_empty());
            for p in &problems.0 {
                prop_assert!(p.file == "fuzz.toml");
                prop_assert!(!p.message.is_empty());
                if let Some(line) = p.line {
                    prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "line {line} of {}", text.lines().count());
                }
            }
        }
    }

    #[test]
    fn response_parsers_never_panic(status in prop_oneof![Just(200u16), Just(400), Just(401), Just(503), 100u16..600], body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let secret = "s3cr3t-value";
        let e = sls::api_error(sls::REFRESH_TOKEN, status, &body, None, &[secret]);
        prop_assert!(!e.to_string().contains(secret));
        let _ = dsw::answer(status, None, &body, &[secret]);
        let _ = tcr::answer(status, &body, &[secret]);
        let _ = ticketd::jwt::expiry(&String::from_utf8_lossy(&body));
    }

    /// Issue #16 item 1: secrets and tickets with multi-byte characters, echoed whole or cut at
    /// any character by the server, never panic a parser and never reach the error.
    #[test]
    fn issue_16_non_ascii_secrets_never_panic_or_leak(
        secret in "[a-zA-Z0-9\u{e9}\u{200b}\u{1f600}\u{4e2d}.+/=_-]{4,60}",
        before in "\\PC{0,200}",
        cut in 0usize..64,
        status in prop_oneof![Just(200u16), Just(400), Just(401), Just(503)],
    ) {
        let bounds: Vec<usize> = secret.char_indices().map(|(at, _)| at).chain([secret.len()]).collect();
        let prefix = &secret[..bounds[cut % bounds.len()]];
        for echoed in [format!("{before}{secret} is invalid"), format!("{before}{secret}"), format!("{before} {prefix}")] {
            let out = scrub(&echoed, &[&secret]);
            prop_assert!(!out.contains(secret.as_str()), "{out}");
            if prefix.len() >= 4 && echoed.ends_with(prefix) {
                prop_assert!(!out.ends_with(prefix), "{out}");
            }
            let sls_body = serde_json::json!({"errorCode": "Unauthorized", "errorMessage": echoed});
            let e = sls::api_error(sls::REFRESH_TOKEN, status, sls_body.to_string().as_bytes(), None, &[&secret]);
            prop_assert!(!e.to_string().contains(secret.as_str()));
            let dsw_body = serde_json::json!({"Code": "SignatureDoesNotMatch", "Message": echoed});
            if let Err(e) = dsw::answer(status, None, dsw_body.to_string().as_bytes(), &[&secret]) {
                prop_assert!(!e.to_string().contains(secret.as_str()));
            }
            let tcr_body = serde_json::json!({"Response": {"Error": {"Code": "AuthFailure", "Message": echoed}, "RequestId": echoed}});
            if let Err(e) = tcr::answer(200, tcr_body.to_string().as_bytes(), &[&secret]) {
                prop_assert!(!e.to_string().contains(secret.as_str()));
            }
            let e = tcr::answer(502, echoed.as_bytes(), &[&secret]).unwrap_err();
            prop_assert!(!e.to_string().contains(secret.as_str()));
        }
    }

    #[test]
    fn json_shaped_answers_never_panic_or_leak(code in "[A-Za-z.]{0,30}", message in "[ -~]{0,400}", success in any::<Option<bool>>(), exp in any::<Option<i64>>()) {
        let secret = "TOPSECRET";
        let message = format!("{message} {secret}");
        let dsw_body = serde_json::json!({"Success": success, "Code": code, "Message": message, "Token": null});
        if let Err(e) = dsw::answer(200, None, dsw_body.to_string().as_bytes(), &[secret]) {
            prop_assert!(!e.to_string().contains(secret));
        }
        let tcr_body = serde_json::json!({"Response": {"Error": {"Code": code, "Message": message}, "ExpTime": exp}});
        if let Err(e) = tcr::answer(200, tcr_body.to_string().as_bytes(), &[secret]) {
            prop_assert!(!e.to_string().contains(secret));
        }
        let sls_body = serde_json::json!({"errorCode": code, "errorMessage": message});
        prop_assert!(!sls::api_error(sls::CREATE_TICKET, 400, sls_body.to_string().as_bytes(), None, &[secret]).to_string().contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_survives_garbage_oversized_and_slow_requests() {
    let h = common::Harness::start().await;
    let config = h.write_config(
        r#"
state_dir = "{dir}/state"
socket = "{dir}/ticketd.sock"
[credentials.prod]
vendor = "alibaba"
[[tickets]]
name = "t"
kind = "sls"
credentials = "prod"
endpoint = "{emulator}"
"#,
    );
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let socket = h.path("ticketd.sock");
    common::wait_for("the socket", Duration::from_secs(30), || socket.exists().then_some(())).await;
    let socket_path = socket.clone();
    tokio::task::spawn_blocking(move || {
        let send = |bytes: &[u8]| {
            let mut s = std::os::unix::net::UnixStream::connect(&socket_path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            let _ = s.write_all(bytes);
            let mut answer = Vec::new();
            let _ = s.take(64 * 1024).read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        };
        // Not HTTP at all.
        let _ = send(b"\x00\xff\x13garbage\r\n\r\n");
        // Too many headers, and headers larger than the limit.
        let many: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
        let answer = send(format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes());
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
        let huge = "a".repeat(64 * 1024);
        let answer = send(format!("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {huge}\r\n\r\n").as_bytes());
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
        // A path that tries to escape, and a name with odd bytes.
        let answer = send(b"GET /v1/tickets/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        // A client that sends half a request and stalls is cut off by the header timeout, and does
        // not block others meanwhile.
        let mut slow = std::os::unix::net::UnixStream::connect(&socket_path).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
        let ok = send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with("ok\n"), "{ok}");
        slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = Vec::new();
        let _ = slow.read_to_end(&mut rest);
    })
    .await
    .unwrap();
    let (code, _) = ticketd::api::client::get(&socket, "/healthz").await.unwrap();
    assert_eq!(code, 200, "still serving");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(Duration::from_secs(30)).await, 0);
}
