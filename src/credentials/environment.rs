//! The checks a config file needs the environment for, run after the file's own ([`Checked`]).
//!
//! They are reported with the file's: the variables an `env` set (or a chain's first member) reads,
//! and the `socket_group` name in the system's group database. The daemon, its reloads and
//! `check-config` load the config through here; client commands read the file alone
//! ([`crate::config::load`]).

use std::path::Path;

use super::env::Environment;
use crate::config::check::key_text_problem;
use crate::config::{self, Checked, Config, KeyPath, Problems, SocketGroup, SourceSpec};

/// Read the config file at `path` and check it with the environment `env`: every problem at once.
///
/// A valid file is read a piece at a time (`config::check_by_pieces`), never held whole; one
/// with a problem, the file's or the environment's, is read again whole, to say where each is.
pub fn load(path: &Path, env: &dyn Environment) -> Result<Config, Problems> {
    if let Some(config) = config::check_by_pieces(path).and_then(|checked| valid(checked, env)) {
        return Ok(config);
    }
    let text = config::read(path)?;
    parse_read(&text, path, env)
}

/// The config of a file that is valid on its own (`checked`, see [`config::check_by_pieces`]),
/// when the environment has what it needs too; `None` otherwise (then [`load`] the file whole,
/// to report every problem in file order).
pub(crate) fn valid(checked: Checked<'_>, env: &dyn Environment) -> Option<Config> {
    if checked.config().is_none() || !problems(&checked, env).is_empty() {
        return None;
    }
    checked.finish([]).ok()
}

/// [`config::parse_read`] (`text` read from `path`), checked with `env` too.
pub fn parse_read(text: &str, path: &Path, env: &dyn Environment) -> Result<Config, Problems> {
    finish(config::check_read(text, path), env)
}

/// [`config::parse`] (text not read from a file, named `file`), checked with `env` too.
pub fn parse(text: &str, file: &str, env: &dyn Environment) -> Result<Config, Problems> {
    finish(config::check(text, file), env)
}

/// The file's problems and the environment's, together in file order; or the config.
pub fn finish(checked: Checked<'_>, env: &dyn Environment) -> Result<Config, Problems> {
    let found = problems(&checked, env);
    checked.finish(found)
}

/// What the environment lacks for `checked`, each at the key it concerns. Values are never shown.
pub fn problems(checked: &Checked<'_>, env: &dyn Environment) -> Vec<(KeyPath, String)> {
    let mut found = Vec::new();
    if let Some(SocketGroup::Name(name)) = checked.socket_group()
        && super::system::group_id(name).is_none()
    {
        found.push((KeyPath::root().key("socket_group"), format!("no group named `{name}` in /etc/group")));
    }
    for (name, spec) in checked.credentials() {
        let at = KeyPath::root().key("credentials").key(name);
        let (vars, required) = match &spec.source {
            SourceSpec::Env { id_var, secret_var, token_var } => ([id_var, secret_var, token_var], true),
            SourceSpec::Chain(chain) => match &chain.env {
                SourceSpec::Env { id_var, secret_var, token_var } => ([id_var, secret_var, token_var], false),
                _ => continue,
            },
            _ => continue,
        };
        if required {
            for var in &vars[..2] {
                if env.var(var).is_none_or(|v| v.is_empty()) {
                    found.push((
                        at.clone(),
                        format!("environment variable {var} is not set (needed by credentials `{name}`)"),
                    ));
                }
            }
        }
        // Keys the environment holds (for `env`, and for the chain, whose first member it is) must
        // be text a vendor issues: a pasted `é` or U+200B is refused here, at load, by name.
        for var in vars {
            let value = env.var(var).map(zeroize::Zeroizing::new);
            if let Some(problem) = value.filter(|v| !v.is_empty()).and_then(|v| key_text_problem(&v)) {
                found
                    .push((at.clone(), format!("environment variable {var} {problem} (read by credentials `{name}`)")));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const TEXT: &str = "socket = \"/run/t/t.sock\"\nsocket_group = \"no-such-group-for-ticketd\"\n\n\
                        [credentials.prod]\nvendor = \"alibaba\"\nsource = \"env\"\n\n\
                        [[tickets]]\nname = \"a\"\nkind = \"sls\"\ncredentials = \"prod\"\nendpoint = \"http://127.0.0.1:1\"\nsinks = []\n";

    /// The config's own check reads no variable and no group database: the same file is valid to
    /// it, and the environment's problems come only from here, each at its key and in file order,
    /// together with the file's own.
    #[test]
    fn the_file_is_checked_without_the_environment_and_the_environment_adds_its_problems_in_file_order() {
        let config = config::parse(TEXT, "t.toml").unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(config.socket.unwrap().group, Some(SocketGroup::Name("no-such-group-for-ticketd".into())));
        let found = parse(TEXT, "t.toml", &HashMap::new()).unwrap_err().0;
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "t.toml:2:1: socket_group: no group named `no-such-group-for-ticketd` in /etc/group",
                "t.toml:4:14: credentials.prod: environment variable ALIBABA_CLOUD_ACCESS_KEY_ID is not set \
                 (needed by credentials `prod`)",
                "t.toml:4:14: credentials.prod: environment variable ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set \
                 (needed by credentials `prod`)",
            ]
        );
        // With a problem in the file too, both kinds come out in one report.
        let bad = TEXT.replace("kind = \"sls\"", "kind = \"nope\"");
        let shown: Vec<String> =
            parse(&bad, "t.toml", &HashMap::new()).unwrap_err().0.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 4, "{shown:#?}");
        assert!(shown[3].starts_with("t.toml:10:1: tickets[0].kind: unknown kind `nope`"), "{shown:#?}");
        // With the variables set and the group numeric, nothing is left to report.
        let env = HashMap::from([
            ("ALIBABA_CLOUD_ACCESS_KEY_ID".to_string(), "LTAIid".to_string()),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET".to_string(), "secret".to_string()),
        ]);
        parse(&TEXT.replace("\"no-such-group-for-ticketd\"", "0"), "t.toml", &env).unwrap_or_else(|p| panic!("{p}"));
    }
}
