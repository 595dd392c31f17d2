//! The [`Source`](super::source::Source) contract over every source of both vendors: `vars()`
//! names every environment variable `fetch`, `describe` and `watch` read (run against the
//! emulator with a recording environment, empty and full), so the daemon's snapshot (the union
//! of `vars()`) holds all of them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::dispatch::{fetch_watched, source, vars};
use super::*;
use crate::clock::{Clock, PausedClock};
use crate::config::defaults::{
    ALIBABA_ACCESS_KEY_ID_ENV, ALIBABA_ACCESS_KEY_SECRET_ENV, ALIBABA_SECURITY_TOKEN_ENV, TENCENT_SECRET_ID_ENV,
    TENCENT_SECRET_KEY_ENV, TENCENT_SESSION_TOKEN_ENV,
};
use crate::config::{AssumeRoleSpec, ChainSpec, CredentialSpec, Endpoint, MetadataSpec, OidcSpec, SourceSpec, Vendor};
use crate::credentials::{CredentialStore, Credentials, Environment};
use emulator::{Emulator, generate_key, generate_tencent_key};

/// An environment that answers from a map and records every name asked for.
struct Recording {
    values: HashMap<String, String>,
    read: Mutex<BTreeSet<String>>,
}

impl Environment for Recording {
    fn var(&self, name: &str) -> Option<String> {
        self.read.lock().unwrap().insert(name.to_string());
        self.values.get(name).cloned()
    }
}

/// Every source spec there is, pointed at `endpoint`, with an env source reading `ID`, `SK`, `TOK`.
fn specs(endpoint: &Endpoint, vendor: Vendor) -> Vec<SourceSpec> {
    let keys: crate::config::StaticKeys = Credentials::long_term("LTAIstatic".into(), "s".into(), None).into();
    let oidc =
        OidcSpec { sts_endpoint: Some(endpoint.clone()), role_session_name: None, duration: Duration::from_secs(900) };
    let instance = MetadataSpec { metadata_endpoint: Some(endpoint.clone()), role_name: None, imdsv1_fallback: true };
    let env = SourceSpec::Env { id_var: "ID".into(), secret_var: "SK".into(), token_var: "TOK".into() };
    let profile = |file: Option<&str>| SourceSpec::Profile {
        profile: None,
        file: file.map(Into::into),
        sts_endpoint: Some(endpoint.clone()),
        metadata_endpoint: Some(endpoint.clone()),
    };
    let chain = ChainSpec {
        env: env.clone(),
        profile: profile(None),
        oidc: oidc.clone(),
        instance: instance.clone(),
        credentials_uri: None,
    };
    vec![
        env,
        SourceSpec::Static(keys.clone()),
        SourceSpec::InMemory(keys),
        profile(None),
        SourceSpec::Oidc(oidc),
        SourceSpec::EcsRamRole(instance.clone()),
        SourceSpec::CvmRole(instance),
        SourceSpec::AssumeRole(AssumeRoleSpec {
            vendor,
            base: "base".into(),
            role_arn: "acs:ram::1:role/r".into(),
            role_session_name: None,
            external_id: None,
            policy: None,
            duration: Duration::from_secs(900),
            sts_endpoint: Some(endpoint.clone()),
        }),
        SourceSpec::CredentialsUri(None),
        SourceSpec::Chain(Box::new(chain)),
    ]
}

/// The environments each source runs in: none set, then everything set (with each CLI profile
/// mode chosen in turn, so every mode's variables are read).
fn environments(home: &std::path::Path, emulator: &Emulator) -> Vec<HashMap<String, String>> {
    let token = home.join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").unwrap();
    std::fs::create_dir_all(home.join(".aliyun")).unwrap();
    std::fs::write(
        home.join(".aliyun/config.json"),
        r#"{"current":"ak","profiles":[
            {"name":"ak","mode":"AK","access_key_id":"LTAIp","access_key_secret":"x"},
            {"name":"ram","mode":"RamRoleArn","access_key_id":"LTAIp","access_key_secret":"x"},
            {"name":"oidc","mode":"OIDC"},
            {"name":"ecs","mode":"EcsRamRole"}]}"#,
    )
    .unwrap();
    let full = |profile: &str| -> HashMap<String, String> {
        let home = home.display().to_string();
        let token = token.display().to_string();
        [
            ("HOME", home.as_str()),
            ("ID", "LTAIenv"),
            ("SK", "s"),
            ("TOK", "t"),
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/p"),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token.as_str()),
            ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "s"),
            ("ALIBABA_CLOUD_PROFILE", profile),
            ("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "false"),
            ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "false"),
            ("ALIBABA_CLOUD_IMDSV1_DISABLED", "false"),
            ("ALIBABA_CLOUD_CREDENTIALS_URI", emulator.credentials_uri().as_str()),
            ("TKE_REGION", "ap-guangzhou"),
            ("TKE_PROVIDER_ID", "p"),
            ("TKE_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
            ("TKE_ROLE_ARN", "qcs::cam::uin/1:roleName/r"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let mut out = vec![HashMap::new()];
    out.extend(["ak", "ram", "oidc", "ecs"].map(full));
    out
}

#[tokio::test]
async fn every_source_reads_only_the_variables_it_names() {
    let clock = Arc::new(PausedClock::starting_at(SystemTime::now()));
    let (alibaba, tencent) = (generate_key("LTAIbase"), generate_tencent_key("AKIDbase"));
    let wall = clock.clone();
    let emulator =
        Emulator::start(([127, 0, 0, 1], 0).into(), vec![alibaba.clone(), tencent.clone()], move || wall.now())
            .await
            .unwrap();
    let endpoint = Endpoint { base: reqwest::Url::parse(&emulator.url()).unwrap() };
    let home = tempfile::tempdir().unwrap();
    let envs = environments(home.path(), &emulator);
    let mut checked = 0;
    for (vendor, base) in [(Vendor::Alibaba, &alibaba), (Vendor::Tencent, &tencent)] {
        let store = CredentialStore::default();
        let base = Credentials::long_term(base.access_key_id.clone(), base.access_key_secret.expose().into(), None);
        store.store("base", base);
        for spec in specs(&endpoint, vendor) {
            let name = spec.name();
            let spec = CredentialSpec { name: "test".into(), vendor, source: spec };
            let named: BTreeSet<String> = vars(&spec).into_iter().collect();
            for values in &envs {
                let env = Arc::new(Recording { values: values.clone(), read: Mutex::default() });
                let ctx = Context::new(env.clone(), clock.clone()).with_store(store.clone());
                let fetched = tokio::time::timeout(Duration::from_secs(20), fetch_watched(&spec, &ctx)).await;
                assert!(fetched.is_ok(), "{name} ({vendor:?}): fetch did not end");
                let _ = describe(&spec, env.as_ref());
                let _ = source(vendor, &spec.source).watch(&ctx);
                let read = env.read.lock().unwrap().clone();
                let unnamed: Vec<&String> = read.difference(&named).collect();
                assert!(unnamed.is_empty(), "{name} ({vendor:?}) read {unnamed:?}, not in its vars() {named:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 10 * 5);
    emulator.stop();
}

#[test]
fn the_default_chains_name_every_variable_the_sdks_read() {
    // The variables both vendors' default chains read: what the environment snapshot held as a
    // fixed list before the Source trait, plus the chain's own env names.
    let expected: BTreeSet<&str> = [
        "HOME",
        ALIBABA_ACCESS_KEY_ID_ENV,
        ALIBABA_ACCESS_KEY_SECRET_ENV,
        ALIBABA_SECURITY_TOKEN_ENV,
        "ALIBABA_CLOUD_ROLE_ARN",
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
        "ALIBABA_CLOUD_ROLE_SESSION_NAME",
        "ALIBABA_CLOUD_STS_REGION",
        "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
        "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
        "ALIBABA_CLOUD_PROFILE",
        "ALIBABA_CLOUD_CREDENTIALS_FILE",
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
        "ALIBABA_CLOUD_ECS_METADATA",
        "ALIBABA_CLOUD_IMDSV1_DISABLED",
        "ALIBABA_CLOUD_CREDENTIALS_URI",
        TENCENT_SECRET_ID_ENV,
        TENCENT_SECRET_KEY_ENV,
        TENCENT_SESSION_TOKEN_ENV,
        "TENCENTCLOUD_CREDENTIALS_FILE",
        "TKE_REGION",
        "TKE_PROVIDER_ID",
        "TKE_WEB_IDENTITY_TOKEN_FILE",
        "TKE_ROLE_ARN",
    ]
    .into();
    let chain = |vendor, (id, secret, token): (&str, &str, &str)| {
        let oidc = OidcSpec { sts_endpoint: None, role_session_name: None, duration: Duration::from_secs(900) };
        let source = SourceSpec::Chain(Box::new(ChainSpec {
            env: SourceSpec::Env { id_var: id.into(), secret_var: secret.into(), token_var: token.into() },
            profile: SourceSpec::Profile { profile: None, file: None, sts_endpoint: None, metadata_endpoint: None },
            oidc,
            instance: MetadataSpec { metadata_endpoint: None, role_name: None, imdsv1_fallback: true },
            credentials_uri: None,
        }));
        vars(&CredentialSpec { name: "c".into(), vendor, source })
    };
    let alibaba =
        chain(Vendor::Alibaba, (ALIBABA_ACCESS_KEY_ID_ENV, ALIBABA_ACCESS_KEY_SECRET_ENV, ALIBABA_SECURITY_TOKEN_ENV));
    let tencent = chain(Vendor::Tencent, (TENCENT_SECRET_ID_ENV, TENCENT_SECRET_KEY_ENV, TENCENT_SESSION_TOKEN_ENV));
    let got: BTreeSet<&str> = alibaba.iter().chain(&tencent).map(String::as_str).collect();
    assert_eq!(got, expected);
}
