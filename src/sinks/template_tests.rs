//! Tests of the `template` format: the fields of a real ticket, `env` read at render time, the
//! atomic write, a failed render keeping the last good file.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::from_unix_seconds;
use crate::config::template::TemplateOrigin;
use crate::config::{EnvNames, FileFormat, FileSink, Kind, SinkSpec};
use crate::secret::Secret;
use crate::sinks::{SinkCause, publish_one};
use crate::token::{TicketPart, TokenPart};

fn current() -> Current {
    let t = from_unix_seconds(1_700_000_000);
    Current {
        ticket: Some(TicketPart {
            value: Secret::new("tk/1+2"),
            issued_at: t.into(),
            expires_at: (t + Duration::from_secs(86_400)).into(),
        }),
        token: TokenPart {
            value: Secret::new("eyJa.b"),
            username: None,
            token_id: None,
            issued_at: t.into(),
            expires_at: (t + Duration::from_secs(3600)).into(),
        },
        generation: 7,
        refreshed_at: t.into(),
        expires_mono: None,
    }
}

fn template(text: &str, env: &[&str]) -> SinkTemplate {
    SinkTemplate {
        text: Arc::from(text),
        origin: TemplateOrigin::File("/etc/ticketd/t.tmpl".into()),
        env: env.iter().map(|s| s.to_string()).collect(),
    }
}

fn spec() -> TicketSpec {
    let mut spec = crate::testing::sls_ticket("share", Duration::from_secs(86_400), Duration::from_secs(3600));
    let crate::apis::kinds::ApiSpec::Sls(sls) = &mut spec.api else { unreachable!() };
    sls.console_url = Some("https://sls.console.aliyun.com/p".into());
    spec
}

#[test]
fn every_field_of_an_sls_ticket_renders_from_the_current_token() {
    let text = "{{ name }} {{ kind }} {{ token }} {{ access_token }} {{ ticket }} {{ expires_at }} \
                {{ ticket_expires_at }} {{ generation }} {{ url }}";
    let out = render(&template(text, &[]), &spec(), &current()).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "share sls eyJa.b eyJa.b tk/1+2 2023-11-14T23:13:20Z 2023-11-15T22:13:20Z 7 \
         https://sls.console.aliyun.com/p?sls_ticket=tk%2F1%2B2&supportRefreshToken=true"
    );
}

#[test]
fn env_values_are_read_at_render_time() {
    // PATH is set for every test process; this other name for none.
    let path = std::env::var("PATH").unwrap();
    let t = template("{{ env.PATH }}", &["PATH"]);
    assert_eq!(&render(&t, &spec(), &current()).unwrap()[..], path.as_bytes());
    let name = "TICKETD_TEMPLATE_TEST_UNSET";
    let t = template("{{ env.TICKETD_TEMPLATE_TEST_UNSET }}", &[name]);
    let e = render(&t, &spec(), &current()).unwrap_err().to_string();
    assert_eq!(e, format!("line 1: environment variable `{name}` (env.{name}) is not set"));
}

fn sink(path: &std::path::Path, text: &str, env: &[&str]) -> SinkSpec {
    SinkSpec::File(FileSink {
        path: path.to_path_buf(),
        format: FileFormat::Template(Arc::new(template(text, env))),
        mode: 0o640,
        env_names: EnvNames::defaults("TICKETD_", Kind::Sls),
    })
}

#[test]
fn a_rendered_template_is_written_atomically_with_the_sink_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    publish_one(&spec(), &sink(&path, "t={{ token }}\n", &[]), &current()).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "t=eyJa.b\n");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
}

#[test]
fn a_failed_render_keeps_the_last_good_file_and_is_a_typed_sink_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    std::fs::write(&path, "last good\n").unwrap();
    let name = "TICKETD_TEMPLATE_TEST_UNSET";
    let sink = sink(&path, "t={{ token }}\nr={{ env.TICKETD_TEMPLATE_TEST_UNSET }}\n", &[name]);
    let e = publish_one(&spec(), &sink, &current()).unwrap_err();
    assert!(matches!(&e.cause, SinkCause::Template { error, .. } if error.line == Some(2)), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "cannot write {}: its template /etc/ticketd/t.tmpl did not render: line 2: environment variable \
             `{name}` (env.{name}) is not set",
            path.display()
        )
    );
    assert!(!format!("{e:?}").contains("eyJa"), "no value in the error");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "last good\n", "the last good file stays");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
}
