//! Issue 17 item 6: `ram_role_arn`, `role_arn`, `credentials_uri` against the emulator's STS
//! and credentials URI stand-ins (real sockets, a paused wall clock).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::answer::Fetched;
use super::*;
use crate::apis::{dsw, tcr};
use crate::clock::Clock;
use crate::clock::PausedClock;
use crate::config::{AssumeRoleSpec, DswSpec, Endpoint, MetadataSpec, TcrSpec, TcrTokenType};
use crate::config::{CredentialSpec, SourceSpec, Vendor};
use crate::credentials::CredentialStore;
use crate::credentials::{CredentialError, Credentials};
use emulator::{Emulator, EmulatorKey, generate_key, generate_tencent_key};
use std::time::SystemTime;

const ROLE: &str = "acs:ram::123456789012:role/cross-account";
const ROLE2: &str = "acs:ram::210987654321:role/second-hop";
const TC_ROLE: &str = "qcs::cam::uin/100000000001:roleName/cross";

struct Setup {
    emulator: Emulator,
    clock: Arc<PausedClock>,
    alibaba: EmulatorKey,
    tencent: EmulatorKey,
    store: CredentialStore,
}

async fn setup() -> Setup {
    let clock = Arc::new(PausedClock::starting_at(SystemTime::now()));
    let (alibaba, tencent) = (generate_key("LTAIbase"), generate_tencent_key("AKIDbase"));
    let keys = vec![alibaba.clone(), tencent.clone()];
    let wall = clock.clone();
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), keys, move || wall.now()).await.unwrap();
    let store = CredentialStore::default();
    for (name, key) in [("ali", &alibaba), ("tc", &tencent)] {
        store.store(
            name,
            Credentials::long_term(key.access_key_id.clone(), key.access_key_secret.expose().into(), None),
        );
    }
    Setup { emulator, clock, alibaba, tencent, store }
}

impl Setup {
    fn endpoint(&self) -> Endpoint {
        Endpoint { base: reqwest::Url::parse(&self.emulator.url()).unwrap() }
    }

    fn ctx(&self, vars: &[(&str, String)]) -> Context {
        let env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        Context::new(Arc::new(env), self.clock.clone()).with_store(self.store.clone())
    }

    fn role(&self, vendor: Vendor, base: &str, role_arn: &str) -> CredentialSpec {
        let source = SourceSpec::AssumeRole(AssumeRoleSpec {
            vendor,
            base: base.into(),
            role_arn: role_arn.into(),
            role_session_name: None,
            external_id: None,
            policy: None,
            duration: Duration::from_secs(900),
            sts_endpoint: Some(self.endpoint()),
        });
        CredentialSpec { name: "assumed".into(), vendor, source }
    }

    async fn alibaba_accepts(&self, c: &Credentials) -> bool {
        let spec = DswSpec {
            endpoint: self.endpoint(),
            instance_id: "dsw-1".into(),
            token_lifetime: Duration::from_secs(60),
            token_type: None,
            audience: None,
        };
        dsw::call(&crate::http::client(), self.clock.as_ref(), &spec, c).await.is_ok()
    }

    async fn tencent_accepts(&self, c: &Credentials) -> bool {
        let spec = TcrSpec {
            endpoint: self.endpoint(),
            region: "ap-guangzhou".into(),
            registry_id: "tcr-1".into(),
            token_type: TcrTokenType::Temp,
            token_type_written: false,
            description: None,
            registry: None,
        };
        tcr::call(&crate::http::client(), self.clock.as_ref(), &spec, c).await.is_ok()
    }

    /// Every secret the test knows of, none of which may be in an error.
    fn secrets(&self) -> Vec<String> {
        let mut out = self.emulator.issued_secrets();
        out.push(self.alibaba.access_key_secret.expose().into());
        out.push(self.tencent.access_key_secret.expose().into());
        out
    }
}

#[tokio::test]
async fn issue_17_ram_role_arn_assumes_the_role_with_the_base_keys_and_its_keys_sign_calls() {
    let s = setup().await;
    let mut spec = s.role(Vendor::Alibaba, "ali", ROLE);
    if let SourceSpec::AssumeRole(a) = &mut spec.source {
        a.external_id = Some("abcd-1234".into());
        a.policy = Some(r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"log:*","Resource":"*"}]}"#.into());
        a.role_session_name = Some("ticketd-test".into());
    }
    let ctx = s.ctx(&[]);
    let f = fetch(&spec, &ctx).await.unwrap();
    assert_eq!(f.description, format!("ram_role_arn (role {ROLE}) on top of `ali`"));
    let id = f.credentials.access_key_id.expose().to_string();
    assert_eq!(s.emulator.issued_by(&id).as_deref(), Some(format!("AssumeRole {ROLE}").as_str()));
    let life = f.credentials.expires_at.unwrap().duration_since(s.clock.now()).unwrap();
    assert!(life > Duration::from_secs(890) && life <= Duration::from_secs(900), "{life:?}");
    let sent: HashMap<String, String> = s.emulator.last_assume_role().into_iter().collect();
    assert_eq!(sent["RoleSessionName"], "ticketd-test");
    assert_eq!(sent["ExternalId"], "abcd-1234");
    assert_eq!(sent["DurationSeconds"], "900");
    assert!(sent["Policy"].contains("log:*"));
    assert!(s.alibaba_accepts(&f.credentials).await);
    assert_eq!(s.emulator.token_call_signers(), vec![id.clone()]);
    // Unset optional keys are not sent; the session name defaults to ticketd-<unix seconds>.
    fetch(&s.role(Vendor::Alibaba, "ali", ROLE), &ctx).await.unwrap();
    let sent: HashMap<String, String> = s.emulator.last_assume_role().into_iter().collect();
    assert!(!sent.contains_key("ExternalId") && !sent.contains_key("Policy"), "{sent:?}");
    assert!(sent["RoleSessionName"].starts_with("ticketd-"), "{sent:?}");
    // A second hop: a role assumed with the first role's (STS) keys, SecurityToken and all.
    s.store.store("first", f.credentials.clone());
    let second = fetch(&s.role(Vendor::Alibaba, "first", ROLE2), &ctx).await.unwrap();
    let id2 = second.credentials.access_key_id.expose().to_string();
    assert_eq!(s.emulator.issued_by(&id2).as_deref(), Some(format!("AssumeRole {ROLE2}").as_str()));
    assert!(s.alibaba_accepts(&second.credentials).await);
    assert_eq!(s.emulator.stats().assume_role, 3);
    s.emulator.stop();
}

#[tokio::test]
async fn issue_17_ram_role_arn_on_top_of_an_ecs_instance_role_uses_its_current_keys() {
    let s = setup().await;
    let ctx = s.ctx(&[]);
    let metadata = MetadataSpec { metadata_endpoint: Some(s.endpoint()), role_name: None, imdsv1_fallback: false };
    let ecs = CredentialSpec { name: "ecs".into(), vendor: Vendor::Alibaba, source: SourceSpec::EcsRamRole(metadata) };
    let instance = fetch(&ecs, &ctx).await.unwrap();
    s.store.store("ecs", instance.credentials.clone());
    let f = fetch(&s.role(Vendor::Alibaba, "ecs", ROLE), &ctx).await.unwrap();
    assert!(s.alibaba_accepts(&f.credentials).await);
    // The instance keys renewed: the next AssumeRole is signed with the new ones (the old ones
    // have expired, and the emulator would refuse them).
    s.clock.jump(Duration::from_secs(3601));
    let renewed = fetch(&ecs, &ctx).await.unwrap();
    s.store.store("ecs", renewed.credentials);
    let f = fetch(&s.role(Vendor::Alibaba, "ecs", ROLE), &ctx).await.unwrap();
    assert!(s.alibaba_accepts(&f.credentials).await);
    let stats = s.emulator.stats();
    assert_eq!((stats.ecs_credentials, stats.assume_role, stats.expired_key), (2, 2, 0), "{stats:?}");
    s.emulator.stop();
}

#[tokio::test]
async fn issue_17_a_denied_assume_role_names_the_set_and_the_role_and_no_secret() {
    let s = setup().await;
    s.emulator.deny_role(ROLE);
    s.emulator.deny_role(TC_ROLE);
    let ctx = s.ctx(&[]);
    let e = fetch(&s.role(Vendor::Alibaba, "ali", ROLE), &ctx).await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "credentials `assumed`: ram_role_arn: STS 127.0.0.1 AssumeRole for role {ROLE}: HTTP 403 Forbidden NoPermission: "
        )),
        "{e}"
    );
    let e2 = fetch(&s.role(Vendor::Tencent, "tc", TC_ROLE), &ctx).await.unwrap_err().to_string();
    assert!(
        e2.contains(&format!(
            "role_arn: STS {} AssumeRole for role {TC_ROLE}: AuthFailure.UnauthorizedOperation",
            s.endpoint()
        )),
        "{e2}"
    );
    // A base set that is not there.
    let e3 = fetch(&s.role(Vendor::Alibaba, "nope", ROLE2), &ctx).await.unwrap_err().to_string();
    assert_eq!(e3, "credentials `assumed`: ram_role_arn: base credentials: credentials `nope` are not configured");
    for secret in s.secrets() {
        assert!(!e.contains(&secret) && !e2.contains(&secret), "a secret in an error");
    }
    s.emulator.stop();
}

#[tokio::test]
async fn issue_17_the_emulator_checks_the_rpc_signature_token_and_nonce_of_assume_role() {
    let s = setup().await;
    let spec = match s.role(Vendor::Alibaba, "ali", ROLE).source {
        SourceSpec::AssumeRole(a) => a,
        _ => unreachable!(),
    };
    let http = crate::http::client();
    let now = crate::clock::rfc3339(s.clock.now());
    let send = |base: Credentials, nonce: &'static str| {
        let (query, form) = assume_role::alibaba_request(&spec, "sess", &base, &now, nonce);
        let mut url = reqwest::Url::parse(&s.emulator.url()).unwrap();
        url.set_query(Some(&crate::signing::rpc::canonicalized(&query)));
        let body = crate::signing::rpc::canonicalized(&form);
        let http = http.clone();
        async move {
            let r = http
                .post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let j: serde_json::Value = r.json().await.unwrap();
            (status, j["Code"].as_str().unwrap_or("").to_string())
        }
    };
    let good =
        || Credentials::long_term(s.alibaba.access_key_id.clone(), s.alibaba.access_key_secret.expose().into(), None);
    assert_eq!(send(good(), "n1").await, (200, String::new()));
    assert_eq!(send(good(), "n1").await, (400, "SignatureNonceUsed".into()));
    let wrong = Credentials::long_term(s.alibaba.access_key_id.clone(), "not-the-secret".into(), None);
    assert_eq!(send(wrong, "n2").await, (400, "SignatureDoesNotMatch".into()));
    let unknown = Credentials::long_term("LTAInobody".into(), "x".into(), None);
    assert_eq!(send(unknown, "n3").await, (404, "InvalidAccessKeyId.NotFound".into()));
    // Long-term keys with a SecurityToken, and STS keys without theirs.
    let token = Credentials::long_term(
        s.alibaba.access_key_id.clone(),
        s.alibaba.access_key_secret.expose().into(),
        Some("CAISforged".into()),
    );
    assert_eq!(send(token, "n4").await, (400, "InvalidSecurityToken.Mismatch".into()));
    let f = fetch(&s.role(Vendor::Alibaba, "ali", ROLE), &s.ctx(&[])).await.unwrap();
    let mut no_token = f.credentials.clone();
    no_token.security_token = None;
    assert_eq!(send(no_token, "n5").await, (400, "MissingSecurityToken".into()));
    s.emulator.stop();
}

#[tokio::test]
async fn issue_17_tencent_role_arn_is_tc3_signed_for_sts_and_its_keys_sign_tcr_calls() {
    let s = setup().await;
    let ctx = s.ctx(&[]);
    let f = fetch(&s.role(Vendor::Tencent, "tc", TC_ROLE), &ctx).await.unwrap();
    assert_eq!(f.description, format!("role_arn (role {TC_ROLE}) on top of `tc`"));
    let id = f.credentials.access_key_id.expose().to_string();
    assert_eq!(s.emulator.issued_by(&id).as_deref(), Some(format!("AssumeRole {TC_ROLE}").as_str()));
    assert!(s.tencent_accepts(&f.credentials).await);
    // Signed with the wrong secret: refused, and the refusal is named.
    s.store.store("tc", Credentials::long_term(s.tencent.access_key_id.clone(), "wrong".into(), None));
    let e = fetch(&s.role(Vendor::Tencent, "tc", TC_ROLE), &ctx).await.unwrap_err().to_string();
    assert!(e.contains("AuthFailure.SignatureFailure"), "{e}");
    // On top of assumed (STS) keys: X-TC-Token is sent and checked.
    s.store.store("first", f.credentials);
    let second = fetch(&s.role(Vendor::Tencent, "first", TC_ROLE), &ctx).await.unwrap();
    assert!(s.tencent_accepts(&second.credentials).await);
    assert_eq!(s.emulator.stats().tencent_assume_role, 2);
    s.emulator.stop();
}

#[tokio::test]
async fn issue_17_credentials_uri_from_the_config_or_the_variable() {
    let s = setup().await;
    let uri = reqwest::Url::parse(&s.emulator.credentials_uri()).unwrap();
    let spec = |u: Option<reqwest::Url>| CredentialSpec {
        name: "uri".into(),
        vendor: Vendor::Alibaba,
        source: SourceSpec::CredentialsUri(u),
    };
    let f = fetch(&spec(Some(uri.clone())), &s.ctx(&[])).await.unwrap();
    assert!(f.credentials.expires_at.is_some());
    assert!(s.alibaba_accepts(&f.credentials).await);
    let vars = [(uri::CREDENTIALS_URI_ENV, uri.to_string())];
    let f = fetch(&spec(None), &s.ctx(&vars)).await.unwrap();
    assert_eq!(f.description, format!("credentials_uri ({uri})"));
    assert_eq!(s.emulator.issued_by(f.credentials.access_key_id.expose()).as_deref(), Some("credentials URI"));
    let Err(CredentialError::Source { detail, .. }) = fetch(&spec(None), &s.ctx(&[])).await else { panic!() };
    assert_eq!(detail, "ALIBABA_CLOUD_CREDENTIALS_URI is not set");
    // An answer without the keys is named, never echoed.
    let bad = reqwest::Url::parse(&format!("{}/_emulator/stats", s.emulator.url())).unwrap();
    let e = fetch(&spec(Some(bad)), &s.ctx(&[])).await.unwrap_err().to_string();
    assert!(e.ends_with("no Expiration in the answer"), "{e}");
    assert_eq!(s.emulator.stats().credentials_uri, 2);
    s.emulator.stop();
}

/// A `~/.aliyun/config.json` in `dir` holding every mode, with the base keys of `s`.
fn cli_config(s: &Setup, dir: &std::path::Path) -> std::path::PathBuf {
    let token_file = dir.join("oidc-token");
    std::fs::write(&token_file, "oidc.jwt.from-profile").unwrap();
    let (id, secret) = (&s.alibaba.access_key_id, s.alibaba.access_key_secret.expose());
    let text = serde_json::json!({
        "current": "role",
        "profiles": [
            {"name": "ak", "mode": "AK", "access_key_id": id, "access_key_secret": secret},
            {"name": "role", "mode": "RamRoleArn", "access_key_id": id, "access_key_secret": secret,
             "ram_role_arn": ROLE, "ram_session_name": "from-profile", "expired_seconds": 900,
             "external_id": "ext-9", "policy": "{\"Version\":\"1\"}"},
            {"name": "hop", "mode": "ChainableRamRoleArn", "source_profile": "role", "ram_role_arn": ROLE2},
            {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": ""},
            {"name": "ecs-hop", "mode": "ChainableRamRoleArn", "source_profile": "ecs", "ram_role_arn": ROLE},
            {"name": "oidc", "mode": "OIDC", "ram_role_arn": ROLE, "oidc_provider_arn": "acs:ram::1:oidc-provider/p",
             "oidc_token_file": token_file.display().to_string()},
            {"name": "loop-a", "mode": "ChainableRamRoleArn", "source_profile": "loop-b", "ram_role_arn": ROLE},
            {"name": "loop-b", "mode": "ChainableRamRoleArn", "source_profile": "loop-a", "ram_role_arn": ROLE},
            {"name": "sso", "mode": "CloudSSO"},
        ]
    });
    let path = dir.join("config.json");
    std::fs::write(&path, text.to_string()).unwrap();
    path
}

#[tokio::test]
async fn issue_17_cli_profile_modes_ram_role_arn_chainable_ecs_and_oidc_resolve_as_credentials_go_does() {
    let s = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let path = cli_config(&s, dir.path());
    let ctx = s.ctx(&[]);
    let spec = |name: Option<&str>| CredentialSpec {
        name: "cli".into(),
        vendor: Vendor::Alibaba,
        source: SourceSpec::Profile {
            profile: name.map(str::to_string),
            file: Some(path.clone()),
            sts_endpoint: Some(s.endpoint()),
            metadata_endpoint: Some(s.endpoint()),
        },
    };
    let issued_by = |f: &Fetched| s.emulator.issued_by(f.credentials.access_key_id.expose());
    // AK: the keys themselves, no call.
    let f = fetch(&spec(Some("ak")), &ctx).await.unwrap();
    assert_eq!(f.credentials.access_key_id.expose(), s.alibaba.access_key_id);
    // RamRoleArn (the `current` profile): AssumeRole signed with the profile's keys, its options sent.
    let f = fetch(&spec(None), &ctx).await.unwrap();
    assert_eq!(f.description, format!("profile ({}, profile role, mode RamRoleArn, role {ROLE})", path.display()));
    assert_eq!(issued_by(&f), Some(format!("AssumeRole {ROLE}")));
    assert!(f.credentials.expires_at.is_some() && s.alibaba_accepts(&f.credentials).await);
    let sent: HashMap<String, String> = s.emulator.last_assume_role().into_iter().collect();
    assert_eq!(
        (sent["RoleSessionName"].as_str(), sent["DurationSeconds"].as_str(), sent["ExternalId"].as_str()),
        ("from-profile", "900", "ext-9")
    );
    assert_eq!(sent["Policy"], "{\"Version\":\"1\"}");
    // ChainableRamRoleArn: the second role assumed with the first role's keys.
    let f = fetch(&spec(Some("hop")), &ctx).await.unwrap();
    assert!(
        f.description.ends_with(&format!("mode ChainableRamRoleArn, role {ROLE2}, via role)")),
        "{}",
        f.description
    );
    assert_eq!(issued_by(&f), Some(format!("AssumeRole {ROLE2}")));
    assert!(s.alibaba_accepts(&f.credentials).await);
    // EcsRamRole, and a role on top of it.
    let before = s.emulator.stats().ecs_credentials;
    let f = fetch(&spec(Some("ecs")), &ctx).await.unwrap();
    assert!(s.alibaba_accepts(&f.credentials).await);
    let f = fetch(&spec(Some("ecs-hop")), &ctx).await.unwrap();
    assert_eq!(issued_by(&f), Some(format!("AssumeRole {ROLE}")));
    assert_eq!(s.emulator.stats().ecs_credentials, before + 2);
    // OIDC: AssumeRoleWithOIDC with the profile's token file.
    let f = fetch(&spec(Some("oidc")), &ctx).await.unwrap();
    assert_eq!(s.emulator.last_oidc_token().as_deref(), Some("oidc.jwt.from-profile"));
    assert!(s.alibaba_accepts(&f.credentials).await);
    // A cycle of source profiles, and a mode ticketd does not read: named, not a hang.
    let e = fetch(&spec(Some("loop-a")), &ctx).await.unwrap_err().to_string();
    assert!(e.ends_with("source_profile cycle: loop-a -> loop-b -> loop-a"), "{e}");
    let e = fetch(&spec(Some("sso")), &ctx).await.unwrap_err().to_string();
    assert!(e.contains("profile `sso` has mode CloudSSO; ticketd reads modes AK, StsToken, RamRoleArn"), "{e}");
    // Without a file of its own, ALIBABA_CLOUD_PROFILE picks the profile in ~/.aliyun/config.json.
    std::fs::create_dir(dir.path().join(".aliyun")).unwrap();
    std::fs::copy(&path, dir.path().join(".aliyun/config.json")).unwrap();
    let home = [("HOME", dir.path().display().to_string()), ("ALIBABA_CLOUD_PROFILE", "hop".to_string())];
    let mut by_home = spec(None);
    if let SourceSpec::Profile { file, .. } = &mut by_home.source {
        *file = None;
    }
    let f = fetch(&by_home, &s.ctx(&home)).await.unwrap();
    assert_eq!(issued_by(&f), Some(format!("AssumeRole {ROLE2}")));
    for secret in s.secrets() {
        assert!(!e.contains(&secret));
    }
    s.emulator.stop();
}
