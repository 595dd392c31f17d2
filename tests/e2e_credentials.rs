//! The real binary with each credential source against the emulator's STS and metadata
//! stand-ins: calls are signed with the temporary keys (the emulator accepts them), the keys are
//! renewed before they expire while tokens keep flowing, and no token outlives its keys.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use emulator::StatsSnapshot;

/// The emulator issues keys this short-lived, so a renewal happens within the test.
const KEY_LIFETIME: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(50);

const DSW_TICKET: &str = r#"
[[tickets]]
name = "t"
kind = "dsw"
credentials = "c"
endpoint = "{emulator}"
instance_id = "dsw-730abcdef"
token_lifetime = "1h"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/t.json"
"#;

const TCR_TICKET: &str = r#"
[[tickets]]
name = "t"
kind = "tcr"
credentials = "c"
endpoint = "{emulator}"
region = "ap-guangzhou"
registry_id = "tcr-abcd1234"
token_type = "temp"

[[tickets.sinks]]
type = "file"
path = "{dir}/out/t.json"
"#;

fn token(h: &Harness) -> Option<(u64, SystemTime)> {
    let j = read_json(&h.path("out/t.json"))?;
    let exp = humantime::parse_rfc3339(j["token_expires_at"].as_str()?).ok()?;
    Some((j["generation"].as_u64()?, exp))
}

/// Run the daemon with `credentials` (the `[credentials.c]` body) and `ticket`, plus `env`;
/// `fetches` counts the STS or metadata calls of this source.
async fn renewed_and_capped(
    h: &Harness,
    credentials: &str,
    ticket: &str,
    env: &[(&str, String)],
    fetches: fn(&StatsSnapshot) -> u64,
) {
    h.emulator.set_sts_lifetime(KEY_LIFETIME);
    let config = h.write_config(&format!("state_dir = \"{{dir}}/state\"\n\n[credentials.c]\n{credentials}\n{ticket}"));
    let mut cmd_env = vec![];
    for (k, v) in env {
        cmd_env.push((k.to_string(), v.clone()));
    }
    let started = SystemTime::now();
    let log = h.path("log.txt");
    let mut cmd = h.command(&["run", "-c", config.to_str().unwrap()]);
    // The long-term keys of the harness must not be what signs the calls.
    for var in [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(cmd_env).stdout(std::process::Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().expect("spawn ticketd");

    // The first token: signed with temporary keys, and capped by their expiry.
    let (generation, expires) = wait_for("the first token", WAIT, || token(h)).await;
    assert!(generation >= 1);
    assert!(
        expires <= started + KEY_LIFETIME + Duration::from_secs(2),
        "a token asked for 1h must not outlive its {KEY_LIFETIME:?} keys: {}",
        humantime::format_rfc3339_seconds(expires)
    );
    assert_eq!(fetches(&h.emulator.stats()), 1);

    // Renewed before expiry, and tokens keep flowing with the new keys.
    wait_for("a second fetch of the keys", WAIT, || (fetches(&h.emulator.stats()) >= 2).then_some(())).await;
    let first_renewal = SystemTime::now();
    assert!(first_renewal < started + KEY_LIFETIME, "keys were renewed only after they expired");
    wait_for("a token minted with the renewed keys", WAIT, || {
        token(h).filter(|(g, exp)| *g > generation && *exp > started + KEY_LIFETIME + Duration::from_secs(2))
    })
    .await;
    let stats = h.emulator.stats();
    assert_eq!((stats.rejected, stats.expired_key), (0, 0), "{stats:?}");
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("fetched credentials"), "{text}");
}

/// The daemon's log of the last run never holds `secret`.
fn assert_not_logged(h: &Harness, secret: &str) {
    let text = std::fs::read_to_string(h.path("log.txt")).unwrap_or_default();
    assert!(!text.is_empty() && !text.contains(secret), "a secret leaked into the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_oidc_keys_sign_calls_are_renewed_and_cap_tokens() {
    let h = Harness::start().await;
    let token_file = h.path("oidc-token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.rrsa.sig").unwrap();
    let env = [
        ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::123:role/x".to_string()),
        ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::123:oidc-provider/ack".to_string()),
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token_file.display().to_string()),
    ];
    renewed_and_capped(
        &h,
        "vendor = \"alibaba\"\nsource = \"oidc\"\nsts_endpoint = \"{emulator}\"\nduration = \"15m\"",
        DSW_TICKET,
        &env,
        |s| s.assume_role_with_oidc,
    )
    .await;
    assert_eq!(h.emulator.last_oidc_token().as_deref(), Some("eyJhbGciOiJSUzI1NiJ9.rrsa.sig"));
    assert_not_logged(&h, "eyJhbGciOiJSUzI1NiJ9.rrsa.sig");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_ecs_ram_role_keys_sign_calls_are_renewed_and_cap_tokens() {
    let h = Harness::start().await;
    renewed_and_capped(
        &h,
        "vendor = \"alibaba\"\nsource = \"ecs_ram_role\"\nmetadata_endpoint = \"{emulator}\"\nimdsv1_fallback = false",
        DSW_TICKET,
        &[],
        |s| s.ecs_credentials,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_chain_falls_through_to_the_instance_role() {
    // No variables, no profile: the default chain ends at the ECS RAM role.
    let h = Harness::start().await;
    renewed_and_capped(&h, "vendor = \"alibaba\"\nmetadata_endpoint = \"{emulator}\"", DSW_TICKET, &[], |s| {
        s.ecs_credentials
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_cvm_role_keys_sign_calls_are_renewed_and_cap_tokens() {
    let h = Harness::start().await;
    renewed_and_capped(
        &h,
        "vendor = \"tencent\"\nsource = \"cvm_role\"\nmetadata_endpoint = \"{emulator}\"",
        TCR_TICKET,
        &[],
        |s| s.cvm_credentials,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_tke_oidc_keys_sign_calls_are_renewed_and_cap_tokens() {
    let h = Harness::start().await;
    let token_file = h.path("tke-token");
    std::fs::write(&token_file, "tke.web.identity").unwrap();
    let env = [
        ("TKE_REGION", "ap-guangzhou".to_string()),
        ("TKE_PROVIDER_ID", "tke-provider".to_string()),
        ("TKE_WEB_IDENTITY_TOKEN_FILE", token_file.display().to_string()),
        ("TKE_ROLE_ARN", "qcs::cam::uin/100:roleName/tke".to_string()),
    ];
    renewed_and_capped(
        &h,
        "vendor = \"tencent\"\nsource = \"oidc\"\nsts_endpoint = \"{emulator}\"",
        TCR_TICKET,
        &env,
        |s| s.assume_role_with_web_identity,
    )
    .await;
    assert_not_logged(&h, "tke.web.identity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alibaba_profile_is_reread_when_rewritten() {
    // A CLI profile in StsToken mode with the harness's keys; then the file is rewritten with an
    // unknown key and the daemon, without a restart, starts failing with it (it re-read the file).
    let h = Harness::start().await;
    let home = h.path("home");
    std::fs::create_dir_all(home.join(".aliyun")).unwrap();
    let write = |id: &str| {
        let text = format!(
            r#"{{"current":"ci","profiles":[{{"name":"ci","mode":"AK","access_key_id":"{id}","access_key_secret":"{}"}}]}}"#,
            h.key.access_key_secret.expose()
        );
        std::fs::write(home.join(".aliyun/config.json"), text).unwrap();
    };
    write(&h.key.access_key_id);
    let config = h.write_config(&format!(
        "state_dir = \"{{dir}}/state\"\n\n[credentials.c]\nvendor = \"alibaba\"\nsource = \"profile\"\n{}",
        DSW_TICKET.replace("token_lifetime = \"1h\"", "token_lifetime = \"10s\"")
    ));
    let mut cmd = h.command(&["run", "-c", config.to_str().unwrap()]);
    cmd.env("HOME", &home).env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID").env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    let log = h.path("log.txt");
    cmd.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().unwrap();
    wait_for("a token signed with the profile's keys", WAIT, || token(&h).filter(|(g, _)| *g >= 1)).await;
    assert_eq!(h.emulator.stats().rejected, 0);
    write("LTAIrotatedaway");
    wait_for("a call signed with the rewritten profile", Duration::from_secs(30), || {
        (h.emulator.stats().rejected >= 1).then_some(())
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("profile ("), "{text}");
    assert!(!text.contains(h.key.access_key_secret.expose()));
}

/// Issue 17 item 6: every token call of the run was signed with keys the emulator issued by
/// AssumeRole for `role` (none with the base set's keys).
fn assert_signed_with_assumed_keys(h: &Harness, role: &str) {
    let signers = h.emulator.token_call_signers();
    assert!(!signers.is_empty());
    for id in signers {
        assert_eq!(h.emulator.issued_by(&id), Some(format!("AssumeRole {role}")), "a token call signed with {id}");
    }
}

const ALIBABA_ROLE: &str = "acs:ram::123456789012:role/cross-account";
const TENCENT_ROLE: &str = "qcs::cam::uin/100000000001:roleName/cross";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_alibaba_ram_role_arn_on_top_of_the_ecs_role_signs_dsw_calls_with_the_assumed_keys() {
    // ECS instance role -> cross-account role: both refreshed by their own refresher (30 s keys).
    let h = Harness::start().await;
    let credentials = format!(
        "vendor = \"alibaba\"\nsource = \"ram_role_arn\"\nbase_credentials = \"ecs\"\nrole_arn = \"{ALIBABA_ROLE}\"\n\
         sts_endpoint = \"{{emulator}}\"\nsession_duration = \"15m\"\n\n[credentials.ecs]\nvendor = \"alibaba\"\n\
         source = \"ecs_ram_role\"\nmetadata_endpoint = \"{{emulator}}\"\nimdsv1_fallback = false\n"
    );
    renewed_and_capped(&h, &credentials, DSW_TICKET, &[], |s| s.assume_role).await;
    assert_signed_with_assumed_keys(&h, ALIBABA_ROLE);
    assert!(h.emulator.stats().ecs_credentials >= 2, "the base instance role was renewed too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_tencent_role_arn_on_top_of_the_cvm_role_signs_tcr_calls_with_the_assumed_keys() {
    let h = Harness::start().await;
    let credentials = format!(
        "vendor = \"tencent\"\nsource = \"role_arn\"\nbase_credentials = \"cvm\"\nrole_arn = \"{TENCENT_ROLE}\"\n\
         sts_endpoint = \"{{emulator}}\"\n\n[credentials.cvm]\nvendor = \"tencent\"\nsource = \"cvm_role\"\n\
         metadata_endpoint = \"{{emulator}}\"\n"
    );
    renewed_and_capped(&h, &credentials, TCR_TICKET, &[], |s| s.tencent_assume_role).await;
    assert_signed_with_assumed_keys(&h, TENCENT_ROLE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_denied_role_is_logged_naming_the_set_and_role_and_a_cycle_is_a_config_error() {
    let h = Harness::start().await;
    h.emulator.deny_role(ALIBABA_ROLE);
    // Long-term keys from the environment as the base.
    let config = h.write_config(&format!(
        "state_dir = \"{{dir}}/state\"\n\n[credentials.c]\nvendor = \"alibaba\"\nsource = \"ram_role_arn\"\n\
         base_credentials = \"keys\"\nrole_arn = \"{ALIBABA_ROLE}\"\nsts_endpoint = \"{{emulator}}\"\n\n\
         [credentials.keys]\nvendor = \"alibaba\"\nsource = \"env\"\n{DSW_TICKET}"
    ));
    let mut daemon = h.spawn(&["run", "-c", config.to_str().unwrap()]);
    let wanted = format!(
        "credentials `c`: ram_role_arn: STS 127.0.0.1 AssumeRole for role {ALIBABA_ROLE}: HTTP 403 Forbidden NoPermission"
    );
    wait_for("the denied AssumeRole in the log", WAIT, || daemon.log_text().contains(&wanted).then_some(())).await;
    assert_eq!(h.emulator.stats().assume_role, 0);
    assert!(h.emulator.token_call_signers().is_empty(), "no token call may go out with the base keys");
    daemon.signal("TERM");
    daemon.wait_exit(WAIT).await;
    // A role on top of itself: check-config names the file, line and key.
    let cyclic = h.write_config(&format!(
        "state_dir = \"{{dir}}/state\"\n\n[credentials.c]\nvendor = \"alibaba\"\nsource = \"ram_role_arn\"\n\
         base_credentials = \"c\"\nrole_arn = \"{ALIBABA_ROLE}\"\n{DSW_TICKET}"
    ));
    let out = h.command(&["check-config", "-c", cyclic.to_str().unwrap()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains(&format!(
            "{}:6:1: credentials.c.base_credentials: a cycle: the role is assumed on top of itself (c -> c)",
            cyclic.display()
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_cli_profile_chainable_ram_role_arn_on_an_ecs_role_signs_dsw_calls_with_the_assumed_keys() {
    // ~/.aliyun/config.json: profile `cross` (ChainableRamRoleArn) on top of `instance` (EcsRamRole),
    // picked by ALIBABA_CLOUD_PROFILE; the daemon renews both before the 30 s keys expire.
    let h = Harness::start().await;
    let home = h.path("home");
    std::fs::create_dir_all(home.join(".aliyun")).unwrap();
    let profiles = serde_json::json!({"current": "instance", "profiles": [
        {"name": "instance", "mode": "EcsRamRole"},
        {"name": "cross", "mode": "ChainableRamRoleArn", "source_profile": "instance", "ram_role_arn": ALIBABA_ROLE},
    ]});
    std::fs::write(home.join(".aliyun/config.json"), profiles.to_string()).unwrap();
    let env = [("HOME", home.display().to_string()), ("ALIBABA_CLOUD_PROFILE", "cross".to_string())];
    renewed_and_capped(
        &h,
        "vendor = \"alibaba\"\nsource = \"profile\"\nsts_endpoint = \"{emulator}\"\nmetadata_endpoint = \"{emulator}\"",
        DSW_TICKET,
        &env,
        |s| s.assume_role,
    )
    .await;
    assert_signed_with_assumed_keys(&h, ALIBABA_ROLE);
    assert!(h.emulator.stats().ecs_credentials >= 2);
    let text = std::fs::read_to_string(h.path("log.txt")).unwrap();
    assert!(text.contains("mode ChainableRamRoleArn"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_17_a_rewritten_ram_role_arn_profile_is_read_again_before_its_keys_expire() {
    // Assumed keys that live an hour; the profile's base key is rotated away: the daemon reads the
    // file again at once (not in 45 minutes) and its next AssumeRole is refused.
    let h = Harness::start().await;
    let home = h.path("home");
    std::fs::create_dir_all(home.join(".aliyun")).unwrap();
    let write = |id: &str| {
        let profiles = serde_json::json!({"current": "r", "profiles": [{"name": "r", "mode": "RamRoleArn",
            "access_key_id": id, "access_key_secret": h.key.access_key_secret.expose(), "ram_role_arn": ALIBABA_ROLE}]});
        std::fs::write(home.join(".aliyun/config.json"), profiles.to_string()).unwrap();
    };
    write(&h.key.access_key_id);
    let config = h.write_config(&format!(
        "state_dir = \"{{dir}}/state\"\n\n[credentials.c]\nvendor = \"alibaba\"\nsource = \"profile\"\n\
         sts_endpoint = \"{{emulator}}\"\n{DSW_TICKET}"
    ));
    let mut cmd = h.command(&["run", "-c", config.to_str().unwrap()]);
    cmd.env("HOME", &home).env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID").env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    cmd.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(h.path("log.txt")).unwrap());
    let mut child = cmd.spawn().unwrap();
    wait_for("a token signed with the assumed keys", WAIT, || token(&h).filter(|(g, _)| *g >= 1)).await;
    assert_eq!((h.emulator.stats().assume_role, h.emulator.stats().rejected), (1, 0));
    write("LTAIrotatedaway");
    wait_for("an AssumeRole signed with the rewritten profile", Duration::from_secs(30), || {
        (h.emulator.stats().rejected >= 1).then_some(())
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_signed_with_assumed_keys(&h, ALIBABA_ROLE);
}
