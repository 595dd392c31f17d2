//! Loading a config file on its own (no environment): its text read safely, validated, relative
//! paths resolved against its directory.

use std::path::{Path, PathBuf};

use super::checked::Checked;
use super::problem::{Problem, Problems};
use super::spec::Config;
use super::stream::FileText;
use super::validate;

/// Read and validate the config file at `path` on its own: the file's problems only. What the
/// file asks of the environment (variables, groups) is checked by
/// [`crate::credentials::environment`], which the daemon and `check-config` load through.
pub fn load(path: &Path) -> Result<Config, Problems> {
    if let Some(checked) = check_by_pieces(path) {
        return checked.finish([]);
    }
    let text = read(path)?;
    parse_read(&text, path)
}

/// The config file at `path` checked on its own as [`check_read`] checks its text, but read a
/// piece at a time, never held whole (a window and a piece at a time): `Some` when the file is
/// valid on its own and did not change while it was read. `None` otherwise: then read it whole
/// ([`read`], [`check_read`]), which reports its problems at their lines (and any change since).
pub(crate) fn check_by_pieces(path: &Path) -> Option<Checked<'static>> {
    let (mut file, cut) = FileText::open(path).ok()?;
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = config_dir(&source);
    let mut checked = validate::parse_by_pieces(cut, &path.display().to_string(), base, |p| file.piece(p));
    checked.set_source(source);
    (checked.config().is_some() && file.unchanged()).then_some(checked)
}

/// The text of the config file at `path`: a regular file (symlinks followed, as Kubernetes
/// ConfigMap volumes need) of at most `fsdir::MAX_FILE_BYTES`, opened non-blocking, so
/// that a FIFO or a device can neither hang the reader nor fill its memory.
pub fn read(path: &Path) -> Result<String, Problems> {
    use crate::fsdir::{Follow, MAX_FILE_BYTES, read_regular_string};
    read_regular_string(path, Follow::Symlinks, MAX_FILE_BYTES).map_err(|e| {
        Problems(vec![Problem {
            file: path.display().to_string(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read the config file: {e}"),
        }])
    })
}

/// Validate `text`, read from the config file at `path` by [`read`]. Relative paths in it are
/// resolved against the directory `path` names (made absolute against the current directory now,
/// its symlinks and `..` resolved, so neither a later `cd` nor a reload changes them);
/// [`Config::source`] is `path` made absolute, which a reload reads again.
pub fn parse_read(text: &str, path: &Path) -> Result<Config, Problems> {
    check_read(text, path).finish([])
}

/// [`parse_read`], keeping what the environment's checks need ([`Checked`]).
pub fn check_read<'t>(text: &'t str, path: &Path) -> Checked<'t> {
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = config_dir(&source);
    let mut checked = validate::parse(text, &path.display().to_string(), base);
    checked.set_source(source);
    checked
}

/// The directory relative paths of the config file at `path` (absolute) are resolved against.
pub fn config_dir(path: &Path) -> Option<PathBuf> {
    let dir = path.parent().filter(|dir| dir.is_absolute())?;
    Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// Validate config text that was not read from a file; `file` names it in messages. A relative
/// path in it is a problem (there is no file directory to resolve it against).
pub fn parse(text: &str, file: &str) -> Result<Config, Problems> {
    check(text, file).finish([])
}

/// [`parse`], keeping what the environment's checks need ([`Checked`]).
pub fn check<'t>(text: &'t str, file: &str) -> Checked<'t> {
    validate::parse(text, file, None)
}

/// A path key's value as ticketd uses it: absolute as written, else relative to `config_dir`, the
/// directory of the config file (leading `./` dropped). `None` for a relative path without one.
pub fn resolve_path(config_dir: Option<&Path>, value: &str) -> Option<PathBuf> {
    super::check::resolve_path(config_dir, value)
}
