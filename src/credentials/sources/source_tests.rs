//! Every fetched source against the emulator (real sockets, system time with a jumpable skew):
//! keys come back with their expiry, sign calls the emulator accepts, and are refused once expired.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::apis::{dsw, tcr};
use crate::clock::Clock;
use crate::clock::PausedClock;
use crate::config::{CredentialSpec, SourceSpec, Vendor};
use crate::config::{DswSpec, Endpoint, MetadataSpec, OidcSpec, TcrSpec, TcrTokenType};
use crate::credentials::CredentialStore;
use crate::credentials::Credentials;
use emulator::{Emulator, generate_key, generate_tencent_key};
use std::time::SystemTime;

struct Setup {
    emulator: Emulator,
    clock: Arc<PausedClock>,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let clock = Arc::new(PausedClock::starting_at(SystemTime::now()));
    let keys = vec![generate_key("LTAIlong"), generate_tencent_key("AKIDlong")];
    let wall = clock.clone();
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), keys, move || wall.now()).await.unwrap();
    Setup { emulator, clock, dir: tempfile::tempdir().unwrap() }
}

impl Setup {
    fn endpoint(&self) -> Endpoint {
        Endpoint { base: reqwest::Url::parse(&self.emulator.url()).unwrap() }
    }

    fn ctx(&self, vars: &[(&str, String)]) -> Context {
        let env: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        Context::new(Arc::new(env), self.clock.clone())
    }

    fn spec(&self, vendor: Vendor, source: SourceSpec) -> CredentialSpec {
        CredentialSpec { name: "test".into(), vendor, source }
    }

    /// A DSW call signed with `c` succeeds (Alibaba).
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

    /// A TCR call signed with `c` succeeds (Tencent).
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

    fn oidc(&self) -> SourceSpec {
        SourceSpec::Oidc(OidcSpec {
            sts_endpoint: Some(self.endpoint()),
            role_session_name: None,
            duration: Duration::from_secs(900),
        })
    }

    fn metadata(&self) -> MetadataSpec {
        MetadataSpec { metadata_endpoint: Some(self.endpoint()), role_name: None, imdsv1_fallback: false }
    }
}

#[tokio::test]
async fn alibaba_oidc_reads_the_token_file_each_time_and_its_keys_expire() {
    let s = setup().await;
    s.emulator.set_sts_lifetime(Duration::from_secs(600));
    let token_file = s.dir.path().join("token");
    std::fs::write(&token_file, "jwt-one\n").unwrap();
    let vars = [
        ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::123:role/x".to_string()),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::123:oidc-provider/ack".to_string()),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_file.display().to_string()),
    ];
    let ctx = s.ctx(&vars);
    let spec = s.spec(Vendor::Alibaba, s.oidc());
    let f = fetch(&spec, &ctx).await.unwrap();
    assert_eq!(f.description, "oidc (role acs:ram::123:role/x)");
    assert_eq!(s.emulator.last_oidc_token().as_deref(), Some("jwt-one"));
    let exp = f.credentials.expires_at.expect("temporary keys carry their expiry");
    let life = exp.duration_since(s.clock.now()).unwrap();
    assert!(life > Duration::from_secs(590) && life <= Duration::from_secs(600), "{life:?}");
    assert!(s.alibaba_accepts(&f.credentials).await);
    // A rotated token file is read at the next fetch.
    std::fs::write(&token_file, "jwt-two").unwrap();
    fetch(&spec, &ctx).await.unwrap();
    assert_eq!(s.emulator.last_oidc_token().as_deref(), Some("jwt-two"));
    // Past their expiry the keys are refused.
    s.clock.jump(Duration::from_secs(601));
    assert!(!s.alibaba_accepts(&f.credentials).await);
    assert_eq!(s.emulator.stats().assume_role_with_oidc, 2);
    // A missing token file is named, never a secret.
    std::fs::remove_file(&token_file).unwrap();
    let e = fetch(&spec, &ctx).await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "credentials `test`: oidc: ALIBABA_CLOUD_OIDC_TOKEN_FILE={} not readable (not found)",
            token_file.display()
        )
    );
    s.emulator.stop();
}

#[tokio::test]
async fn ecs_ram_role_uses_the_imdsv2_token_and_discovers_the_role() {
    let s = setup().await;
    let ctx = s.ctx(&[]);
    let f = fetch(&s.spec(Vendor::Alibaba, SourceSpec::EcsRamRole(s.metadata())), &ctx).await.unwrap();
    assert_eq!(f.description, format!("ecs_ram_role (role {})", emulator::metadata::ECS_ROLE));
    assert!(f.credentials.expires_at.is_some() && f.credentials.security_token.is_some());
    assert!(s.alibaba_accepts(&f.credentials).await);
    // The IMDSv2 token is checked: without one (or with a made-up one) the metadata is refused.
    let url = format!("{}/latest/meta-data/ram/security-credentials/", s.emulator.url());
    let http = crate::http::client();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let forged = http.get(&url).header("X-aliyun-ecs-metadata-token", "forged").send().await.unwrap();
    assert_eq!(forged.status(), 401);
    // IMDSv1, when the instance allows it, with a configured role.
    s.emulator.allow_imdsv1(true);
    assert_eq!(http.get(&url).send().await.unwrap().text().await.unwrap(), emulator::metadata::ECS_ROLE);
    // A metadata service that is not there: named, and absent (a chain moves on).
    let mut gone = s.metadata();
    gone.metadata_endpoint = Some(Endpoint { base: reqwest::Url::parse("http://127.0.0.1:9").unwrap() });
    let e = fetch(&s.spec(Vendor::Alibaba, SourceSpec::EcsRamRole(gone)), &ctx).await.unwrap_err().to_string();
    assert!(e.contains("ecs_ram_role: metadata http://127.0.0.1:9: no IMDSv2 token"), "{e}");
    s.emulator.stop();
}

#[tokio::test]
async fn tencent_cvm_role_and_tke_oidc_issue_keys_tcr_accepts() {
    let s = setup().await;
    let ctx = s.ctx(&[]);
    let f = fetch(&s.spec(Vendor::Tencent, SourceSpec::CvmRole(s.metadata())), &ctx).await.unwrap();
    assert_eq!(f.description, format!("cvm_role (role {})", emulator::metadata::CVM_ROLE));
    assert!(s.tencent_accepts(&f.credentials).await);

    let token_file = s.dir.path().join("tke-token");
    std::fs::write(&token_file, "tke-jwt").unwrap();
    let vars = [
        ("TKE_REGION", "ap-guangzhou".to_string()),
        ("TKE_PROVIDER_ID", "provider".to_string()),
        ("TKE_WEB_IDENTITY_TOKEN_FILE", token_file.display().to_string()),
        ("TKE_ROLE_ARN", "qcs::cam::uin/1:roleName/x".to_string()),
    ];
    let f = fetch(&s.spec(Vendor::Tencent, s.oidc()), &s.ctx(&vars)).await.unwrap();
    assert_eq!(f.description, "oidc (role qcs::cam::uin/1:roleName/x)");
    assert_eq!(s.emulator.last_oidc_token().as_deref(), Some("tke-jwt"));
    assert!(s.tencent_accepts(&f.credentials).await);
    s.clock.jump(Duration::from_secs(3601));
    assert!(!s.tencent_accepts(&f.credentials).await);
    let stats = s.emulator.stats();
    assert_eq!((stats.cvm_credentials, stats.assume_role_with_web_identity), (1, 1));
    s.emulator.stop();
}

#[tokio::test]
async fn the_chain_takes_the_first_source_that_is_set_up_and_lists_what_it_tried() {
    let s = setup().await;
    let chain = |s: &Setup, instance: MetadataSpec| {
        let SourceSpec::Oidc(oidc) = s.oidc() else { unreachable!() };
        SourceSpec::Chain(Box::new(crate::config::ChainSpec {
            env: SourceSpec::Env { id_var: "ID".into(), secret_var: "SK".into(), token_var: "TOK".into() },
            oidc,
            profile: SourceSpec::Profile { profile: None, file: None, sts_endpoint: None, metadata_endpoint: None },
            instance,
            credentials_uri: None,
        }))
    };
    let spec = s.spec(Vendor::Alibaba, chain(&s, s.metadata()));
    // Nothing but the metadata service: the instance role.
    let home = s.dir.path().display().to_string();
    let f = fetch(&spec, &s.ctx(&[("HOME", home.clone())])).await.unwrap();
    assert!(f.description.starts_with("ecs_ram_role"), "{}", f.description);
    // A profile wins over the instance role.
    std::fs::create_dir(s.dir.path().join(".aliyun")).unwrap();
    std::fs::write(
        s.dir.path().join(".aliyun/config.json"),
        r#"{"current":"default","profiles":[{"name":"default","mode":"AK","access_key_id":"LTAIp","access_key_secret":"x"}]}"#,
    )
    .unwrap();
    let f = fetch(&spec, &s.ctx(&[("HOME", home.clone())])).await.unwrap();
    assert!(f.description.starts_with("profile ("), "{}", f.description);
    // Variables win over everything.
    let vars = [("HOME", home), ("ID", "LTAIenv".to_string()), ("SK", "s".to_string())];
    let f = fetch(&spec, &s.ctx(&vars)).await.unwrap();
    assert_eq!((f.description.as_str(), f.credentials.access_key_id.expose()), ("env (ID)", "LTAIenv"));
    // Nothing at all: every source is named with what was missing.
    let mut gone = s.metadata();
    gone.metadata_endpoint = Some(Endpoint { base: reqwest::Url::parse("http://127.0.0.1:9").unwrap() });
    let spec = s.spec(Vendor::Alibaba, chain(&s, gone));
    let e = fetch(&spec, &s.ctx(&[("HOME", "/nonexistent".into())])).await.unwrap_err().to_string();
    for part in [
        "env: environment variable ID is not set",
        "oidc: ALIBABA_CLOUD_ROLE_ARN is not set",
        "profile: CLI profile=/nonexistent/.aliyun/config.json not found",
        "ecs_ram_role: metadata http://127.0.0.1:9",
    ] {
        assert!(e.contains(part), "missing `{part}` in {e}");
    }
    s.emulator.stop();
}

#[tokio::test(start_paused = true)]
async fn token_calls_wait_for_a_refresh_under_way_and_then_get_the_new_keys() {
    let clock = PausedClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let store = CredentialStore::default();
    let old = Credentials::long_term("old".into(), "s".into(), None);
    store.store("prod", old);
    store.begin_refresh("prod");
    let waiter = {
        let (store, clock) = (store.clone(), clock.clone());
        tokio::spawn(async move { store.fresh("prod", &clock, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!waiter.is_finished(), "a call must wait while keys are being replaced");
    store.store("prod", Credentials::long_term("new".into(), "s".into(), None));
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.access_key_id.expose(), "new");
    // A refresh that never ends: after the bound, the held keys are used.
    store.begin_refresh("prod");
    let got = store.fresh("prod", &clock, Duration::from_secs(20)).await.unwrap();
    assert_eq!(got.access_key_id.expose(), "new");
    // Never fetched and failed: the error says why.
    store.begin_refresh("ecs");
    store.fetch_failed("ecs", "metadata unreachable".into());
    let e = store.fresh("ecs", &clock, Duration::from_secs(1)).await.unwrap_err();
    assert_eq!(e.to_string(), "credentials `ecs` are not available: metadata unreachable");
    // Expired keys are not handed out.
    let mut expiring = Credentials::long_term("t".into(), "s".into(), Some("tok".into()));
    expiring.expires_at = Some(clock.now() + Duration::from_secs(5));
    store.store("sts", expiring);
    clock.jump(Duration::from_secs(6));
    assert!(store.fresh("sts", &clock, Duration::from_secs(1)).await.is_err());
}

#[test]
fn static_keys_in_a_file_others_can_read_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticketd.toml");
    std::fs::write(
        &path,
        "state_dir = \"/tmp/x\"\n[credentials.ci]\nvendor = \"tencent\"\nsource = \"static\"\nsecret_id = \"AKIDx\"\nsecret_key = \"very-secret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env: HashMap<String, String> = HashMap::new();
    let config = crate::credentials::environment::load(&path, &env).unwrap();
    let warning = config.static_keys_warning().expect("a warning for mode 644");
    assert!(warning.contains("credentials ci hold keys in a file readable by group or others (mode 644)"), "{warning}");
    assert!(!warning.contains("very-secret"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(config.static_keys_warning(), None);
}

#[test]
fn issue_16_static_keys_in_a_directory_others_can_write_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = open.join("ticketd.toml");
    std::fs::write(
        &path,
        "state_dir = \"/tmp/x\"\n[credentials.ci]\nvendor = \"tencent\"\nsource = \"static\"\nsecret_id = \"AKIDx\"\nsecret_key = \"very-secret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env: HashMap<String, String> = HashMap::new();
    let config = crate::credentials::environment::load(&path, &env).unwrap();
    let warning = config.static_keys_warning().expect("a warning for the 0777 directory");
    assert!(
        warning.contains("credentials ci hold keys in a file where another user could replace it: ")
            && warning.ends_with("/open is writable by every user (mode 777)"),
        "{warning}"
    );
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(config.static_keys_warning(), None);
}

#[test]
#[cfg_attr(not(have_root), ignore = "needs root (chown to another uid)")]
fn issue_16_static_keys_in_a_file_another_user_owns_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ticketd.toml");
    std::fs::write(
        &path,
        "state_dir = \"/tmp/x\"\n[credentials.ci]\nvendor = \"tencent\"\nsource = \"static\"\nsecret_id = \"AKIDx\"\nsecret_key = \"very-secret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let env: HashMap<String, String> = HashMap::new();
    let config = crate::credentials::environment::load(&path, &env).unwrap();
    let warning = config.static_keys_warning().expect("a warning for the owner");
    assert!(
        warning.contains("credentials ci hold keys in a file owned by uid 65534, not by ticketd's uid 0 or root"),
        "{warning}"
    );
    assert!(!warning.contains("very-secret"));
}

/// Issue #16 item 1: keys from every source are checked, not only the environment's: a profile
/// file whose secret holds a pasted U+200B is refused naming the file and the key, not the value.
#[tokio::test]
async fn issue_16_a_profile_key_with_a_non_ascii_character_is_refused_by_name() {
    let s = setup().await;
    let file = s.dir.path().join("credentials.ini");
    std::fs::write(
        &file,
        "[default]\ntype = access_key\naccess_key_id = LTAIx\naccess_key_secret = s3cr\u{200b}etkey\n",
    )
    .unwrap();
    let spec = s.spec(
        Vendor::Alibaba,
        SourceSpec::Profile { profile: None, file: Some(file.clone()), sts_endpoint: None, metadata_endpoint: None },
    );
    let ctx = s.ctx(&[("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true".into())]);
    let e = fetch(&spec, &ctx).await.unwrap_err().to_string();
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(e.contains("AccessKeySecret holds a non-ASCII character (U+200B) at character 5"), "{e}");
    assert!(!e.contains("s3cr") && !e.contains("etkey"), "{e}");
    let tencent = s.dir.path().join("tencent.ini");
    std::fs::write(&tencent, "[default]\nsecret_id = AKIDx\nsecret_key = k\u{e9}y\n").unwrap();
    let spec = s.spec(
        Vendor::Tencent,
        SourceSpec::Profile { profile: None, file: Some(tencent), sts_endpoint: None, metadata_endpoint: None },
    );
    let e = fetch(&spec, &ctx).await.unwrap_err().to_string();
    assert!(e.contains("SecretKey holds a non-ASCII character (U+00E9) at character 2"), "{e}");
}
