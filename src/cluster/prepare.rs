//! What a node reads before it connects to its fleet ([`preflight`]): the etcd password from
//! `password_env`, the `encryption_key_file`, and the TLS files, each checked as `run` needs it, so
//! `check-config` refuses exactly what `run` would (review F1).

use std::path::Path;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::cluster::seal::{KeyFileError, KeyFileProblem, Sealer, read_private};
use crate::config::ClusterSpec;
use crate::credentials::Environment;
use crate::secret::Secret;

/// The most bytes a TLS file (a CA bundle, a certificate, a private key) may hold.
const TLS_FILE_MAX_BYTES: u64 = 1 << 20;

/// Why a node cannot connect to its fleet with this config. Names the key and file, never a
/// byte of a secret.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("[cluster] password_env: environment variable {0} is not set")]
    NoPassword(String),
    #[error("[cluster] {0}")]
    KeyFile(#[from] KeyFileError),
    #[error("[cluster] {key} {}: cannot be read: {source}", path.display())]
    File { key: &'static str, path: std::path::PathBuf, source: std::io::Error },
    #[error("[cluster] key_file {}: {problem}", path.display())]
    PrivateKey { path: std::path::PathBuf, problem: KeyFileProblem },
}

/// The secrets and files a connection needs, read once at start. `Debug` shows none of them.
pub struct Prepared {
    /// etcd's password (`password_env`'s value), when `[cluster]` has `username`.
    pub password: Option<Secret>,
    pub sealer: Option<Arc<Sealer>>,
    /// `ca_file`'s PEM; `None` with https: the system's trusted roots.
    pub ca: Option<Vec<u8>>,
    /// `cert_file`'s PEM and `key_file`'s PEM.
    pub identity: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl Prepared {
    /// No password, no TLS files: a plain-http etcd without auth (tests).
    pub fn plain(sealer: Option<Arc<Sealer>>) -> Prepared {
        Prepared { password: None, sealer, ca: None, identity: None }
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("sealer", &self.sealer)
            .field("ca", &self.ca.as_ref().map(|_| "<pem>"))
            .field("identity", &self.identity.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// Read and check everything `spec` names: the password from `env`, the sealing key, the TLS
/// files (the private key with the checks of every secret file: no symlink, not readable by
/// group or others, a trusted owner).
pub fn preflight(spec: &ClusterSpec, env: &dyn Environment) -> Result<Prepared, PrepareError> {
    let password = match &spec.auth {
        None => None,
        Some(auth) => {
            let value = Zeroizing::new(env.var(&auth.password_env).unwrap_or_default());
            if value.is_empty() {
                return Err(PrepareError::NoPassword(auth.password_env.clone()));
            }
            Some(Secret::new(value.as_str()))
        }
    };
    let sealer = match &spec.encryption_key_file {
        None => None,
        Some(path) => Some(Arc::new(Sealer::load(path)?)),
    };
    let public = |key: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| PrepareError::File { key, path: path.to_path_buf(), source })
    };
    let ca = spec.ca_file.as_deref().map(|path| public("ca_file", path)).transpose()?;
    let identity = match &spec.client_cert {
        None => None,
        Some(cert) => {
            let pem = public("cert_file", &cert.cert_file)?;
            let key = read_private(&cert.key_file, TLS_FILE_MAX_BYTES)
                .map_err(|problem| PrepareError::PrivateKey { path: cert.key_file.clone(), problem })?;
            Some((pem, key))
        }
    };
    Ok(Prepared { password, sealer, ca, identity })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::{ClientCert, ClusterAuth};

    fn spec() -> ClusterSpec {
        ClusterSpec {
            endpoints: vec!["https://127.0.0.1:2379".into()],
            prefix: "/t".into(),
            node: "a".into(),
            lease_ttl: std::time::Duration::from_secs(10),
            encryption_key_file: None,
            ca_file: None,
            client_cert: None,
            auth: None,
        }
    }

    /// Review F5: the TLS client key gets the secret-file checks (it was read with std::fs::read:
    /// symlinks followed, any mode).
    #[test]
    fn issue_19_the_tls_client_key_is_read_like_every_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("client.pem");
        let key = dir.path().join("client.key");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nSECRET-KEY-BYTES\n").unwrap();
        let mut spec = spec();
        spec.client_cert = Some(ClientCert { cert_file: cert.clone(), key_file: key.clone() });
        let env = HashMap::new();

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let said = preflight(&spec, &env).unwrap_err().to_string();
        assert!(said.contains("key_file") && said.contains("group or others"), "{said}");
        assert!(!said.contains("SECRET-KEY-BYTES"), "{said}");

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        spec.client_cert = Some(ClientCert { cert_file: cert.clone(), key_file: link });
        let said = preflight(&spec, &env).unwrap_err().to_string();
        assert!(said.contains("link.key"), "{said}");

        spec.client_cert = Some(ClientCert { cert_file: cert, key_file: key });
        let prepared = preflight(&spec, &env).unwrap();
        let (_, read) = prepared.identity.as_ref().unwrap();
        assert!(read.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{prepared:?}").contains("SECRET"), "{prepared:?}");
    }

    #[test]
    fn issue_19_the_password_comes_from_password_env_and_is_never_shown() {
        let mut spec = spec();
        spec.auth = Some(ClusterAuth { username: "ticketd".into(), password_env: "ETCD_PW".into() });
        let said = preflight(&spec, &HashMap::new()).unwrap_err().to_string();
        assert_eq!(said, "[cluster] password_env: environment variable ETCD_PW is not set");
        let env = HashMap::from([("ETCD_PW".to_string(), "pw-SECRET-1".to_string())]);
        let prepared = preflight(&spec, &env).unwrap();
        assert_eq!(prepared.password.as_ref().map(Secret::expose), Some("pw-SECRET-1"));
        assert!(!format!("{prepared:?}").contains("pw-SECRET-1"));
    }

    #[test]
    fn issue_19_a_bad_encryption_key_file_is_refused_before_any_connection() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("cluster.key");
        std::fs::write(&key, "not base64!\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut spec = spec();
        spec.encryption_key_file = Some(key);
        let said = preflight(&spec, &HashMap::new()).unwrap_err().to_string();
        assert!(said.starts_with("[cluster] encryption_key_file ") && said.contains("base64"), "{said}");
    }
}
