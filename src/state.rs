//! `state_dir/state.json`: every ticket's ticket, token and expiries, so a restart reuses what is
//! still good. Written atomically, 0600; `state.lock` keeps a second daemon out of the same dir.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ApiSpec, Endpoint, TcrTokenType, TicketSpec};
use crate::fsdir::{Dir, Policy};
use crate::token::Holding;

pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "state.lock";
const VERSION: u32 = 1;

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub version: u32,
    pub tickets: BTreeMap<String, StoredTicket>,
    /// Superseded TCR long-term tokens still to revoke (absent when none, and in a state file
    /// written before they were kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocations: Vec<PendingRevocation>,
    /// TCR long-term tokens minted but not yet in every sink (`after_generation`: the generation
    /// that carries each). The state records only what the sinks hold, so without this a crash
    /// before the first write would lose the new token's `TokenId` and leave it active for good;
    /// a restart revokes one that no saved ticket holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<PendingRevocation>,
}

/// A superseded TCR long-term token to revoke with `DeleteInstanceToken`, kept in the state file
/// until the API says it is gone, so a restart does not forget it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingRevocation {
    /// The ticket it was minted for.
    pub ticket: String,
    /// The API's `TokenId`.
    pub token_id: String,
    /// Where and with which keys (a credential set's name) to delete it: the ticket's settings
    /// when it was superseded, so it is revoked even after the ticket left the config.
    pub endpoint: String,
    pub region: String,
    pub registry_id: String,
    pub credentials: String,
    /// Revoked only once every sink of the ticket holds this generation (the token that replaced
    /// it) and the ticket's `on_change` hook has run since; `None`: due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_generation: Option<u64>,
    /// When it was superseded.
    pub since: crate::clock::Stamp,
}

/// One ticket's saved holding, with what it was obtained for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTicket {
    pub kind: String,
    /// What the holding is good for (kind and API target); a config change that alters it makes
    /// the saved holding unusable.
    pub identity: String,
    #[serde(flatten)]
    pub holding: Holding,
}

/// One ticket's record as it is written: [`StoredTicket`]'s form, borrowed from the scheduler's own
/// entries, so that saving 100,000 tickets copies none of them.
#[derive(Debug, Serialize)]
pub struct StoredTicketRef<'a> {
    pub kind: &'static str,
    pub identity: String,
    #[serde(flatten)]
    pub holding: std::borrow::Cow<'a, Holding>,
}

/// A state file written straight from `(name, record)` pairs (the closure lists them afresh each
/// time the file is serialized), the pending revocations and the unconfirmed long-term tokens.
pub struct StateFileRef<F>(pub F, pub Vec<PendingRevocation>, pub Vec<PendingRevocation>);

impl<'a, F, I> Serialize for StateFileRef<F>
where
    F: Fn() -> I,
    I: Iterator<Item = (&'a str, StoredTicketRef<'a>)>,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Tickets<'f, F>(&'f F);
        impl<'a, F, I> Serialize for Tickets<'_, F>
        where
            F: Fn() -> I,
            I: Iterator<Item = (&'a str, StoredTicketRef<'a>)>,
        {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map((self.0)())
            }
        }
        let mut state = serializer.serialize_struct("StateFile", 4)?;
        state.serialize_field("version", &VERSION)?;
        state.serialize_field("tickets", &Tickets(&self.0))?;
        if self.1.is_empty() {
            state.skip_field("revocations")?;
        } else {
            state.serialize_field("revocations", &self.1)?;
        }
        if self.2.is_empty() {
            state.skip_field("unconfirmed")?;
        } else {
            state.serialize_field("unconfirmed", &self.2)?;
        }
        state.end()
    }
}

/// What makes a saved holding reusable for `spec`.
pub fn identity(spec: &TicketSpec) -> String {
    match &spec.api {
        ApiSpec::Sls(sls) => format!("sls endpoint={}", sls.endpoint),
        ApiSpec::Dsw(dsw) => format!(
            "dsw endpoint={} instance_id={} token_type={} audience={}",
            dsw.endpoint,
            dsw.instance_id,
            // Unset asks for the API's default, Access: the same token as before `Type` became optional.
            dsw.token_type.unwrap_or(crate::config::DswTokenType::Access).as_str(),
            dsw.audience.as_deref().unwrap_or("")
        ),
        ApiSpec::Tcr(tcr) => tcr_identity(&tcr.endpoint, &tcr.registry_id, tcr.token_type),
    }
}

/// [`identity`] of a `tcr` ticket, from its parts (the client view of the config has no
/// [`TicketSpec`]).
pub fn tcr_identity(endpoint: &Endpoint, registry_id: &str, token_type: TcrTokenType) -> String {
    format!("tcr endpoint={endpoint} registry_id={registry_id} token_type={}", token_type.as_str())
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("state directory {} is in use by another ticketd{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse { path: PathBuf, holder: Option<u32> },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    pub state: StateFile,
    /// A state file that did not parse, moved aside to this path, and why it did not parse.
    pub set_aside: Option<(PathBuf, String)>,
}

/// An open, locked state directory. The lock lasts as long as this value.
#[derive(Debug)]
pub struct StateDir {
    /// The directory, held open: every file in it is opened relative to this fd.
    dir: Dir,
    _lock: File,
}

/// The mode of a state directory ticketd creates.
pub const STATE_DIR_MODE: u32 = 0o700;

impl StateDir {
    /// Create (exactly 0700) and lock the directory. As root, a directory that a user other than
    /// root or ticketd's own could change is refused; `state.lock` is never opened through a
    /// symlink and is made 0600 whatever the umask.
    pub fn open(dir: &Path) -> Result<StateDir, StateError> {
        let held = Dir::open(dir, "state directory", STATE_DIR_MODE, Policy::of_process())
            .map_err(|e| StateError::CreateDir { path: dir.to_path_buf(), source: e.into() })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_error = |source| StateError::Lock { path: lock_path.clone(), source };
        let mut lock = held.open_lock_file(OsStr::new(LOCK_FILE), 0o600).map_err(lock_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = (&mut lock).take(64).read_to_string(&mut text);
                return Err(StateError::InUse { path: dir.to_path_buf(), holder: text.trim().parse().ok() });
            }
            Err(fs::TryLockError::Error(e)) => return Err(lock_error(e)),
        }
        lock.set_len(0).map_err(lock_error)?;
        writeln!(lock, "{}", std::process::id()).map_err(lock_error)?;
        held.remove_stale_temps(OsStr::new(STATE_FILE));
        Ok(StateDir { dir: held, _lock: lock })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join(STATE_FILE)
    }

    /// Read the state file. A missing file is an empty state. A corrupt one is moved aside (never
    /// overwritten) and reported, and loading goes on with an empty state.
    pub fn load(&self) -> Result<Loaded, StateError> {
        let path = self.path();
        let Some(file) = open(&self.dir, &path)? else {
            return Ok(Loaded { state: StateFile { version: VERSION, ..Default::default() }, set_aside: None });
        };
        match parse(file) {
            Ok(state) => Ok(Loaded { state, set_aside: None }),
            Err(Unreadable::Io(source)) => Err(StateError::Read { path, source }),
            Err(Unreadable::Corrupt(why)) => {
                let aside =
                    format!("{STATE_FILE}.corrupt-{}", crate::clock::unix_seconds(std::time::SystemTime::now()));
                let aside_path = self.dir.path().join(&aside);
                self.dir
                    .rename(OsStr::new(STATE_FILE), OsStr::new(&aside))
                    .map_err(|source| StateError::Write { path: aside_path.clone(), source })?;
                Ok(Loaded {
                    state: StateFile { version: VERSION, ..Default::default() },
                    set_aside: Some((aside_path, why)),
                })
            }
        }
    }

    /// Replace the state file atomically (0600) with `state` (a [`StateFile`] or a
    /// [`StateFileRef`]).
    pub fn save(&self, state: &impl Serialize) -> Result<(), StateError> {
        let path = self.path();
        // Streamed to the file: a state of 100,000 tickets never sits in memory as text.
        self.dir
            .write_atomically_with(OsStr::new(STATE_FILE), 0o600, |out| {
                serde_json::to_writer_pretty(&mut *out, state).map_err(io::Error::other)?;
                out.write_all(b"\n")
            })
            .map_err(|source| StateError::Write { path, source })
    }
}

/// Read `dir`'s state file without taking the lock (for readers beside a running daemon, such as
/// the docker credential helper). A missing file is an empty state; a corrupt one is an error.
pub fn read_unlocked(dir: &Path) -> Result<StateFile, StateError> {
    let path = dir.join(STATE_FILE);
    let empty = || StateFile { version: VERSION, ..Default::default() };
    if fs::symlink_metadata(dir).is_err() {
        return Ok(empty());
    }
    let held = Dir::open(dir, "state directory", STATE_DIR_MODE, Policy::of_process())
        .map_err(|e| StateError::Read { path: path.clone(), source: e.into() })?;
    let Some(file) = open(&held, &path)? else {
        return Ok(empty());
    };
    parse(file).map_err(|why| {
        let source = match why {
            Unreadable::Io(e) => e,
            Unreadable::Corrupt(why) => io::Error::new(io::ErrorKind::InvalidData, why),
        };
        StateError::Read { path, source }
    })
}

/// The state file in `dir` (a regular file, not through a symlink), buffered for a streamed parse
/// (the state of 100,000 tickets is ~90 MB of text); `None` when there is none yet.
fn open(dir: &Dir, path: &Path) -> Result<Option<io::BufReader<File>>, StateError> {
    match dir.open_existing(OsStr::new(STATE_FILE)) {
        Ok(file) => Ok(file.map(|file| io::BufReader::with_capacity(64 * 1024, file))),
        Err(source) => Err(StateError::Read { path: path.to_path_buf(), source }),
    }
}

/// Why a state file could not be read.
enum Unreadable {
    /// Reading failed (the file may be fine).
    Io(io::Error),
    /// The content is not a state file.
    Corrupt(String),
}

fn parse(text: impl Read) -> Result<StateFile, Unreadable> {
    let state: StateFile = serde_json::from_reader(text).map_err(|e| match e.io_error_kind() {
        Some(kind) => Unreadable::Io(io::Error::new(kind, e.to_string())),
        // Not serde's own text: a value of the wrong type is quoted in it, and the values here
        // are tokens and tickets.
        None => Unreadable::Corrupt(crate::secret::json_error_without_values(&e)),
    })?;
    if state.version != VERSION {
        return Err(Unreadable::Corrupt(format!("state version {} is not {VERSION}", state.version)));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;
    use crate::secret::Secret;
    use crate::token::{Current, TokenPart};
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> StateFile {
        let t = from_unix_seconds(1_704_164_645);
        let holding = Holding {
            current: Some(Current {
                ticket: None,
                token: TokenPart {
                    value: Secret::new("tok"),
                    username: None,
                    token_id: None,
                    issued_at: t.into(),
                    expires_at: t.into(),
                },
                generation: 3,
                refreshed_at: t.into(),
                expires_mono: None,
            }),
            pending: None,
        };
        let mut tickets = BTreeMap::new();
        tickets.insert("a".to_string(), StoredTicket { kind: "sls".into(), identity: "x".into(), holding });
        StateFile { version: VERSION, tickets, revocations: Vec::new(), unconfirmed: Vec::new() }
    }

    #[test]
    fn a_state_written_from_borrowed_records_is_the_state_file_byte_for_byte() {
        let mut state = sample();
        let second = state.tickets["a"].holding.clone();
        state.tickets.insert("b".into(), StoredTicket { kind: "tcr".into(), identity: "y".into(), holding: second });
        let borrowed = StateFileRef(
            || {
                state.tickets.iter().map(|(name, t)| {
                    let kind = if t.kind == "sls" { "sls" } else { "tcr" };
                    let holding = std::borrow::Cow::Borrowed(&t.holding);
                    (name.as_str(), StoredTicketRef { kind, identity: t.identity.clone(), holding })
                })
            },
            state.revocations.clone(),
            state.unconfirmed.clone(),
        );
        let written = serde_json::to_string_pretty(&borrowed).unwrap();
        assert_eq!(written, serde_json::to_string_pretty(&state).unwrap());
        assert!(parse(written.as_bytes()).is_ok_and(|parsed| parsed == state));
    }

    #[test]
    fn save_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir::open(&dir.path().join("s")).unwrap();
        state_dir.save(&sample()).unwrap();
        let loaded = state_dir.load().unwrap();
        assert_eq!(loaded.state, sample());
        assert!(loaded.set_aside.is_none());
        assert_eq!(fs::metadata(state_dir.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_second_opener_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateDir::open(dir.path()).unwrap();
        let err = StateDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another ticketd") && err.contains(&std::process::id().to_string()), "{err}");
    }

    #[test]
    fn a_corrupt_state_file_is_set_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir::open(dir.path()).unwrap();
        fs::write(state_dir.path(), b"{\"version\": 1, \"tick").unwrap();
        let loaded = state_dir.load().unwrap();
        let (aside, why) = loaded.set_aside.unwrap();
        assert_eq!(fs::read(&aside).unwrap(), b"{\"version\": 1, \"tick");
        assert!(why.contains("the text ends too early"), "{why}");
        assert!(loaded.state.tickets.is_empty());
    }

    #[test]
    fn issue_16_state_lock_is_never_opened_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("root-only");
        fs::write(&secret, b"keep me").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        let state = dir.path().join("s");
        fs::create_dir(&state).unwrap();
        std::os::unix::fs::symlink(&secret, state.join(LOCK_FILE)).unwrap();
        let err = StateDir::open(&state).unwrap_err().to_string();
        assert!(err.contains("state.lock") && err.contains("is a symlink"), "{err}");
        assert_eq!(fs::read(&secret).unwrap(), b"keep me", "the symlink's target was not touched");
        // Nor is the state file read through one.
        fs::remove_file(state.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&secret, state.join(STATE_FILE)).unwrap();
        let err = StateDir::open(&state).unwrap().load().unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
    }

    #[test]
    fn issue_16_the_state_dir_and_lock_get_exact_modes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        let held = StateDir::open(&state).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(fs::metadata(dir.path().join("a")).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(fs::metadata(state.join(LOCK_FILE)).unwrap().permissions().mode() & 0o7777, 0o600);
        drop(held);
        // A lock file left with a loose mode is tightened.
        fs::set_permissions(state.join(LOCK_FILE), fs::Permissions::from_mode(0o666)).unwrap();
        let _held = StateDir::open(&state).unwrap();
        assert_eq!(fs::metadata(state.join(LOCK_FILE)).unwrap().permissions().mode() & 0o7777, 0o600);
    }

    #[test]
    #[cfg_attr(not(have_root), ignore = "needs root (a directory owned by another uid)")]
    fn issue_16_as_root_a_state_dir_another_user_can_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = StateDir::open(&theirs.join("state")).unwrap_err().to_string();
        assert!(err.contains("/theirs is owned by uid 65534"), "{err}");
        assert!(!theirs.join("state").exists());
    }
}
