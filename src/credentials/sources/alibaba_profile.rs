//! The Alibaba `profile` source: `~/.aliyun/config.json` (the CLI's modes, [`super::cli_profile`])
//! then the INI credentials file (`type = access_key`), found as credentials-go finds them.

use std::path::{Path, PathBuf};

use super::answer::{Fetched, SourceError, Watch, read_file};
use super::cli_profile::Overrides;
use super::context::{Context, home};
use super::source::{Fetching, Source};
use crate::credentials::keys::Credentials;

/// A profile as read: a CLI config.json profile's plan (with its description), or keys from the
/// INI file.
pub(crate) enum Resolved {
    Cli(Box<super::cli_profile::Plan>, String),
    Keys(Fetched),
}

/// `~/.aliyun/config.json` (every mode credentials-go resolves, see [`super::cli_profile`]), then
/// the INI file (`type = access_key`); the STS and metadata calls a CLI mode needs are made now.
pub(crate) async fn profile(
    name: Option<&str>,
    file: Option<&PathBuf>,
    overrides: super::cli_profile::Overrides<'_>,
    ctx: &Context,
) -> Result<Fetched, SourceError> {
    match resolve_profile(name, file, &|n| ctx.var(n))? {
        Resolved::Keys(f) => Ok(f),
        Resolved::Cli(plan, description) => {
            let credentials = super::cli_profile::execute(&plan, overrides, ctx).await?;
            Ok(Fetched { credentials, description })
        }
    }
}

/// The keys a profile holds itself (modes AK and StsToken, the INI file); a mode that needs STS
/// or metadata calls is an error here (see [`profile`]).
#[cfg(test)]
pub(crate) fn read_profile(
    name: Option<&str>,
    file: Option<&PathBuf>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Fetched, SourceError> {
    match resolve_profile(name, file, var)? {
        Resolved::Keys(f) => Ok(f),
        Resolved::Cli(plan, description) => match *plan {
            super::cli_profile::Plan::Keys(credentials) => Ok(Fetched { credentials, description }),
            _ => Err(SourceError::Failed(format!("{description}: keys come from STS or metadata"))),
        },
    }
}

/// Find and read the profile, without network calls.
pub(crate) fn resolve_profile(
    name: Option<&str>,
    file: Option<&PathBuf>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, SourceError> {
    let cli = |path: &Path, wanted: Option<&str>, what: &str| {
        super::cli_profile::plan(path, wanted, what, var).map(|(plan, d)| Resolved::Cli(Box::new(plan), d))
    };
    let ini = |path: &Path, wanted: Option<&str>, what: &str| ini_profile(path, wanted, what).map(Resolved::Keys);
    let wanted = name.map(str::to_string).or_else(|| var("ALIBABA_CLOUD_PROFILE"));
    if let Some(path) = file {
        return if path.extension().is_some_and(|e| e == "json") {
            cli(path, wanted.as_deref(), "profile_file")
        } else {
            ini(path, wanted.as_deref(), "profile_file")
        };
    }
    let mut absent = Vec::new();
    if var("ALIBABA_CLOUD_CLI_PROFILE_DISABLED").is_none_or(|v| !v.eq_ignore_ascii_case("true"))
        && let Some(home) = home(var)
    {
        match cli(&home.join(".aliyun/config.json"), wanted.as_deref(), "CLI profile") {
            Err(SourceError::Absent(d)) => absent.push(d),
            other => return other,
        }
    }
    let (what, path) = match var("ALIBABA_CLOUD_CREDENTIALS_FILE") {
        Some(p) => ("ALIBABA_CLOUD_CREDENTIALS_FILE", PathBuf::from(p)),
        None => match home(var) {
            Some(h) => ("credentials file", h.join(".alibabacloud/credentials.ini")),
            None => return Err(SourceError::Absent(format!("{}; HOME is not set", absent.join("; ")))),
        },
    };
    match ini(&path, wanted.as_deref(), what) {
        Err(SourceError::Absent(d)) => {
            absent.push(d);
            Err(SourceError::Absent(absent.join("; ")))
        }
        other => other,
    }
}

fn ini_profile(path: &Path, wanted: Option<&str>, what: &str) -> Result<Fetched, SourceError> {
    let text = read_file(what, path)?;
    let sections = super::ini::parse(&text);
    let name = wanted.unwrap_or("default");
    let s =
        sections.get(name).ok_or_else(|| SourceError::Failed(format!("{}: no section [{name}]", path.display())))?;
    match s.get("type").map(String::as_str) {
        Some("access_key") => {}
        Some(other) => {
            return Err(SourceError::Failed(format!(
                "{}: [{name}] has type = {other}; ticketd reads type = access_key",
                path.display()
            )));
        }
        None => return Err(SourceError::Failed(format!("{}: [{name}] has no `type`", path.display()))),
    }
    let get = |k: &str| {
        s.get(k)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| SourceError::Failed(format!("{}: [{name}] has no {k}", path.display())))
    };
    Ok(Fetched {
        credentials: Credentials::long_term(get("access_key_id")?, get("access_key_secret")?, None),
        description: format!("profile ({}, section {name}, type access_key)", path.display()),
    })
}

/// The variables the profile files are found and chosen by.
const PROFILE_VARS: [&str; 4] =
    ["HOME", "ALIBABA_CLOUD_PROFILE", "ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "ALIBABA_CLOUD_CREDENTIALS_FILE"];

/// Alibaba `source = "profile"`: the CLI config, then the INI file.
pub(crate) struct Profile<'a> {
    pub profile: Option<&'a str>,
    pub file: Option<&'a PathBuf>,
    pub overrides: Overrides<'a>,
}

impl Profile<'_> {
    /// The files this profile reads: the configured one, else the CLI config and the INI file.
    fn files(&self, ctx: &Context) -> Vec<PathBuf> {
        if let Some(f) = self.file {
            return vec![f.clone()];
        }
        let home = home(&|v| ctx.var(v));
        let mut out: Vec<PathBuf> = home.as_ref().map(|h| h.join(".aliyun/config.json")).into_iter().collect();
        match ctx.var("ALIBABA_CLOUD_CREDENTIALS_FILE") {
            Some(f) => out.push(PathBuf::from(f)),
            None => out.extend(home.map(|h| h.join(".alibabacloud/credentials.ini"))),
        }
        out
    }
}

impl Source for Profile<'_> {
    fn fetch<'a>(&'a self, ctx: &'a Context) -> Fetching<'a> {
        Box::pin(profile(self.profile, self.file, self.overrides, ctx))
    }

    fn describe(&self, var: &dyn Fn(&str) -> Option<String>) -> Result<String, SourceError> {
        resolve_profile(self.profile, self.file, var).map(|r| match r {
            Resolved::Keys(f) => f.description,
            Resolved::Cli(_, description) => description,
        })
    }

    /// A rewritten profile file brings new keys.
    fn watch(&self, ctx: &Context) -> Watch {
        Watch::Files(self.files(ctx))
    }

    /// The files' variables, and what the CLI modes read (RamRoleArn, OIDC, EcsRamRole).
    fn vars(&self) -> Vec<&str> {
        use super::alibaba::{ECS_VARS, OIDC_VARS, SESSION_VAR, STS_VARS};
        [&PROFILE_VARS[..], &OIDC_VARS, &[SESSION_VAR], &STS_VARS, &ECS_VARS].concat()
    }
}
