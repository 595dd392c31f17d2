//! Sealing the secrets a fleet keeps in etcd: XChaCha20-Poly1305 under the `encryption_key_file`,
//! bound to the etcd key each value is stored under.
//!
//! A sealed value is a versioned envelope: the magic byte `0xA7` (never the first byte of UTF-8 or
//! JSON text, so a sealed value is told from a plain one), the version `0x01`, the key id (the first
//! 4 bytes of the SHA-256 of the key, so a value sealed with another key is a clear error), a
//! random 24-byte nonce, then the ciphertext and its 16-byte tag. The AEAD's associated data is the
//! header followed by the etcd key: a value copied under another key, or a header edited, does not
//! open.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::fsdir::Follow;
use crate::fsdir::read::{check_regular, open_flags, read_opened};
use crate::fsdir::walk::Trusted;

/// The first byte of every sealed value.
pub const MAGIC: u8 = 0xA7;
/// The envelope version this build writes and reads.
pub const VERSION: u8 = 0x01;
/// The bytes of a key.
pub const KEY_BYTES: usize = 32;
const KEY_ID_BYTES: usize = 4;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
const HEADER_BYTES: usize = 2 + KEY_ID_BYTES;
/// The most bytes a key file may hold (a key line is 45).
const KEY_FILE_MAX_BYTES: u64 = 1024;

/// Seals and opens values with one key. `Debug` shows only the key id; the key is wiped on drop
/// (the cipher zeroizes its copy, the only one kept).
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    key_id: [u8; KEY_ID_BYTES],
}

/// Why an `encryption_key_file` was refused. Names the file, never holds a byte of it.
#[derive(Debug, thiserror::Error)]
#[error("encryption_key_file {}: {problem}", path.display())]
pub struct KeyFileError {
    pub path: PathBuf,
    pub problem: KeyFileProblem,
}

/// What is wrong with an `encryption_key_file`.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileProblem {
    #[error("cannot be read: {0}")]
    Read(#[source] io::Error),
    #[error("is readable by group or others (mode {0:o}); chmod 600 it")]
    Readable(u32),
    #[error("{0}; chown or chmod it")]
    Untrusted(String),
    #[error("is not one line of standard base64 (make a key with: head -c 32 /dev/urandom | base64)")]
    NotBase64,
    #[error("holds {0} bytes of key, not 32 (make a key with: head -c 32 /dev/urandom | base64)")]
    WrongLength(usize),
}

/// Why a value did not open. Holds no byte of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("is not a sealed value (no envelope: written without encryption_key_file?)")]
    NotSealed,
    #[error("is a sealed value cut short")]
    Truncated,
    #[error("is sealed in envelope version {0}, this build reads version 1")]
    UnknownVersion(u8),
    #[error(
        "was sealed with another key (key id {sealed_with}, this node's encryption_key_file has key id {ours}): every node needs the same key"
    )]
    WrongKey { sealed_with: String, ours: String },
    #[error("does not open under its etcd key: altered, or copied from another key")]
    Forged,
}

/// Whether `value` starts like a sealed envelope.
pub fn is_sealed(value: &[u8]) -> bool {
    value.first() == Some(&MAGIC)
}

impl Sealer {
    /// The key in `path`: one line of standard base64 holding 32 bytes (a trailing newline is
    /// allowed). Refused when it is a symlink or not a regular file, when group or others may read
    /// it, or when a user other than root or ticketd's own owns it or may write it.
    pub fn load(path: &Path) -> Result<Sealer, KeyFileError> {
        let error = |problem| KeyFileError { path: path.to_path_buf(), problem };
        let text = read_private(path, KEY_FILE_MAX_BYTES).map_err(error)?;
        let line = text.strip_suffix(b"\n").unwrap_or(&text);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut key = Zeroizing::new(Vec::with_capacity(48));
        base64::engine::general_purpose::STANDARD
            .decode_vec(line, &mut key)
            .map_err(|_| error(KeyFileProblem::NotBase64))?;
        let key: &[u8; KEY_BYTES] =
            key.as_slice().try_into().map_err(|_| error(KeyFileProblem::WrongLength(key.len())))?;
        Ok(Sealer::from_key(key))
    }

    /// A sealer for `key` (tests and benchmarks; the daemon uses [`Sealer::load`]).
    pub fn from_key(key: &[u8; KEY_BYTES]) -> Sealer {
        let digest = Sha256::digest(key);
        let mut key_id = [0; KEY_ID_BYTES];
        key_id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        Sealer { cipher: XChaCha20Poly1305::new(key.into()), key_id }
    }

    /// The first 4 bytes of the SHA-256 of the key: names the key in errors and logs.
    pub fn key_id(&self) -> [u8; KEY_ID_BYTES] {
        self.key_id
    }

    /// `plaintext` sealed for the etcd key `aad`, under a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let header = self.header();
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &associated(&header, aad) })
            .expect("XChaCha20-Poly1305 seals any length a Vec can hold");
        let mut out = Vec::with_capacity(HEADER_BYTES + NONCE_BYTES + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    /// The plaintext of `sealed`, read from the etcd key `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if !is_sealed(sealed) {
            return Err(OpenError::NotSealed);
        }
        if sealed.len() < 2 {
            return Err(OpenError::Truncated);
        }
        if sealed[1] != VERSION {
            return Err(OpenError::UnknownVersion(sealed[1]));
        }
        if sealed.len() < HEADER_BYTES + NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::Truncated);
        }
        let (header, rest) = sealed.split_at(HEADER_BYTES);
        if header[2..] != self.key_id {
            return Err(OpenError::WrongKey { sealed_with: hex::encode(&header[2..]), ours: hex::encode(self.key_id) });
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &associated(header, aad) })
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Forged)
    }

    fn header(&self) -> [u8; HEADER_BYTES] {
        let mut header = [MAGIC, VERSION, 0, 0, 0, 0];
        header[2..].copy_from_slice(&self.key_id);
        header
    }
}

/// The AEAD's associated data: the envelope header, then the etcd key.
/// The bytes of a file that holds a secret (a key), read with the checks every such file gets:
/// not a symlink (never followed), a regular file, owned by root or ticketd's user and writable by
/// no other, readable by neither group nor others, at most `max` bytes. The error never holds a
/// byte of the file.
pub fn read_private(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, KeyFileProblem> {
    let fd = open_flags(rustix::fs::CWD, path.as_os_str(), Follow::NoSymlinks).map_err(KeyFileProblem::Read)?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| KeyFileProblem::Read(e.into()))?;
    check_regular(&stat).map_err(KeyFileProblem::Read)?;
    if let Some(why) = Trusted::of_process().file(&stat) {
        return Err(KeyFileProblem::Untrusted(why));
    }
    if stat.st_mode & 0o077 != 0 {
        return Err(KeyFileProblem::Readable(stat.st_mode & 0o7777));
    }
    Ok(Zeroizing::new(read_opened(fd, max).map_err(KeyFileProblem::Read)?))
}

fn associated(header: &[u8], key: &[u8]) -> Vec<u8> {
    [header, key].concat()
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").field("key_id", &hex::encode(self.key_id)).finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
