//! From raw TOML to a validated [`Config`], collecting every problem with its place.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use super::locate::{KeyPath, LineIndex, Locator};
use super::raw::{RawConfig, RawCredentials, RawSink, RawTicket};
use super::*;

/// Where environment variables come from (the process, or a map in tests).
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

struct Checker<'a> {
    file: &'a str,
    locator: Locator,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, at: &KeyPath, message: impl Into<String>) {
        let position = self.locator.position(at);
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            key: at.to_string(),
            message: message.into(),
        });
    }

    fn required<'v>(&mut self, value: &'v Option<String>, at: &KeyPath) -> Option<&'v str> {
        match value.as_deref() {
            Some(v) => Some(v),
            None => {
                self.report(at, "is required");
                None
            }
        }
    }

    /// A humantime duration within `[min, max]`.
    fn duration(
        &mut self,
        value: &Option<String>,
        at: &KeyPath,
        default: Duration,
        min: Duration,
        max: Duration,
        what: &str,
    ) -> Option<Duration> {
        let Some(text) = value else { return Some(default) };
        match humantime::parse_duration(text) {
            Ok(d) if d < min => {
                self.report(
                    at,
                    format!("{text} is shorter than {what} allows (min {})", humantime::format_duration(min)),
                );
                None
            }
            Ok(d) if d > max => {
                self.report(
                    at,
                    format!("{text} is longer than {what} allows (max {})", humantime::format_duration(max)),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.report(at, format!("`{text}` is not a duration ({e}); write e.g. \"90s\", \"20h\", \"30d\""));
                None
            }
        }
    }
}

pub(super) fn parse(text: &str, file: &str, env: &dyn Environment) -> Result<Config, Problems> {
    let mut checker = Checker { file, locator: Locator::new(text), problems: Vec::new() };

    let mut unknown = Vec::new();
    let deserializer = match toml::de::Deserializer::parse(text) {
        Ok(d) => d,
        Err(e) => return Err(Problems(vec![toml_problem(file, text, &e)])),
    };
    let raw: RawConfig = match serde_ignored::deserialize(deserializer, |path| {
        unknown.push(KeyPath::from_ignored(&path));
    }) {
        Ok(raw) => raw,
        Err(e) => return Err(Problems(vec![toml_problem(file, text, &e)])),
    };
    for path in unknown {
        checker.report(&path, "unknown key");
    }

    let root = KeyPath::root();
    let state_dir = match &raw.state_dir {
        Some(dir) if dir.is_empty() => {
            checker.report(&root.key("state_dir"), "must not be empty");
            PathBuf::from(DEFAULT_STATE_DIR)
        }
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(DEFAULT_STATE_DIR),
    };

    let mut credentials = BTreeMap::new();
    for (name, rc) in &raw.credentials {
        let at = root.key("credentials").key(name);
        if let Some(spec) = credential(&mut checker, name, rc, &at, env) {
            credentials.insert(name.clone(), spec);
        }
    }

    let mut tickets = Vec::new();
    let mut names = HashSet::new();
    for (i, rt) in raw.tickets.iter().enumerate() {
        let at = root.key("tickets").index(i);
        if let Some(name) = &rt.name
            && !names.insert(name.clone())
        {
            checker.report(&at.key("name"), format!("duplicate ticket name `{name}`"));
        }
        if let Some(spec) = ticket(&mut checker, rt, &at, &raw.credentials, &credentials) {
            tickets.push(spec);
        }
    }
    let mut sink_paths = HashSet::new();
    for (i, t) in tickets.iter().enumerate() {
        for (j, sink) in t.sinks.iter().enumerate() {
            let SinkSpec::File(f) = sink;
            if !sink_paths.insert(f.path.clone()) {
                let at = root.key("tickets").index(i).key("sinks").index(j).key("path");
                checker.report(&at, format!("{} is written by another sink too", f.path.display()));
            }
        }
    }

    if checker.problems.is_empty() {
        Ok(Config { source: None, state_dir, credentials, tickets })
    } else {
        Err(Problems(checker.problems))
    }
}

fn toml_problem(file: &str, text: &str, e: &toml::de::Error) -> Problem {
    let position = e.span().map(|s| LineIndex::new(text).position(s.start));
    Problem {
        file: file.to_string(),
        line: position.map(|p| p.0),
        column: position.map(|p| p.1),
        key: String::new(),
        message: e.message().trim().to_string(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

fn env_var_name(c: &mut Checker<'_>, value: &Option<String>, default: &str, at: &KeyPath) -> String {
    match value {
        Some(v) if v.is_empty() || v.contains('=') || v.contains('\0') => {
            c.report(at, format!("`{v}` is not an environment variable name"));
            default.to_string()
        }
        Some(v) => v.clone(),
        None => default.to_string(),
    }
}

fn credential(
    c: &mut Checker<'_>,
    name: &str,
    rc: &RawCredentials,
    at: &KeyPath,
    env: &dyn Environment,
) -> Option<CredentialSpec> {
    if !valid_name(name) {
        c.report(at, "credential set names use only letters, digits, `.`, `_` and `-`");
    }
    let vendor = match c.required(&rc.vendor, &at.key("vendor"))? {
        "alibaba" => Vendor::Alibaba,
        "tencent" => Vendor::Tencent,
        other => {
            c.report(&at.key("vendor"), format!("unknown vendor `{other}` (expected alibaba or tencent)"));
            return None;
        }
    };
    match rc.source.as_deref() {
        None | Some("env") => {}
        Some(other) => {
            c.report(&at.key("source"), format!("unknown source `{other}` (this version supports: env)"));
            return None;
        }
    }
    let (alibaba_keys, tencent_keys) = (
        [
            ("access_key_id_env", &rc.access_key_id_env),
            ("access_key_secret_env", &rc.access_key_secret_env),
            ("security_token_env", &rc.security_token_env),
        ],
        [
            ("secret_id_env", &rc.secret_id_env),
            ("secret_key_env", &rc.secret_key_env),
            ("session_token_env", &rc.session_token_env),
        ],
    );
    let foreign = match vendor {
        Vendor::Alibaba => tencent_keys,
        Vendor::Tencent => alibaba_keys,
    };
    for (key, value) in foreign {
        if value.is_some() {
            c.report(&at.key(key), format!("is not used with vendor = \"{}\"", vendor.as_str()));
        }
    }
    let (id_var, secret_var, token_var) = match vendor {
        Vendor::Alibaba => (
            env_var_name(c, &rc.access_key_id_env, ALIBABA_ACCESS_KEY_ID_ENV, &at.key("access_key_id_env")),
            env_var_name(c, &rc.access_key_secret_env, ALIBABA_ACCESS_KEY_SECRET_ENV, &at.key("access_key_secret_env")),
            env_var_name(c, &rc.security_token_env, ALIBABA_SECURITY_TOKEN_ENV, &at.key("security_token_env")),
        ),
        Vendor::Tencent => (
            env_var_name(c, &rc.secret_id_env, TENCENT_SECRET_ID_ENV, &at.key("secret_id_env")),
            env_var_name(c, &rc.secret_key_env, TENCENT_SECRET_KEY_ENV, &at.key("secret_key_env")),
            env_var_name(c, &rc.session_token_env, TENCENT_SESSION_TOKEN_ENV, &at.key("session_token_env")),
        ),
    };
    for var in [&id_var, &secret_var] {
        if env.var(var).is_none_or(|v| v.is_empty()) {
            c.report(at, format!("environment variable {var} is not set (needed by credentials `{name}`)"));
        }
    }
    Some(CredentialSpec { name: name.to_string(), vendor, source: SourceSpec::Env { id_var, secret_var, token_var } })
}

fn ticket(
    c: &mut Checker<'_>,
    rt: &RawTicket,
    at: &KeyPath,
    raw_credentials: &BTreeMap<String, RawCredentials>,
    credentials: &BTreeMap<String, CredentialSpec>,
) -> Option<TicketSpec> {
    let name = c.required(&rt.name, &at.key("name")).map(str::to_string);
    if let Some(n) = &name
        && !valid_name(n)
    {
        c.report(&at.key("name"), format!("`{n}` is not a valid name: use only letters, digits, `.`, `_` and `-`"));
    }
    let cred_name = c.required(&rt.credentials, &at.key("credentials")).map(str::to_string);
    let vendor = match &cred_name {
        Some(n) if !raw_credentials.contains_key(n) => {
            c.report(&at.key("credentials"), format!("unknown credentials `{n}` (no [credentials.{n}] section)"));
            None
        }
        Some(n) => credentials.get(n).map(|spec| spec.vendor),
        None => None,
    };
    let sinks = sinks(c, &rt.sinks, &at.key("sinks"));
    let api = match c.required(&rt.kind, &at.key("kind"))? {
        "sls" => {
            if vendor == Some(Vendor::Tencent) {
                c.report(&at.key("credentials"), "an sls ticket needs alibaba credentials");
            }
            ApiSpec::Sls(sls(c, rt, at, &sinks)?)
        }
        other => {
            c.report(&at.key("kind"), format!("unknown kind `{other}` (expected sls)"));
            return None;
        }
    };
    Some(TicketSpec { name: name?, credentials: cred_name?, api, sinks: sinks? })
}

fn sls(c: &mut Checker<'_>, rt: &RawTicket, at: &KeyPath, sinks: &Option<Vec<SinkSpec>>) -> Option<SlsSpec> {
    let endpoint_text = c.required(&rt.endpoint, &at.key("endpoint"))?;
    let endpoint = endpoint(c, endpoint_text, &at.key("endpoint"));
    let ticket_lifetime = c.duration(
        &rt.ticket_lifetime,
        &at.key("ticket_lifetime"),
        DEFAULT_SLS_TICKET_LIFETIME,
        MIN_LIFETIME,
        MAX_SLS_TICKET_LIFETIME,
        "SLS (expirationTime)",
    );
    let token_lifetime = c.duration(
        &rt.token_lifetime,
        &at.key("token_lifetime"),
        DEFAULT_SLS_TOKEN_LIFETIME,
        MIN_LIFETIME,
        MAX_SLS_TOKEN_LIFETIME,
        "SLS (accessTokenExpirationTime)",
    );
    let (ticket_lifetime, token_lifetime) = (ticket_lifetime?, token_lifetime?);
    if token_lifetime > ticket_lifetime {
        c.report(
            &at.key("token_lifetime"),
            format!(
                "{} is longer than ticket_lifetime ({}); SLS caps a token at its ticket",
                humantime::format_duration(token_lifetime),
                humantime::format_duration(ticket_lifetime)
            ),
        );
    }
    let ticket_renew_before = c.duration(
        &rt.ticket_renew_before,
        &at.key("ticket_renew_before"),
        SlsSpec::default_renew_before(ticket_lifetime, token_lifetime),
        Duration::from_secs(1),
        ticket_lifetime / 2,
        "ticket_renew_before (at most half the ticket_lifetime)",
    )?;
    let signature = match rt.signature_method.as_deref() {
        None | Some("hmac-sha256") => V1Mac::HmacSha256,
        Some("hmac-sha1") => V1Mac::HmacSha1,
        Some(other) => {
            c.report(
                &at.key("signature_method"),
                format!("unknown signature method `{other}` (expected hmac-sha256 or hmac-sha1)"),
            );
            V1Mac::HmacSha256
        }
    };
    if let Some(url) = &rt.console_url {
        match reqwest::Url::parse(url) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            _ => c.report(&at.key("console_url"), format!("`{url}` is not an http(s) URL")),
        }
    }
    let mut console_params = Vec::new();
    for (key, value) in rt.console_params.iter().flatten() {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Integer(i) => i.to_string(),
            other => {
                c.report(
                    &at.key("console_params").key(key),
                    format!("must be a string, boolean or integer, not {}", other.type_str()),
                );
                continue;
            }
        };
        if key == "sls_ticket" || key == "supportRefreshToken" {
            c.report(&at.key("console_params").key(key), "is set by ticketd itself");
        }
        console_params.push((key.clone(), text));
    }
    let wants_url = sinks.iter().flatten().any(|s| matches!(s, SinkSpec::File(f) if f.format == FileFormat::Url));
    if wants_url && rt.console_url.is_none() {
        c.report(&at.key("console_url"), "is required by the `url` sink format");
    }
    Some(SlsSpec {
        endpoint: endpoint?,
        ticket_lifetime,
        token_lifetime,
        ticket_renew_before,
        signature,
        console_url: rt.console_url.clone(),
        console_params,
    })
}

/// A bare host means https; a full URL may be http only on loopback.
fn endpoint(c: &mut Checker<'_>, text: &str, at: &KeyPath) -> Option<Endpoint> {
    let url_text = if text.contains("://") { text.to_string() } else { format!("https://{text}") };
    let url = match reqwest::Url::parse(&url_text) {
        Ok(u) => u,
        Err(e) => {
            c.report(at, format!("`{text}` is not a host or URL ({e})"));
            return None;
        }
    };
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        c.report(at, format!("`{text}`: an endpoint has no query, fragment or user info"));
        return None;
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                c.report(
                    at,
                    format!("`{text}`: plain http is allowed only on loopback (127.0.0.1, ::1, localhost); use https"),
                );
                return None;
            }
        }
        other => {
            c.report(at, format!("`{text}`: scheme {other} is not http(s)"));
            return None;
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        c.report(at, format!("`{text}` has no host"));
        return None;
    }
    Some(Endpoint { base: url })
}

fn sinks(c: &mut Checker<'_>, raw: &[RawSink], at: &KeyPath) -> Option<Vec<SinkSpec>> {
    let mut out = Vec::new();
    let mut ok = true;
    for (i, rs) in raw.iter().enumerate() {
        let at = at.index(i);
        match sink(c, rs, &at) {
            Some(s) => out.push(s),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn sink(c: &mut Checker<'_>, rs: &RawSink, at: &KeyPath) -> Option<SinkSpec> {
    match c.required(&rs.kind, &at.key("type"))? {
        "file" => {}
        other => {
            c.report(&at.key("type"), format!("unknown sink type `{other}` (expected file)"));
            return None;
        }
    }
    let path = c.required(&rs.path, &at.key("path")).map(PathBuf::from);
    if let Some(p) = &path
        && (!p.is_absolute() && !p.starts_with(".") || p.file_name().is_none())
    {
        c.report(&at.key("path"), format!("{} must be an absolute file path (or start with ./)", p.display()));
    }
    let format = match rs.format.as_deref() {
        None | Some("json") => FileFormat::Json,
        Some("token") => FileFormat::Token,
        Some("url") => FileFormat::Url,
        Some(other) => {
            c.report(&at.key("format"), format!("unknown format `{other}` (expected json, token or url)"));
            FileFormat::Json
        }
    };
    let mode = match &rs.mode {
        None => DEFAULT_SINK_MODE,
        Some(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 && m & 0o400 != 0 => m,
            _ => {
                c.report(
                    &at.key("mode"),
                    format!("`{text}` is not an octal file mode the owner can read, e.g. \"0600\""),
                );
                DEFAULT_SINK_MODE
            }
        },
    };
    Some(SinkSpec::File(FileSink { path: path?, format, mode }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        let ApiSpec::Sls(sls) = &t.api;
        assert_eq!(sls.endpoint.base.as_str(), "https://cn-shanghai.log.aliyuncs.com/");
        assert_eq!(sls.ticket_lifetime, Duration::from_secs(30 * 86400));
        assert_eq!(sls.ticket_renew_before, Duration::from_secs(86400));
        assert_eq!(
            sls.console_params,
            vec![("hideTopbar".into(), "true".into()), ("hideSidebar".into(), "true".into())]
        );
        let SinkSpec::File(f) = &t.sinks[0];
        assert_eq!(f.mode, 0o640);
    }

    fn problems(text: &str, env: &HashMap<String, String>) -> Vec<String> {
        parse(text, "t.toml", env).unwrap_err().0.iter().map(|p| p.to_string()).collect()
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
    fn duplicate_names_unknown_credentials_and_missing_env_are_named() {
        let text = format!(
            "{GOOD}\n[[tickets]]\nname = \"ops-dashboard\"\nkind = \"sls\"\ncredentials = \"staging\"\nendpoint = \"http://127.0.0.1:1\"\n"
        );
        let joined = problems(&text, &HashMap::new()).join("\n");
        assert!(joined.contains("t.toml:24:1: tickets[1].name: duplicate ticket name `ops-dashboard`"), "{joined}");
        assert!(joined.contains("tickets[1].credentials: unknown credentials `staging`"), "{joined}");
        assert!(
            joined
                .contains("t.toml:4:14: credentials.prod: environment variable ALIBABA_CLOUD_ACCESS_KEY_ID is not set"),
            "{joined}"
        );
        assert!(joined.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set"), "{joined}");
    }

    #[test]
    fn syntax_and_type_errors_name_the_line() {
        let joined = problems("state_dir = \n", &env()).join("\n");
        assert!(joined.starts_with("t.toml:1:"), "{joined}");
        let joined = problems("state_dir = 5\n", &env()).join("\n");
        assert!(joined.starts_with("t.toml:1:13:") && joined.contains("string"), "{joined}");
    }

    #[test]
    fn loopback_http_bare_host_and_url_sink_rules() {
        let text = GOOD.replace("cn-shanghai.log.aliyuncs.com\"", "http://127.0.0.1:18080\"");
        let config = parse(&text, "t.toml", &env()).unwrap();
        let ApiSpec::Sls(sls) = &config.tickets[0].api;
        assert_eq!(sls.endpoint.host_header(), "127.0.0.1:18080");
        let no_console = GOOD
            .replace("console_url = \"https://sls.console.alibabacloud.com/lognext/project/p/dashboard/d\"\n", "")
            .replace("format = \"json\"", "format = \"url\"");
        let joined = problems(&no_console, &env()).join("\n");
        assert!(joined.contains("console_url: is required by the `url` sink format"), "{joined}");
    }
}
