//! What consumers read: the JSON view of a ticket, the raw token, the API's share URL.
//! Derived on demand from the held secrets; nothing here is stored.
//!
//! Everything rendered holds a secret, so it is built in a buffer of exactly its size (see
//! [`exact`]: a buffer that grows leaves its old copy, never zeroed, in the heap) and zeroed
//! when dropped ([`Zeroizing`]), once written.

use std::io::{self, Write};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::clock::rfc3339;
use crate::config::template::TemplateError;
use crate::config::{EnvNames, FileFormat, FileSink, TicketSpec};
use crate::token::Current;

/// The JSON document of a ticket's current token (file sink `json`, socket API).
#[derive(Serialize)]
pub(crate) struct TokenView<'a> {
    pub name: &'a str,
    pub kind: &'static str,
    pub ticket: Option<&'a str>,
    pub access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    #[serde(serialize_with = "zeroizing_str")]
    pub url: Option<Zeroizing<String>>,
    pub token_expires_at: String,
    pub ticket_expires_at: Option<String>,
    pub refreshed_at: String,
    pub generation: u64,
}

impl<'a> TokenView<'a> {
    pub(crate) fn new(spec: &'a TicketSpec, current: &'a Current) -> Self {
        TokenView {
            name: &spec.name,
            kind: spec.kind().as_str(),
            ticket: current.ticket.as_ref().map(|t| t.value.expose()),
            access_token: current.token.value.expose(),
            username: current.token.username.as_deref(),
            url: share_url(spec, current),
            token_expires_at: rfc3339(current.token.expires_at),
            ticket_expires_at: current.ticket.as_ref().map(|t| rfc3339(t.expires_at)),
            refreshed_at: rfc3339(current.refreshed_at),
            generation: current.generation,
        }
    }
}

fn zeroizing_str<S: serde::Serializer>(value: &Option<Zeroizing<String>>, serializer: S) -> Result<S::Ok, S::Error> {
    value.as_deref().map(String::as_str).serialize(serializer)
}

/// The share URL of the ticket's API (SLS: its console link), for the `url` field and format.
pub(crate) fn share_url(spec: &TicketSpec, current: &Current) -> Option<Zeroizing<String>> {
    spec.api.share_url(current.ticket.as_ref()?.value.expose())
}

/// What `write` writes, in a buffer of exactly its size that is zeroed when dropped. `write` runs
/// twice: first only counting, so the buffer never grows (a grown buffer's old copy is freed
/// without being zeroed).
pub(crate) fn exact(write: impl Fn(&mut dyn Write) -> io::Result<()>) -> io::Result<Zeroizing<Vec<u8>>> {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    write(&mut count)?;
    let mut out = Zeroizing::new(Vec::with_capacity(count.0));
    write(&mut *out)?;
    debug_assert_eq!(out.len(), count.0, "written differently the second time");
    Ok(out)
}

/// The bytes of a file sink, zeroed when dropped. Only a template can fail to render (an allowed
/// environment variable unset now, say).
pub(crate) fn render(
    file: &FileSink,
    spec: &TicketSpec,
    current: &Current,
) -> Result<Zeroizing<Vec<u8>>, TemplateError> {
    let rendered = match &file.format {
        FileFormat::Json => {
            let view = TokenView::new(spec, current);
            exact(|out| {
                serde_json::to_writer_pretty(&mut *out, &view).map_err(io::Error::other)?;
                out.write_all(b"\n")
            })
        }
        FileFormat::Token => exact(|out| out.write_all(current.token.value.expose().as_bytes())),
        FileFormat::Url => {
            let url = share_url(spec, current);
            exact(|out| writeln!(out, "{}", url.as_deref().map_or("", String::as_str)))
        }
        FileFormat::Env => exact(|out| write_env(out, &file.env_names, current)),
        FileFormat::Template(template) => return crate::sinks::template::render(template, spec, current),
    };
    Ok(rendered.expect("writing to memory cannot fail"))
}

/// `KEY=value` lines, one per configured name. Tokens, user names and RFC 3339 times hold no
/// space, quote or newline, so no quoting is needed (systemd `EnvironmentFile=` and docker
/// `--env-file` read them the same way); anything else is single-quoted defensively.
#[cfg(test)]
pub(crate) fn env(names: &EnvNames, current: &Current) -> Zeroizing<String> {
    let mut bytes = exact(|out| write_env(out, names, current)).expect("writing to memory cannot fail");
    let text = String::from_utf8(std::mem::take(&mut *bytes)).expect("written from strings");
    Zeroizing::new(text)
}

fn write_env(out: &mut dyn Write, names: &EnvNames, current: &Current) -> io::Result<()> {
    let mut line = |name: &str, value: &str| {
        let plain = value.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'\'' | b'"' | b'\\' | b'$' | b'`'));
        if plain {
            writeln!(out, "{name}={value}")
        } else {
            write!(out, "{name}='")?;
            for c in value.chars().filter(|c| !c.is_control() && *c != '\'') {
                let mut utf8 = [0; 4];
                out.write_all(c.encode_utf8(&mut utf8).as_bytes())?;
            }
            writeln!(out, "'")
        }
    };
    line(&names.token, current.token.value.expose())?;
    if let Some(name) = &names.username {
        line(name, current.token.username.as_deref().unwrap_or(""))?;
    }
    if let Some(name) = &names.expires_at {
        line(name, &rfc3339(current.token.expires_at))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;
    use crate::config::Kind;
    use crate::secret::Secret;

    fn current(username: Option<&str>) -> Current {
        crate::testing::current(
            "eyJa.eyJb.sig",
            username,
            from_unix_seconds(1_700_000_000),
            std::time::Duration::from_secs(3600),
            3,
        )
    }

    #[test]
    fn env_format_writes_key_value_lines_with_default_and_custom_names() {
        let names = EnvNames::defaults("TCR_", Kind::Tcr);
        assert_eq!(
            env(&names, &current(Some("100012345678"))).as_str(),
            "TCR_TOKEN=eyJa.eyJb.sig\nTCR_USERNAME=100012345678\nTCR_EXPIRES_AT=2023-11-14T23:13:20Z\n"
        );
        let names = EnvNames { token: "DSW_TOKEN".into(), username: None, expires_at: None };
        assert_eq!(env(&names, &current(None)).as_str(), "DSW_TOKEN=eyJa.eyJb.sig\n");
        let dsw = EnvNames::defaults("TICKETD_", Kind::Dsw);
        assert_eq!(dsw.username, None);
        assert_eq!(dsw.token, "TICKETD_TOKEN");
    }

    #[test]
    fn the_share_url_is_what_the_url_crate_builds_for_every_kind_of_console_url() {
        let mut c = current(None);
        let t = c.refreshed_at;
        c.ticket = Some(crate::token::TicketPart { value: Secret::new("t/k+t=1&x"), issued_at: t, expires_at: t });
        for base in [
            "https://sls.console.aliyun.com/lognext/project/p/logsearch/s",
            "https://sls.console.aliyun.com/p?hideTopbar=true",
            "https://sls.console.aliyun.com/p?",
            "https://sls.console.aliyun.com/p#/fragment?x=1",
            "https://sls.console.aliyun.com/p?a=%20b&c#frag",
        ] {
            let mut spec = crate::testing::sls_ticket(
                "t",
                std::time::Duration::from_secs(86_400),
                std::time::Duration::from_secs(3600),
            );
            let crate::apis::kinds::ApiSpec::Sls(sls) = &mut spec.api else { unreachable!() };
            sls.console_url = Some(base.into());
            sls.console_params = vec![("theme".into(), "dark mode".into()), ("é".into(), "&".into())];
            let mut expected = url::Url::parse(base).unwrap();
            expected
                .query_pairs_mut()
                .append_pair("sls_ticket", "t/k+t=1&x")
                .append_pair("supportRefreshToken", "true")
                .append_pair("theme", "dark mode")
                .append_pair("é", "&");
            let built = share_url(&spec, &c).unwrap();
            assert_eq!(built.as_str(), expected.as_str(), "{base}");
            // Built in place: had the buffer grown, its capacity would be about twice the length.
            assert!(built.capacity() <= built.len() + 2, "{} for {}", built.capacity(), built.len());
        }
    }

    #[test]
    fn env_values_with_odd_characters_are_quoted() {
        let names = EnvNames { token: "T".into(), username: Some("U".into()), expires_at: None };
        let mut c = current(Some("a b'c"));
        c.token.value = Secret::new("x");
        assert_eq!(env(&names, &c).as_str(), "T=x\nU='a bc'\n");
    }
}
