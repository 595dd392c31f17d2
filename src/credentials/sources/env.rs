//! The `env` source: keys from environment variables, each value checked as key text.

use zeroize::Zeroizing;

use super::answer::SourceError;
use crate::credentials::env::Environment;
use crate::credentials::keys::Credentials;
use crate::secret::Secret;

/// Keys from environment variables; `token_var` is optional.
pub(crate) fn env_keys(
    env: &dyn Environment,
    id_var: &str,
    secret_var: &str,
    token_var: &str,
) -> Result<Credentials, SourceError> {
    // The values are wiped once copied into the secrets.
    let get = |var: &str| -> Result<Option<Zeroizing<String>>, SourceError> {
        let Some(value) = env.var(var).map(Zeroizing::new).filter(|v| !v.is_empty()) else { return Ok(None) };
        match crate::config::check::key_text_problem(&value) {
            Some(problem) => Err(SourceError::Failed(format!("environment variable {var} {problem}"))),
            None => Ok(Some(value)),
        }
    };
    let id = get(id_var)?.ok_or_else(|| SourceError::Absent(format!("environment variable {id_var} is not set")))?;
    let secret =
        get(secret_var)?.ok_or_else(|| SourceError::Absent(format!("environment variable {secret_var} is not set")))?;
    let token = get(token_var)?;
    Ok(Credentials {
        access_key_id: Secret::new(&*id),
        access_key_secret: Secret::new(&*secret),
        security_token: token.as_deref().map(Secret::new),
        expires_at: None,
    })
}
