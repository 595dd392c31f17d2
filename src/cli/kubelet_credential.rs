//! `ticketd kubelet-credential-provider`: the kubelet's image credential provider exec plugin
//! (`credentialprovider.kubelet.k8s.io/v1`), so Kubernetes nodes pull from TCR with the
//! credentials ticketd keeps fresh. Installed as `ticketd-credential-provider` (a symlink to
//! `ticketd`) in the kubelet's `--image-credential-provider-bin-dir`, it is what a
//! `CredentialProviderConfig` provider of that name runs.
//!
//! The kubelet writes a `CredentialProviderRequest` (`{"apiVersion","kind","image"}`) on stdin;
//! the provider answers a `CredentialProviderResponse` on stdout from the running daemon (socket
//! API) or, when it does not answer, from the saved state ([`crate::cli::registry_login`], shared
//! with the docker credential helper):
//!
//! - a registry ticketd holds, with a valid token: `cacheKeyType: "Registry"`, `auth` keyed by the
//!   registry host with `{username, password}`, and `cacheDuration` (a Go duration, `"9m0s"`) at
//!   most [`MAX_CACHE`] and at most the token's remaining life minus [`MARGIN`] (`"0s"`, "do not
//!   cache", when less is left);
//! - an image on a registry ticketd does not hold (or with no registry: docker.io): no `auth`
//!   (the API's answer for "no credentials"), `cacheDuration: "0s"`, exit 0;
//! - a registry ticketd holds but has no valid token for (expired, not minted yet): an error on
//!   stderr and exit 1, which the kubelet logs with the error and then pulls without credentials.
//!
//! Any other apiVersion or kind (`v1beta1`, `v1alpha1`) is an error naming the one spoken.
//! Nothing the provider prints carries a secret: the token goes only into the answer on stdout.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use crate::cli::registry_login::{self, LookupError, Source};
use crate::config::ClientConfig;

/// Invoked under this name, the binary is `ticketd kubelet-credential-provider`.
pub(super) const PROVIDER_NAME: &str = "ticketd-credential-provider";
/// The one request and response apiVersion spoken.
pub(super) const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
pub(super) const REQUEST_KIND: &str = "CredentialProviderRequest";
pub(super) const RESPONSE_KIND: &str = "CredentialProviderResponse";
/// Credentials are cached per registry host (the kubelet's `parseRegistry(image)`).
pub(super) const CACHE_KEY_TYPE: &str = "Registry";
/// A token is cached by the kubelet until at least this before it expires, so a pull started
/// from the cache still authenticates with a valid token.
pub(super) const MARGIN: Duration = Duration::from_secs(5 * 60);
/// The longest a token is cached: the kubelet asks again after this, and so sees a rotated token
/// (a TCR long-term token is revoked as soon as its replacement is in every sink) or a reload.
pub(super) const MAX_CACHE: Duration = Duration::from_secs(10 * 60);
/// The largest request read from stdin.
const MAX_REQUEST: u64 = 1024 * 1024;

#[derive(Debug, clap::Args)]
pub(super) struct KubeletCredentialArgs {
    #[command(flatten)]
    pub config: crate::cli::common::ConfigArg,
}

/// Why the provider gives no answer. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProviderError {
    #[error("cannot read the CredentialProviderRequest on stdin: {0}")]
    Read(std::io::Error),
    #[error("the CredentialProviderRequest on stdin is larger than {MAX_REQUEST} bytes")]
    TooLarge,
    #[error("the CredentialProviderRequest on stdin is not JSON: {0}")]
    NotJson(String),
    #[error("the CredentialProviderRequest on stdin is not a JSON object")]
    NotObject,
    #[error("the CredentialProviderRequest's `{0}` is missing or not a string")]
    Field(&'static str),
    #[error(
        "the request's apiVersion is {0:?}; ticketd speaks only {API_VERSION}: set `apiVersion: {API_VERSION}` \
         for this provider in the kubelet's CredentialProviderConfig"
    )]
    ApiVersion(String),
    #[error("the request's kind is {0:?}, not {REQUEST_KIND}")]
    Kind(String),
    #[error("the request's image is empty")]
    EmptyImage,
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("the running daemon holds no valid token for {0} (`ticketd status` says why)")]
    DaemonHasNoToken(String),
    #[error("no valid token for {registry} in {} (is the daemon running?)", state.display())]
    NoSavedToken { registry: String, state: std::path::PathBuf },
    #[error("cannot write the CredentialProviderResponse on stdout: {0}")]
    Write(std::io::Error),
}

/// The request's fields the provider reads. Every other field (`serviceAccountToken`,
/// `serviceAccountAnnotations`) is skipped unread, so no copy of a token the kubelet sends is made.
#[derive(serde::Deserialize)]
struct RawRequest {
    #[serde(rename = "apiVersion")]
    api_version: Option<serde_json::Value>,
    kind: Option<serde_json::Value>,
    image: Option<serde_json::Value>,
}

/// A request checked against the v1 API: the image whose credentials are asked for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request {
    pub image: String,
}

/// Parse and check a `CredentialProviderRequest`.
pub(super) fn parse_request(bytes: &[u8]) -> Result<Request, ProviderError> {
    // A check of the whole document that keeps none of it (a `Value` would copy the kubelet's
    // `serviceAccountToken`), then the fields read from the object.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| ProviderError::NotJson(crate::secret::json_error_without_values(&e)))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ProviderError::NotObject);
    }
    let raw: RawRequest = serde_json::from_slice(bytes)
        .map_err(|e| ProviderError::NotJson(crate::secret::json_error_without_values(&e)))?;
    let text = |v: Option<serde_json::Value>, field| match v {
        Some(serde_json::Value::String(s)) => Ok(s),
        _ => Err(ProviderError::Field(field)),
    };
    let api_version = text(raw.api_version, "apiVersion")?;
    if api_version != API_VERSION {
        return Err(ProviderError::ApiVersion(shown(&api_version)));
    }
    let kind = text(raw.kind, "kind")?;
    if kind != REQUEST_KIND {
        return Err(ProviderError::Kind(shown(&kind)));
    }
    let image = text(raw.image, "image")?;
    if image.trim().is_empty() {
        return Err(ProviderError::EmptyImage);
    }
    Ok(Request { image })
}

/// Request text fit for an error message: no control characters, at most 100 characters.
fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// The registry host (`host[:port]`, lower case) of an image reference, or `None` when it names
/// none (`nginx`, `library/nginx:1`: docker.io). Accepts `host/repo:tag`, `host:port/repo@sha256:…`
/// and a URL (`https://host/repo`). As in docker's reference grammar, a first path component is a
/// registry when it holds a `.` or a `:` or is `localhost`.
pub(super) fn image_registry(image: &str) -> Option<String> {
    let image = image.trim();
    let (has_scheme, rest) = match image.split_once("://") {
        Some((_, rest)) => (true, rest),
        None => (false, image),
    };
    let (first, path) = match rest.split_once('/') {
        Some((first, path)) => (first, Some(path)),
        None => (rest, None),
    };
    let is_host = first.contains('.') || first.contains(':') || first == "localhost";
    if first.is_empty() || !(has_scheme || (path.is_some() && is_host)) {
        return None;
    }
    Some(first.to_ascii_lowercase())
}

/// A duration as Go's `time.Duration.String` writes it and `time.ParseDuration` reads it, in whole
/// seconds (rounded down): `"0s"`, `"59s"`, `"1m0s"`, `"1h2m3s"`, `"100h0m0s"`.
pub(super) fn go_duration(d: Duration) -> String {
    let total = d.as_secs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// How long the kubelet may cache a token expiring at `expires_at` (`None`: unknown), at `now`:
/// its life left minus [`MARGIN`], at most [`MAX_CACHE`], in whole seconds; zero ("do not cache")
/// when no more than the margin is left.
pub(super) fn cache_duration(now: SystemTime, expires_at: Option<SystemTime>) -> Duration {
    let Some(expires_at) = expires_at else { return Duration::ZERO };
    let left = expires_at.duration_since(now).unwrap_or(Duration::ZERO);
    let d = left.saturating_sub(MARGIN).min(MAX_CACHE);
    Duration::from_secs(d.as_secs())
}

/// A `CredentialProviderResponse`; only the fields the v1 type has (the kubelet decodes strictly).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    api_version: &'static str,
    kind: &'static str,
    cache_key_type: &'static str,
    cache_duration: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<BTreeMap<&'a str, AuthConfig<'a>>>,
}

#[derive(serde::Serialize)]
struct AuthConfig<'a> {
    username: &'a str,
    password: &'a str,
}

/// Read the request on `input`, write the answer to `output`.
pub(super) fn run(
    config: &ClientConfig,
    now: SystemTime,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), ProviderError> {
    let mut bytes = Zeroizing::new(Vec::new());
    input.take(MAX_REQUEST + 1).read_to_end(&mut bytes).map_err(ProviderError::Read)?;
    if bytes.len() as u64 > MAX_REQUEST {
        return Err(ProviderError::TooLarge);
    }
    let request = parse_request(&bytes)?;
    let found = match image_registry(&request.image) {
        Some(host) => registry_login::login_for(config, &host, now)?,
        None => None,
    };
    let mut response = Response {
        api_version: API_VERSION,
        kind: RESPONSE_KIND,
        cache_key_type: CACHE_KEY_TYPE,
        cache_duration: go_duration(Duration::ZERO),
        auth: None,
    };
    let found = match found {
        None => None,
        Some((registry_login::RegistryLogin { registry, login: None }, Source::Daemon)) => {
            return Err(ProviderError::DaemonHasNoToken(registry));
        }
        Some((registry_login::RegistryLogin { registry, login: None }, Source::SavedState)) => {
            return Err(ProviderError::NoSavedToken {
                registry,
                state: config.state_dir.join(crate::store::STATE_FILE),
            });
        }
        Some((registry_login::RegistryLogin { registry, login: Some(login) }, _)) => Some((registry, login)),
    };
    if let Some((registry, login)) = &found {
        response.cache_duration = go_duration(cache_duration(now, login.expires_at));
        let auth = AuthConfig { username: &login.username, password: login.password.expose() };
        response.auth = Some(BTreeMap::from([(registry.as_str(), auth)]));
    }
    let mut text = Zeroizing::new(serde_json::to_vec(&response).expect("a response is plain JSON"));
    text.push(b'\n');
    output.write_all(&text).and_then(|()| output.flush()).map_err(ProviderError::Write)
}

/// The `kubelet-credential-provider` subcommand: the answer on stdout; an error on stderr, exit 1.
pub(super) fn main(config_path: &Path) -> ExitCode {
    let result = registry_login::load_config(config_path).map_err(ProviderError::from).and_then(|config| {
        run(&config, SystemTime::now(), &mut std::io::stdin().lock(), &mut std::io::stdout().lock())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticketd: {e}");
            ExitCode::from(crate::cli::common::EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    //! Schema facts (Kubernetes `kubernetes/kubernetes`, see `tests/e2e_kubelet.rs` for the full list):
    //! `staging/src/k8s.io/kubelet/pkg/apis/credentialprovider/v1/types.go`: the response has
    //! `cacheKeyType` (required: "Image", "Registry" or "Global"; any other value and the kubelet
    //! drops the answer), `cacheDuration` (optional `*metav1.Duration`; "0s" = do not cache) and
    //! `auth` (optional map of match-image key to `{username, password}`; null when no credentials).
    //! `staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/duration.go`: a Duration is read with Go's
    //! `time.ParseDuration` (units ns, us, µs, ms, s, m, h; no days) and written by `Duration.String`.
    use super::*;
    use crate::cli::registry_login::fixture::setup;

    const REQUEST: &str = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"myreg.tencentcloudcr.com/team/app:1.2"}"#;

    fn call(config: &ClientConfig, now: SystemTime, input: &str) -> Result<serde_json::Value, ProviderError> {
        let mut out = Vec::new();
        run(config, now, &mut input.as_bytes(), &mut out)?;
        assert!(out.ends_with(b"\n"));
        Ok(serde_json::from_slice(&out).unwrap())
    }

    fn request(image: &str) -> String {
        serde_json::json!({"apiVersion": API_VERSION, "kind": REQUEST_KIND, "image": image}).to_string()
    }

    #[test]
    fn go_durations_are_hours_minutes_seconds_as_go_writes_them() {
        let cases = [
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m0s"),
            (61, "1m1s"),
            (3_599, "59m59s"),
            (3_600, "1h0m0s"),
            (3_723, "1h2m3s"),
            (86_400, "24h0m0s"),
            (360_000, "100h0m0s"),
        ];
        for (secs, text) in cases {
            assert_eq!(go_duration(Duration::from_secs(secs)), text, "{secs} s");
        }
        // Whole seconds, rounded down: never more than the exact value, never micro- or nanoseconds.
        assert_eq!(go_duration(Duration::from_millis(1_999)), "1s");
        assert_eq!(go_duration(Duration::from_micros(999_999)), "0s");
        assert_eq!(go_duration(Duration::from_nanos(3_723_000_000_001)), "1h2m3s");
    }

    #[test]
    fn the_cache_lasts_the_tokens_life_minus_the_margin_at_most_max_cache() {
        let now = crate::clock::from_unix_seconds(1_700_000_000);
        let at = |secs: u64| Some(now + Duration::from_secs(secs));
        assert_eq!(cache_duration(now, at(365 * 86_400)), MAX_CACHE);
        assert_eq!(cache_duration(now, at(MARGIN.as_secs() + MAX_CACHE.as_secs() + 1)), MAX_CACHE);
        assert_eq!(cache_duration(now, at(MARGIN.as_secs() + 123)), Duration::from_secs(123));
        assert_eq!(go_duration(cache_duration(now, at(MARGIN.as_secs() + 123))), "2m3s");
        // Within the margin, at it, past expiry, or no expiry known: do not cache.
        assert_eq!(cache_duration(now, at(MARGIN.as_secs())), Duration::ZERO);
        assert_eq!(cache_duration(now, at(1)), Duration::ZERO);
        assert_eq!(cache_duration(now, Some(now - Duration::from_secs(1))), Duration::ZERO);
        assert_eq!(cache_duration(now, None), Duration::ZERO);
        // Sub-second remainders round down: the cache never outlives expiry minus the margin.
        let odd = Some(now + MARGIN + Duration::from_millis(61_900));
        assert_eq!(cache_duration(now, odd), Duration::from_secs(61));
        assert!(MARGIN + MAX_CACHE < Duration::from_secs(3_600) * 2 / 3, "a temp token is refreshed with more left");
    }

    #[test]
    fn image_references_of_every_shape_name_their_registry() {
        let cases = [
            ("myreg.tencentcloudcr.com/team/app:1.2", Some("myreg.tencentcloudcr.com")),
            ("MyReg.TencentCloudCR.com/team/app", Some("myreg.tencentcloudcr.com")),
            ("myreg.tencentcloudcr.com:443/team/app@sha256:0123abcd", Some("myreg.tencentcloudcr.com:443")),
            ("127.0.0.1:5000/app@sha256:0123abcd", Some("127.0.0.1:5000")),
            ("localhost/app", Some("localhost")),
            ("https://myreg.tencentcloudcr.com/team/app:1", Some("myreg.tencentcloudcr.com")),
            ("https://myreg.tencentcloudcr.com", Some("myreg.tencentcloudcr.com")),
            ("docker.io/library/nginx:1", Some("docker.io")),
            // No registry: docker.io.
            ("nginx", None),
            ("nginx:1.27", None),
            ("nginx@sha256:0123abcd", None),
            ("library/nginx:1", None),
            ("team/app", None),
            ("", None),
            ("/app", None),
        ];
        for (image, registry) in cases {
            assert_eq!(image_registry(image).as_deref(), registry, "{image:?}");
        }
    }

    #[test]
    fn a_held_registry_gets_its_login_keyed_by_host_cached_per_registry() {
        let (_dir, config, now) = setup(Duration::from_secs(3_600));
        let answer = call(&config, now, REQUEST).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({
                "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
                "kind": "CredentialProviderResponse",
                "cacheKeyType": "Registry",
                "cacheDuration": "10m0s",
                "auth": {"myreg.tencentcloudcr.com": {"username": "100012345678", "password": "eyJtoken"}},
            })
        );
        // Every reference shape for the same registry gets the same answer.
        for image in ["myreg.tencentcloudcr.com/app@sha256:0123abcd", "https://MYREG.tencentcloudcr.com/team/app:1"] {
            assert_eq!(call(&config, now, &request(image)).unwrap(), answer, "{image}");
        }
        // Extra request fields (v1's serviceAccountToken) are accepted and never echoed.
        let with_sa = serde_json::json!({"apiVersion": API_VERSION, "kind": REQUEST_KIND,
            "image": "myreg.tencentcloudcr.com/a", "serviceAccountToken": "sa-secret", "serviceAccountAnnotations": {"a": "b"}});
        let out = call(&config, now, &with_sa.to_string()).unwrap();
        assert_eq!(out, answer);
    }

    #[test]
    fn the_cache_shrinks_with_the_tokens_life_and_ends_within_the_margin() {
        let (_dir, config, now) = setup(Duration::from_secs(3_600));
        let late = now + Duration::from_secs(3_600) - MARGIN - Duration::from_secs(90);
        assert_eq!(call(&config, late, REQUEST).unwrap()["cacheDuration"], "1m30s");
        // Within the margin the still valid token is handed out, not cached.
        let within = now + Duration::from_secs(3_600) - MARGIN + Duration::from_secs(1);
        let answer = call(&config, within, REQUEST).unwrap();
        assert_eq!(answer["cacheDuration"], "0s");
        assert_eq!(answer["auth"]["myreg.tencentcloudcr.com"]["password"], "eyJtoken");
        // Expired: an error naming the registry and the state file, no secret.
        let e = call(&config, now + Duration::from_secs(3_600), REQUEST).unwrap_err().to_string();
        assert!(e.contains("no valid token for myreg.tencentcloudcr.com in ") && e.contains("state.json"), "{e}");
        assert!(!e.contains("eyJtoken"), "{e}");
    }

    #[test]
    fn an_image_ticketd_does_not_hold_gets_no_auth_and_is_not_cached() {
        let (_dir, config, now) = setup(Duration::from_secs(3_600));
        let empty = serde_json::json!({
            "apiVersion": API_VERSION, "kind": RESPONSE_KIND, "cacheKeyType": "Registry", "cacheDuration": "0s",
        });
        for image in
            ["other.tencentcloudcr.com/app:1", "nginx:1.27", "library/nginx", "myreg.tencentcloudcr.com:5000/a"]
        {
            assert_eq!(call(&config, now, &request(image)).unwrap(), empty, "{image}");
        }
    }

    #[test]
    fn other_api_versions_kinds_and_malformed_requests_are_clear_errors() {
        let (_dir, config, now) = setup(Duration::from_secs(3_600));
        let v1beta1 = REQUEST.replace("/v1\"", "/v1beta1\"");
        let e = call(&config, now, &v1beta1).unwrap_err().to_string();
        assert!(
            e.contains("\"credentialprovider.kubelet.k8s.io/v1beta1\"")
                && e.contains("speaks only credentialprovider.kubelet.k8s.io/v1"),
            "{e}"
        );
        let e = call(&config, now, &REQUEST.replace("Request\"", "Response\"")).unwrap_err().to_string();
        assert!(e.contains("kind is \"CredentialProviderResponse\", not CredentialProviderRequest"), "{e}");
        let cases = [
            ("", "not JSON"),
            ("{\"apiVersion\":", "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"kind":"CredentialProviderRequest","image":"a/b"}"#, "`apiVersion` is missing"),
            (r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"a/b"}"#, "`kind` is missing"),
            (
                r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest"}"#,
                "`image` is missing",
            ),
            (
                r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":7}"#,
                "`image` is missing or not a string",
            ),
            (
                r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":" "}"#,
                "image is empty",
            ),
        ];
        for (input, says) in cases {
            let e = call(&config, now, input).unwrap_err().to_string();
            assert!(e.contains(says), "{input:?}: {e}");
        }
        // A malformed request never has its values quoted back (it may carry a service account token).
        let typed = r#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"a/b","serviceAccountToken":"sa-secret","x":}"#;
        let e = call(&config, now, typed).unwrap_err().to_string();
        assert!(!e.contains("sa-secret"), "{e}");
        let huge = format!("{{\"image\":\"{}\"}}", "a".repeat(MAX_REQUEST as usize));
        assert!(matches!(call(&config, now, &huge), Err(ProviderError::TooLarge)));
    }
}
