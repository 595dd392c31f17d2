//! The config file read a window at a time, never held whole: cut as it is read, then each piece
//! read back by its byte ranges when its parse reaches it.
//!
//! A file of 100,000 tickets is 14 MiB of text. Held whole through its parse, beside a daemon
//! that holds its tokens, it was most of what a reload added to the daemon's peak. Read here, the
//! parse holds a window of [`WINDOW`] bytes and one piece at a time.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::split::{Cut, Piece, Splitter, whole_lines};
use crate::fsdir::{Follow, MAX_FILE_BYTES, open_regular};

/// How much of the file is read at once (a line longer than this is read in a larger window).
pub(crate) const WINDOW: usize = 64 * 1024;

/// A config file that is read by pieces.
pub(crate) struct FileText {
    file: File,
    /// The file as it was when opened: one that changed since is not read by pieces (the pieces'
    /// byte ranges are those of the text that was cut).
    opened: Version,
    /// The bytes read last, from byte `at` of the file: the tickets' pieces are reached in file
    /// order, so most are read from here.
    buf: Vec<u8>,
    at: usize,
}

/// What says that a file's content is the one that was read.
#[derive(Debug, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(file: &File) -> io::Result<Version> {
        let m = file.metadata()?;
        Ok(Version {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

fn not_utf8() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "is not UTF-8 text")
}

fn changed() -> io::Error {
    io::Error::other("changed while it was read")
}

impl FileText {
    /// Open the config file at `path` as [`read`](super::load::read) does (a regular file of at
    /// most [`MAX_FILE_BYTES`], symlinks followed) and cut it, a window at a time.
    pub(crate) fn open(path: &Path) -> io::Result<(FileText, Cut)> {
        let (file, _) = open_regular(path, Follow::Symlinks, MAX_FILE_BYTES)?;
        let opened = Version::of(&file)?;
        let (cut, len) = cut((&file).take(MAX_FILE_BYTES + 1), WINDOW)?;
        if len as u64 != opened.size {
            return Err(changed());
        }
        Ok((FileText { file, opened, buf: Vec::new(), at: 0 }, cut))
    }

    /// The text of `piece`.
    pub(crate) fn piece(&mut self, piece: &Piece) -> io::Result<String> {
        let mut text = Vec::new();
        for chunk in piece.chunks() {
            self.read_range(chunk.clone(), &mut text)?;
        }
        String::from_utf8(text).map_err(|_| not_utf8())
    }

    /// Whether the file still is the one that was cut (so its pieces' text is what was read).
    pub(crate) fn unchanged(&self) -> bool {
        Version::of(&self.file).is_ok_and(|now| now == self.opened)
    }

    fn read_range(&mut self, range: Range<usize>, into: &mut Vec<u8>) -> io::Result<()> {
        let mut at = range.start;
        while at < range.end {
            if at < self.at || at >= self.at + self.buf.len() {
                self.buf.resize(WINDOW, 0);
                let read = loop {
                    match self.file.read_at(&mut self.buf, at as u64) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        other => break other,
                    }
                };
                let read = read.inspect_err(|_| self.buf.clear())?;
                self.buf.truncate(read);
                self.at = at;
                if read == 0 {
                    return Err(changed());
                }
            }
            let end = (range.end - self.at).min(self.buf.len());
            into.extend_from_slice(&self.buf[at - self.at..end]);
            at = self.at + end;
        }
        Ok(())
    }
}

/// The cut of the text `reader` gives, read `window` bytes at a time, and its length.
fn cut(mut reader: impl Read, window: usize) -> io::Result<(Cut, usize)> {
    let mut splitter = Splitter::default();
    let mut buf = Vec::with_capacity(window);
    let mut base = 0;
    loop {
        let eof = fill(&mut reader, &mut buf)?;
        let text = match std::str::from_utf8(&buf) {
            Ok(text) => text,
            // A character cut at the window's end: whole in the next one.
            Err(e) if !eof && e.error_len().is_none() => {
                std::str::from_utf8(&buf[..e.valid_up_to()]).expect("valid up to there")
            }
            Err(_) => return Err(not_utf8()),
        };
        if eof {
            splitter.window(text, base);
            let len = base + text.len();
            return Ok((splitter.finish(len), len));
        }
        match whole_lines(text) {
            // A line longer than the window: a larger one.
            0 => buf.reserve(buf.capacity()),
            used => {
                splitter.window(&text[..used], base);
                buf.drain(..used);
                base += used;
            }
        }
    }
}

/// Read into `buf` until it is full; whether the text ended.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<bool> {
    while buf.len() < buf.capacity() {
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        let read = reader.read(&mut buf[start..]);
        buf.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::split::split;

    /// The cut of `text` read `window` bytes at a time.
    fn windowed(text: &str, window: usize) -> Cut {
        let (cut, len) = cut(text.as_bytes(), window).unwrap();
        assert_eq!(len, text.len());
        cut
    }

    #[test]
    fn a_text_cut_a_window_at_a_time_is_cut_as_the_whole_text() {
        // Windows end inside multi-line strings and arrays, inside a `\r\n`, inside a multi-byte
        // character and inside headers: every window size gives the whole text's cut.
        let text = "state_dir = \"/s\"\r\n[credentials.a]\nvendor = \"alibaba\"\n\
                    [[tickets]]\nname = \"é-one\"\n[tickets.on_change]\nexec = [\n\"/bin/true\",\n]\n\
                    description = \"\"\"\n[[tickets]]\n\"\"\"\n\
                    [credentials.b]\nvendor = \"tencent\"\n[tickets.consumers]\nrequired = false\n\
                    [[ tickets ]] # second\nname = \"two\"\n[tickets]\n[[tickets]]\nname = \"three\"";
        let whole = split(text);
        assert!(whole.tickets() == 3 && whole.clash.is_some() && whole.ticket(0).chunks().len() == 2);
        for window in 1..=text.len() + 1 {
            assert_eq!(windowed(text, window), whole, "window of {window} bytes");
        }
    }

    #[test]
    fn a_file_is_read_back_by_pieces_and_a_change_since_it_was_cut_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let mut text = String::from("state_dir = \"/s\"\n");
        for i in 0..10_000 {
            text.push_str(&format!("[[tickets]]\nname = \"t{i}\"\n"));
        }
        text.push_str("[tickets.on_change]\nexec = []\n[credentials.a]\nvendor = \"alibaba\"\n");
        std::fs::write(&path, &text).unwrap();
        assert!(text.len() > 2 * WINDOW, "several windows");
        let (mut file, cut) = FileText::open(&path).unwrap();
        assert_eq!(cut, split(&text));
        assert_eq!(file.piece(&cut.rest).unwrap(), cut.rest.text(&text));
        for i in [0, 1, 9999, 5000] {
            assert_eq!(file.piece(&cut.ticket(i)).unwrap(), cut.ticket(i).text(&text), "ticket {i}");
        }
        assert!(file.unchanged());
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().set_len(10).unwrap();
        assert!(!file.unchanged(), "a file cut shorter");
        assert!(file.piece(&cut.ticket(9999)).is_err(), "a piece past its end");
    }

    #[test]
    fn a_file_that_is_not_utf8_or_not_regular_is_refused_as_the_whole_read_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        // A byte that is no UTF-8 a few windows into the file.
        let mut bytes = "x = 1\n".repeat(WINDOW).into_bytes();
        bytes.extend_from_slice(b"y = \"\xc3\xff\"\n");
        std::fs::write(&path, &bytes).unwrap();
        for e in [
            FileText::open(&path).err().unwrap(),
            crate::fsdir::read_regular_string(&path, Follow::Symlinks, MAX_FILE_BYTES).unwrap_err(),
        ] {
            assert_eq!(e.to_string(), "is not UTF-8 text");
        }
        let e = FileText::open(dir.path()).err().unwrap();
        assert_eq!(e.to_string(), "is not a regular file (it is a directory)");
    }
}
