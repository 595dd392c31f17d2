//! OpenSSH's StrictModes walk: follow a path from `/` one component at a time (`openat` with
//! `O_PATH|O_NOFOLLOW`), resolving symlinks by hand, and note every component that a user other
//! than root or ticketd's own could change.
//!
//! A component is a concern when it is owned by another uid; when it is a directory writable by
//! everyone, or by a group other than root's or ticketd's own, without the sticky bit; when it
//! sits in such a shared sticky directory (like `/tmp`) but is owned by another uid (who may then
//! rename it); or when it is a symlink owned by another uid. An admin's own symlinks (`/var/run` →
//! `/run`) are followed like any directory.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode, OFlags, Stat};

/// Symlinks followed in one walk at most (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// One component of a path that someone else could change, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concern {
    pub path: PathBuf,
    pub why: String,
}

impl fmt::Display for Concern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.display(), self.why)
    }
}

/// How far a walk got.
#[derive(Debug)]
pub(crate) struct Walked {
    /// The deepest directory that exists (`O_PATH`): the path itself, or the parent of `leaf`, or
    /// the parent of the first of `missing`.
    pub dir: OwnedFd,
    /// Where `dir` really is, symlinks resolved (the walk's tests check its resolution here).
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests only"))]
    pub resolved: PathBuf,
    /// The last component, when it names something other than a directory (not opened: open it
    /// with `O_NOFOLLOW` relative to `dir` and check the opened file).
    pub leaf: Option<OsString>,
    /// Components below `dir` that do not exist yet, in order.
    pub missing: Vec<OsString>,
    pub concerns: Vec<Concern>,
}

/// The uids and gids trusted with a path: root's and ticketd's own (effective).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trusted {
    pub uid: u32,
    pub gid: u32,
}

impl Trusted {
    pub(crate) fn of_process() -> Trusted {
        Trusted { uid: rustix::process::geteuid().as_raw(), gid: rustix::process::getegid().as_raw() }
    }

    pub(crate) fn uid(&self, uid: u32) -> bool {
        uid == 0 || uid == self.uid
    }

    pub(crate) fn gid(&self, gid: u32) -> bool {
        gid == 0 || gid == self.gid
    }

    /// Why `stat` (a directory) lets others change what is in it, if it does; and whether it is
    /// a shared sticky directory (others may add entries, but not touch those they do not own).
    fn directory(&self, stat: &Stat) -> (Option<String>, bool) {
        let mode = stat.st_mode;
        let sticky = mode & 0o1000 != 0;
        let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && !self.gid(stat.st_gid));
        if !self.uid(stat.st_uid) {
            return (Some(format!("is owned by uid {}", stat.st_uid)), others_write);
        }
        if others_write && !sticky {
            return (Some(writable(stat)), false);
        }
        (None, others_write)
    }

    /// Why someone else could change the file `stat`, if they could.
    pub(crate) fn file(&self, stat: &Stat) -> Option<String> {
        let mode = stat.st_mode;
        if !self.uid(stat.st_uid) {
            Some(format!("is owned by uid {}", stat.st_uid))
        } else if mode & 0o002 != 0 || (mode & 0o020 != 0 && !self.gid(stat.st_gid)) {
            Some(writable(stat))
        } else {
            None
        }
    }
}

fn writable(stat: &Stat) -> String {
    if stat.st_mode & 0o002 != 0 {
        format!("is writable by every user (mode {:o})", stat.st_mode & 0o7777)
    } else {
        format!("is writable by group {} (mode {:o})", stat.st_gid, stat.st_mode & 0o7777)
    }
}

/// Walk `path` (made absolute against the current directory) as [`Trusted::of_process`] sees it.
pub(crate) fn walk(path: &Path) -> io::Result<Walked> {
    walk_as(path, Trusted::of_process())
}

/// [`walk`] with the trusted ids given (tests).
pub(crate) fn walk_as(path: &Path, trusted: Trusted) -> io::Result<Walked> {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&absolute, &mut pending);
    let open_root = || rustix::fs::openat(CWD, "/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
    let mut concerns = Vec::new();
    let mut dir = open_root()?;
    let mut resolved = PathBuf::from("/");
    let (why, mut shared) = trusted.directory(&rustix::fs::fstat(&dir)?);
    note(&mut concerns, &resolved, why);
    let mut symlinks = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            dir = rustix::fs::openat(&dir, "..", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
            resolved.pop();
            let (why, s) = trusted.directory(&rustix::fs::fstat(&dir)?);
            note(&mut concerns, &resolved, why);
            shared = s;
            continue;
        }
        let here = resolved.join(&name);
        let fd =
            match rustix::fs::openat(&dir, &*name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => {
                    pending.push(name);
                    pending.reverse();
                    return Ok(Walked { dir, resolved, leaf: None, missing: pending, concerns });
                }
                Err(e) => return Err(with_path(e.into(), &here)),
            };
        let stat = rustix::fs::fstat(&fd)?;
        if shared && !trusted.uid(stat.st_uid) {
            let why = format!("is owned by uid {} in a directory others can write to", stat.st_uid);
            note(&mut concerns, &here, Some(why));
        }
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                if !shared && !trusted.uid(stat.st_uid) {
                    note(&mut concerns, &here, Some(format!("is a symlink owned by uid {}", stat.st_uid)));
                }
                symlinks += 1;
                if symlinks > MAX_SYMLINKS {
                    return Err(with_path(io::Error::from_raw_os_error(rustix::io::Errno::LOOP.raw_os_error()), &here));
                }
                let target = rustix::fs::readlinkat(&fd, "", Vec::new())?;
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                push_components(&target, &mut pending);
                if target.is_absolute() {
                    dir = open_root()?;
                    resolved = PathBuf::from("/");
                    shared = trusted.directory(&rustix::fs::fstat(&dir)?).1;
                }
            }
            FileType::Directory => {
                let (why, s) = trusted.directory(&stat);
                if !shared || trusted.uid(stat.st_uid) {
                    note(&mut concerns, &here, why);
                }
                shared = s;
                dir = fd;
                resolved = here;
            }
            _ if pending.is_empty() => {
                return Ok(Walked { dir, resolved, leaf: Some(name), missing: Vec::new(), concerns });
            }
            _ => return Err(with_path(io::Error::from_raw_os_error(rustix::io::Errno::NOTDIR.raw_os_error()), &here)),
        }
    }
    Ok(Walked { dir, resolved, leaf: None, missing: Vec::new(), concerns })
}

fn note(concerns: &mut Vec<Concern>, path: &Path, why: Option<String>) {
    if let Some(why) = why {
        concerns.push(Concern { path: path.to_path_buf(), why });
    }
}

/// Push `path`'s components onto `pending` so that the first is popped first.
fn push_components(path: &Path, pending: &mut Vec<OsString>) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(names.into_iter().rev());
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// `name` as a C-string-safe path argument (no NUL; no `/` so it stays in its directory).
pub(crate) fn plain_name(name: &OsStr) -> io::Result<&OsStr> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a file name", name.to_string_lossy()),
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOBODY: u32 = 65534;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn lchown(path: &Path, uid: u32) {
        std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
    }

    fn concerns(path: &Path) -> Vec<String> {
        walk(path).unwrap().concerns.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn a_private_path_has_no_concern_and_missing_components_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let walked = walk(&dir.path().join("a/b/c")).unwrap();
        assert!(walked.concerns.is_empty(), "{:?}", walked.concerns);
        assert_eq!(walked.resolved, dir.path().canonicalize().unwrap().join("a"));
        assert_eq!(walked.missing, [OsString::from("b"), OsString::from("c")]);
        assert_eq!(walked.leaf, None);
        std::fs::write(dir.path().join("a/f"), b"").unwrap();
        let walked = walk(&dir.path().join("a/f")).unwrap();
        assert_eq!(walked.leaf, Some(OsString::from("f")));
        assert!(walk(&dir.path().join("a/f/g")).is_err(), "a file in the middle of a path");
    }

    #[test]
    fn issue_16_a_component_writable_by_others_is_a_concern_a_sticky_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir_all(open.join("inner")).unwrap();
        chmod(&open, 0o777);
        let found = concerns(&open.join("inner"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].ends_with("/open is writable by every user (mode 777)"), "{found:?}");
        chmod(&open, 0o1777);
        assert_eq!(concerns(&open.join("inner")), Vec::<String>::new(), "sticky, and inner is ours");
        chmod(&open, 0o775);
        let group = std::fs::metadata(&open).unwrap();
        use std::os::unix::fs::MetadataExt;
        let trusted = Trusted { uid: rustix::process::geteuid().as_raw(), gid: group.gid() };
        assert!(walk_as(&open.join("inner"), trusted).unwrap().concerns.is_empty(), "ticketd's own group");
        let foreign = Trusted { uid: trusted.uid, gid: u32::MAX - 1 };
        if group.gid() != 0 {
            assert_eq!(walk_as(&open.join("inner"), foreign).unwrap().concerns.len(), 1, "another group");
        }
    }

    #[test]
    fn an_admins_symlink_is_followed_without_concern() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("run"), dir.path().join("varrun")).unwrap();
        std::os::unix::fs::symlink("../run", dir.path().join("run/up")).unwrap();
        let walked = walk(&dir.path().join("varrun/up/x")).unwrap();
        assert!(walked.concerns.is_empty(), "{:?}", walked.concerns);
        assert_eq!(walked.resolved, dir.path().canonicalize().unwrap().join("run"));
        assert_eq!(walked.missing, [OsString::from("x")]);
    }

    #[test]
    fn a_symlink_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("b", dir.path().join("a")).unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        assert!(walk(&dir.path().join("a/x")).is_err());
    }

    #[test]
    #[cfg_attr(not(have_root), ignore = "needs root (chown to another uid)")]
    fn issue_16_components_and_symlinks_owned_by_another_user_are_concerns() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir_all(theirs.join("in")).unwrap();
        lchown(&theirs, NOBODY);
        let found = concerns(&theirs.join("in"));
        assert!(found.len() == 1 && found[0].ends_with("/theirs is owned by uid 65534"), "{found:?}");
        // A symlink planted by another user, even pointing at a good directory.
        std::fs::create_dir(dir.path().join("good")).unwrap();
        let planted = dir.path().join("planted");
        std::os::unix::fs::symlink(dir.path().join("good"), &planted).unwrap();
        lchown(&planted, NOBODY);
        let found = concerns(&planted.join("x"));
        assert!(found.len() == 1 && found[0].ends_with("/planted is a symlink owned by uid 65534"), "{found:?}");
        // In a sticky shared directory, an entry another user owns can be renamed by them.
        let shared = dir.path().join("shared");
        std::fs::create_dir_all(shared.join("mine")).unwrap();
        std::fs::create_dir(shared.join("yours")).unwrap();
        chmod(&shared, 0o1777);
        lchown(&shared.join("yours"), NOBODY);
        assert_eq!(concerns(&shared.join("mine")), Vec::<String>::new());
        let found = concerns(&shared.join("yours"));
        assert!(
            found.len() == 1 && found[0].contains("/yours is owned by uid 65534 in a directory others can write"),
            "{found:?}"
        );
        // A file another user owns.
        let file = dir.path().join("good/f");
        std::fs::write(&file, b"").unwrap();
        lchown(&file, NOBODY);
        let walked = walk(&file).unwrap();
        assert_eq!(walked.leaf, Some(OsString::from("f")));
    }
}
