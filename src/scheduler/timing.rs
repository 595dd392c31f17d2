//! Pure refresh maths: when each ticket is due, what to call (with the backoff of
//! `crate::backoff`). Every function takes `now` and its random numbers as arguments.

use std::time::{Duration, SystemTime};

use crate::token::Holding;

pub use crate::backoff::{
    BACKOFF_BASE, BACKOFF_CAP, CALL_TIMEOUT, CLOCK_SKEW_RETRY, MIN_RETRY, PERMANENT_RETRY, RetryClass, retry_class,
    retry_delay,
};

/// A token is refreshed once this fraction of its life has passed...
pub const REFRESH_AT: f64 = 2.0 / 3.0;
/// ...plus up to this fraction more, at random, so many tickets do not refresh in lockstep.
pub const REFRESH_JITTER: f64 = 1.0 / 12.0;
/// A ticket's re-mint still not done when its current token has served this share of its life
/// (CreateTicket failing since the re-mint was due) gives way to one RefreshToken on the old
/// ticket, so the token does not lapse while the ticket is good; the re-mint is tried again after.
pub const KEEP_ALIVE_AT: f64 = 5.0 / 6.0;
/// A long-term token (TCR `longterm`) is re-minted only when less than `renew_before` of it remains
/// (the API's [`Lifecycle::LongTerm`]; TCR's is [`LONGTERM_RENEW_BEFORE`])...
pub use crate::apis::tcr::spec::LONGTERM_RENEW_BEFORE;
/// ...or less than this fraction of its life, whichever is shorter.
pub const LONGTERM_RENEW_FRACTION: f64 = 1.0 / 10.0;

pub use crate::apis::api::Lifecycle;

/// The next call to make for a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Obtain a new ticket (SLS) or a new token (single-call kinds).
    Mint,
    /// Refresh the token from the current ticket.
    RefreshCurrent,
    /// Obtain the first token of the pending (newly minted) ticket.
    RefreshPending,
}

/// When to take which step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub step: Step,
    pub at: SystemTime,
}

/// When a token issued at `issued` and expiring at `expires` is due: after 2/3 of its life plus up
/// to 1/12 more (`jitter` in [0, 1)). Never later than expiry.
pub fn refresh_point(issued: SystemTime, expires: SystemTime, jitter: f64) -> SystemTime {
    let life = expires.duration_since(issued).unwrap_or(Duration::ZERO);
    issued + life.mul_f64(REFRESH_AT + REFRESH_JITTER * jitter.clamp(0.0, 1.0))
}

/// When a long-term token issued at `issued` and expiring at `expires` is re-minted: when less than
/// `min(renew_before, life / 10)` of it remains. Never later than expiry, never before issue.
pub fn longterm_renew_point(issued: SystemTime, expires: SystemTime, renew_before: Duration) -> SystemTime {
    let life = expires.duration_since(issued).unwrap_or(Duration::ZERO);
    let margin = renew_before.min(life.mul_f64(LONGTERM_RENEW_FRACTION));
    expires.checked_sub(margin).unwrap_or(issued).max(issued)
}

/// The next step for `holding` at `now`.
///
/// `expires_early` is how much sooner than its stated expiry the current token expires by the
/// monotonic clock (the wall clock was set back since it was received): its refresh point moves
/// as much earlier, so a token is replaced on time whichever clock is right.
pub fn plan(holding: &Holding, lifecycle: Lifecycle, now: SystemTime, jitter: f64, expires_early: Duration) -> Plan {
    let now_plan = |step| Plan { step, at: now };
    if let Some(pending) = &holding.pending
        && pending.expires_at > now
    {
        return now_plan(Step::RefreshPending);
    }
    let Some(current) = &holding.current else { return now_plan(Step::Mint) };
    let token = &current.token;
    let early = |t: crate::clock::Stamp| t.time().checked_sub(expires_early).unwrap_or(SystemTime::UNIX_EPOCH);
    let (issued, expires) = (early(token.issued_at), early(token.expires_at));
    let token_due = refresh_point(issued, expires, jitter).max(now);
    match (lifecycle, &current.ticket) {
        (Lifecycle::TicketAndToken { renew_before }, Some(ticket)) => {
            let latest = ticket.expires_at.time().checked_sub(renew_before).unwrap_or(ticket.issued_at.time());
            // Spread re-mints a little too, earlier only, so the ceiling is never crossed.
            let spread = |jitter: f64| renew_before.mul_f64(REFRESH_JITTER * jitter.clamp(0.0, 1.0));
            let renew_at = latest.checked_sub(spread(jitter)).unwrap_or(latest).max(now);
            // The earliest the re-mint can come (the spread is drawn anew with each token).
            let earliest = latest.checked_sub(spread(1.0)).unwrap_or(latest);
            // A token refreshed at `token_due` would be replaced by the new ticket's first token
            // before it has served a normal refresh interval: that refresh is wasted, so the
            // re-mint comes instead, at the refresh point. The current token still has a third of
            // its life then, for the mint's retries.
            let wasted =
                earliest < token_due + (expires.duration_since(issued).unwrap_or_default()).mul_f64(REFRESH_AT);
            // A re-mint that has not come through by the time the token is near its end (the
            // cloud refusing CreateTicket) must not let the token lapse while its ticket is still
            // good: the token is refreshed on the old ticket, and the re-mint tried again after.
            let keep_alive = issued + (expires.duration_since(issued).unwrap_or_default()).mul_f64(KEEP_ALIVE_AT);
            let minting = renew_at <= token_due || wasted;
            if ticket.expires_at > now && ticket.expires_at > expires && minting && now >= keep_alive {
                Plan { step: Step::RefreshCurrent, at: now }
            } else if ticket.expires_at <= now || renew_at <= token_due {
                Plan { step: Step::Mint, at: renew_at }
            } else if wasted {
                Plan { step: Step::Mint, at: token_due }
            } else {
                Plan { step: Step::RefreshCurrent, at: token_due }
            }
        }
        // A ticket-and-token kind whose current holds no ticket cannot refresh: mint.
        (Lifecycle::TicketAndToken { .. }, None) => now_plan(Step::Mint),
        (Lifecycle::SingleCall, _) => Plan { step: Step::Mint, at: token_due },
        (Lifecycle::LongTerm { renew_before }, _) => {
            Plan { step: Step::Mint, at: longterm_renew_point(issued, expires, renew_before).max(now) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_seconds;
    use crate::secret::Secret;
    use crate::token::{Current, TicketPart, TokenPart};
    use proptest::prelude::*;

    const DAY: Duration = Duration::from_secs(86_400);
    const HOUR: Duration = Duration::from_secs(3_600);

    fn holding(t0: SystemTime, ticket_life: Duration, token_issued: SystemTime, token_life: Duration) -> Holding {
        Holding {
            current: Some(Current {
                ticket: Some(TicketPart {
                    value: Secret::new("t"),
                    issued_at: t0.into(),
                    expires_at: (t0 + ticket_life).into(),
                }),
                token: TokenPart {
                    value: Secret::new("a"),
                    username: None,
                    token_id: None,
                    issued_at: token_issued.into(),
                    expires_at: (token_issued + token_life).min(t0 + ticket_life).into(),
                },
                generation: 1,
                refreshed_at: token_issued.into(),
                expires_mono: None,
            }),
            pending: None,
        }
    }

    #[test]
    fn fresh_sls_ticket_refreshes_after_two_thirds_of_the_token() {
        let t0 = from_unix_seconds(1_700_000_000);
        let h = holding(t0, 30 * DAY, t0, DAY);
        let p = plan(&h, Lifecycle::TicketAndToken { renew_before: DAY }, t0, 0.0, Duration::ZERO);
        assert_eq!(p, Plan { step: Step::RefreshCurrent, at: t0 + DAY.mul_f64(2.0 / 3.0) });
    }

    #[test]
    fn near_the_ceiling_a_new_ticket_is_minted_first() {
        let t0 = from_unix_seconds(1_700_000_000);
        let issued = t0 + 28 * DAY + DAY / 2;
        let h = holding(t0, 30 * DAY, issued, DAY);
        let p = plan(&h, Lifecycle::TicketAndToken { renew_before: DAY }, issued, 0.0, Duration::ZERO);
        assert_eq!(p, Plan { step: Step::Mint, at: t0 + 29 * DAY });
    }

    /// Issue 17 item 13: a refresh whose token the re-mint would replace within a normal refresh
    /// interval is skipped; the re-mint comes at the refresh point instead.
    #[test]
    fn issue_17_a_refresh_just_before_the_re_mint_becomes_the_re_mint() {
        let t0 = from_unix_seconds(1_700_000_000);
        let lifecycle = Lifecycle::TicketAndToken { renew_before: DAY };
        // Due at day 28 + 12 h; the re-mint is due at day 29 (28 d 22 h at the earliest, with the
        // spread): a token refreshed at 28 d 12 h would serve 12 h at most, less than its 16 h.
        let issued = t0 + 27 * DAY + 20 * 3600 * Duration::from_secs(1);
        let h = holding(t0, 30 * DAY, issued, DAY);
        let due = issued + DAY.mul_f64(2.0 / 3.0);
        assert_eq!(plan(&h, lifecycle, issued, 0.0, Duration::ZERO), Plan { step: Step::Mint, at: due });
        // A day earlier, the refreshed token serves a whole interval before the re-mint: refreshed.
        let issued = issued - DAY;
        let h = holding(t0, 30 * DAY, issued, DAY);
        let due = issued + DAY.mul_f64(2.0 / 3.0);
        assert_eq!(plan(&h, lifecycle, issued, 0.0, Duration::ZERO), Plan { step: Step::RefreshCurrent, at: due });
    }

    /// A re-mint that keeps failing does not let the token lapse while the ticket is good: past
    /// 5/6 of the token's life the old ticket's token is refreshed, then the re-mint tried again.
    #[test]
    fn issue_17_a_failing_re_mint_gives_way_to_a_refresh_before_the_token_lapses() {
        let t0 = from_unix_seconds(1_700_000_000);
        let lifecycle = Lifecycle::TicketAndToken { renew_before: DAY };
        let issued = t0 + 28 * DAY + DAY / 2;
        let h = holding(t0, 30 * DAY, issued, DAY);
        // The re-mint is due at day 29 and is still not done (failing) at 29 d 7 h: mint again.
        let p = plan(&h, lifecycle, t0 + 29 * DAY + 7 * HOUR, 0.0, Duration::ZERO);
        assert_eq!(p.step, Step::Mint);
        // At 29 d 8 h the token has served 5/6 of its day: refresh it on the old ticket, now.
        let at = issued + DAY.mul_f64(KEEP_ALIVE_AT);
        assert_eq!(plan(&h, lifecycle, at, 0.0, Duration::ZERO), Plan { step: Step::RefreshCurrent, at });
        // A token that already lasts as long as its ticket gains nothing from a refresh: mint.
        let h = holding(t0, 30 * DAY, t0 + 29 * DAY + HOUR, DAY);
        let at = t0 + 29 * DAY + 22 * HOUR;
        assert_eq!(plan(&h, lifecycle, at, 0.0, Duration::ZERO), Plan { step: Step::Mint, at });
        // An expired ticket cannot be refreshed: mint.
        let h = holding(t0, 30 * DAY, t0 + 29 * DAY + 12 * HOUR, DAY);
        let at = t0 + 30 * DAY + HOUR;
        assert_eq!(plan(&h, lifecycle, at, 0.0, Duration::ZERO).step, Step::Mint);
    }

    #[test]
    fn nothing_held_means_mint_now_and_pending_means_refresh_it_now() {
        let now = from_unix_seconds(1_700_000_000);
        let mut h = Holding::default();
        assert_eq!(plan(&h, Lifecycle::SingleCall, now, 0.5, Duration::ZERO), Plan { step: Step::Mint, at: now });
        h.pending = Some(Box::new(TicketPart {
            value: Secret::new("p"),
            issued_at: now.into(),
            expires_at: (now + DAY).into(),
        }));
        let p = plan(&h, Lifecycle::TicketAndToken { renew_before: DAY }, now, 0.5, Duration::ZERO);
        assert_eq!(p, Plan { step: Step::RefreshPending, at: now });
    }

    #[test]
    fn a_token_that_expires_early_by_the_monotonic_clock_is_refreshed_as_much_earlier() {
        let t0 = from_unix_seconds(1_700_000_000);
        let minute = Duration::from_secs(60);
        let h = single(t0, minute);
        let on_time = plan(&h, Lifecycle::SingleCall, t0, 0.0, Duration::ZERO);
        assert_eq!(on_time.at, t0 + Duration::from_secs(40));
        // The wall clock was set back 60 s after 10 s: the token has 50 s left, not 110.
        let now = t0 + Duration::from_secs(10) - minute;
        let early = plan(&h, Lifecycle::SingleCall, now, 0.0, minute);
        assert_eq!(early.at, now + Duration::from_secs(30), "due 40 s into its real life");
        // Past its real refresh point: now.
        let early = plan(&h, Lifecycle::SingleCall, t0, 0.0, minute);
        assert_eq!(early.at, t0);
    }

    fn single(issued: SystemTime, life: Duration) -> Holding {
        let mut h = holding(issued, life, issued, life);
        if let Some(c) = h.current.as_mut() {
            c.ticket = None;
        }
        h
    }

    #[test]
    fn a_longterm_token_is_kept_until_30_days_or_a_tenth_of_its_life_remain() {
        let t0 = from_unix_seconds(1_700_000_000);
        let lc = Lifecycle::LongTerm { renew_before: LONGTERM_RENEW_BEFORE };
        // A one-year token: kept for 335 days, not re-minted at 2/3 (243 days).
        let h = single(t0, 365 * DAY);
        assert_eq!(plan(&h, lc, t0, 0.9, Duration::ZERO), Plan { step: Step::Mint, at: t0 + 335 * DAY });
        // A day later the plan is the same: restarts do not move it.
        assert_eq!(plan(&h, lc, t0 + DAY, 0.1, Duration::ZERO), Plan { step: Step::Mint, at: t0 + 335 * DAY });
        // A short long-term token: a tenth of its life.
        let h = single(t0, 10 * DAY);
        assert_eq!(plan(&h, lc, t0, 0.0, Duration::ZERO), Plan { step: Step::Mint, at: t0 + 9 * DAY });
        // Past the point: mint now.
        assert_eq!(
            plan(&h, lc, t0 + 9 * DAY + 1800 * Duration::from_secs(1), 0.0, Duration::ZERO).at,
            t0 + 9 * DAY + Duration::from_secs(1800)
        );
        // Nothing held: mint now.
        assert_eq!(plan(&Holding::default(), lc, t0, 0.0, Duration::ZERO), Plan { step: Step::Mint, at: t0 });
        // A single-call token is due after 2/3 of its life.
        let h = single(t0, 365 * DAY);
        assert!(plan(&h, Lifecycle::SingleCall, t0, 0.0, Duration::ZERO).at < t0 + 250 * DAY);
    }

    proptest! {
        #[test]
        fn longterm_renew_point_lies_within_the_life(life_s in 1u64..(10 * 365 * 86_400)) {
            let t0 = from_unix_seconds(1_700_000_000);
            let life = Duration::from_secs(life_s);
            let at = longterm_renew_point(t0, t0 + life, LONGTERM_RENEW_BEFORE);
            prop_assert!(at >= t0 + life.mul_f64(0.9) - Duration::from_secs(1));
            prop_assert!(at <= t0 + life);
            prop_assert!((t0 + life).duration_since(at).unwrap() <= LONGTERM_RENEW_BEFORE);
        }

        #[test]
        fn refresh_point_stays_inside_the_token_life(life_s in 1u64..(40 * 86_400), j in 0.0f64..1.0) {
            let t0 = from_unix_seconds(1_700_000_000);
            let at = refresh_point(t0, t0 + Duration::from_secs(life_s), j);
            prop_assert!(at >= t0 + Duration::from_secs(life_s).mul_f64(0.66));
            prop_assert!(at <= t0 + Duration::from_secs(life_s).mul_f64(0.76));
        }

        #[test]
        fn planned_steps_never_lie_past_the_ceiling(age_s in 0u64..(30 * 86_400), j in 0.0f64..1.0) {
            let t0 = from_unix_seconds(1_700_000_000);
            let issued = t0 + Duration::from_secs(age_s);
            let h = holding(t0, 30 * DAY, issued, DAY);
            let p = plan(&h, Lifecycle::TicketAndToken { renew_before: DAY }, issued, j, Duration::ZERO);
            prop_assert!(p.at >= issued);
            prop_assert!(p.at < t0 + 30 * DAY);
            prop_assert!(p.at <= h.current.as_ref().unwrap().token.expires_at.max(issued.into()));
        }
    }
}
