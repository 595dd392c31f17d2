//! Issue 20 part 2: the real binary as the kubelet's image credential provider
//! (`ticketd kubelet-credential-provider`, and invoked as `ticketd-credential-provider`) against
//! the emulator: real `CredentialProviderRequest` documents on stdin, every answer checked against
//! the published v1 types; answers from the running daemon, then from the saved state once it is
//! stopped, then (under libfaketime) near and past the token's expiry; and the example
//! `CredentialProviderConfig` parses as the kubelet reads it and names this provider.
//!
//! Schema facts, copied from the Kubernetes sources (`kubernetes/kubernetes`):
//!
//! - `staging/src/k8s.io/kubelet/pkg/apis/credentialprovider/v1/register.go`: the group is
//!   `credentialprovider.kubelet.k8s.io`, version `v1`; kinds `CredentialProviderRequest` and
//!   `CredentialProviderResponse`.
//! - `.../credentialprovider/v1/types.go`, `CredentialProviderRequest`: `apiVersion`, `kind`
//!   (TypeMeta), `image` (required), `serviceAccountToken` and `serviceAccountAnnotations`
//!   (optional, sent only when the provider config has `tokenAttributes`).
//! - same file, `CredentialProviderResponse`: TypeMeta ("should be set to the same apiVersion as
//!   CredentialProviderRequest"); `cacheKeyType` (required, no omitempty): "Image", "Registry" or
//!   "Global" ("If an invalid value is specified, the response will NOT be used by the kubelet");
//!   `cacheDuration` (`*metav1.Duration`, omitempty: "If null, the kubelet will use
//!   defaultCacheDuration ... If set to 0, the kubelet will not cache the provided AuthConfig");
//!   `auth` (`map[string]AuthConfig`, omitempty: keys are match-image patterns, host with optional
//!   port and path; "A plugin should set this field to null if no valid credentials can be
//!   returned for the requested image"); `AuthConfig` is `{username, password}`, both strings,
//!   both required (no omitempty), empty values valid.
//! - `.../credentialprovider/v1beta1/types.go`: the same request and response shapes under
//!   `credentialprovider.kubelet.k8s.io/v1beta1` (without the service account fields).
//! - `staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/duration.go`: `Duration.UnmarshalJSON`
//!   reads a JSON string with Go's `time.ParseDuration` (decimal numbers with units "ns", "us",
//!   "µs", "ms", "s", "m", "h"; no days; a bare number other than 0 is an error), and
//!   `MarshalJSON` writes `Duration.String()` ("1h2m3s", "0s").
//! - `pkg/credentialprovider/plugin/plugin.go`: the kubelet decodes the response with a strict
//!   codec (`serializer.EnableStrict`: an unknown field is an error), refuses a response whose
//!   apiVersion differs from the configured one or whose kind is not `CredentialProviderResponse`,
//!   and on a non-zero exit logs the error with the provider's stderr and uses no credentials
//!   (nothing cached); `cacheKeyType: Registry` caches under `parseRegistry(image)`, the image's
//!   first `/`-separated part (host and port); cacheDuration 0 caches nothing, null uses the
//!   config's `defaultCacheDuration`; the request goes in with a 1 minute timeout.
//! - `staging/src/k8s.io/kubelet/config/v1/types.go` and `pkg/credentialprovider/plugin/config.go`:
//!   `CredentialProviderConfig` (`kubelet.config.k8s.io/v1`) has `providers`, each with `name`
//!   (the executable in `--image-credential-provider-bin-dir`; no `/`, no space, not `.`/`..`),
//!   `matchImages` (required, at least one; globs in the domain, one glob per label),
//!   `defaultCacheDuration` (required, >= 0), `apiVersion` (required, one the kubelet knows), and
//!   optional `args` and `env` (`[{name, value}]`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;

/// The shared long-term TCR ticket, naming the registry the provider is asked about.
fn config() -> String {
    TCR_LONGTERM_CONFIG
        .replace("token_type = \"longterm\"\n", "token_type = \"longterm\"\nregistry = \"myreg.tencentcloudcr.com\"\n")
}

const WAIT: Duration = Duration::from_secs(30);
const REGISTRY: &str = "myreg.tencentcloudcr.com";
const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// The provider's documented cache bounds (README, `src/cli/kubelet_credential.rs`).
const MAX_CACHE: Duration = Duration::from_secs(10 * 60);
const MARGIN: Duration = Duration::from_secs(5 * 60);

/// What the provider answered: exit code, stdout, stderr.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout fit for a failure message: every `password` replaced (the tokens are the
    /// emulator's, but a panic message carries no secret all the same).
    fn shown(&self) -> String {
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&self.stdout) else {
            return format!("<{} bytes, not JSON>", self.stdout.len());
        };
        if let Some(auth) = v.get_mut("auth").and_then(serde_json::Value::as_object_mut) {
            for entry in auth.values_mut() {
                entry["password"] = "<redacted>".into();
            }
        }
        v.to_string()
    }
}

/// Run `program args` (after an optional `wrapper`, e.g. faketime) as the kubelet does: `input`
/// on stdin, the config named by `TICKETD_CONFIG` unless `args` name one.
fn provider(h: &Harness, wrapper: &[&str], program: &Path, args: &[&str], input: &str) -> Run {
    let mut cmd = match wrapper.split_first() {
        Some((w, rest)) => {
            let mut cmd = Command::new(w);
            cmd.args(rest).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TZ", "UTC")
        .env("TICKETD_CONFIG", h.path("ticketd.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the provider");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `Some` once the state file holds the registry ticket's token.
fn saved(h: &Harness) -> Option<()> {
    read_json(&h.path("state/state.json")).filter(|s| !s["tickets"]["registry"]["current"].is_null()).map(|_| ())
}

/// A request document as the kubelet's v1 encoder writes it.
fn request(api_version: &str, image: &str) -> String {
    serde_json::json!({"kind": "CredentialProviderRequest", "apiVersion": api_version, "image": image}).to_string()
}

/// Go's `time.ParseDuration`, as the kubelet reads `cacheDuration` (duration.go, above).
fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.starts_with('-') {
        return Err(format!("{text:?}: negative"));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(format!("{text:?}: empty"));
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| format!("{text:?}: no number"))?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(format!("{text:?}: unknown unit {other:?}")),
        };
        rest = &rest[unit_len..];
        nanos += number * unit;
    }
    Ok(Duration::from_nanos(nanos as u64))
}

#[test]
fn the_go_duration_model_reads_units_as_go_does() {
    assert_eq!(parse_go_duration("1h2m3s"), Ok(Duration::from_secs(3_723)));
    assert_eq!(parse_go_duration("10m0s"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_go_duration("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5_400)));
    assert_eq!(parse_go_duration("600000000us"), Ok(Duration::from_secs(600)));
    assert!(parse_go_duration("600").is_err(), "a bare number is no Go duration");
    assert!(parse_go_duration("1d").is_err(), "Go has no days");
    assert!(parse_go_duration("").is_err());
}

/// A `CredentialProviderResponse` checked against the v1 type: only its fields (the kubelet
/// decodes strictly), TypeMeta echoing the request's apiVersion, a valid cacheKeyType, a Go
/// duration, and `auth` entries of exactly `{username, password}` strings. Returns the parsed
/// cacheDuration and the auth map.
fn checked_response(run: &Run) -> (Duration, serde_json::Map<String, serde_json::Value>) {
    assert_eq!(run.code, 0, "stdout {} stderr {:?}", run.shown(), run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "one JSON document: {}", run.shown());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("the response is JSON");
    let fields = v.as_object().expect("an object");
    for key in fields.keys() {
        assert!(
            ["apiVersion", "kind", "cacheKeyType", "cacheDuration", "auth"].contains(&key.as_str()),
            "field {key:?} is not in the v1 CredentialProviderResponse (the kubelet decodes strictly)"
        );
    }
    assert_eq!(v["apiVersion"], API_VERSION);
    assert_eq!(v["kind"], "CredentialProviderResponse");
    let key_type = v["cacheKeyType"].as_str().expect("cacheKeyType is required");
    assert!(["Image", "Registry", "Global"].contains(&key_type), "{key_type}");
    assert_eq!(key_type, "Registry");
    let duration = v["cacheDuration"].as_str().expect("cacheDuration is a string (metav1.Duration)");
    let duration = parse_go_duration(duration).expect("cacheDuration parses as Go does");
    let auth = match &v["auth"] {
        serde_json::Value::Null => serde_json::Map::new(),
        serde_json::Value::Object(auth) => auth.clone(),
        other => panic!("auth must be a map or null, is {other}"),
    };
    for (key, entry) in &auth {
        let entry = entry.as_object().expect("an AuthConfig object");
        let mut keys: Vec<&str> = entry.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["password", "username"], "AuthConfig of {key}");
        assert!(entry["username"].is_string() && entry["password"].is_string(), "{key}");
    }
    (duration, auth)
}

/// Check that `auth` holds exactly the login (`username`, `password`) for [`REGISTRY`], keyed by
/// the registry host; a failure names no password.
fn assert_login(auth: &serde_json::Map<String, serde_json::Value>, username: &str, password: &str, what: &str) {
    assert_eq!(auth.keys().collect::<Vec<_>>(), [REGISTRY], "{what}: auth is keyed by the registry host");
    let entry = &auth[REGISTRY];
    assert_eq!(entry["username"], username, "{what}");
    assert!(entry["password"] == password, "{what}: the password is not the token ticketd holds");
}

/// `t` as libfaketime's absolute start time (`@YYYY-MM-DD HH:MM:SS`, UTC).
fn faketime_at(t: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    format!("@{}", text.trim_end_matches('Z').replace('T', " "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_answers_from_the_daemon_then_from_saved_state_and_refuses_other_versions() {
    let h = Harness::start().await;
    let config = h.write_config(&config());
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let sink = wait_for("the TCR token", WAIT, || {
        read_json(&h.path("out/registry.json")).filter(|j| j["generation"].as_u64() >= Some(1))
    })
    .await;
    let token = sink["access_token"].as_str().unwrap().to_string();
    let username = sink["username"].as_str().unwrap().to_string();
    wait_for("the socket", WAIT, || h.path("run/ticketd.sock").exists().then_some(())).await;
    let bin = Path::new(BIN);
    let image = format!("{REGISTRY}/team/app:1.2");

    // From the daemon: move the saved state aside, so only the socket can answer.
    let state = h.path("state/state.json");
    let aside = h.path("state.json.aside");
    wait_for("the saved token", WAIT, || saved(&h)).await;
    std::fs::rename(&state, &aside).unwrap();
    let run = provider(&h, &[], bin, &["kubelet-credential-provider"], &request(API_VERSION, &image));
    std::fs::rename(&aside, &state).unwrap();
    let (cache, auth) = checked_response(&run);
    assert_login(&auth, &username, &token, "from the daemon");
    // A year-long token: cached for MAX_CACHE, read as Go reads it (not µs, not hours).
    assert_eq!(cache, MAX_CACHE, "{}", run.shown());
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    // Invoked as ticketd-credential-provider (the kubelet's provider name), with the config named
    // in `args` as a CredentialProviderConfig can; every image reference shape.
    let link = h.path("ticketd-credential-provider");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let config_arg = config.to_str().unwrap();
    for image in [
        format!("{REGISTRY}/team/app:1.2"),
        format!("{REGISTRY}/team/app@sha256:{}", "0a".repeat(32)),
        format!("https://{REGISTRY}/team/app"),
        "MyReg.TencentCloudCR.com/team/app".to_string(),
    ] {
        let run = provider(&h, &[], &link, &["-c", config_arg], &request(API_VERSION, &image));
        let (cache, auth) = checked_response(&run);
        assert_login(&auth, &username, &token, &image);
        assert_eq!(cache, MAX_CACHE, "{image}");
    }
    // Not ticketd's: no auth (the API's "no credentials"), not cached, exit 0.
    for image in [
        "nginx:1.27".to_string(),
        "library/nginx".to_string(),
        "docker.io/library/nginx:1".to_string(),
        "other.tencentcloudcr.com/team/app:1".to_string(),
        format!("{REGISTRY}:5000/team/app@sha256:{}", "0a".repeat(32)),
    ] {
        let run = provider(&h, &[], &link, &[], &request(API_VERSION, &image));
        let (cache, auth) = checked_response(&run);
        assert!(auth.is_empty() && cache == Duration::ZERO, "{image}: {}", run.shown());
        assert!(!run.stdout.contains("\"auth\""), "auth is left out (null): {}", run.shown());
    }
    // v1beta1, v1alpha1 and a wrong kind: a clear error on stderr, nothing on stdout, exit 1.
    for version in ["credentialprovider.kubelet.k8s.io/v1beta1", "credentialprovider.kubelet.k8s.io/v1alpha1"] {
        let run = provider(&h, &[], &link, &[], &request(version, &image));
        assert_eq!((run.code, run.shown().as_str()), (1, "<0 bytes, not JSON>"), "{version}");
        assert!(run.stderr.contains(&format!("apiVersion is {version:?}")), "{}", run.stderr);
        assert!(run.stderr.contains(&format!("set `apiVersion: {API_VERSION}`")), "{}", run.stderr);
    }
    let wrong_kind = request(API_VERSION, &image).replace("CredentialProviderRequest", "CredentialProviderResponse");
    let run = provider(&h, &[], &link, &[], &wrong_kind);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("kind is \"CredentialProviderResponse\", not CredentialProviderRequest"),
        "{}",
        run.stderr
    );
    // A request with a service account token (v1 tokenAttributes): answered, the token never echoed.
    let with_sa = serde_json::json!({"kind": "CredentialProviderRequest", "apiVersion": API_VERSION, "image": image,
        "serviceAccountToken": "sa-token-secret", "serviceAccountAnnotations": {"team": "a"}});
    let run = provider(&h, &[], &link, &[], &with_sa.to_string());
    assert_login(&checked_response(&run).1, &username, &token, "with a service account token");
    assert!(!run.stdout.contains("sa-token-secret") && !run.stderr.contains("sa-token-secret"));

    // The daemon stopped: the same answer from the saved state, while the token is valid.
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
    let run = provider(&h, &[], &link, &[], &request(API_VERSION, &image));
    let (cache, auth) = checked_response(&run);
    assert_login(&auth, &username, &token, "from the saved state");
    assert_eq!(cache, MAX_CACHE);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    for secret in [token.as_str(), h.tencent_key.access_key_secret.expose()] {
        assert!(!h.all_logs().contains(secret), "a secret reached the daemon's log");
    }
}

/// Mint a long-term token with the daemon, stop it: the link `ticketd-credential-provider`, and
/// the token's (username, password, expiry) as the file sink wrote them.
async fn saved_token(h: &Harness) -> (PathBuf, (String, String, SystemTime)) {
    let config = h.write_config(&config());
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let sink = wait_for("the TCR token", WAIT, || {
        read_json(&h.path("out/registry.json")).filter(|j| j["generation"].as_u64() >= Some(1))
    })
    .await;
    wait_for("the saved token", WAIT, || saved(h)).await;
    daemon.signal("TERM");
    assert_eq!(daemon.wait_exit(WAIT).await, 0, "{}", daemon.log_text());
    let link = h.path("ticketd-credential-provider");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let text = |key: &str| sink[key].as_str().unwrap().to_string();
    let expires = humantime::parse_rfc3339(&text("token_expires_at")).unwrap();
    (link, (text("username"), text("access_token"), expires))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(have_faketime), ignore = "needs faketime (apt-get install faketime)")]
async fn from_saved_state_the_cache_shrinks_to_the_margin_and_an_expired_token_is_an_error() {
    let h = Harness::start().await;
    let (link, (username, token, expires)) = saved_token(&h).await;
    let image = format!("{REGISTRY}/team/app:1.2");
    let stderrs = near_and_past_expiry(&h, &link, &image, expires, (&username, &token));
    for secret in [token.as_str(), h.tencent_key.access_key_secret.expose()] {
        assert!(!stderrs.contains(secret), "a secret reached the provider's stderr");
        assert!(!h.all_logs().contains(secret), "a secret reached the daemon's log");
    }
}

/// From the saved state, with the clock moved by libfaketime: the cache shrinks to the token's
/// life left minus the margin, a token within the margin is handed out uncached, and an expired
/// one is an error (exit 1) naming the registry and the state file. Returns the stderr seen.
fn near_and_past_expiry(h: &Harness, link: &Path, image: &str, expires: SystemTime, login_was: (&str, &str)) -> String {
    let at = |t: SystemTime| vec!["faketime".to_string(), "-f".to_string(), faketime_at(t)];
    let run_at = |t: SystemTime| {
        let wrapper = at(t);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        provider(h, &wrapper, link, &[], &request(API_VERSION, image))
    };
    let mut stderrs = String::new();
    // 3 minutes more than the margin left: cached 3 minutes (a second or two less as the fake
    // clock runs on), in minutes and seconds, not micro-seconds.
    let run = run_at(expires - MARGIN - Duration::from_secs(180));
    let (cache, auth) = checked_response(&run);
    assert_login(&auth, login_was.0, login_was.1, "3 minutes past the margin");
    assert!(cache <= Duration::from_secs(180) && cache >= Duration::from_secs(170), "{}", run.shown());
    stderrs.push_str(&run.stderr);
    // Within the margin: the still valid token, not cached.
    let run = run_at(expires - Duration::from_secs(120));
    let (cache, auth) = checked_response(&run);
    assert_login(&auth, login_was.0, login_was.1, "within the margin");
    assert_eq!(cache, Duration::ZERO, "{}", run.shown());
    stderrs.push_str(&run.stderr);
    // Expired: exit 1 (the kubelet logs the stderr and pulls without credentials, caching nothing).
    let run = run_at(expires + Duration::from_secs(60));
    assert_eq!((run.code, run.shown().as_str()), (1, "<0 bytes, not JSON>"), "{}", run.stderr);
    let state: PathBuf = h.path("state/state.json");
    let says = format!("no valid token for {REGISTRY} in {} (is the daemon running?)", state.display());
    assert!(run.stderr.contains(&says), "{}", run.stderr);
    stderrs.push_str(&run.stderr);
    stderrs
}

/// The kubelet's `CredentialProviderConfig` v1, strictly (an unknown field fails, as with the
/// kubelet's strict codec).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialProviderConfig {
    api_version: String,
    kind: String,
    providers: Vec<CredentialProvider>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialProvider {
    name: String,
    match_images: Vec<String>,
    default_cache_duration: Option<String>,
    api_version: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<EnvVar>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvVar {
    name: String,
    value: String,
}

/// The kubelet's match of an image's host against a `matchImages` host pattern: as many labels,
/// each matching (`*` globs within one label); a pattern without a port matches a host without one.
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p, h): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), host.split('.').collect());
    fn glob(p: &str, s: &str) -> bool {
        match p.split_once('*') {
            None => p == s,
            Some((head, tail)) => s.strip_prefix(head).is_some_and(|rest| {
                (0..=rest.len()).filter(|&i| rest.is_char_boundary(i)).any(|i| glob(tail, &rest[i..]))
            }),
        }
    }
    p.len() == h.len() && p.iter().zip(&h).all(|(p, h)| glob(p, h))
}

#[test]
fn the_example_credential_provider_config_names_this_provider_and_its_api_version() {
    let text = include_str!("../examples/kubernetes/credential-provider-config.yaml");
    let config: CredentialProviderConfig =
        serde_norway::from_str(text).expect("credential-provider-config.yaml parses as a v1 CredentialProviderConfig");
    assert_eq!(config.api_version, "kubelet.config.k8s.io/v1");
    assert_eq!(config.kind, "CredentialProviderConfig");
    assert_eq!(config.providers.len(), 1);
    let p = &config.providers[0];
    // The executable the kubelet runs from its bin dir: the name the binary answers to.
    assert_eq!(p.name, "ticketd-credential-provider");
    assert!(!p.name.contains('/') && !p.name.contains(' ') && p.name != "." && p.name != "..");
    assert_eq!(p.api_version, API_VERSION, "the one apiVersion the provider speaks");
    assert!(p.match_images.iter().any(|m| m == "*.tencentcloudcr.com"), "{:?}", p.match_images);
    assert!(p.match_images.iter().any(|m| host_matches(m, REGISTRY)));
    assert!(!p.match_images.iter().any(|m| host_matches(m, "docker.io") || host_matches(m, "tencentcloudcr.com")));
    let default = p.default_cache_duration.as_deref().expect("defaultCacheDuration is required");
    assert!(parse_go_duration(default).expect("a Go duration") <= MAX_CACHE, "{default}");
    assert!(p.args.is_empty());
    let env: Vec<(&str, &str)> = p.env.iter().map(|e| (e.name.as_str(), e.value.as_str())).collect();
    assert_eq!(env, [("TICKETD_CONFIG", "/etc/ticketd/ticketd.toml")], "the daemon's default config");
    // The host matcher is the kubelet's: one glob per label.
    assert!(host_matches("*.k8s.io", "gcr.k8s.io") && !host_matches("*.io", "gcr.k8s.io"));
    assert!(host_matches("app*.k8s.io", "app1.k8s.io") && !host_matches("app*.k8s.io", "web.k8s.io"));
}

/// Run `program args` with `input` on stdin as [`provider`] does, but wait at most `bound`: a
/// helper still running then is a hang (review N3), reported as such instead of blocking the test.
fn bounded(h: &Harness, program: &Path, args: &[&str], input: &str, bound: Duration) -> (Run, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let (program, args, input) =
        (program.to_path_buf(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>(), input.to_string());
    let config = h.path("ticketd.toml");
    let started = std::time::Instant::now();
    let what = format!("{} {args:?}", program.display());
    std::thread::spawn(move || {
        let mut child = Command::new(&program)
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TICKETD_CONFIG", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the helper");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    });
    let run = rx.recv_timeout(bound).unwrap_or_else(|_| panic!("{what} still runs after {bound:?}: it hangs"));
    (run, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_accepts_and_never_answers_is_given_up_on_and_the_saved_state_answers() {
    let h = Harness::start().await;
    let (link, (username, token, _)) = saved_token(&h).await;
    // A stuck daemon (SIGSTOPped, wedged): its socket accepts, and nothing is ever read or answered.
    let socket = h.path("run/ticketd.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let stuck = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    // The helpers give up after 5 s (src/cli/registry_login.rs DAEMON_TIMEOUT); waited for 30 s.
    let said = "did not answer within 5s; answering from the saved state";
    let image = format!("{REGISTRY}/team/app:1.2");
    let (run, took) = bounded(&h, &link, &[], &request(API_VERSION, &image), WAIT);
    let (cache, auth) = checked_response(&run);
    assert_login(&auth, &username, &token, "from the saved state, the daemon stuck");
    assert_eq!(cache, MAX_CACHE);
    assert!(run.stderr.contains(&format!("ticketd: the daemon at {} {said}", socket.display())), "{}", run.stderr);
    assert!(took >= Duration::from_secs(5), "gave up after {took:?}: before the bound");

    let (run, _) = bounded(&h, Path::new(BIN), &["docker-credential", "get"], &format!("{REGISTRY}\n"), WAIT);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let answer: serde_json::Value = serde_json::from_str(&run.stdout).expect("docker's JSON answer");
    assert_eq!(answer["Username"], username.as_str());
    assert!(answer["Secret"] == token.as_str(), "the saved token");
    assert!(run.stderr.contains(said), "{}", run.stderr);
    assert!(!run.stderr.contains(&token), "no secret on stderr");
    stuck.abort();
}
