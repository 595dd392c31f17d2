//! Why a scheduled call failed ([`CallError`]) or a round of sink writes did ([`PublishError`]):
//! the API's own error, or what the scheduler itself saw (a timeout, a task that died, an answer
//! it cannot use). Each prints the text the log line, `last_error` and the events show.

use std::time::Duration;

use crate::apis::ProviderError;
use crate::credentials::CredentialError;
use crate::scheduler::timing::{self, RetryClass};
use crate::sinks::SinkError;

/// A new token or ticket that lives less than this is no use (the loop would refresh it several
/// times a second): the call counts as failed ([`Unfit::TooShort`]) and is retried with backoff.
/// Half the shortest lifetime a config may ask for.
pub const MIN_USEFUL_LIFE: Duration = Duration::from_secs(5);

/// A failed call of one ticket, as the scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The API answered with an error, or could not be reached, or sent what it should not.
    #[error(transparent)]
    Api(#[from] ProviderError),
    /// The ticket's credentials could not be had for the call.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// Abandoned: no answer came within `after` (see `apply::call_timeout`).
    #[error("API call: no answer from the endpoint within {}", humantime::format_duration(*.after))]
    Timeout { after: Duration },
    /// The call's task ended without an answer: a bug, reported so the ticket is retried rather
    /// than left waiting (never the panic's message, which may quote a secret).
    #[error("API call: the call ended without an answer ({how}); retrying")]
    TaskDied { how: TaskEnd },
    /// The API answered, but what it gave cannot be used.
    #[error("API call: unexpected response: {0}")]
    Unfit(Unfit),
}

/// How a call task ended without reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TaskEnd {
    #[error("its task panicked")]
    Panicked,
    #[error("its task was cancelled")]
    Cancelled,
}

/// The part of a holding an answer brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Part {
    #[error("ticket")]
    Ticket,
    #[error("token")]
    Token,
}

/// Why a ticket or token the API gave cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unfit {
    /// It had expired by the time it came (after capping by its ticket, keys and `exp` claim).
    #[error("the new {what} is already expired (is the host clock right?)")]
    Expired { what: Part },
    /// It lives only `life`, less than [`MIN_USEFUL_LIFE`].
    #[error(
        "the new {what} expires in {} (after capping by its ticket and keys); at least {} is needed to be of use",
        humantime::format_duration(Duration::from_millis(.life.as_millis() as u64)),
        humantime::format_duration(MIN_USEFUL_LIFE)
    )]
    TooShort { what: Part, life: Duration },
    /// A refresh brought a ticket.
    #[error("a ticket came back where a token was expected")]
    TicketForToken,
}

impl CallError {
    /// How the failed call is retried.
    pub fn retry_class(&self) -> RetryClass {
        match self {
            CallError::Api(e) => timing::retry_class(e),
            // Keys, permissions or a source that must change first: as slowly as a refusal.
            CallError::Credentials(_) => RetryClass::Permanent,
            CallError::Timeout { .. } | CallError::TaskDied { .. } | CallError::Unfit(_) => {
                RetryClass::Transient { after: None }
            }
        }
    }

    /// The cloud said the host's clock is wrong.
    pub fn is_clock_skew(&self) -> bool {
        matches!(self, CallError::Api(e) if e.is_clock_skew())
    }

    /// The id of a credential the API created and ticketd cannot use (revoked at once).
    pub fn unusable_token_id(&self) -> Option<&str> {
        match self {
            CallError::Api(ProviderError::Unusable { token_id, .. }) => Some(token_id),
            _ => None,
        }
    }
}

/// Why the sinks of a ticket do not all hold its token after a round of writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// These sinks could not be written (their previous files are intact; the others were written).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Sinks(Vec<SinkError>),
    /// The writer's task ended without saying what it wrote.
    #[error("{}", WriterDied)]
    WriterDied,
}

/// A sink writer's task ended (it panicked or was cancelled) before it reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sink writer ended without a result (it panicked or was cancelled)")]
pub struct WriterDied;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_inside_ticketd_are_retried_soon_and_the_apis_as_the_api_says() {
        let transient = RetryClass::Transient { after: None };
        assert_eq!(CallError::Timeout { after: Duration::from_secs(1) }.retry_class(), transient);
        assert_eq!(CallError::TaskDied { how: TaskEnd::Panicked }.retry_class(), transient);
        assert_eq!(CallError::Unfit(Unfit::TicketForToken).retry_class(), transient);
        let unusable = ProviderError::Unusable { api: "TCR", detail: "no expiry".into(), token_id: "tid-1".into() };
        let error = CallError::from(unusable.clone());
        assert_eq!(error.retry_class(), timing::retry_class(&unusable));
        assert_eq!(error.unusable_token_id(), Some("tid-1"));
        assert_eq!(error.to_string(), unusable.to_string());
        assert!(!error.is_clock_skew() && CallError::Timeout { after: Duration::ZERO }.unusable_token_id().is_none());
        assert_eq!(PublishError::WriterDied.to_string(), WriterDied.to_string());
        assert_eq!(PublishError::Sinks(vec![]).to_string(), "");
    }
}
