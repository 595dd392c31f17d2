//! Where tokens go: files written atomically, and docker `config.json` entries merged in.

pub mod atomic;
pub mod docker_config;
pub mod notify;
pub mod render;

use std::path::PathBuf;

use crate::config::{SinkSpec, TicketSpec};
use crate::token::Current;

/// A sink that could not be written; the previous file is intact.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct SinkError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Which sinks of a ticket hold its current token: bit `i` for sink `i`, the last bit for the
/// eighth sink and every one after it, together. One byte per ticket (100,000 are held).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkSet(u8);

impl SinkSet {
    /// No sink holds it.
    pub const NONE: SinkSet = SinkSet(0);
    /// Sinks sharing the last bit: the eighth and after.
    const SHARED: usize = 7;

    fn bit(index: usize) -> u8 {
        1 << index.min(Self::SHARED)
    }

    /// Every one of `count` sinks.
    pub fn all(count: usize) -> SinkSet {
        SinkSet((0..count.min(Self::SHARED + 1)).fold(0, |bits, i| bits | Self::bit(i)))
    }

    pub fn holds(self, index: usize) -> bool {
        self.0 & Self::bit(index) != 0
    }

    /// Both sets together.
    pub fn union(self, other: SinkSet) -> SinkSet {
        SinkSet(self.0 | other.0)
    }
}

/// What a round of writes did: the sinks that now hold the token (with those that already did),
/// and each failure.
#[derive(Debug)]
pub struct Published {
    pub held: SinkSet,
    pub errors: Vec<SinkError>,
}

/// Write the sinks of `spec` that `held` says lack `current`, each on its own: a sink that fails
/// (its previous file stays intact) neither stops nor undoes the others, and is retried alone.
pub fn publish(spec: &TicketSpec, current: &Current, held: SinkSet) -> Published {
    let mut errors = Vec::new();
    let mut written = held;
    let mut shared_ok = true;
    for (index, sink) in spec.sinks.iter().enumerate() {
        if held.holds(index) {
            continue;
        }
        let result = publish_one(spec, sink, current);
        if index < SinkSet::SHARED {
            if result.is_ok() {
                written = written.union(SinkSet(SinkSet::bit(index)));
            }
        } else {
            shared_ok &= result.is_ok();
        }
        if let Err(e) = result {
            errors.push(e);
        }
    }
    if shared_ok && spec.sinks.len() > SinkSet::SHARED {
        written = written.union(SinkSet(SinkSet::bit(SinkSet::SHARED)));
    }
    Published { held: written, errors }
}

/// Write one sink of `spec` with `current`.
pub fn publish_one(spec: &TicketSpec, sink: &SinkSpec, current: &Current) -> Result<(), SinkError> {
    let path = sink.path();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        create_dir(dir).map_err(|source| SinkError { path: dir.to_path_buf(), source })?;
    }
    let result = match sink {
        SinkSpec::File(file) => atomic::write_atomically(&file.path, &render::render(file, spec, current), file.mode),
        SinkSpec::DockerConfig(docker) => docker_config::publish(docker, current),
    };
    result.map_err(|source| SinkError { path: path.to_path_buf(), source })
}

fn create_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;
    use crate::config::{DockerConfigSink, EnvNames, FileFormat, FileSink, Kind};
    use crate::secret::Secret;
    use crate::token::TokenPart;

    fn current() -> Current {
        let t = from_unix_seconds(1_700_000_000);
        Current {
            ticket: None,
            token: TokenPart {
                value: Secret::new("tok"),
                username: Some("user".into()),
                issued_at: t.into(),
                expires_at: (t + std::time::Duration::from_secs(3600)).into(),
            },
            generation: 1,
            refreshed_at: t.into(),
        }
    }

    fn file(path: PathBuf) -> SinkSpec {
        SinkSpec::File(FileSink {
            path,
            format: FileFormat::Token,
            mode: 0o600,
            env_names: EnvNames::defaults("TICKETD_", Kind::Tcr),
        })
    }

    fn spec_with(sinks: Vec<SinkSpec>) -> TicketSpec {
        let day = std::time::Duration::from_secs(86_400);
        let mut spec = crate::scheduler::tests::sls_ticket("t", day, day / 24);
        spec.sinks = sinks;
        spec
    }

    #[test]
    fn issue_16_each_sink_is_written_on_its_own_and_only_the_failing_one_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        std::fs::write(&docker, "not json").unwrap();
        let broken =
            SinkSpec::DockerConfig(DockerConfigSink { path: docker.clone(), registry: "r".into(), mode: 0o600 });
        let spec = spec_with(vec![broken, file(dir.path().join("a")), file(dir.path().join("b"))]);
        let first = publish(&spec, &current(), SinkSet::NONE);
        assert_eq!(first.errors.len(), 1);
        let error = first.errors[0].to_string();
        assert!(error.contains(&docker.display().to_string()) && error.contains("not a docker config"), "{error}");
        assert_eq!(std::fs::read_to_string(dir.path().join("a")).unwrap(), "tok", "the sinks after it are written");
        assert_eq!(std::fs::read_to_string(dir.path().join("b")).unwrap(), "tok");
        assert!(!first.held.holds(0) && first.held.holds(1) && first.held.holds(2));
        // The retry writes the broken sink alone: the others already hold the token.
        std::fs::remove_file(dir.path().join("a")).unwrap();
        std::fs::write(&docker, "{}").unwrap();
        let retry = publish(&spec, &current(), first.held);
        assert!(retry.errors.is_empty(), "{:?}", retry.errors);
        assert_eq!(retry.held, SinkSet::all(3));
        assert!(!dir.path().join("a").exists(), "a sink holding the token is not written again");
        assert!(docker_config::read_auth(&docker, "r").is_some());
    }

    #[test]
    fn sinks_past_the_seventh_share_one_bit_and_are_retried_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut sinks: Vec<SinkSpec> = (0..10).map(|i| file(dir.path().join(format!("s{i}")))).collect();
        // The ninth sink's directory is a file: it cannot be written.
        std::fs::write(dir.path().join("blocked"), "").unwrap();
        sinks[8] = file(dir.path().join("blocked/s8"));
        let spec = spec_with(sinks);
        let first = publish(&spec, &current(), SinkSet::NONE);
        assert_eq!(first.errors.len(), 1);
        assert!((0..7).all(|i| first.held.holds(i)));
        assert!((7..10).all(|i| !first.held.holds(i)), "one failure in the shared group: all of it is retried");
        assert_ne!(first.held, SinkSet::all(10));
        std::fs::remove_file(dir.path().join("blocked")).unwrap();
        let retry = publish(&spec, &current(), first.held);
        assert!(retry.errors.is_empty());
        assert_eq!(retry.held, SinkSet::all(10));
        assert_eq!(SinkSet::all(0), SinkSet::NONE);
    }
}
