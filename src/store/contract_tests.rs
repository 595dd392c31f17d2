//! The [`Store`] contract as one suite, run for every implementation: the file store, the
//! in-memory store the scheduler's tests use.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::clock::from_unix_seconds;
use crate::secret::Secret;
use crate::store::contract::{Store, StoreError};
use crate::store::record::{PendingRevocation, Snapshot, StateFile, StoredTicket, StoredTicketRef};
use crate::token::{Current, Holding, TokenPart};

/// How the suite reaches one place of an implementation.
pub(crate) trait Harness {
    type S: Store;
    /// Open (and lock) a store on the suite's place.
    fn open(&self) -> Result<Self::S, StoreError>;
    /// Make what the place holds unreadable as a state.
    fn corrupt(&self);
    /// Make `store` lose its lock, if this implementation can lose one (a lease); `false` if
    /// it cannot (an `flock` lasts while its file is open).
    fn lose_lock(&self, store: &Self::S) -> bool;
    /// Make every save from now on fail part-way, as a full disk does (`true`), until called
    /// with `false`; returns `false` when this harness cannot (the file store off a small disk).
    fn fail_saves(&self, failing: bool) -> bool;
    /// With no store open, leave beside the state what a save cut short by a crash leaves (the
    /// file store: a temp file, here holding a whole other state); `false` if it leaves nothing.
    fn leave_debris(&self) -> bool;
    /// Whether that debris is still there.
    fn debris_left(&self) -> bool;
}

fn holding(generation: u64, token: &str) -> Holding {
    let t = from_unix_seconds(1_704_164_645);
    let token = TokenPart {
        value: Secret::new(token),
        username: None,
        token_id: Some("tid".into()),
        issued_at: t.into(),
        expires_at: (t + Duration::from_secs(3600)).into(),
    };
    Holding {
        current: Some(Current { ticket: None, token, generation, refreshed_at: t.into(), expires_mono: None }),
        pending: None,
    }
}

fn stored(generation: u64, token: &str) -> StoredTicket {
    StoredTicket { kind: "sls".into(), identity: "sls endpoint=x".into(), holding: holding(generation, token) }
}

fn revocation(token_id: &str) -> PendingRevocation {
    PendingRevocation {
        ticket: "b".into(),
        token_id: token_id.into(),
        endpoint: "https://tcr.example".into(),
        region: "ap-guangzhou".into(),
        registry_id: "tcr-1".into(),
        credentials: "prod".into(),
        after_generation: Some(2),
        since: from_unix_seconds(1_704_164_000).into(),
    }
}

/// A state of `n` tickets (a few hundred bytes each as JSON).
fn many(n: usize) -> StateFile {
    let tickets = (0..n).map(|i| (format!("t{i:04}"), stored(i as u64, &format!("tok-{i}-{}", "x".repeat(200)))));
    StateFile { tickets: tickets.collect(), ..StateFile::empty() }
}

fn sample() -> StateFile {
    let tickets: BTreeMap<String, StoredTicket> =
        [("a".to_string(), stored(1, "tok-a")), ("b".to_string(), stored(7, "tok-b"))].into();
    StateFile {
        tickets,
        revocations: vec![revocation("r1")],
        unconfirmed: vec![revocation("u1")],
        ..StateFile::empty()
    }
}

/// Save `state` as the scheduler does: streamed from borrowed records.
fn save_all(store: &impl Store, state: &StateFile) -> Result<(), StoreError> {
    let tickets = |visit: &mut dyn FnMut(&str, &StoredTicketRef<'_>)| {
        for (name, t) in &state.tickets {
            let kind = if t.kind == "sls" { "sls" } else { "tcr" };
            let record =
                StoredTicketRef { kind, identity: t.identity.clone(), holding: std::borrow::Cow::Borrowed(&t.holding) };
            visit(name, &record);
        }
    };
    store.save_all(&Snapshot { tickets: &tickets, revocations: &state.revocations, unconfirmed: &state.unconfirmed })
}

/// Every clause of the contract, in turn, on `harness`'s place (empty to begin with).
pub(crate) fn keeps_the_contract(harness: &impl Harness) {
    // Load: a place never saved to is an empty state.
    let store = harness.open().expect("the place opens");
    store.lock().expect("a store holds its lock from its opening");
    let loaded = store.load().unwrap();
    assert_eq!(loaded.state, StateFile::empty());
    assert!(loaded.set_aside.is_none());

    // Save all: what is saved loads back as it was, revocations included.
    save_all(&store, &sample()).unwrap();
    assert_eq!(store.load().unwrap().state, sample());
    // Load each: the same records, handed over one by one; the state answered holds the rest.
    let mut each = BTreeMap::new();
    let rest = store.load_each(&mut |name, ticket| assert!(each.insert(name, ticket).is_none())).unwrap();
    assert!(rest.set_aside.is_none() && rest.state.tickets.is_empty());
    assert_eq!(StateFile { tickets: each, ..rest.state }, sample());
    // And replaces everything: a ticket no longer in the snapshot is gone.
    let mut fewer = sample();
    fewer.tickets.remove("b");
    fewer.revocations.clear();
    save_all(&store, &fewer).unwrap();
    assert_eq!(store.load().unwrap().state, fewer);

    // Save one: one record changes, is added or is removed; nothing else does.
    save_all(&store, &sample()).unwrap();
    store.save_one("a", Some(&stored(2, "tok-a2"))).unwrap();
    let mut expected = sample();
    expected.tickets.insert("a".into(), stored(2, "tok-a2"));
    assert_eq!(store.load().unwrap().state, expected);
    store.save_one("c", Some(&stored(1, "tok-c"))).unwrap();
    store.save_one("b", None).unwrap();
    expected.tickets.insert("c".into(), stored(1, "tok-c"));
    expected.tickets.remove("b");
    assert_eq!(store.load().unwrap().state, expected);

    // Atomic saves that fail (the file store's disk fills up part-way through writing them):
    // the state stays as it was before each, and saves work again once the cause is gone.
    if harness.fail_saves(true) {
        assert!(save_all(&store, &many(64)).is_err(), "a save_all on a full disk fails");
        let long = stored(3, &"L".repeat(12_000));
        assert!(store.save_one("a", Some(&long)).is_err(), "a save_one on a full disk fails");
        assert!(harness.fail_saves(false));
        assert_eq!(store.load().unwrap().state, expected, "a failed save changed nothing");
        save_all(&store, &many(64)).unwrap();
        assert_eq!(store.load().unwrap().state, many(64), "saves work again");
        save_all(&store, &expected).unwrap();
    }

    // Concurrent calls are linearizable: save_one from four threads at once, each its own
    // tickets, loses none of the others' records.
    std::thread::scope(|scope| {
        for thread in 0..4 {
            let store = &store;
            scope.spawn(move || {
                for i in 0..8 {
                    store.save_one(&format!("c{thread}-{i}"), Some(&stored(i, "tok-c"))).unwrap();
                }
            });
        }
    });
    let state = store.load().unwrap().state;
    let lost: Vec<String> = (0..4)
        .flat_map(|thread| (0..8).map(move |i| format!("c{thread}-{i}")))
        .filter(|name| !state.tickets.contains_key(name))
        .collect();
    assert!(lost.is_empty(), "records lost by concurrent save_one calls: {lost:?}");
    save_all(&store, &expected).unwrap();

    // Exclusive lock: a second holder is refused while the first lives, and its refusal
    // changes nothing; once the first is dropped (or its process dies), the next one gets it.
    let second = harness.open();
    assert!(matches!(second, Err(StoreError::InUse { .. })), "a second holder: {:?}", second.err());
    assert_eq!(store.load().unwrap().state, expected, "the refused opener changed nothing");
    drop(store);
    // What a crash left beside the state is cleared when the place is next locked, and never
    // loads as the state.
    let debris = harness.leave_debris();
    let store = harness.open().expect("the lock was released with its holder");
    if debris {
        assert!(!harness.debris_left(), "the debris of a crashed save is cleared when next locked");
    }
    assert_eq!(store.load().unwrap().state, expected, "the state outlives its holder");

    // A corrupt state is set aside, never overwritten; the load goes on with an empty state,
    // and the next load finds nothing (the corrupt one is no longer in the way).
    harness.corrupt();
    let loaded = store.load().unwrap();
    assert!(loaded.set_aside.is_some(), "a corrupt state is reported set aside");
    assert_eq!(loaded.state, StateFile::empty());
    save_all(&store, &sample()).unwrap();
    harness.corrupt();
    let loaded = store.load_each(&mut |_, _| {}).unwrap();
    assert!(loaded.set_aside.is_some(), "load_each sets a corrupt state aside too");
    assert_eq!(loaded.state, StateFile::empty());
    let again = store.load().unwrap();
    assert!(again.set_aside.is_none() && again.state == StateFile::empty(), "{:?}", again.set_aside);

    // A lost lock: nothing is read or written from then on.
    save_all(&store, &sample()).unwrap();
    if harness.lose_lock(&store) {
        assert!(matches!(store.lock(), Err(StoreError::NotLocked { .. })));
        assert!(matches!(store.load(), Err(StoreError::NotLocked { .. })));
        assert!(matches!(save_all(&store, &fewer), Err(StoreError::NotLocked { .. })));
        assert!(matches!(store.save_one("a", None), Err(StoreError::NotLocked { .. })));
        drop(store);
        let next = harness.open().expect("the lock is free");
        assert_eq!(next.load().unwrap().state, sample(), "the holder that lost its lock wrote nothing");
    }
}

mod file {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;
    use crate::store::file::{FileStore, STATE_FILE};

    /// A temp file as a crash in the middle of a save leaves it (`.state.json.<random>.tmp`).
    const DEBRIS: &str = ".state.json.00c0ffee00c0ffee.tmp";

    struct Files {
        dir: PathBuf,
        /// The small disk (a tmpfs) `dir` is on, if it is on one: filled to make saves fail.
        disk: Option<PathBuf>,
    }

    impl Harness for Files {
        type S = FileStore;
        fn open(&self) -> Result<FileStore, StoreError> {
            FileStore::open(&self.dir)
        }
        fn corrupt(&self) {
            std::fs::write(self.dir.join(STATE_FILE), b"{\"version\": 1, \"tick").unwrap();
        }
        fn lose_lock(&self, _: &FileStore) -> bool {
            false
        }
        fn fail_saves(&self, failing: bool) -> bool {
            let Some(disk) = &self.disk else { return false };
            let filler = disk.join("filler");
            if !failing {
                std::fs::remove_file(&filler).unwrap();
                return true;
            }
            // Fill the disk, then give 8 KiB back: a save gets part-way into its temp file.
            let mut file = std::fs::File::create(&filler).unwrap();
            let page = [0u8; 4096];
            let mut written = 0u64;
            for _ in 0..4096 {
                match file.write(&page) {
                    Ok(n) if n > 0 => written += n as u64,
                    _ => break,
                }
            }
            assert!(file.write(&page).is_err(), "the small disk is full");
            file.set_len(written - 8192).unwrap();
            true
        }
        fn leave_debris(&self) -> bool {
            let other = serde_json::to_string(&many(1)).unwrap();
            std::fs::write(self.dir.join(DEBRIS), other).unwrap();
            true
        }
        fn debris_left(&self) -> bool {
            self.dir.join(DEBRIS).exists()
        }
    }

    #[test]
    fn the_file_store_keeps_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        keeps_the_contract(&Files { dir: dir.path().join("state"), disk: None });
    }

    /// A mounted tmpfs, unmounted when dropped.
    struct SmallDisk(PathBuf);

    impl SmallDisk {
        fn mount(at: &Path) -> SmallDisk {
            std::fs::create_dir(at).unwrap();
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs"])
                .arg(at)
                .status()
                .is_ok_and(|s| s.success());
            assert!(mounted, "cannot mount a tmpfs on {}", at.display());
            SmallDisk(at.to_path_buf())
        }
    }

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    #[test]
    #[cfg_attr(not(have_root), ignore = "needs root (mounts a small tmpfs to fill)")]
    fn the_file_store_keeps_the_store_contract_on_a_disk_that_fills_up() {
        let dir = tempfile::tempdir().unwrap();
        let disk = SmallDisk::mount(&dir.path().join("disk"));
        keeps_the_contract(&Files { dir: disk.0.join("state"), disk: Some(disk.0.clone()) });
    }
}

mod memory {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::{MemoryStore, Place};

    struct Memory(Arc<Place>);

    impl Harness for Memory {
        type S = MemoryStore;
        fn open(&self) -> Result<MemoryStore, StoreError> {
            MemoryStore::open(&self.0)
        }
        fn corrupt(&self) {
            self.0.corrupt();
        }
        fn lose_lock(&self, _: &MemoryStore) -> bool {
            self.0.break_lock();
            true
        }
        fn fail_saves(&self, failing: bool) -> bool {
            self.0.fail_saves(failing);
            true
        }
        fn leave_debris(&self) -> bool {
            false
        }
        fn debris_left(&self) -> bool {
            false
        }
    }

    #[test]
    fn the_memory_store_keeps_the_store_contract() {
        keeps_the_contract(&Memory(Place::new()));
    }
}
