//! The file store: `state_dir/state.json`, written atomically (0600), with `state.lock` keeping a
//! second daemon out of the same directory.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::fsdir::{Dir, Policy};
use crate::store::contract::{Loaded, Store, StoreError};
use crate::store::record::{Snapshot, StateFile, StoredTicket, VERSION};

pub const STATE_FILE: &str = "state.json";
pub const LOCK_FILE: &str = "state.lock";

/// An open, locked state directory. The lock lasts as long as this value.
#[derive(Debug)]
pub struct FileStore {
    /// The directory, held open: every file in it is opened relative to this fd.
    dir: Dir,
    _lock: File,
    /// Taken by every save, so that concurrent saves from threads of this process run one at a
    /// time (a [`Store::save_one`] reads, changes and rewrites the whole file: without it, a save
    /// between its read and its write would be lost). See the contract's "Concurrent calls".
    saving: std::sync::Mutex<()>,
}

/// The mode of a state directory ticketd creates.
pub const STATE_DIR_MODE: u32 = 0o700;

impl FileStore {
    /// Create (exactly 0700) and lock the directory. As root, a directory that a user other than
    /// root or ticketd's own could change is refused; `state.lock` is never opened through a
    /// symlink and is made 0600 whatever the umask. The lock is an `flock` on `state.lock`
    /// (which holds the holder's pid, for the refusal's message): the kernel releases it when
    /// this value is dropped or the process dies, so a crash never leaves the directory locked.
    pub fn open(dir: &Path) -> Result<FileStore, StoreError> {
        let held = Dir::open(dir, "state directory", STATE_DIR_MODE, Policy::of_process())
            .map_err(|e| StoreError::CreateDir { path: dir.to_path_buf(), source: e.into() })?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_error = |source| StoreError::Lock { path: lock_path.clone(), source };
        let mut lock = held.open_lock_file(OsStr::new(LOCK_FILE), 0o600).map_err(lock_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = (&mut lock).take(64).read_to_string(&mut text);
                return Err(StoreError::InUse { path: dir.to_path_buf(), holder: text.trim().parse().ok() });
            }
            Err(fs::TryLockError::Error(e)) => return Err(lock_error(e)),
        }
        lock.set_len(0).map_err(lock_error)?;
        writeln!(lock, "{}", std::process::id()).map_err(lock_error)?;
        held.remove_stale_temps(OsStr::new(STATE_FILE));
        Ok(FileStore { dir: held, _lock: lock, saving: std::sync::Mutex::new(()) })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join(STATE_FILE)
    }

    /// Read the state file. A missing file is an empty state. A corrupt one is moved aside (never
    /// overwritten) and reported, and loading goes on with an empty state.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        self.load_with(parse)
    }

    /// [`FileStore::load`] with the state file parsed by `parse`.
    fn load_with(
        &self,
        parse: impl FnOnce(io::BufReader<File>) -> Result<StateFile, Unreadable>,
    ) -> Result<Loaded, StoreError> {
        let path = self.path();
        let Some(file) = open(&self.dir, &path)? else {
            return Ok(Loaded { state: StateFile::empty(), set_aside: None });
        };
        match parse(file) {
            Ok(state) => Ok(Loaded { state, set_aside: None }),
            Err(Unreadable::Io(source)) => Err(StoreError::Read { path, source }),
            Err(Unreadable::Corrupt(why)) => {
                let aside =
                    format!("{STATE_FILE}.corrupt-{}", crate::clock::unix_seconds(std::time::SystemTime::now()));
                let aside_path = self.dir.path().join(&aside);
                self.dir
                    .rename(OsStr::new(STATE_FILE), OsStr::new(&aside))
                    .map_err(|source| StoreError::Write { path: aside_path.clone(), source })?;
                Ok(Loaded { state: StateFile::empty(), set_aside: Some((aside_path, why)) })
            }
        }
    }

    /// Replace the state file atomically (0600) with `state` (a [`StateFile`] or a
    /// [`Snapshot`]): temp file in the same directory, fsync, rename, fsync the directory.
    pub fn save(&self, state: &impl serde::Serialize) -> Result<(), StoreError> {
        let _saving = self.saving();
        self.write(state)
    }

    /// The save lock (see [`FileStore::saving`]'s field). Nothing panics while holding it with the
    /// file half-changed (a failed write is an error, and the file is replaced atomically), so a
    /// poisoned lock is safe to keep using.
    fn saving(&self) -> std::sync::MutexGuard<'_, ()> {
        self.saving.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`FileStore::save`] with the save lock held by the caller.
    fn write(&self, state: &impl serde::Serialize) -> Result<(), StoreError> {
        let path = self.path();
        // Streamed to the file: a state of 100,000 tickets never sits in memory as text.
        self.dir
            .write_atomically_with(OsStr::new(STATE_FILE), 0o600, |out| {
                serde_json::to_writer_pretty(&mut *out, state).map_err(io::Error::other)?;
                out.write_all(b"\n")
            })
            .map_err(|source| StoreError::Write { path, source })
    }
}

impl Store for FileStore {
    /// Held from [`FileStore::open`] until the value is dropped: an `flock` is not lost while its
    /// file stays open.
    fn lock(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn load(&self) -> Result<Loaded, StoreError> {
        FileStore::load(self)
    }

    /// Streamed: each record is parsed from the file and handed over, never collected.
    fn load_each(&self, each: &mut dyn FnMut(String, StoredTicket)) -> Result<Loaded, StoreError> {
        self.load_with(|file| parse_each(file, each))
    }

    fn save_all(&self, state: &Snapshot<'_>) -> Result<(), StoreError> {
        self.save(state)
    }

    /// Read, change one record, write the whole file again (atomically, as [`Store::save_all`]).
    fn save_one(&self, name: &str, ticket: Option<&StoredTicket>) -> Result<(), StoreError> {
        // Held from the read to the write: no other save of this value lands between them.
        let _saving = self.saving();
        let path = self.path();
        let mut state = match open(&self.dir, &path)? {
            None => StateFile::empty(),
            Some(file) => parse(file).map_err(|why| StoreError::Read { path, source: why.into_io() })?,
        };
        match ticket {
            Some(ticket) => state.tickets.insert(name.to_string(), ticket.clone()),
            None => state.tickets.remove(name),
        };
        self.write(&state)
    }
}

/// Read `dir`'s state file without taking the lock (for readers beside a running daemon, such as
/// the docker credential helper). A missing file is an empty state; a corrupt one is an error.
pub fn read_unlocked(dir: &Path) -> Result<StateFile, StoreError> {
    let path = dir.join(STATE_FILE);
    if fs::symlink_metadata(dir).is_err() {
        return Ok(StateFile::empty());
    }
    let held = Dir::open(dir, "state directory", STATE_DIR_MODE, Policy::of_process())
        .map_err(|e| StoreError::Read { path: path.clone(), source: e.into() })?;
    let Some(file) = open(&held, &path)? else {
        return Ok(StateFile::empty());
    };
    parse(file).map_err(|why| StoreError::Read { path, source: why.into_io() })
}

/// The state file in `dir` (a regular file, not through a symlink), buffered for a streamed parse
/// (the state of 100,000 tickets is ~90 MB of text); `None` when there is none yet.
fn open(dir: &Dir, path: &Path) -> Result<Option<io::BufReader<File>>, StoreError> {
    match dir.open_existing(OsStr::new(STATE_FILE)) {
        Ok(file) => Ok(file.map(|file| io::BufReader::with_capacity(64 * 1024, file))),
        Err(source) => Err(StoreError::Read { path: path.to_path_buf(), source }),
    }
}

/// Why a state file could not be read.
enum Unreadable {
    /// Reading failed (the file may be fine).
    Io(io::Error),
    /// The content is not a state file.
    Corrupt(String),
}

impl Unreadable {
    fn into_io(self) -> io::Error {
        match self {
            Unreadable::Io(e) => e,
            Unreadable::Corrupt(why) => io::Error::new(io::ErrorKind::InvalidData, why),
        }
    }
}

fn parse(text: impl Read) -> Result<StateFile, Unreadable> {
    checked(serde_json::from_reader(text).map_err(unreadable)?)
}

/// [`parse`], each ticket's record handed to `each` as soon as it is read (the state returned has
/// no tickets): the same JSON, the same checks.
fn parse_each(text: impl Read, each: &mut dyn FnMut(String, StoredTicket)) -> Result<StateFile, Unreadable> {
    use serde::de::DeserializeSeed;
    let mut reader = serde_json::Deserializer::from_reader(text);
    let state = crate::store::record::Each(each).deserialize(&mut reader).map_err(unreadable)?;
    reader.end().map_err(unreadable)?;
    checked(state)
}

fn unreadable(e: serde_json::Error) -> Unreadable {
    match e.io_error_kind() {
        Some(kind) => Unreadable::Io(io::Error::new(kind, e.to_string())),
        // Not serde's own text: a value of the wrong type is quoted in it, and the values here
        // are tokens and tickets.
        None => Unreadable::Corrupt(crate::secret::json_error_without_values(&e)),
    }
}

fn checked(state: StateFile) -> Result<StateFile, Unreadable> {
    if state.version != VERSION {
        return Err(Unreadable::Corrupt(format!("state version {} is not {VERSION}", state.version)));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::clock::from_unix_seconds;

    use crate::store::record::{StoredTicketRef, VERSION};
    use crate::token::Holding;

    use std::os::unix::fs::PermissionsExt;

    fn sample() -> StateFile {
        let t = from_unix_seconds(1_704_164_645);
        let holding = Holding {
            current: Some(crate::testing::current("tok", None, t, std::time::Duration::ZERO, 3)),
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
        let tickets = |visit: &mut dyn FnMut(&str, &StoredTicketRef<'_>)| {
            for (name, t) in &state.tickets {
                let kind = if t.kind == "sls" { "sls" } else { "tcr" };
                let holding = std::borrow::Cow::Borrowed(&t.holding);
                visit(name, &StoredTicketRef { kind, identity: t.identity.clone(), holding });
            }
        };
        let borrowed = Snapshot { tickets: &tickets, revocations: &state.revocations, unconfirmed: &state.unconfirmed };
        let written = serde_json::to_string_pretty(&borrowed).unwrap();
        assert_eq!(written, serde_json::to_string_pretty(&state).unwrap());
        assert!(parse(written.as_bytes()).is_ok_and(|parsed| parsed == state));
    }

    #[test]
    fn a_streamed_load_hands_each_record_over_as_it_is_read() {
        // 4,000 tickets (~1.3 MB of JSON), read through the 64 KiB buffer `open` uses: the first
        // record is handed over long before the file is read (a load that collected the records
        // first would hand it over at the end).
        struct Counting<'a>(&'a [u8], std::rc::Rc<std::cell::Cell<usize>>);
        impl Read for Counting<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.read(buf)?;
                self.1.set(self.1.get() + n);
                Ok(n)
            }
        }
        let mut state = sample();
        let one = state.tickets["a"].clone();
        state.tickets.extend((0..4000).map(|i| (format!("t{i:05}"), one.clone())));
        let text = serde_json::to_vec_pretty(&state).unwrap();
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let mut first_at = None;
        let mut each = BTreeMap::new();
        let reader = io::BufReader::with_capacity(64 * 1024, Counting(&text, read.clone()));
        let rest = parse_each(reader, &mut |name, ticket| {
            first_at.get_or_insert(read.get());
            each.insert(name, ticket);
        })
        .ok()
        .unwrap();
        assert!(first_at.unwrap() <= 64 * 1024 && text.len() > 10 * 64 * 1024, "{first_at:?} of {}", text.len());
        assert_eq!(StateFile { tickets: each, ..rest }, state);
    }

    #[test]
    fn a_streamed_load_refuses_what_the_state_files_own_parse_refuses() {
        for text in [
            r#"{"version": 1, "tickets": {}, "extra": 1}"#,
            r#"{"version": 1}"#,
            r#"{"tickets": {}}"#,
            r#"{"version": 1, "tickets": {}, "tickets": {}}"#,
            r#"{"version": 2, "tickets": {}}"#,
            r#"{"version": 1, "tickets": {"a": {"kind": "sls"}}}"#,
            r#"{"version": 1, "tickets": {}} trailing"#,
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text}");
            assert!(matches!(parse_each(text.as_bytes(), &mut |_, _| {}), Err(Unreadable::Corrupt(_))), "{text}");
        }
        let fine = r#"{"version": 1, "tickets": {}, "revocations": []}"#;
        assert!(parse(fine.as_bytes()).is_ok() && parse_each(fine.as_bytes(), &mut |_, _| {}).is_ok());
    }

    #[test]
    fn save_then_load_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = FileStore::open(&dir.path().join("s")).unwrap();
        state_dir.save(&sample()).unwrap();
        let loaded = state_dir.load().unwrap();
        assert_eq!(loaded.state, sample());
        assert!(loaded.set_aside.is_none());
        assert_eq!(fs::metadata(state_dir.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_second_opener_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let _first = FileStore::open(dir.path()).unwrap();
        let err = FileStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another ticketd") && err.contains(&std::process::id().to_string()), "{err}");
    }

    #[test]
    fn a_corrupt_state_file_is_set_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = FileStore::open(dir.path()).unwrap();
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
        let err = FileStore::open(&state).unwrap_err().to_string();
        assert!(err.contains("state.lock") && err.contains("is a symlink"), "{err}");
        assert_eq!(fs::read(&secret).unwrap(), b"keep me", "the symlink's target was not touched");
        // Nor is the state file read through one.
        fs::remove_file(state.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&secret, state.join(STATE_FILE)).unwrap();
        let err = FileStore::open(&state).unwrap().load().unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
    }

    #[test]
    fn issue_16_the_state_dir_and_lock_get_exact_modes() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        let held = FileStore::open(&state).unwrap();
        assert_eq!(fs::metadata(&state).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(fs::metadata(dir.path().join("a")).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(fs::metadata(state.join(LOCK_FILE)).unwrap().permissions().mode() & 0o7777, 0o600);
        drop(held);
        // A lock file left with a loose mode is tightened.
        fs::set_permissions(state.join(LOCK_FILE), fs::Permissions::from_mode(0o666)).unwrap();
        let _held = FileStore::open(&state).unwrap();
        assert_eq!(fs::metadata(state.join(LOCK_FILE)).unwrap().permissions().mode() & 0o7777, 0o600);
    }

    #[test]
    #[cfg_attr(not(have_root), ignore = "needs root (a directory owned by another uid)")]
    fn issue_16_as_root_a_state_dir_another_user_can_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let err = FileStore::open(&theirs.join("state")).unwrap_err().to_string();
        assert!(err.contains("/theirs is owned by uid 65534"), "{err}");
        assert!(!theirs.join("state").exists());
    }
}
