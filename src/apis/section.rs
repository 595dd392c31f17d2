//! What config knows of an API's `[[tickets]]` keys before checking them: each API declares its
//! keys ([`Section`]), and a ticket's raw API keys are kept as [`RawKeys`] until its kind's
//! validator reads them.
//!
//! Pure data, below `config::raw`: the raw ticket reads the keys every registered API declares
//! (so an unknown key or a value of the wrong type is reported with its file:line as the file is
//! read), and `apis::sections` checks them with the config problem toolkit.

use crate::config::credential::Vendor;

/// The TOML shape of a key's value, as the file writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string.
    Text,
    /// A string holding a duration ("12h"): its messages say how to write one.
    Duration,
    /// A table of keys.
    Table,
}

/// One key of a `[[tickets]]` section that an API reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub shape: Shape,
}

impl Key {
    pub const fn text(name: &'static str) -> Key {
        Key { name, shape: Shape::Text }
    }

    pub const fn duration(name: &'static str) -> Key {
        Key { name, shape: Shape::Duration }
    }

    pub const fn table(name: &'static str) -> Key {
        Key { name, shape: Shape::Table }
    }
}

/// What config needs to know of an API's section before checking it, declared by its spec type
/// (`apis/<kind>/spec.rs`); its checks are `apis::sections::Validate` (`apis/<kind>/section.rs`).
pub trait Section {
    /// The ticket keys this API reads (besides name, kind, credentials, consumers and sinks), in
    /// the order their problems are reported. A key of another API set in its ticket is refused:
    /// "does not apply to kind = …".
    const KEYS: &'static [Key];
    /// Whose credentials sign this API's calls (`credentials = ...` must name such a set).
    const VENDOR: Vendor;
    /// Whether its tickets have a share URL, so a file sink may use `format = "url"` (SLS).
    const URL_FORMAT: bool = false;
    /// Whether its tokens come with a username, written by default as `<PREFIX>USERNAME` (TCR).
    const USERNAME: bool = false;
    /// Whether its tickets may have a `docker-config` sink, for the registry host its `registry`
    /// key names (TCR).
    const DOCKER_CONFIG: bool = false;
    /// Whether its tokens are minted from a ticket that the token's holder also gets (SLS): the
    /// `ticket` and `ticket_expires_at` fields of the json and template formats.
    const TICKET: bool = false;
}

/// A value the file gave to one API key, in its [`Shape`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawValue {
    Text(Option<String>),
    Table(Option<toml::Table>),
}

/// The API keys a `[[tickets]]` section sets, each read in the shape the APIs declare for it.
#[derive(Debug, Default)]
pub(crate) struct RawKeys(Vec<(&'static str, RawValue)>);

static NO_TEXT: Option<String> = None;
static NO_TABLE: Option<toml::Table> = None;

impl RawKeys {
    pub(crate) fn insert(&mut self, key: &'static str, value: RawValue) {
        self.0.push((key, value));
    }

    /// Whether the file sets `key`.
    pub(crate) fn is_set(&self, key: &str) -> bool {
        self.0.iter().any(|(k, v)| *k == key && !matches!(v, RawValue::Text(None) | RawValue::Table(None)))
    }

    /// A text (or duration) key's value, as the raw structs hold one (`None` when not set).
    pub(crate) fn text(&self, key: &str) -> &Option<String> {
        self.0
            .iter()
            .find_map(|(k, v)| match v {
                RawValue::Text(text) if *k == key => Some(text),
                _ => None,
            })
            .unwrap_or(&NO_TEXT)
    }

    /// A table key's value (`None` when not set).
    pub(crate) fn table(&self, key: &str) -> &Option<toml::Table> {
        self.0
            .iter()
            .find_map(|(k, v)| match v {
                RawValue::Table(table) if *k == key => Some(table),
                _ => None,
            })
            .unwrap_or(&NO_TABLE)
    }
}
