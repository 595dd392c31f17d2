//! Pure decisions on one ticket: what to call next, when, how a call's result becomes the new
//! holding, what a failure means for the consumers. No I/O, no clock read: `now` and randomness
//! come in as arguments.

use std::time::{Duration, SystemTime};

use crate::apis::Operation;
use crate::board::Ticket;
use crate::clock::{Now, Stamp, until};
use crate::config::TicketSpec;
use crate::scheduler::error::{CallError, MIN_USEFUL_LIFE, Part, Unfit};
use crate::scheduler::timing::{self, CALL_TIMEOUT, Lifecycle, RetryClass, Step};
use crate::token::{Current, Holding, Issued, TicketPart, TokenPart};

/// The shortest a call may take before it is abandoned, however little the held token has left:
/// a connect (5 s) and an answer fit.
pub const MIN_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a successful call changed.
pub(crate) enum Change {
    Ticket { expires_at: SystemTime },
    Token { generation: u64, expires_at: SystemTime, new_ticket: bool, replaced: Option<Current> },
}

/// Fold a call's result into a holding, capping expiries: a token never outlives its ticket, its
/// credentials, or its own `exp` claim.
pub(crate) fn apply(
    holding: &mut Holding,
    step: Step,
    issued: Issued,
    credentials_expire: Option<SystemTime>,
    now: Now,
) -> Result<Change, CallError> {
    match (step, issued) {
        (Step::Mint, Issued::Ticket(mut ticket)) => {
            ticket.expires_at = cap(ticket.expires_at, [crate::jwt::expiry(ticket.value.expose())]);
            if ticket.expires_at <= now.wall {
                return Err(CallError::Unfit(Unfit::Expired { what: Part::Ticket }));
            }
            too_short(Part::Ticket, until(now.wall, ticket.expires_at.time()))?;
            let expires_at = ticket.expires_at.time();
            holding.pending = Some(Box::new(ticket));
            Ok(Change::Ticket { expires_at })
        }
        (step, Issued::Token(token)) => {
            let ticket: Option<TicketPart> = match step {
                Step::Mint => None,
                Step::RefreshCurrent => holding.current.as_ref().and_then(|c| c.ticket.clone()),
                Step::RefreshPending => holding.pending.as_deref().cloned(),
            };
            let token = capped_token(token, ticket.as_ref(), credentials_expire);
            if token.expires_at <= now.wall {
                return Err(CallError::Unfit(Unfit::Expired { what: Part::Token }));
            }
            too_short(Part::Token, until(now.wall, token.expires_at.time()))?;
            let generation = holding.generation() + 1;
            let expires_at = token.expires_at.time();
            let new_ticket = step == Step::RefreshPending;
            if new_ticket {
                holding.pending = None;
            }
            // Its life left counts in monotonic time too, from now: a wall clock set back later
            // cannot stretch it.
            let expires_mono = Some(now.mono_at(token.expires_at.time()));
            let current = Current { ticket, token, generation, refreshed_at: now.wall.into(), expires_mono };
            let replaced = holding.current.replace(current);
            Ok(Change::Token { generation, expires_at, new_ticket, replaced })
        }
        (_, Issued::Ticket(_)) => Err(CallError::Unfit(Unfit::TicketForToken)),
    }
}

/// A new `what` living only `life` is refused: see [`MIN_USEFUL_LIFE`].
fn too_short(what: Part, life: Duration) -> Result<(), CallError> {
    if life >= MIN_USEFUL_LIFE {
        return Ok(());
    }
    Err(CallError::Unfit(Unfit::TooShort { what, life }))
}

fn capped_token(
    mut token: TokenPart,
    ticket: Option<&TicketPart>,
    credentials_expire: Option<SystemTime>,
) -> TokenPart {
    token.expires_at = cap(
        token.expires_at,
        [crate::jwt::expiry(token.value.expose()), ticket.map(|t| t.expires_at.time()), credentials_expire],
    );
    token
}

fn cap<const N: usize>(t: Stamp, limits: [Option<SystemTime>; N]) -> Stamp {
    limits.into_iter().flatten().map(Stamp::from).fold(t, Stamp::min)
}

/// Drop what can no longer be used: an expired token (and its ticket) or pending ticket.
pub(crate) fn usable(mut holding: Holding, now: Now) -> Holding {
    if holding
        .current
        .as_ref()
        .is_some_and(|c| !c.is_valid(now) && c.ticket.as_ref().is_none_or(|t| t.expires_at <= now.wall))
    {
        holding.current = None;
    }
    if holding.pending.as_ref().is_some_and(|p| p.expires_at <= now.wall) {
        holding.pending = None;
    }
    holding
}

/// The ticket's next step and when it is due, on the wall clock as it reads at `now`. A token
/// whose monotonic expiry comes before its stated one (the wall clock was set back) is planned
/// by the earlier.
pub(crate) fn plan(ticket: &Ticket, now: Now) -> timing::Plan {
    let early =
        ticket.holding().current.as_ref().map_or(Duration::ZERO, |c| {
            c.token.expires_at.time().duration_since(c.expiry(now)).unwrap_or(Duration::ZERO)
        });
    timing::plan(ticket.holding(), lifecycle(ticket.spec()), now.wall, ticket.jitter(), early)
}

/// The call that performs `step` with what `holding` has: a refresh without its ticket mints.
pub(crate) fn operation(step: Step, holding: &Holding) -> Operation {
    let ticket = match step {
        Step::Mint => None,
        Step::RefreshCurrent => holding.current.as_ref().and_then(|c| c.ticket.as_ref()),
        Step::RefreshPending => holding.pending.as_deref(),
    };
    match ticket {
        Some(t) => Operation::Refresh { ticket: t.value.clone() },
        None => Operation::Mint,
    }
}

pub(crate) fn lifecycle(spec: &TicketSpec) -> Lifecycle {
    spec.api.lifecycle()
}

/// How long a call may take when the held token has `remaining` to live: at most half of it, so
/// a call that hangs is abandoned while another attempt still fits before the token lapses; never
/// less than [`MIN_CALL_TIMEOUT`], never more than [`CALL_TIMEOUT`].
pub(crate) fn call_timeout(remaining: Option<Duration>) -> Duration {
    remaining.map_or(CALL_TIMEOUT, |left| (left / 2).clamp(MIN_CALL_TIMEOUT, CALL_TIMEOUT))
}

/// What a failed call decides: when to try again, and what that means for the consumers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Retry {
    pub delay: Duration,
    pub retry_at: SystemTime,
    /// When the held token expires, if it is still valid.
    pub token_expires_at: Option<SystemTime>,
    pub outlook: Outlook,
}

/// The retry after the `attempt`th failed call in a row of `class` for a ticket holding
/// `holding`, `random` in [0, 1) spreading it.
pub(crate) fn retry(holding: &Holding, attempt: u32, class: RetryClass, now: Now, random: f64) -> Retry {
    let token_expires_at = holding.valid(now).map(|c| c.expiry(now));
    let remaining = token_expires_at.map(|t| until(now.wall, t));
    let delay = timing::retry_delay(attempt, class, remaining, random);
    let retry_at = now.wall + delay;
    let outlook = outlook(holding.current.is_some(), token_expires_at, class, retry_at, delay);
    Retry { delay, retry_at, token_expires_at, outlook }
}

/// What a failed call means for a ticket's consumers, as its log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outlook {
    /// A valid token is held and retries fit before it expires.
    Keeps,
    /// A valid token is held, but it will expire before an attempt can succeed unless something
    /// changes: the error is permanent, or the retries have crowded up to its expiry.
    WillLapse,
    /// The ticket never had a token (this process or its state file); consumers have none yet.
    NoTokenYet { retry_helps: bool },
    /// The last token expired; consumers have none until an attempt succeeds.
    Lapsed { retry_helps: bool },
}

impl Outlook {
    /// The log line's sentence.
    pub fn message(self) -> &'static str {
        match self {
            Outlook::Keeps => "call failed; keeping the last good token",
            Outlook::WillLapse => "call failed; the token will lapse without help",
            Outlook::NoTokenYet { retry_helps: true } => "call failed; no token yet, retrying",
            Outlook::NoTokenYet { retry_helps: false } => {
                "call failed; no token yet, and retrying will not help until the config, keys or permissions change"
            }
            Outlook::Lapsed { retry_helps: true } => "call failed; the last token has expired, retrying",
            Outlook::Lapsed { retry_helps: false } => {
                "call failed; the last token has expired, and retrying will not help until the config, keys or permissions change"
            }
        }
    }
}

/// The outlook after a failed call retried at `retry_at` (`delay` from now): `held` says whether the
/// ticket has a token at all, `token_expires_at` when the held token expires if it is still valid.
pub(crate) fn outlook(
    held: bool,
    token_expires_at: Option<SystemTime>,
    class: RetryClass,
    retry_at: SystemTime,
    delay: Duration,
) -> Outlook {
    let retry_helps = class != RetryClass::Permanent;
    match token_expires_at {
        // Should the next attempt fail too, the one after comes only at expiry.
        Some(t) if !retry_helps || retry_at + delay >= t => Outlook::WillLapse,
        Some(_) => Outlook::Keeps,
        None if held => Outlook::Lapsed { retry_helps },
        None => Outlook::NoTokenYet { retry_helps },
    }
}

/// A delay rounded up to whole seconds, for log lines.
pub(crate) fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(if d.is_zero() { 0 } else { 1 }))
}
