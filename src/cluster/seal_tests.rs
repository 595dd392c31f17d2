//! Tests of sealing: round trip, wrong key, tampering, a value moved to another key, key files.

use std::os::unix::fs::PermissionsExt;

use super::*;

const KEY: [u8; 32] = [7; 32];
const OTHER: [u8; 32] = [9; 32];
const ETCD_KEY: &[u8] = b"/ticketd/prod/holdings/embed";

fn key_file(dir: &Path, text: &[u8], mode: u32) -> PathBuf {
    let path = dir.join("cluster.key");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn issue_19_a_sealed_value_opens_under_its_key_and_hides_the_plaintext() {
    let sealer = Sealer::from_key(&KEY);
    let plain = b"{\"token\":\"TOKEN-SECRET-abc\",\"ticket\":\"TICKET-SECRET\"}";
    let sealed = sealer.seal(ETCD_KEY, plain);
    assert!(is_sealed(&sealed));
    assert_eq!(sealed.len(), 2 + 4 + 24 + plain.len() + 16);
    assert_eq!(&sealed[..2], &[MAGIC, VERSION]);
    assert_eq!(&sealed[2..6], &sealer.key_id());
    for needle in [&b"TOKEN-SECRET"[..], b"TICKET-SECRET"] {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle));
    }
    assert_eq!(sealer.open(ETCD_KEY, &sealed).unwrap().as_slice(), plain);
    // A fresh nonce each time: the same value never seals to the same bytes.
    assert_ne!(sealer.seal(ETCD_KEY, plain), sealed);
    assert_eq!(sealer.open(ETCD_KEY, &sealer.seal(ETCD_KEY, b"")).unwrap().as_slice(), b"");
}

#[test]
fn issue_19_a_value_sealed_with_another_key_is_a_clear_error() {
    let sealed = Sealer::from_key(&OTHER).seal(ETCD_KEY, b"secret");
    let ours = Sealer::from_key(&KEY);
    let e = ours.open(ETCD_KEY, &sealed).unwrap_err();
    let (theirs, mine) = (hex::encode(Sealer::from_key(&OTHER).key_id()), hex::encode(ours.key_id()));
    assert_eq!(e, OpenError::WrongKey { sealed_with: theirs.clone(), ours: mine.clone() });
    assert_eq!(
        e.to_string(),
        format!(
            "was sealed with another key (key id {theirs}, this node's encryption_key_file has key id {mine}): every node needs the same key"
        )
    );
}

#[test]
fn issue_19_every_altered_byte_is_refused() {
    let sealer = Sealer::from_key(&KEY);
    let sealed = sealer.seal(ETCD_KEY, b"the token");
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        let e = sealer.open(ETCD_KEY, &bad).unwrap_err();
        let expected = match i {
            0 => OpenError::NotSealed,
            1 => OpenError::UnknownVersion(VERSION ^ 1),
            2..6 => OpenError::WrongKey { sealed_with: hex::encode(&bad[2..6]), ours: hex::encode(sealer.key_id()) },
            _ => OpenError::Forged,
        };
        assert_eq!(e, expected, "byte {i}");
    }
    for len in [0, 1, 2, 6, 6 + 24, 6 + 24 + 15] {
        let e = sealer.open(ETCD_KEY, &sealed[..len.min(sealed.len())]).unwrap_err();
        assert!(matches!(e, OpenError::Truncated | OpenError::NotSealed), "{len}: {e}");
    }
    assert_eq!(sealer.open(ETCD_KEY, &sealed[..sealed.len() - 1]).unwrap_err(), OpenError::Forged);
    assert_eq!(sealer.open(ETCD_KEY, b"{\"plain\":1}").unwrap_err(), OpenError::NotSealed);
}

#[test]
fn issue_19_a_value_moved_to_another_etcd_key_does_not_open() {
    let sealer = Sealer::from_key(&KEY);
    let sealed = sealer.seal(b"/ticketd/prod/holdings/a", b"token of a");
    assert_eq!(sealer.open(b"/ticketd/prod/holdings/b", &sealed).unwrap_err(), OpenError::Forged);
    assert_eq!(sealer.open(b"/ticketd/prod/holdings/a", &sealed).unwrap().as_slice(), b"token of a");
}

#[test]
fn issue_19_debug_shows_the_key_id_only() {
    let sealer = Sealer::from_key(&KEY);
    let shown = format!("{sealer:?}");
    assert_eq!(shown, format!("Sealer {{ key_id: \"{}\", .. }}", hex::encode(sealer.key_id())));
}

#[test]
fn issue_19_a_good_key_file_loads_with_or_without_its_newline() {
    let dir = tempfile::tempdir().unwrap();
    for text in [format!("{}\n", b64(&KEY)), b64(&KEY), format!("{}\r\n", b64(&KEY))] {
        let path = key_file(dir.path(), text.as_bytes(), 0o600);
        let loaded = Sealer::load(&path).unwrap();
        assert_eq!(loaded.key_id(), Sealer::from_key(&KEY).key_id());
        let sealed = Sealer::from_key(&KEY).seal(ETCD_KEY, b"x");
        assert_eq!(loaded.open(ETCD_KEY, &sealed).unwrap().as_slice(), b"x");
    }
    // 0400 is as good as 0600.
    let path = key_file(dir.path(), b64(&KEY).as_bytes(), 0o400);
    assert!(Sealer::load(&path).is_ok());
}

#[test]
fn issue_19_bad_key_files_are_refused_naming_the_file_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let shown = dir.path().join("cluster.key").display().to_string();
    let cases: [(Vec<u8>, u32, String); 6] = [
        (b64(&[7; 31]).into_bytes(), 0o600, "holds 31 bytes of key, not 32".into()),
        (b64(&[7; 33]).into_bytes(), 0o600, "holds 33 bytes of key, not 32".into()),
        (b"not base64 at all!!".to_vec(), 0o600, "is not one line of standard base64".into()),
        (format!("{}\n{}\n", b64(&KEY), b64(&KEY)).into_bytes(), 0o600, "is not one line of standard base64".into()),
        (b64(&KEY).into_bytes(), 0o644, "is readable by group or others (mode 644); chmod 600 it".into()),
        (b64(&KEY).into_bytes(), 0o640, "is readable by group or others (mode 640); chmod 600 it".into()),
    ];
    for (text, mode, problem) in cases {
        let path = key_file(dir.path(), &text, mode);
        let e = Sealer::load(&path).unwrap_err().to_string();
        assert!(e.starts_with(&format!("encryption_key_file {shown}: {problem}")), "{e}");
        assert!(!e.contains(&b64(&KEY)) && !e.contains(&b64(&KEY)[..8]), "{e}");
    }
    // A symlink to a good key is refused (it could point anywhere), and so is a directory.
    let real = key_file(dir.path(), b64(&KEY).as_bytes(), 0o600);
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = Sealer::load(&link).unwrap_err().to_string();
    assert!(e.contains("link.key: cannot be read: is a symlink"), "{e}");
    let e = Sealer::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("cannot be read: is not a regular file (it is a directory)"), "{e}");
    let e = Sealer::load(&dir.path().join("missing.key")).unwrap_err().to_string();
    assert!(e.contains("missing.key: cannot be read: No such file"), "{e}");
}

#[test]
#[cfg_attr(not(have_root), ignore = "needs root (chown to another user)")]
fn issue_19_a_key_file_another_user_owns_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path(), b64(&KEY).as_bytes(), 0o600);
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let e = Sealer::load(&path).unwrap_err().to_string();
    assert!(e.ends_with("cluster.key: is owned by uid 65534; chown or chmod it"), "{e}");
}
