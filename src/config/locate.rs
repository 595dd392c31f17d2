//! Where a key sits in the config file: key paths with their line numbers.
//!
//! Validation speaks in key paths (`tickets[0].sinks[1].mode`); the [`Locator`] indexes the keys of
//! the file's pieces by path when a problem needs a line, so each problem can name its line.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use toml::de::{DeTable, DeValue};

use super::split::{Cut, Piece};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root to a key, e.g. `tickets[0].token_lifetime`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub fn key(&self, key: &str) -> Self {
        let mut next = self.0.clone();
        next.push(Segment::Key(key.to_string()));
        KeyPath(next)
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.0.clone();
        next.push(Segment::Index(index));
        KeyPath(next)
    }

    /// The steps from the root, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path without its last segment.
    pub fn parent(&self) -> KeyPath {
        let mut up = self.0.clone();
        up.pop();
        KeyPath(up)
    }

    /// This path with its first `depth` segments replaced by `base`.
    pub fn rebased(&self, depth: usize, base: &KeyPath) -> KeyPath {
        KeyPath(base.0.iter().chain(self.0.iter().skip(depth)).cloned().collect())
    }

    /// Build a path from serde_ignored's view of where an unknown key was.
    pub fn from_ignored(path: &serde_ignored::Path<'_>) -> Self {
        use serde_ignored::Path;
        match path {
            Path::Root => KeyPath::root(),
            Path::Seq { parent, index } => KeyPath::from_ignored(parent).index(*index),
            Path::Map { parent, key } => KeyPath::from_ignored(parent).key(key),
            Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
                KeyPath::from_ignored(parent)
            }
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
thread_local! {
    /// Locators built on this thread: indexing costs a parse of the file's pieces, so a valid file
    /// must be checked without one.
    pub(crate) static BUILT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Line and column (both 1-based) of the keys and array elements of a config file, indexed a
/// piece of its [`Cut`] at a time: the top-level keys and tables once, and a ticket only when one
/// of its keys is asked for (the last one asked is kept), so no tree of the whole file is built.
#[derive(Debug)]
pub(crate) struct Locator {
    /// The last position found, (offset, line, start of its line): problems come mostly in file
    /// order, so the next one is counted on from there (an index of every line's start would
    /// cost 8 bytes a line).
    last: std::cell::Cell<(usize, usize, usize)>,
    rest: Keys,
    ticket: RefCell<Option<(usize, Keys)>>,
}

/// The file offset of every key and array element of one piece, by path.
#[derive(Debug, Default)]
struct Keys(HashMap<KeyPath, usize>);

impl Locator {
    /// Index the top-level keys and tables of `text`, cut as `cut`. A piece with syntax errors is
    /// indexed as far as the parser recovers (the errors are reported on their own), so the
    /// other problems keep their lines.
    pub(crate) fn new(text: &str, cut: &Cut) -> Self {
        #[cfg(test)]
        BUILT.with(|n| n.set(n.get() + 1));
        Locator { last: std::cell::Cell::new((0, 1, 0)), rest: Keys::of(text, &cut.rest), ticket: RefCell::new(None) }
    }

    /// The line and column of `path`, or of its nearest ancestor that is in the file.
    pub(crate) fn position(&self, text: &str, cut: &Cut, path: &KeyPath) -> Option<(usize, usize)> {
        let offset = match path.segments() {
            [Segment::Key(tickets), Segment::Index(i), ..] if tickets == "tickets" && *i < cut.tickets() => {
                let mut cached = self.ticket.borrow_mut();
                if cached.as_ref().is_none_or(|(n, _)| n != i) {
                    *cached = Some((*i, Keys::of(text, &cut.ticket(*i))));
                }
                // The piece's own paths say `tickets[0]`.
                let local = path.rebased(2, &KeyPath::root().key("tickets").index(0));
                cached.as_ref().and_then(|(_, keys)| keys.find(&local))
            }
            _ => self.rest.find(path),
        }?;
        Some(self.line_and_column(text, offset))
    }

    fn line_and_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let (mut from, mut line, mut line_start) = self.last.get();
        if offset < from {
            (from, line, line_start) = (0, 1, 0);
        }
        let offset = offset.min(text.len());
        for (i, _) in text.as_bytes()[from..offset].iter().enumerate().filter(|(_, b)| **b == b'\n') {
            line += 1;
            line_start = from + i + 1;
        }
        self.last.set((offset, line, line_start));
        (line, offset - line_start + 1)
    }
}

impl Keys {
    fn of(text: &str, piece: &Piece) -> Keys {
        let piece_text = piece.text(text);
        let (doc, _errors) = DeTable::parse_recoverable(&piece_text);
        let mut keys = Keys::default();
        keys.walk_table(doc.get_ref(), &KeyPath::root(), piece);
        keys
    }

    fn find(&self, path: &KeyPath) -> Option<usize> {
        let mut path = path.clone();
        loop {
            if let Some(p) = self.0.get(&path) {
                return Some(*p);
            }
            if path.is_root() {
                return None;
            }
            path = path.parent();
        }
    }

    fn walk_table(&mut self, table: &DeTable<'_>, at: &KeyPath, piece: &Piece) {
        for (key, value) in table.iter() {
            let path = at.key(key.get_ref());
            self.0.insert(path.clone(), piece.file_offset(key.span().start));
            self.walk_value(value.get_ref(), value.span().start, &path, piece);
        }
    }

    fn walk_value(&mut self, value: &DeValue<'_>, start: usize, at: &KeyPath, piece: &Piece) {
        match value {
            DeValue::Table(table) => self.walk_table(table, at, piece),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let path = at.index(i);
                    let offset = item.span().start.max(start);
                    self.0.insert(path.clone(), piece.file_offset(offset));
                    self.walk_value(item.get_ref(), offset, &path, piece);
                }
            }
            _ => {}
        }
    }
}

/// Line and column (both 1-based) of byte `offset` of `text`, counted without an index.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    (before.iter().filter(|b| **b == b'\n').count() + 1, before.len() - line_start + 1)
}

/// Byte offset to (line, column).
#[derive(Debug)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|s| *s <= offset);
        let col = offset - self.starts[line - 1] + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_tables_and_arrays_of_tables() {
        let text = "state_dir = \"/x\"\n\n[credentials.prod]\nvendor = \"alibaba\"\n\n[[tickets]]\nname = \"a\"\n\n[[tickets]]\nname = \"b\"\n[[tickets.sinks]]\npath = \"/p\"\n";
        let cut = crate::config::split::split(text);
        let loc = Locator::new(text, &cut);
        let position = |path: &KeyPath| loc.position(text, &cut, path);
        assert_eq!(position(&KeyPath::root().key("state_dir")), Some((1, 1)));
        assert_eq!(position(&KeyPath::root().key("credentials").key("prod").key("vendor")), Some((4, 1)));
        let t1 = KeyPath::root().key("tickets").index(1);
        assert_eq!(position(&t1.key("name")), Some((10, 1)));
        assert_eq!(position(&t1.key("sinks").index(0).key("path")), Some((12, 1)));
        // A key that is missing falls back to its table.
        assert_eq!(position(&t1.key("kind")).map(|p| p.0), Some(9));
        assert_eq!(position(&KeyPath::root().key("tickets").index(0).key("name")), Some((7, 1)));
        assert_eq!(t1.key("sinks").index(0).key("path").to_string(), "tickets[1].sinks[0].path");
    }
}
