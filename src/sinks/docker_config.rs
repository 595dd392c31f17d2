//! Sink `type = "docker-config"`: keep `auths["<registry>"]` of a docker `config.json` current.
//!
//! The file is read, the one entry replaced, and the whole written back atomically: every other
//! key and entry (other registries, `credHelpers`, `proxies`, unknown keys) is kept. A file that is
//! not a JSON object is left alone and reported, never overwritten.

use std::ffi::OsStr;
use std::io;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use zeroize::{Zeroize, Zeroizing};

use crate::config::DockerConfigSink;
use crate::fsdir::{Dir, MAX_FILE_BYTES};
use crate::token::Current;

/// `config` with `auths[registry] = {"auth": base64(username:token)}`; `None` means no file yet.
/// The result, and every string parsed from `config` (other registries' secrets too), are zeroed
/// once used: see [`super::render::exact`].
pub(crate) fn merge(
    config: Option<&[u8]>,
    registry: &str,
    username: &str,
    token: &str,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    let mut root = match config {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => serde_json::Value::Object(serde_json::Map::new()),
        Some(bytes) => serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a docker config (not JSON: {e}); left unchanged")))?,
    };
    let merged = insert(&mut root, registry, username, token).and_then(|()| {
        super::render::exact(|out| {
            serde_json::to_writer_pretty(&mut *out, &root).map_err(io::Error::other)?;
            out.write_all(b"\n")
        })
    });
    wipe(&mut root);
    merged
}

/// Set `auths[registry]` of `root`, wiping the entry it replaces.
fn insert(root: &mut serde_json::Value, registry: &str, username: &str, token: &str) -> io::Result<()> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let object = root.as_object_mut().ok_or_else(|| invalid("not a docker config (not a JSON object)"))?;
    let auths = object.entry("auths").or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let auths = auths.as_object_mut().ok_or_else(|| invalid("`auths` is not a JSON object; left unchanged"))?;
    let mut pair = Zeroizing::new(String::with_capacity(username.len() + 1 + token.len()));
    pair.push_str(username);
    pair.push(':');
    pair.push_str(token);
    let mut entry = serde_json::Map::new();
    entry.insert("auth".into(), serde_json::Value::String(STANDARD.encode(pair.as_bytes())));
    if let Some(mut old) = auths.insert(registry.to_string(), serde_json::Value::Object(entry)) {
        wipe(&mut old);
    }
    Ok(())
}

/// Zero every string in `value`: parsed `auth` entries are secrets.
fn wipe(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// Merge `current` into the docker config `name` in `dir` (the held directory of `sink.path`),
/// creating it when missing. The existing file is read only when it is a regular file, never
/// through a symlink (which could expose any file to the sink's readers).
pub(crate) fn publish(dir: &Dir, name: &OsStr, sink: &DockerConfigSink, current: &Current) -> io::Result<()> {
    let existing = dir.read_existing(name, MAX_FILE_BYTES)?.map(Zeroizing::new);
    let username = current.token.username.as_deref().unwrap_or("");
    let bytes = merge(existing.as_deref().map(Vec::as_slice), &sink.registry, username, current.token.value.expose())?;
    dir.write_atomically(name, &bytes, sink.mode)
}

/// The `(username, secret)` stored for `registry` in the docker config at `path`, if any (a
/// regular file, not followed through a symlink).
#[cfg(test)]
pub(crate) fn read_auth(path: &std::path::Path, registry: &str) -> Option<(String, String)> {
    let bytes = crate::fsdir::read::read_regular(path, crate::fsdir::Follow::NoSymlinks, MAX_FILE_BYTES).ok()?;
    let root: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let auth = root.get("auths")?.get(registry)?.get("auth")?.as_str()?;
    let decoded = String::from_utf8(STANDARD.decode(auth).ok()?).ok()?;
    let (user, secret) = decoded.split_once(':')?;
    Some((user.to_string(), secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_every_other_key_and_entry() {
        let existing = br#"{
  "auths": {"docker.io": {"auth": "b2xkOnNlY3JldA=="}, "myreg.tencentcloudcr.com": {"auth": "c3RhbGU=", "email": "x"}},
  "credHelpers": {"gcr.io": "gcloud"},
  "psFormat": "table {{.ID}}",
  "unknownKey": {"nested": [1, 2, 3]}
}"#;
        let out = merge(Some(existing), "myreg.tencentcloudcr.com", "100012345678", "eyJtok").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["auths"]["docker.io"]["auth"], "b2xkOnNlY3JldA==");
        assert_eq!(v["credHelpers"]["gcr.io"], "gcloud");
        assert_eq!(v["psFormat"], "table {{.ID}}");
        assert_eq!(v["unknownKey"]["nested"], serde_json::json!([1, 2, 3]));
        assert_eq!(
            v["auths"]["myreg.tencentcloudcr.com"],
            serde_json::json!({"auth": STANDARD.encode("100012345678:eyJtok")})
        );
    }

    #[test]
    fn a_missing_or_empty_file_is_created_and_garbage_is_refused() {
        let out = merge(None, "r.example", "u", "t").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!({"auths": {"r.example": {"auth": "dTp0"}}}));
        assert!(merge(Some(b"  \n"), "r.example", "u", "t").is_ok());
        assert!(merge(Some(b"not json"), "r", "u", "t").is_err());
        assert!(merge(Some(b"[1]"), "r", "u", "t").is_err());
        assert!(merge(Some(br#"{"auths": 5}"#), "r", "u", "t").is_err());
    }

    #[test]
    fn publish_writes_0600_and_reads_back() {
        use crate::clock::from_unix_seconds;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, br#"{"auths":{"other":{"auth":"eDp5"}},"x":1}"#).unwrap();
        let current = crate::testing::current(
            "tok",
            Some("user"),
            from_unix_seconds(1_700_000_000),
            std::time::Duration::ZERO,
            1,
        );
        let sink = DockerConfigSink { path: path.clone(), registry: "reg.example".into(), mode: 0o600 };
        let (dir, name) = crate::sinks::sink_dir(&path).unwrap();
        publish(&dir, &name, &sink, &current).unwrap();
        assert_eq!(read_auth(&path, "reg.example"), Some(("user".into(), "tok".into())));
        assert_eq!(read_auth(&path, "other"), Some(("x".into(), "y".into())));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn issue_16_an_existing_config_json_is_never_read_through_a_symlink() {
        use crate::clock::from_unix_seconds;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("root-only.json");
        std::fs::write(&secret, br#"{"auths":{"internal":{"auth":"cm9vdDpzZWNyZXQ="}}}"#).unwrap();
        let sinks = dir.path().join("sinks");
        std::fs::create_dir(&sinks).unwrap();
        let path = sinks.join("config.json");
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        let current =
            crate::testing::current("tok", None, from_unix_seconds(1_700_000_000), std::time::Duration::ZERO, 1);
        let sink = DockerConfigSink { path: path.clone(), registry: "reg.example".into(), mode: 0o644 };
        let (dir, name) = crate::sinks::sink_dir(&path).unwrap();
        let err = publish(&dir, &name, &sink, &current).unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink(), "the sink was not written");
        assert_eq!(read_auth(&path, "internal"), None, "nor is it read through the symlink");
    }
}
