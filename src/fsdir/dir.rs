//! A directory resolved once (after the StrictModes walk), held open as an fd.
//!
//! Every later file operation is relative to its fd, with `O_NOFOLLOW` for the final names, `O_EXCL`
//! for new ones, `O_CLOEXEC` always, and modes set with `fchmod` on the opened file (never trusting
//! the umask).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

use super::policy::{Policy, Untrusted, enforce};
use super::read::{Follow, check_regular, read_opened};
use super::walk::{plain_name, walk};

/// Why a directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("{0}")]
    Untrusted(#[from] Untrusted),
    #[error("cannot open {what} {}: {source}", path.display())]
    Io { what: String, path: PathBuf, source: io::Error },
}

impl From<DirError> for io::Error {
    fn from(e: DirError) -> io::Error {
        match e {
            DirError::Untrusted(u) => io::Error::new(io::ErrorKind::PermissionDenied, u.to_string()),
            DirError::Io { source, .. } => source,
        }
    }
}

/// A held directory. See the module documentation.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// The path it was opened by (for messages).
    path: PathBuf,
}

impl Dir {
    /// Walk `path`, apply `policy` to what the walk found (`what` names the directory's role in
    /// messages), create the missing components with exactly `create_mode`, and hold the result.
    pub fn open(path: &Path, what: &str, create_mode: u32, policy: Policy) -> Result<Dir, DirError> {
        let io_error = |source| DirError::Io { what: what.to_string(), path: path.to_path_buf(), source };
        let walked = walk(path).map_err(io_error)?;
        enforce(what, path, &walked.concerns, policy)?;
        if walked.leaf.is_some() {
            return Err(io_error(io::Error::from_raw_os_error(rustix::io::Errno::NOTDIR.raw_os_error())));
        }
        let mut fd = walked.dir;
        for name in &walked.missing {
            fd = create_dir(&fd, name, create_mode).map_err(io_error)?;
        }
        let fd = rustix::fs::openat(&fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| io_error(e.into()))?;
        Ok(Dir { fd, path: path.to_path_buf() })
    }

    /// [`Dir::open`] of `path`'s parent, and `path`'s file name.
    pub fn open_parent(path: &Path, what: &str, create_mode: u32, policy: Policy) -> Result<(Dir, OsString), DirError> {
        let name = path.file_name().ok_or_else(|| DirError::Io {
            what: what.to_string(),
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        })?;
        let parent = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Ok((Dir::open(parent, what, create_mode, policy)?, name.to_os_string()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether the directory has been removed since it was opened (writes into it would vanish).
    pub fn is_removed(&self) -> bool {
        rustix::fs::fstat(&self.fd).map_or(true, |s| s.st_nlink == 0)
    }

    /// Replace `name` with `contents`, atomically, with permission bits exactly `mode`.
    pub fn write_atomically(&self, name: &OsStr, contents: &[u8], mode: u32) -> io::Result<()> {
        self.replace(name, mode, |file| file.write_all(contents))
    }

    /// [`Dir::write_atomically`], the contents written by `write` (buffered).
    pub fn write_atomically_with(
        &self,
        name: &OsStr,
        mode: u32,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        self.replace(name, mode, |file| {
            let mut buffered = io::BufWriter::with_capacity(64 * 1024, file);
            write(&mut buffered)?;
            buffered.flush()
        })
    }

    /// A temp file beside `name` (`O_CREAT|O_EXCL|O_NOFOLLOW`, `fchmod` to `mode`), written by
    /// `write`, fsynced, renamed over `name`; then the directory is fsynced.
    fn replace(&self, name: &OsStr, mode: u32, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
        let name = plain_name(name)?;
        let (temp, mut file) = self.create_temp(name, mode)?;
        let written = (|| -> io::Result<()> {
            write(&mut file)?;
            file.sync_all()?;
            drop(file);
            rustix::fs::renameat(&self.fd, &temp, &self.fd, name)?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, &temp, AtFlags::empty());
        }
        written?;
        rustix::fs::fsync(&self.fd)?;
        Ok(())
    }

    fn create_temp(&self, name: &OsStr, mode: u32) -> io::Result<(OsString, File)> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut attempts = 0;
        loop {
            let temp = temp_name(name);
            match rustix::fs::openat(&self.fd, &temp, flags, Mode::from_raw_mode(mode & 0o7777)) {
                Ok(fd) => {
                    // The umask may have narrowed the mode at creation: set it exactly.
                    if let Err(e) = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777)) {
                        let _ = rustix::fs::unlinkat(&self.fd, &temp, AtFlags::empty());
                        return Err(e.into());
                    }
                    return Ok((temp, File::from(fd)));
                }
                Err(rustix::io::Errno::EXIST) if attempts < 16 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The regular file `name` opened for reading (`O_NOFOLLOW|O_NONBLOCK`); `None` when there is
    /// none. A symlink or anything but a regular file is an error.
    pub fn open_existing(&self, name: &OsStr) -> io::Result<Option<File>> {
        let name = plain_name(name)?;
        match super::read::open_flags(&self.fd, name, Follow::NoSymlinks) {
            Ok(fd) => {
                check_regular(&rustix::fs::fstat(&fd)?)?;
                Ok(Some(File::from(fd)))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The bytes of the regular file `name` (at most `max`), as [`Dir::open_existing`] opens it.
    pub fn read_existing(&self, name: &OsStr, max: u64) -> io::Result<Option<Vec<u8>>> {
        let name = plain_name(name)?;
        match super::read::open_flags(&self.fd, name, Follow::NoSymlinks) {
            Ok(fd) => read_opened(fd, max).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Open (creating it with exactly `mode`) the regular file `name` for reading and writing,
    /// never through a symlink: for a lock file.
    pub fn open_lock_file(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let name = plain_name(name)?;
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode)).map_err(|e| match e {
            rustix::io::Errno::LOOP => {
                io::Error::new(io::ErrorKind::InvalidInput, "is a symlink (refused: it could point anywhere)")
            }
            e => e.into(),
        })?;
        let stat = rustix::fs::fstat(&fd)?;
        check_regular(&stat)?;
        if stat.st_mode & 0o7777 != mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
        }
        Ok(File::from(fd))
    }

    /// Rename `from` to `to`, both in this directory.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        rustix::fs::renameat(&self.fd, plain_name(from)?, &self.fd, plain_name(to)?)?;
        Ok(())
    }

    /// Remove the file `name` (not a directory); a missing one is fine.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, plain_name(name)?, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove leftovers of writes of `name` that a crash interrupted (`.<name>.*.tmp`).
    pub fn remove_stale_temps(&self, name: &OsStr) {
        self.remove_stale_temps_of(&std::collections::HashSet::from([name]));
    }

    /// [`Dir::remove_stale_temps`] for every name in `names`, reading the directory once.
    pub fn remove_stale_temps_of(&self, names: &std::collections::HashSet<&OsStr>) {
        let Ok(entries) = rustix::fs::Dir::read_from(&self.fd) else { return };
        for entry in entries.flatten() {
            let file = entry.file_name().to_bytes();
            let Some(inner) = file.strip_prefix(b".").and_then(|f| f.strip_suffix(b".tmp")) else { continue };
            let Some(dot) = inner.iter().rposition(|b| *b == b'.') else { continue };
            if names.contains(OsStr::from_bytes(&inner[..dot])) {
                let _ = rustix::fs::unlinkat(&self.fd, entry.file_name(), AtFlags::empty());
            }
        }
    }

    /// `/proc/self/fd/<fd>/<name>`: a path to `name` in this directory that no rename of a
    /// directory above it can redirect (for `connect` and `bind`, which take only paths).
    pub fn proc_path(&self, name: &OsStr) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).join(name)
    }

    /// Bind a unix socket at `name` that is reachable only once its mode is exactly `mode` (and
    /// its group `group`): it is bound inside a private 0700 directory made here, where no other
    /// user can swap the name, chmod/chown'd relative to that directory, then renamed over `name`.
    /// (`fchmod` on a socket's fd does not reach its file, so this is how it is done safely.)
    pub fn bind_unix(&self, name: &OsStr, mode: u32, group: Option<u32>) -> io::Result<UnixListener> {
        let name = plain_name(name)?;
        let mut private_name = OsString::from(".");
        private_name.push(name);
        private_name.push(format!(".{:016x}.d", rand::random::<u64>()));
        let private = self.create_private_dir(&private_name)?;
        let bound = (|| -> io::Result<UnixListener> {
            let at = PathBuf::from(format!("/proc/self/fd/{}/s", private.as_raw_fd()));
            let listener = UnixListener::bind(&at)?;
            rustix::fs::chmodat(&private, "s", Mode::from_raw_mode(mode & 0o7777), AtFlags::empty())?;
            if let Some(gid) = group {
                let gid = Some(rustix::fs::Gid::from_raw(gid));
                rustix::fs::chownat(&private, "s", None, gid, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            rustix::fs::renameat(&private, "s", &self.fd, name)?;
            Ok(listener)
        })();
        let _ = rustix::fs::unlinkat(&private, "s", AtFlags::empty());
        let _ = rustix::fs::unlinkat(&self.fd, &private_name, AtFlags::REMOVEDIR);
        bound
    }

    /// Create the private directory `name` (mode 0700), for work nobody else may see until it
    /// is renamed into place.
    pub fn create_private_dir(&self, name: &OsStr) -> io::Result<OwnedFd> {
        create_dir(&self.fd, plain_name(name)?, 0o700)
    }
}

/// `mkdirat` `name` in `parent`, then `fchmod` it to exactly `mode`; the opened new directory.
fn create_dir(parent: &OwnedFd, name: &OsStr, mode: u32) -> io::Result<OwnedFd> {
    match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(mode)) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => {} // Made by someone at the same moment: checked below.
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if stat.st_uid != rustix::process::geteuid().as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} appeared owned by uid {} while ticketd created it", name.to_string_lossy(), stat.st_uid),
        ));
    }
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
    Ok(fd)
}

/// `.<name>.<random>.tmp`.
fn temp_name(name: &OsStr) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{:016x}.tmp", rand::random::<u64>()));
    temp
}
