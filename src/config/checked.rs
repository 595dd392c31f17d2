//! A config file checked on its own ([`Checked`]), ready for the environment's checks.
//!
//! It holds the validated [`Config`] or the file's problems, and, either way, what the environment's
//! checks (in `credentials`) look at, so that `check-config` reports the file's problems and the
//! environment's together, in file order, with file:line:key.

use std::collections::BTreeMap;

use super::check::Checker;
use super::credential::CredentialSpec;
use super::locate::KeyPath;
use super::problem::{Problem, Problems};
use super::spec::{Config, SocketGroup};

/// What a file with problems still tells the environment's checks (a valid file's [`Config`]
/// holds the same).
#[derive(Default)]
pub(crate) struct Needs {
    /// The credential sets that were read.
    pub(crate) credentials: BTreeMap<String, CredentialSpec>,
    /// `socket_group`, when the file sets `socket`.
    pub(crate) socket_group: Option<SocketGroup>,
}

/// A config file checked on its own, waiting for the environment's problems ([`Checked::finish`]).
pub struct Checked<'t> {
    checker: Checker<'t>,
    state: Result<Config, Needs>,
}

impl<'t> Checked<'t> {
    pub(crate) fn new(checker: Checker<'t>, state: Result<Config, Needs>) -> Self {
        Checked { checker, state }
    }

    /// More problems of the file (syntax errors found aside): a config that had none is refused.
    pub(crate) fn add(&mut self, problems: Vec<Problem>) {
        if problems.is_empty() {
            return;
        }
        self.checker.problems.extend(problems);
        if let Ok(config) = &mut self.state {
            let socket_group = config.socket.take().and_then(|s| s.group);
            self.state = Err(Needs { credentials: std::mem::take(&mut config.credentials), socket_group });
        }
    }

    /// The config, when the file had no problem.
    pub fn config(&self) -> Option<&Config> {
        self.state.as_ref().ok()
    }

    /// The config file it was read from (made absolute), for a valid config.
    pub(crate) fn set_source(&mut self, source: std::path::PathBuf) {
        if let Ok(config) = &mut self.state {
            config.source = Some(source);
        }
    }

    /// The credential sets the file defines (those it could read, when it has problems).
    pub fn credentials(&self) -> &BTreeMap<String, CredentialSpec> {
        match &self.state {
            Ok(config) => &config.credentials,
            Err(needs) => &needs.credentials,
        }
    }

    /// The socket's `socket_group`, when the file sets both.
    pub fn socket_group(&self) -> Option<&SocketGroup> {
        match &self.state {
            Ok(config) => config.socket.as_ref()?.group.as_ref(),
            Err(needs) => needs.socket_group.as_ref(),
        }
    }

    /// The config, or every problem: the file's and `more` (the environment's, each at the key
    /// it concerns), all in file order.
    pub fn finish(mut self, more: impl IntoIterator<Item = (KeyPath, String)>) -> Result<Config, Problems> {
        for (at, message) in more {
            self.checker.report(&at, message);
        }
        let mut problems = self.checker.problems;
        match self.state {
            Ok(config) if problems.is_empty() => Ok(config),
            _ => {
                // In file order, whichever way the file was parsed.
                problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
                Err(Problems(problems))
            }
        }
    }
}
