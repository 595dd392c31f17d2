//! Why a credential set could not be resolved ([`CredentialError`]): names the set, the source
//! and what was missing, never a value.

/// Why a credential set could not be resolved. Names the source and what was missing, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// An `env` set whose variable is missing (`detail` names it).
    #[error("credentials `{set}`: {detail}")]
    MissingEnv { set: String, detail: String },
    #[error("credentials `{0}` are not configured")]
    Unknown(String),
    #[error("credentials `{set}`: {source_name}: {detail}")]
    Source { set: String, source_name: &'static str, detail: String },
    #[error("credentials `{set}`: no source of the chain gave keys ({tried})")]
    ChainExhausted { set: String, tried: String },
    #[error("credentials `{set}` are not available: {detail}")]
    Unavailable { set: String, detail: String },
}
