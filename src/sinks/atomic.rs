//! The atomic write's guarantees, tested by path: readers see the old content or the new, never a mix.
//!
//! A crash leaves no partial file: a temp file in the same directory created with the final mode,
//! fsync, rename, fsync of the directory. The write itself is `Dir::write_atomically`
//! (`fsdir/dir.rs`), through the sinks' held directories; this file holds the mode of the
//! directories created for sinks.

/// The mode of a directory created for a file written here.
pub(crate) const CREATED_DIR_MODE: u32 = 0o755;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use crate::fsdir::{Dir, Policy};

    /// Replace `path` with `contents`, atomically, with permission bits `mode`. The directory is
    /// walked and opened first ([`Dir::open`], created [`CREATED_DIR_MODE`] when missing); callers
    /// that write the same directory again hold a [`Dir`] instead.
    pub(super) fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
        let (dir, name) = Dir::open_parent(path, "the directory", CREATED_DIR_MODE, Policy::of_process())?;
        dir.write_atomically(&name, contents, mode)
    }

    /// Remove leftovers of writes that a crash interrupted (`.<name>.*.tmp` beside `path`).
    pub(super) fn remove_stale_temps(path: &Path) {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        // Only an existing directory: nothing to clear in one that is not there.
        if fs::symlink_metadata(dir).is_ok()
            && let Ok(dir) = Dir::open(dir, "the directory", CREATED_DIR_MODE, Policy::of_process())
        {
            dir.remove_stale_temps(name);
        }
    }

    #[test]
    fn writes_replace_the_file_with_the_exact_mode_and_leave_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.json");
        write_atomically(&path, b"one", 0o600).unwrap();
        write_atomically(&path, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn stale_temps_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        fs::write(dir.path().join(".t.abc123.tmp"), b"half").unwrap();
        fs::write(dir.path().join("other"), b"keep").unwrap();
        remove_stale_temps(&path);
        assert!(!dir.path().join(".t.abc123.tmp").exists());
        assert!(dir.path().join("other").exists());
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        write_atomically(&path, b"old", 0o600).unwrap();
        // A directory in the way of the rename makes the write fail after the temp is written.
        let blocked = dir.path().join("sub");
        fs::create_dir(&blocked).unwrap();
        fs::create_dir(blocked.join("x")).unwrap();
        assert!(write_atomically(&blocked.join("x"), b"new", 0o600).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(&blocked).unwrap().count(), 1);
    }
}
