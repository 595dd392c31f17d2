//! What a source gives back: keys with where they came from ([`Fetched`]), why it gave none
//! ([`SourceError`]), what could change them ([`Watch`]); and the file and expiry readers that
//! answer in those terms.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::credentials::keys::Credentials;

/// Keys and where they came from (for logs and `check-config`; never a value).
#[derive(Debug, Clone)]
pub(crate) struct Fetched {
    pub credentials: Credentials,
    pub description: String,
}

/// Why one source gave nothing: `Absent` lets a chain move on quietly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceError {
    /// The source is not set up here (variables unset, no file).
    Absent(String),
    /// The source is set up but failed.
    Failed(String),
}

impl SourceError {
    pub(crate) fn detail(&self) -> &str {
        match self {
            SourceError::Absent(d) | SourceError::Failed(d) => d,
        }
    }
}

/// Besides their expiry, what can change a set's keys while ticketd runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Watch {
    /// Keys from the environment or the config file: only a restart or reload changes them.
    Nothing,
    /// Keys from profile files: a rewritten file brings new keys.
    Files(Vec<PathBuf>),
    /// Keys from a service (STS, metadata): fetched again before they expire.
    Service,
}

/// A file's text, or what is wrong with it (naming the variable that pointed to it, if any).
/// A regular file (symlinks followed: Kubernetes projects token and secret files through them) of
/// at most [`crate::fsdir::MAX_FILE_BYTES`], opened non-blocking: a FIFO or a device is refused.
pub(crate) fn read_file(what: &str, path: &std::path::Path) -> Result<String, SourceError> {
    use crate::fsdir::{Follow, MAX_FILE_BYTES, read_regular_string};
    match read_regular_string(path, Follow::Symlinks, MAX_FILE_BYTES) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(SourceError::Absent(format!("{what}={} not found", path.display())))
        }
        Err(e) => Err(SourceError::Failed(format!("{what}={} not readable ({e})", path.display()))),
    }
}

/// Parse an STS/metadata expiry: `2024-01-01T00:00:00Z`.
pub(crate) fn parse_expiration(text: &str) -> Result<SystemTime, SourceError> {
    humantime::parse_rfc3339(text.trim())
        .map_err(|e| SourceError::Failed(format!("the answer's Expiration `{text}` is not a date ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_parse_as_utc() {
        let t = parse_expiration("2024-01-01T00:00:30Z").unwrap();
        assert_eq!(crate::clock::unix_seconds(t), 1_704_067_230);
        assert!(parse_expiration("tomorrow").is_err());
    }
}
