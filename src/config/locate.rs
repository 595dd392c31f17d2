//! Where a key sits in the config file: key paths and their line numbers.
//!
//! Validation speaks in key paths (`tickets[0].sinks[1].mode`); the [`Locator`] indexes every key of
//! the parsed document by path once, so each problem can name its line.

use std::collections::HashMap;
use std::fmt;

use toml::de::{DeTable, DeValue};

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
    /// Locators built on this thread: indexing a whole file is costly (a tree of every key: hundreds
    /// of MiB for 100,000 tickets), so a valid file must be checked without one.
    pub(crate) static BUILT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Line and column (both 1-based) of every key and array element in a document.
#[derive(Debug, Default, Clone)]
pub struct Locator {
    positions: HashMap<KeyPath, (usize, usize)>,
}

impl Locator {
    /// Index a document. A document with syntax errors is indexed as far as the parser recovers
    /// (the errors are reported on their own), so the other problems keep their lines.
    pub fn new(text: &str) -> Self {
        #[cfg(test)]
        BUILT.with(|n| n.set(n.get() + 1));
        let mut locator = Locator::default();
        let (doc, _errors) = DeTable::parse_recoverable(text);
        let lines = LineIndex::new(text);
        locator.walk_table(doc.get_ref(), &KeyPath::root(), &lines);
        locator
    }

    /// The line and column of `path`, or of its nearest ancestor that is in the file.
    pub fn position(&self, path: &KeyPath) -> Option<(usize, usize)> {
        let mut path = path.clone();
        loop {
            if let Some(p) = self.positions.get(&path) {
                return Some(*p);
            }
            if path.is_root() {
                return None;
            }
            path = path.parent();
        }
    }

    fn walk_table(&mut self, table: &DeTable<'_>, at: &KeyPath, lines: &LineIndex) {
        for (key, value) in table.iter() {
            let path = at.key(key.get_ref());
            self.positions.insert(path.clone(), lines.position(key.span().start));
            self.walk_value(value.get_ref(), value.span().start, &path, lines);
        }
    }

    fn walk_value(&mut self, value: &DeValue<'_>, start: usize, at: &KeyPath, lines: &LineIndex) {
        match value {
            DeValue::Table(table) => self.walk_table(table, at, lines),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let path = at.index(i);
                    let offset = item.span().start.max(start);
                    self.positions.insert(path.clone(), lines.position(offset));
                    self.walk_value(item.get_ref(), offset, &path, lines);
                }
            }
            _ => {}
        }
    }
}

/// Byte offset to (line, column).
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
        let loc = Locator::new(text);
        assert_eq!(loc.position(&KeyPath::root().key("state_dir")), Some((1, 1)));
        assert_eq!(loc.position(&KeyPath::root().key("credentials").key("prod").key("vendor")), Some((4, 1)));
        let t1 = KeyPath::root().key("tickets").index(1);
        assert_eq!(loc.position(&t1.key("name")), Some((10, 1)));
        assert_eq!(loc.position(&t1.key("sinks").index(0).key("path")), Some((12, 1)));
        // A key that is missing falls back to its table.
        assert_eq!(loc.position(&t1.key("kind")).map(|p| p.0), Some(9));
        assert_eq!(t1.key("sinks").index(0).key("path").to_string(), "tickets[1].sinks[0].path");
    }
}
