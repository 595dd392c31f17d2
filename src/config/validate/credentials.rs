//! The `[credentials.<name>]` sections: vendor, source, each source's keys, the assumed roles'
//! bases.

use std::collections::BTreeMap;

use crate::config::check::{Checker, endpoint, is_env_var_name, key_text_problem, parse_uri, valid_name};
use crate::config::credential::{
    AssumeRoleSpec, ChainSpec, CredentialSpec, MetadataSpec, OidcSpec, SourceSpec, StaticKeys, Vendor,
};
use crate::config::defaults::{
    ALIBABA_ACCESS_KEY_ID_ENV, ALIBABA_ACCESS_KEY_SECRET_ENV, ALIBABA_SECURITY_TOKEN_ENV,
    DEFAULT_ALIBABA_ASSUME_ROLE_DURATION, DEFAULT_ALIBABA_OIDC_DURATION, DEFAULT_TENCENT_ASSUME_ROLE_DURATION,
    DEFAULT_TENCENT_OIDC_DURATION, MAX_STS_DURATION, MIN_STS_DURATION, TENCENT_SECRET_ID_ENV, TENCENT_SECRET_KEY_ENV,
    TENCENT_SESSION_TOKEN_ENV,
};
use crate::config::locate::KeyPath;
use crate::config::raw::{RawCredentials, RawSecret};
use crate::http::Endpoint;

/// The variable a `*_env` key names. Names are upper-case letters, digits and `_` (not starting
/// with a digit), as POSIX has them: anything else is refused without being shown, since a key
/// pasted into the wrong line (`access_key_secret_env = "<the secret>"`) would otherwise be echoed
/// back in this error and in every "is not set" after it. (Vendor keys are mixed case: one passing
/// as a name is about as likely as guessing it.)
fn env_var_name(c: &mut Checker<'_>, value: &Option<RawSecret>, default: &str, at: &KeyPath) -> String {
    match value {
        Some(v) if !is_env_var_name(v) => {
            c.report(
                at,
                "is not an environment variable name: use upper-case letters, digits and `_`, not starting \
                 with a digit (the value is not shown, in case it is a key pasted on the wrong line)",
            );
            default.to_string()
        }
        Some(v) => v.to_string(),
        None => default.to_string(),
    }
}

pub(super) fn credential(c: &mut Checker<'_>, name: &str, rc: &RawCredentials, at: &KeyPath) -> Option<CredentialSpec> {
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
    let source_name = rc.source.as_deref().unwrap_or("chain");
    let allowed: &[&str] = match vendor {
        Vendor::Alibaba => {
            &["chain", "env", "static", "profile", "oidc", "ecs_ram_role", "ram_role_arn", "credentials_uri"]
        }
        Vendor::Tencent => &["chain", "env", "static", "profile", "oidc", "cvm_role", "role_arn"],
    };
    if !allowed.contains(&source_name) {
        c.report(
            &at.key("source"),
            format!(
                "unknown source `{source_name}` for vendor = \"{}\" (expected {})",
                vendor.as_str(),
                allowed.join(", ")
            ),
        );
        return None;
    }
    let (alibaba_keys, tencent_keys) = (
        [
            ("access_key_id_env", &rc.access_key_id_env),
            ("access_key_secret_env", &rc.access_key_secret_env),
            ("security_token_env", &rc.security_token_env),
            ("access_key_id", &rc.access_key_id),
            ("access_key_secret", &rc.access_key_secret),
            ("security_token", &rc.security_token),
        ],
        [
            ("secret_id_env", &rc.secret_id_env),
            ("secret_key_env", &rc.secret_key_env),
            ("session_token_env", &rc.session_token_env),
            ("secret_id", &rc.secret_id),
            ("secret_key", &rc.secret_key),
            ("session_token", &rc.session_token),
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
    // Keys that belong to one source only.
    let uses = |sources: &[&str]| {
        sources.contains(&source_name) || (source_name == "chain" && !sources.iter().all(|s| NOT_IN_CHAIN.contains(s)))
    };
    let only: [(&str, bool, &[&str]); 25] = [
        ("access_key_id_env", rc.access_key_id_env.is_some(), &["env"]),
        ("access_key_secret_env", rc.access_key_secret_env.is_some(), &["env"]),
        ("security_token_env", rc.security_token_env.is_some(), &["env"]),
        ("secret_id_env", rc.secret_id_env.is_some(), &["env"]),
        ("secret_key_env", rc.secret_key_env.is_some(), &["env"]),
        ("session_token_env", rc.session_token_env.is_some(), &["env"]),
        ("access_key_id", rc.access_key_id.is_some(), &["static"]),
        ("access_key_secret", rc.access_key_secret.is_some(), &["static"]),
        ("security_token", rc.security_token.is_some(), &["static"]),
        ("secret_id", rc.secret_id.is_some(), &["static"]),
        ("secret_key", rc.secret_key.is_some(), &["static"]),
        ("session_token", rc.session_token.is_some(), &["static"]),
        ("profile", rc.profile.is_some() || rc.profile_file.is_some(), &["profile"]),
        ("sts_endpoint", rc.sts_endpoint.is_some(), &["oidc", "ram_role_arn", "role_arn", "profile"]),
        ("role_session_name", rc.role_session_name.is_some(), &["oidc", "ram_role_arn", "role_arn"]),
        ("duration", rc.duration.is_some(), &["oidc"]),
        ("metadata_endpoint", rc.metadata_endpoint.is_some(), &["ecs_ram_role", "cvm_role", "profile"]),
        ("role_name", rc.role_name.is_some(), &["ecs_ram_role", "cvm_role"]),
        ("imdsv1_fallback", rc.imdsv1_fallback.is_some(), &["ecs_ram_role"]),
        ("base_credentials", rc.base_credentials.is_some(), ASSUME_ROLE),
        ("role_arn", rc.role_arn.is_some(), ASSUME_ROLE),
        ("external_id", rc.external_id.is_some(), ASSUME_ROLE),
        ("policy", rc.policy.is_some(), ASSUME_ROLE),
        ("session_duration", rc.session_duration.is_some(), ASSUME_ROLE),
        ("credentials_uri", rc.credentials_uri.is_some(), &["credentials_uri"]),
    ];
    for (key, set, sources) in only {
        if set && !uses(sources) {
            c.report(&at.key(key), format!("does not apply to source = \"{source_name}\""));
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
    let env_spec = SourceSpec::Env { id_var, secret_var, token_var };
    let (default_duration, max_duration) = match vendor {
        Vendor::Alibaba => (DEFAULT_ALIBABA_OIDC_DURATION, MAX_STS_DURATION),
        Vendor::Tencent => (DEFAULT_TENCENT_OIDC_DURATION, MAX_STS_DURATION),
    };
    let duration = c.duration(
        &rc.duration,
        &at.key("duration"),
        default_duration,
        MIN_STS_DURATION,
        max_duration,
        "STS (DurationSeconds)",
    );
    if let Some(n) = &rc.role_session_name
        && (n.is_empty() || n.len() > 64 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@=,".contains(&b)))
    {
        c.report(&at.key("role_session_name"), format!("`{n}`: 1 to 64 of letters, digits and -_.@=,"));
    }
    let sts_endpoint = rc.sts_endpoint.as_deref().map(|t| endpoint(c, t, &at.key("sts_endpoint")));
    let oidc = OidcSpec {
        sts_endpoint: sts_endpoint.clone().flatten(),
        role_session_name: rc.role_session_name.clone(),
        duration: duration.unwrap_or(default_duration),
    };
    if let Some(r) = &rc.role_name
        && (r.is_empty() || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
    {
        c.report(&at.key("role_name"), format!("`{r}` is not a role name (letters, digits, `-`, `_`, `.`)"));
    }
    let metadata = MetadataSpec {
        metadata_endpoint: rc.metadata_endpoint.as_deref().and_then(|t| endpoint(c, t, &at.key("metadata_endpoint"))),
        role_name: rc.role_name.clone(),
        imdsv1_fallback: rc.imdsv1_fallback.unwrap_or(true),
    };
    let profile = SourceSpec::Profile {
        profile: rc.profile.clone(),
        file: rc.profile_file.as_ref().and_then(|f| c.path(f, &at.key("profile_file"))),
        sts_endpoint: sts_endpoint.clone().flatten(),
        metadata_endpoint: metadata.metadata_endpoint.clone(),
    };
    let uri = credentials_uri(c, rc, at);
    let source = match source_name {
        "ram_role_arn" | "role_arn" => assume_role(c, vendor, rc, at, sts_endpoint.clone().flatten())?,
        "credentials_uri" => SourceSpec::CredentialsUri(uri?),
        "env" => env_spec,
        "profile" => profile,
        "oidc" => SourceSpec::Oidc(oidc),
        "ecs_ram_role" | "cvm_role" => match vendor {
            Vendor::Alibaba => SourceSpec::EcsRamRole(metadata),
            Vendor::Tencent => SourceSpec::CvmRole(metadata),
        },
        "static" => {
            let (id_key, secret_key) = match vendor {
                Vendor::Alibaba => ("access_key_id", "access_key_secret"),
                Vendor::Tencent => ("secret_id", "secret_key"),
            };
            let (id, secret, token) = match vendor {
                Vendor::Alibaba => (&rc.access_key_id, &rc.access_key_secret, &rc.security_token),
                Vendor::Tencent => (&rc.secret_id, &rc.secret_key, &rc.session_token),
            };
            let token_key = match vendor {
                Vendor::Alibaba => "security_token",
                Vendor::Tencent => "session_token",
            };
            let id = c.required_key(id, &at.key(id_key));
            let secret = c.required_key(secret, &at.key(secret_key));
            let token = token.as_ref().filter(|t| !t.is_empty());
            if let Some(problem) = token.and_then(|t| key_text_problem(t)) {
                c.report(&at.key(token_key), problem);
            }
            SourceSpec::Static(StaticKeys {
                access_key_id: crate::secret::Secret::new(id?),
                access_key_secret: crate::secret::Secret::new(secret?),
                security_token: token.map(|t| crate::secret::Secret::new(&**t)),
                expires_at: None,
            })
        }
        _ => SourceSpec::Chain(Box::new(ChainSpec {
            env: env_spec,
            profile,
            oidc,
            instance: metadata,
            credentials_uri: uri.flatten(),
        })),
    };
    Some(CredentialSpec { name: name.to_string(), vendor, source })
}

/// The sources that are no member of a vendor's default chain: their keys do not apply to it.
const NOT_IN_CHAIN: [&str; 3] = ["static", "ram_role_arn", "role_arn"];
/// The sources that assume a role on top of another set.
const ASSUME_ROLE: &[&str] = &["ram_role_arn", "role_arn"];

/// `source = "ram_role_arn"` (Alibaba) / `"role_arn"` (Tencent): the role, the set whose keys
/// sign the call (checked once every set is read, by [`assume_role_bases`]) and the STS options.
fn assume_role(
    c: &mut Checker<'_>,
    vendor: Vendor,
    rc: &RawCredentials,
    at: &KeyPath,
    sts_endpoint: Option<Endpoint>,
) -> Option<SourceSpec> {
    let base = c.required(&rc.base_credentials, &at.key("base_credentials")).map(str::to_string);
    let role_arn = c.required(&rc.role_arn, &at.key("role_arn")).map(str::to_string);
    let (prefix, example) = match vendor {
        Vendor::Alibaba => ("acs:ram::", "acs:ram::123456789012:role/name"),
        Vendor::Tencent => ("qcs::cam::", "qcs::cam::uin/100000000001:roleName/name"),
    };
    if let Some(arn) = &role_arn
        && (!arn.starts_with(prefix) || arn.len() > 1024 || !arn.bytes().all(|b| b.is_ascii_graphic()))
    {
        c.report(&at.key("role_arn"), format!("`{arn}` is not a role ARN (e.g. \"{example}\")"));
    }
    if let Some(id) = &rc.external_id
        && (id.len() < 2
            || id.len() > 1224
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"=,.@:/-_".contains(&b)))
    {
        c.report(&at.key("external_id"), "2 to 1224 of letters, digits and =,.@:/-_ (the value is not shown)");
    }
    if let Some(policy) = &rc.policy
        && serde_json::from_str::<serde_json::Value>(policy).map_or(true, |v| !v.is_object())
    {
        c.report(
            &at.key("policy"),
            "is not a JSON policy document (an object, e.g. {\"Version\": \"1\", \"Statement\": [...]})",
        );
    }
    let default = match vendor {
        Vendor::Alibaba => DEFAULT_ALIBABA_ASSUME_ROLE_DURATION,
        Vendor::Tencent => DEFAULT_TENCENT_ASSUME_ROLE_DURATION,
    };
    let duration = c.duration(
        &rc.session_duration,
        &at.key("session_duration"),
        default,
        MIN_STS_DURATION,
        MAX_STS_DURATION,
        "STS AssumeRole (DurationSeconds)",
    );
    Some(SourceSpec::AssumeRole(AssumeRoleSpec {
        vendor,
        base: base?,
        role_arn: role_arn?,
        role_session_name: rc.role_session_name.clone(),
        external_id: rc.external_id.clone(),
        policy: rc.policy.clone(),
        duration: duration?,
        sts_endpoint,
    }))
}

/// `credentials_uri`: an http(s) URL (plain http too: the SDKs' URI is a local sidecar), or
/// `None` when unset (the source then reads `ALIBABA_CLOUD_CREDENTIALS_URI`). `Err` after a problem.
fn credentials_uri(c: &mut Checker<'_>, rc: &RawCredentials, at: &KeyPath) -> Option<Option<reqwest::Url>> {
    let Some(text) = &rc.credentials_uri else { return Some(None) };
    match parse_uri(text) {
        Ok(url) => Some(Some(url)),
        Err(problem) => {
            c.report(&at.key("credentials_uri"), problem.to_string());
            None
        }
    }
}

/// Every assumed role's `base_credentials` names a set of the same vendor, and following the
/// bases never comes back to where it started (`a` on top of `b` on top of `a`).
pub(super) fn assume_role_bases(
    c: &mut Checker<'_>,
    raw: &BTreeMap<String, RawCredentials>,
    credentials: &BTreeMap<String, CredentialSpec>,
) {
    let base_of = |name: &str| match credentials.get(name).map(|s| &s.source) {
        Some(SourceSpec::AssumeRole(a)) => Some(a.base.as_str()),
        _ => None,
    };
    for (name, spec) in credentials {
        let SourceSpec::AssumeRole(a) = &spec.source else { continue };
        let at = KeyPath::root().key("credentials").key(name).key("base_credentials");
        if !raw.contains_key(&a.base) {
            c.report(&at, format!("unknown credentials `{}` (no [credentials.{}] section)", a.base, a.base));
            continue;
        }
        if let Some(base) = credentials.get(&a.base)
            && base.vendor != spec.vendor
        {
            c.report(
                &at,
                format!(
                    "`{}` are {} credentials; a {} role is assumed with {} keys",
                    a.base,
                    base.vendor.as_str(),
                    spec.vendor.as_str(),
                    spec.vendor.as_str()
                ),
            );
            continue;
        }
        let mut path = vec![name.as_str()];
        let mut next = Some(a.base.as_str());
        while let Some(n) = next {
            path.push(n);
            if n == name {
                c.report(&at, format!("a cycle: the role is assumed on top of itself ({})", path.join(" -> ")));
                break;
            }
            if path[..path.len() - 1].contains(&n) || path.len() > credentials.len() + 1 {
                break; // a cycle further on, reported from one of its own members
            }
            next = base_of(n);
        }
    }
}
