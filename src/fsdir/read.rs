//! Reading a config or credential file so that it can neither hang nor eat memory: opened with
//! `O_NONBLOCK` (a FIFO does not block the open), accepted only when `fstat` of the opened file says
//! regular, and read up to a size cap.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{CWD, FileType, Mode, OFlags};

/// The most bytes a config or credential file may hold.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Whether the last component may be a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Followed (a Kubernetes ConfigMap or Secret volume links every file to `..data/`).
    Symlinks,
    /// Refused (`O_NOFOLLOW`).
    NoSymlinks,
}

/// The bytes of the regular file at `path`, at most `max` of them. Errors say what the file is
/// when it is not a regular file, and the limit when it is larger.
pub(crate) fn read_regular(path: &Path, follow: Follow, max: u64) -> io::Result<Vec<u8>> {
    let fd = open_flags(CWD, path.as_os_str(), follow)?;
    read_opened(fd, max)
}

/// [`read_regular`] into a `String`, refusing bytes that are not UTF-8.
pub(crate) fn read_regular_string(path: &Path, follow: Follow, max: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, follow, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text"))
}

/// Open `name` relative to `dir` for reading, non-blocking, close-on-exec, no controlling tty.
pub(crate) fn open_flags(dir: impl std::os::fd::AsFd, name: &OsStr, follow: Follow) -> io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    if follow == Follow::NoSymlinks {
        flags |= OFlags::NOFOLLOW;
    }
    rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| match e {
        rustix::io::Errno::LOOP if follow == Follow::NoSymlinks => {
            io::Error::new(io::ErrorKind::InvalidInput, "is a symlink (refused: it could point anywhere)")
        }
        e => e.into(),
    })
}

/// The regular file at `path`, opened as [`read_regular`] opens it, with its `fstat` taken once
/// open: for a reader that reads it a part at a time instead of whole.
pub(crate) fn open_regular(path: &Path, follow: Follow, max: u64) -> io::Result<(File, rustix::fs::Stat)> {
    let fd = open_flags(CWD, path.as_os_str(), follow)?;
    let stat = checked_stat(&fd, max)?;
    Ok((File::from(fd), stat))
}

/// `fd`'s `fstat`, when it is a regular file of at most `max` bytes.
fn checked_stat(fd: &OwnedFd, max: u64) -> io::Result<rustix::fs::Stat> {
    let stat = rustix::fs::fstat(fd)?;
    check_regular(&stat)?;
    if stat.st_size as u64 > max {
        return Err(too_large(max));
    }
    Ok(stat)
}

fn too_large(max: u64) -> io::Error {
    const MIB: u64 = 1024 * 1024;
    let limit =
        if max >= MIB && max.is_multiple_of(MIB) { format!("{} MiB", max / MIB) } else { format!("{max} bytes") };
    io::Error::new(io::ErrorKind::InvalidData, format!("is larger than the limit of {limit}"))
}

/// Check that `fd` is a regular file of at most `max` bytes, and read it.
pub(crate) fn read_opened(fd: OwnedFd, max: u64) -> io::Result<Vec<u8>> {
    let stat = checked_stat(&fd, max)?;
    let mut bytes = Vec::with_capacity(stat.st_size as usize);
    File::from(fd).take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// An error unless `stat` is a regular file, naming what it is instead.
pub(crate) fn check_regular(stat: &rustix::fs::Stat) -> io::Result<()> {
    let what = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => return Ok(()),
        FileType::Directory => "a directory",
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Symlink => "a symlink",
        FileType::Unknown => "of an unknown type",
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is not a regular file (it is {what})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0).unwrap();
    }

    #[test]
    fn issue_16_a_fifo_a_device_and_a_directory_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, what) in
            [(&fifo, "a FIFO"), (&zero, "a character device"), (&dir.path().to_path_buf(), "a directory")]
        {
            let e = read_regular(path, Follow::Symlinks, MAX_FILE_BYTES).unwrap_err().to_string();
            assert_eq!(e, format!("is not a regular file (it is {what})"));
        }
    }

    #[test]
    fn issue_16_a_file_over_the_cap_is_refused_and_one_at_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = read_regular(&big, Follow::Symlinks, MAX_FILE_BYTES).unwrap_err().to_string();
        assert_eq!(e, "is larger than the limit of 64 MiB");
        std::fs::write(&big, b"12345").unwrap();
        assert_eq!(read_regular(&big, Follow::Symlinks, 5).unwrap(), b"12345");
        assert_eq!(
            read_regular(&big, Follow::Symlinks, 4).unwrap_err().to_string(),
            "is larger than the limit of 4 bytes"
        );
    }

    #[test]
    fn symlinks_are_followed_or_refused_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("real", &link).unwrap();
        assert_eq!(read_regular(&link, Follow::Symlinks, 10).unwrap(), b"x");
        let e = read_regular(&link, Follow::NoSymlinks, 10).unwrap_err().to_string();
        assert!(e.contains("is a symlink"), "{e}");
        std::fs::write(dir.path().join("bad"), [0xff, 0xfe]).unwrap();
        assert!(read_regular_string(&dir.path().join("bad"), Follow::Symlinks, 10).is_err());
    }
}
