//! A validated sink: a file in one of the token formats (or a checked template), or a docker
//! `config.json` entry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::apis::kinds::Kind;
use crate::config::template::SinkTemplate;

#[derive(Debug, Clone, PartialEq)]
pub enum SinkSpec {
    File(FileSink),
    DockerConfig(DockerConfigSink),
}

impl SinkSpec {
    /// The file this sink writes.
    pub fn path(&self) -> &Path {
        match self {
            SinkSpec::File(f) => &f.path,
            SinkSpec::DockerConfig(d) => &d.path,
        }
    }
}

/// A docker `config.json` whose `auths["<registry>"]` entry ticketd keeps current.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfigSink {
    pub path: PathBuf,
    /// The `auths` key: the ticket's `registry`.
    pub registry: String,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSink {
    pub path: PathBuf,
    pub format: FileFormat,
    pub mode: u32,
    /// Variable names of the `env` format.
    pub env_names: EnvNames,
}

/// The variable names the `env` file format writes (unset: that line is left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvNames {
    pub token: String,
    pub username: Option<String>,
    pub expires_at: Option<String>,
}

impl EnvNames {
    /// Optional. Default: `<PREFIX>TOKEN`, `<PREFIX>USERNAME` (for an API whose tokens come with one: tcr), `<PREFIX>EXPIRES_AT`, with
    /// prefix `env_prefix` (default [`DEFAULT_ENV_PREFIX`](crate::config::DEFAULT_ENV_PREFIX)).
    pub fn defaults(prefix: &str, kind: Kind) -> EnvNames {
        EnvNames {
            token: format!("{prefix}TOKEN"),
            username: kind.username().then(|| format!("{prefix}USERNAME")),
            expires_at: Some(format!("{prefix}EXPIRES_AT")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// Every field of the current token, as JSON.
    Json,
    /// The raw access token.
    Token,
    /// The SLS share URL.
    Url,
    /// `KEY=value` lines (systemd `EnvironmentFile=`, docker `--env-file`).
    Env,
    /// What a template renders (`template` or `template_text`), checked at load: shared by
    /// every sink that names the same file.
    Template(Arc<SinkTemplate>),
}

impl FileFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Token => "token",
            FileFormat::Url => "url",
            FileFormat::Env => "env",
            FileFormat::Template(_) => "template",
        }
    }
}
