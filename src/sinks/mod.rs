//! Where tokens go: files written atomically, docker `config.json` entries merged in.

pub(crate) mod atomic;
pub(crate) mod docker_config;
pub(crate) mod notify;
pub(crate) mod render;
pub(crate) mod template;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use crate::config::template::TemplateError;
use crate::config::{FileFormat, SinkSpec, TicketSpec};
use crate::fsdir::{Dir, Policy};
use crate::token::Current;

/// A sink that could not be written (the previous file is intact): the sink, by its path, and
/// why. Never the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write {}: {cause}", path.display())]
pub struct SinkError {
    pub path: PathBuf,
    pub cause: SinkCause,
}

/// Why a sink could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkCause {
    /// What the system said: the I/O error's own text.
    #[error("{reason}")]
    Io { kind: io::ErrorKind, reason: String },
    /// Its template did not render (an allowed variable unset now, say): the template, by its
    /// file (or key), and the engine's error with the template's line, naming no value.
    #[error("its template {origin} did not render: {error}")]
    Template { origin: String, error: TemplateError },
}

impl SinkError {
    /// Writing the sink at `path` failed with `error`.
    pub fn new(path: &Path, error: &io::Error) -> SinkError {
        let cause = SinkCause::Io { kind: error.kind(), reason: error.to_string() };
        SinkError { path: path.to_path_buf(), cause }
    }
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

/// Write one sink of `spec` with `current`, in the sink's held directory ([`sink_dir`]).
pub fn publish_one(spec: &TicketSpec, sink: &SinkSpec, current: &Current) -> Result<(), SinkError> {
    let path = sink.path();
    let error = |source: io::Error| SinkError::new(path, &source);
    let (dir, name) = sink_dir(path).map_err(error)?;
    let result = match sink {
        SinkSpec::File(file) => {
            let rendered = render::render(file, spec, current).map_err(|error| {
                let origin = match &file.format {
                    FileFormat::Template(t) => t.origin.to_string(),
                    other => other.as_str().to_string(),
                };
                SinkError { path: path.to_path_buf(), cause: SinkCause::Template { origin, error } }
            })?;
            dir.write_atomically(&name, &rendered, file.mode)
        }
        SinkSpec::DockerConfig(docker) => docker_config::publish(&dir, &name, docker, current),
    };
    result.map_err(error)
}

/// Every sink directory in use, resolved once (the StrictModes walk, missing parts created
/// [`atomic::CREATED_DIR_MODE`]) and held as a directory fd, by the path the config names.
static DIRS: LazyLock<Mutex<HashMap<PathBuf, Arc<Dir>>>> = LazyLock::new(Mutex::default);

/// The held directory of the sink file `path` and the file's name. Opened on first use (or again
/// when the held one has been removed since); as root, a directory that a user other than root or
/// ticketd's own could change is refused.
pub fn sink_dir(path: &Path) -> io::Result<(Arc<Dir>, OsString)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?
        .to_os_string();
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let held = DIRS.lock().expect("sink dirs").get(parent).filter(|d| !d.is_removed()).cloned();
    let dir = match held {
        Some(dir) => dir,
        None => {
            let dir = Arc::new(Dir::open(parent, "sink directory", atomic::CREATED_DIR_MODE, Policy::of_process())?);
            DIRS.lock().expect("sink dirs").insert(parent.to_path_buf(), dir.clone());
            dir
        }
    };
    Ok((dir, name))
}

/// Resolve and hold the directory of every sink in `sinks` now (at start, and before a reload is
/// applied); the first that cannot be opened is the error. At start (`clear_temps`, while nothing
/// writes yet), also remove the temp files a crash mid-write left beside the sinks.
pub fn open_dirs<'a>(sinks: impl IntoIterator<Item = &'a SinkSpec>, clear_temps: bool) -> Result<(), SinkError> {
    let mut names: HashMap<PathBuf, (Arc<Dir>, Vec<OsString>)> = HashMap::new();
    for sink in sinks {
        let path = sink.path();
        let parent = path.parent().unwrap_or(Path::new("."));
        if let Some((_, in_dir)) = names.get_mut(parent) {
            in_dir.push(path.file_name().unwrap_or_default().to_os_string());
            continue;
        }
        let (dir, name) = sink_dir(path).map_err(|source| SinkError::new(path, &source))?;
        names.insert(parent.to_path_buf(), (dir, vec![name]));
    }
    for (dir, in_dir) in names.values().filter(|_| clear_temps) {
        dir.remove_stale_temps_of(&in_dir.iter().map(|n| n.as_os_str()).collect());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;
    use crate::config::{DockerConfigSink, EnvNames, FileFormat, FileSink, Kind};

    fn current() -> Current {
        crate::testing::current(
            "tok",
            Some("user"),
            from_unix_seconds(1_700_000_000),
            std::time::Duration::from_secs(3600),
            1,
        )
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
        let mut spec = crate::testing::sls_ticket("t", day, day / 24);
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
    #[test]
    fn issue_16_a_sink_directory_is_held_and_created_with_an_exact_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/token");
        let (held, name) = sink_dir(&path).unwrap();
        assert_eq!(name, "token");
        for created in ["a", "a/b"] {
            let mode = std::fs::metadata(dir.path().join(created)).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, atomic::CREATED_DIR_MODE, "{created}");
        }
        // Renaming the directory away and planting a symlink at its name does not redirect writes.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::rename(dir.path().join("a/b"), dir.path().join("a/moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("a/b")).unwrap();
        held.write_atomically(&name, b"t", 0o600).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a/moved/token")).unwrap(), b"t");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    #[cfg_attr(not(have_root), ignore = "needs root (a symlink owned by another uid)")]
    fn issue_16_as_root_a_sink_whose_parent_is_a_symlink_planted_by_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(&target, &planted).unwrap();
        std::os::unix::fs::lchown(&planted, Some(65534), Some(65534)).unwrap();
        let err = sink_dir(&planted.join("token")).unwrap_err().to_string();
        assert!(err.contains("sink directory") && err.contains("/planted is a symlink owned by uid 65534"), "{err}");
        // A directory writable by every user (no sticky bit) is refused too.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        let err = sink_dir(&open.join("token")).unwrap_err().to_string();
        assert!(err.contains("/open is writable by every user (mode 777)"), "{err}");
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
    }
}
