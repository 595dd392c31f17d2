//! Writing a file so that readers see the old content or the new, never a mix, and a crash leaves
//! no partial file: a temp file in the same directory created with the final mode, fsync, rename,
//! fsync of the directory.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replace `path` with `contents`, atomically, with permission bits `mode`.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    replace(path, mode, |file| file.write_all(contents))
}

/// [`write_atomically`], with the contents written by `write` (buffered) instead of from memory.
pub fn write_atomically_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    replace(path, mode, |file| {
        let mut buffered = io::BufWriter::with_capacity(64 * 1024, file);
        write(&mut buffered)?;
        buffered.flush()
    })
}

fn replace(path: &Path, mode: u32, write: impl FnOnce(&mut fs::File) -> io::Result<()>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    // The umask may have narrowed the mode at creation: set it exactly.
    temp.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    write(temp.as_file_mut())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Remove leftovers of writes that a crash interrupted (`.<name>.*.tmp` beside `path`).
pub fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
    let prefix = format!(".{}.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
