//! `ticketd emulator`: the emulator of the cloud APIs alone, on loopback (`--print-config`: with
//! a ticketd config that works against it as printed).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::SystemTime;

use emulator::{Emulator, EmulatorKey, Secret, Vendor};

use crate::cli::common::EXIT_FAILURE;
use crate::config;
use crate::credentials::{Environment, ProcessEnvironment};

#[derive(Debug, clap::Args)]
pub(super) struct EmulatorArgs {
    /// Loopback address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub listen: SocketAddr,
    /// Print, as TOML on stdout, a ticketd config that works against this emulator as printed (an
    /// SLS, a PAI-DSW and a TCR ticket, with the keys the emulator accepts; relative paths, so
    /// they land next to the file it is saved as), then serve.
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    pub log: crate::cli::common::LogArg,
}

/// Where a key the emulator accepts came from.
pub(super) enum KeyOrigin {
    /// The standard variables of the environment: a printed config reads them there too.
    Environment,
    /// Generated: a printed config holds it (`source = "static"`).
    Generated,
}

/// The key of `vendor` from the standard variables in `env`, else a generated one.
fn key(env: &dyn Environment, vendor: Vendor) -> (EmulatorKey, KeyOrigin) {
    let (id_var, secret_var, token_var) = match vendor {
        Vendor::Alibaba => (
            config::ALIBABA_ACCESS_KEY_ID_ENV,
            config::ALIBABA_ACCESS_KEY_SECRET_ENV,
            config::ALIBABA_SECURITY_TOKEN_ENV,
        ),
        Vendor::Tencent => {
            (config::TENCENT_SECRET_ID_ENV, config::TENCENT_SECRET_KEY_ENV, config::TENCENT_SESSION_TOKEN_ENV)
        }
    };
    match (env.var(id_var), env.var(secret_var)) {
        (Some(id), Some(secret)) => {
            let security_token = env.var(token_var).map(Secret::new);
            let key = EmulatorKey { vendor, access_key_id: id, access_key_secret: Secret::new(secret), security_token };
            (key, KeyOrigin::Environment)
        }
        _ => match vendor {
            Vendor::Alibaba => (emulator::generate_key("LTAIemu"), KeyOrigin::Generated),
            Vendor::Tencent => (emulator::generate_tencent_key("AKIDemu"), KeyOrigin::Generated),
        },
    }
}

/// A ticketd config for the emulator at `url` that works as printed: an SLS, a PAI-DSW and a TCR
/// ticket with short lifetimes, keys as `alibaba` and `tencent` say, and relative paths (resolved
/// against the directory of the file it is saved as).
pub(super) fn config_text(
    url: &str,
    alibaba: (&EmulatorKey, &KeyOrigin),
    tencent: (&EmulatorKey, &KeyOrigin),
) -> String {
    let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
    let credentials = |name: &str, (key, origin): (&EmulatorKey, &KeyOrigin)| {
        let (vendor, id_key, secret_key) = match key.vendor {
            Vendor::Alibaba => ("alibaba", "access_key_id", "access_key_secret"),
            Vendor::Tencent => ("tencent", "secret_id", "secret_key"),
        };
        match origin {
            KeyOrigin::Environment => format!(
                "# The keys the emulator was started with, read from the same variables.\n\
                 [credentials.{name}]\nvendor = \"{vendor}\"\nsource = \"env\"\n"
            ),
            KeyOrigin::Generated => format!(
                "# Fake keys this emulator accepts (ticketd warns while the file is readable by others: chmod 600).\n\
                 [credentials.{name}]\nvendor = \"{vendor}\"\nsource = \"static\"\n{id_key} = {}\n{secret_key} = {}\n",
                quoted(&key.access_key_id),
                quoted(key.access_key_secret.expose())
            ),
        }
    };
    let url = quoted(url);
    format!(
        r#"# A ticketd config for this emulator (`ticketd emulator --print-config`). Save it, e.g. as
# emulator/ticketd.toml, and run `ticketd run -c emulator/ticketd.toml`. Relative paths are
# resolved against the directory of the file.
state_dir = "state"
socket = "ticketd.sock"

{alibaba}
{tencent}
[[tickets]]
name = "emulator-dashboard"
kind = "sls"
credentials = "emulator"
endpoint = {url}
ticket_lifetime = "1h"
token_lifetime = "20s"

[[tickets.sinks]]
type = "file"
path = "out/emulator-dashboard.json"

[[tickets]]
name = "emulator-notebook"
kind = "dsw"
credentials = "emulator"
endpoint = {url}
instance_id = "dsw-emulator"
token_lifetime = "30s"

[[tickets.sinks]]
type = "file"
path = "out/emulator-notebook.json"

[[tickets]]
name = "emulator-registry"
kind = "tcr"
credentials = "emulator-tencent"
endpoint = {url}
region = "ap-guangzhou"
registry_id = "tcr-emulator"
registry = "emulator.tencentcloudcr.com"

[[tickets.sinks]]
type = "file"
path = "out/emulator-registry.json"

[[tickets.sinks]]
type = "docker-config"
path = "docker/config.json"
"#,
        alibaba = credentials("emulator", alibaba),
        tencent = credentials("emulator-tencent", tencent),
    )
}

pub(super) async fn run(args: EmulatorArgs) -> ExitCode {
    if !args.listen.ip().is_loopback() {
        eprintln!("ticketd emulator: {} is not a loopback address; the emulator listens on loopback only", args.listen);
        return ExitCode::from(EXIT_FAILURE);
    }
    let (alibaba, alibaba_origin) = key(&ProcessEnvironment, Vendor::Alibaba);
    let (tencent, tencent_origin) = key(&ProcessEnvironment, Vendor::Tencent);
    if !args.print_config {
        let generated = [(&alibaba, &alibaba_origin), (&tencent, &tencent_origin)];
        if generated.iter().any(|(_, o)| matches!(o, KeyOrigin::Generated)) {
            println!("# no keys in the environment; the emulator accepts these (fake) ones:");
        }
        for (key, origin) in generated {
            if matches!(origin, KeyOrigin::Generated) {
                let (id_var, secret_var) = match key.vendor {
                    Vendor::Alibaba => (config::ALIBABA_ACCESS_KEY_ID_ENV, config::ALIBABA_ACCESS_KEY_SECRET_ENV),
                    Vendor::Tencent => (config::TENCENT_SECRET_ID_ENV, config::TENCENT_SECRET_KEY_ENV),
                };
                println!("export {id_var}={}", key.access_key_id);
                println!("export {secret_var}={}", key.access_key_secret.expose());
            }
        }
    }
    let printed = args.print_config.then(|| ((alibaba.clone(), alibaba_origin), (tencent.clone(), tencent_origin)));
    let emulator = match Emulator::start(args.listen, vec![alibaba, tencent], SystemTime::now).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ticketd emulator: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    if let Some(((alibaba, a), (tencent, t))) = &printed {
        print!("{}", config_text(&emulator.url(), (alibaba, a), (tencent, t)));
    }
    println!("# emulator listening on {}", emulator.url());
    let mut control = match crate::control::from_signals() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ticketd: cannot install signal handlers: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    while let Some(c) = control.recv().await {
        if c == crate::control::Control::Shutdown {
            break;
        }
    }
    emulator.stop();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn issue17_the_printed_config_validates_with_generated_keys_and_with_keys_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticketd.toml");
        let (alibaba, tencent) = (emulator::generate_key("LTAIemu"), emulator::generate_tencent_key("AKIDemu"));
        let generated =
            config_text("http://127.0.0.1:18080", (&alibaba, &KeyOrigin::Generated), (&tencent, &KeyOrigin::Generated));
        let config = crate::credentials::environment::parse_read(&generated, &path, &HashMap::new()).unwrap();
        assert_eq!(config.tickets.len(), 3);
        assert_eq!(config.state_dir, dir.path().canonicalize().unwrap().join("state"));
        assert!(generated.contains(alibaba.access_key_secret.expose()));
        let from_env = config_text(
            "http://127.0.0.1:18080",
            (&alibaba, &KeyOrigin::Environment),
            (&tencent, &KeyOrigin::Environment),
        );
        assert!(!from_env.contains(alibaba.access_key_secret.expose()) && !from_env.contains(&tencent.access_key_id));
        let env: HashMap<String, String> = [
            (config::ALIBABA_ACCESS_KEY_ID_ENV, &alibaba.access_key_id),
            (config::ALIBABA_ACCESS_KEY_SECRET_ENV, &alibaba.access_key_secret.expose().to_string()),
            (config::TENCENT_SECRET_ID_ENV, &tencent.access_key_id),
            (config::TENCENT_SECRET_KEY_ENV, &tencent.access_key_secret.expose().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        assert_eq!(crate::credentials::environment::parse_read(&from_env, &path, &env).unwrap().tickets.len(), 3);
    }
}
