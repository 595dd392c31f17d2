//! The socket keys: `socket`, `socket_mode`, `socket_group`.

use crate::config::check::Checker;
use crate::config::defaults::DEFAULT_SOCKET_MODE;
use crate::config::locate::KeyPath;
use crate::config::raw::RawConfig;
use crate::config::spec::{SocketGroup, SocketSpec};

pub(super) fn socket(c: &mut Checker<'_>, raw: &RawConfig) -> Option<SocketSpec> {
    let root = KeyPath::root();
    let Some(path) = &raw.socket else {
        for (key, set) in [("socket_mode", raw.socket_mode.is_some()), ("socket_group", raw.socket_group.is_some())] {
            if set {
                c.report(&root.key(key), "has no effect without `socket`");
            }
        }
        return None;
    };
    let path = c.path(path, &root.key("socket"));
    let mode = match &raw.socket_mode {
        None => DEFAULT_SOCKET_MODE,
        Some(text) => match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 && m & 0o600 == 0o600 => m,
            _ => {
                c.report(
                    &root.key("socket_mode"),
                    format!("`{text}` is not an octal mode the owner can read and write, e.g. \"0660\""),
                );
                DEFAULT_SOCKET_MODE
            }
        },
    };
    let group = match &raw.socket_group {
        None => None,
        Some(toml::Value::Integer(gid)) if (0..=i64::from(u32::MAX)).contains(gid) => {
            Some(SocketGroup::Id(*gid as u32))
        }
        // A name is looked up with the environment's checks (`credentials::environment`).
        Some(toml::Value::String(name)) => Some(match name.parse() {
            Ok(gid) => SocketGroup::Id(gid),
            Err(_) => SocketGroup::Name(name.clone()),
        }),
        Some(other) => {
            c.report(&root.key("socket_group"), format!("must be a group name or gid, not {other}"));
            None
        }
    };
    Some(SocketSpec { path: path?, mode, group })
}
