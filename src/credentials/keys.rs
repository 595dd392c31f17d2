//! Keys for one vendor account ([`Credentials`]): never printable, checked as key text, converted
//! to or from the config's [`StaticKeys`](crate::config::StaticKeys).

use std::fmt;
use std::time::SystemTime;

use crate::config::StaticKeys;
use crate::config::check::key_text_problem;
use crate::secret::Secret;

/// Keys for one vendor account. Not printable: `Debug` shows only whether a token is present.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub access_key_id: Secret,
    pub access_key_secret: Secret,
    /// An STS/session token: the keys are temporary.
    pub security_token: Option<Secret>,
    /// When temporary keys stop working, when known.
    pub expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Keys from a file or variables; a token makes them STS keys of unknown expiry.
    pub fn long_term(id: String, secret: String, token: Option<String>) -> Credentials {
        Credentials {
            access_key_id: Secret::new(id),
            access_key_secret: Secret::new(secret),
            security_token: token.filter(|t| !t.is_empty()).map(Secret::new),
            expires_at: None,
        }
    }

    /// The first of the id, secret and token (called `names` in the error) whose text is not a
    /// key's (see [`key_text_problem`]), and what is wrong with it.
    pub fn text_problem(&self, names: [&str; 3]) -> Option<String> {
        let parts = [Some(&self.access_key_id), Some(&self.access_key_secret), self.security_token.as_ref()];
        parts.into_iter().zip(names).find_map(|(part, name)| {
            part.and_then(|p| key_text_problem(p.expose())).map(|problem| format!("{name} {problem}"))
        })
    }

    pub(crate) fn usable_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl From<&StaticKeys> for Credentials {
    fn from(keys: &StaticKeys) -> Credentials {
        Credentials {
            access_key_id: keys.access_key_id.clone(),
            access_key_secret: keys.access_key_secret.clone(),
            security_token: keys.security_token.clone(),
            expires_at: keys.expires_at,
        }
    }
}

impl From<Credentials> for StaticKeys {
    /// Keys handed over in memory (`ticketd dev`, tests).
    fn from(c: Credentials) -> StaticKeys {
        StaticKeys {
            access_key_id: c.access_key_id,
            access_key_secret: c.access_key_secret,
            security_token: c.security_token,
            expires_at: c.expires_at,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("temporary", &self.security_token.is_some())
            .field("expires_at", &self.expires_at.map(crate::clock::rfc3339))
            .finish_non_exhaustive()
    }
}
