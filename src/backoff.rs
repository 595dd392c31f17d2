//! Retry maths: how long to wait before retrying a failed call, the longest a call may take.
//!
//! Pure maths shared by the scheduler and the revoker (below both), taking its random numbers as
//! arguments.

use std::time::Duration;

use crate::apis::error::{ErrorClass, ProviderError};

/// A call that has not finished after this long is abandoned and retried; the scheduler abandons
/// one sooner while a held token is running out (after half the time it has left, but not before
/// its `MIN_CALL_TIMEOUT`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(45);

/// The first retry waits up to this long (full jitter)...
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// ...doubling per attempt up to this cap.
pub const BACKOFF_CAP: Duration = Duration::from_secs(600);
/// Permanent errors (signature, auth, bad parameter) are retried this slowly.
pub const PERMANENT_RETRY: Duration = Duration::from_secs(900);
/// No retry sooner than this, unless expiry is closer still.
pub const MIN_RETRY: Duration = Duration::from_millis(250);
/// A request rejected because the host clock is off is retried after half this to this, every
/// time: the clock may be corrected any second (NTP catching up, an admin), and then the next
/// call must not be minutes away.
pub const CLOCK_SKEW_RETRY: Duration = Duration::from_secs(10);

/// Why a call failed, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Worth retrying soon (network, 5xx, throttling); the server may say how long to wait.
    Transient { after: Option<Duration> },
    /// The request was rejected because the host clock is off: retried at a short cadence
    /// ([`CLOCK_SKEW_RETRY`]), since the clock may be corrected any moment.
    ClockSkew,
    /// Retrying will not help until something changes (keys, permissions, parameters).
    Permanent,
}

impl From<ErrorClass> for RetryClass {
    fn from(class: ErrorClass) -> RetryClass {
        match class {
            ErrorClass::Transient { after } => RetryClass::Transient { after },
            ErrorClass::ClockSkew => RetryClass::ClockSkew,
            ErrorClass::Permanent => RetryClass::Permanent,
        }
    }
}

/// How the scheduler retries a failed call: the API layer's `ErrorClass` of it.
pub fn retry_class(error: &ProviderError) -> RetryClass {
    error.class().into()
}

/// How long to wait before retry number `attempt` (1 for the first retry).
///
/// Transient failures back off exponentially with full jitter (`random` in [0, 1)), capped;
/// a server's retry-after is honoured. `remaining` is how long the current token still lives: the
/// delay is at most half of it, so retries crowd in before expiry but never past it.
pub fn retry_delay(attempt: u32, class: RetryClass, remaining: Option<Duration>, random: f64) -> Duration {
    let random = random.clamp(0.0, 1.0);
    let mut delay = match class {
        RetryClass::Transient { after } => {
            let exp = attempt.saturating_sub(1).min(20);
            let ceiling = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_CAP);
            let jittered = ceiling.mul_f64(random).max(MIN_RETRY);
            after.map_or(jittered, |a| jittered.max(a.min(BACKOFF_CAP)))
        }
        RetryClass::ClockSkew => CLOCK_SKEW_RETRY.mul_f64(0.5 + random / 2.0),
        RetryClass::Permanent => PERMANENT_RETRY.mul_f64(0.5 + random / 2.0),
    };
    if let Some(left) = remaining.filter(|r| !r.is_zero()) {
        delay = delay.min(left / 2);
    }
    delay
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clock_skew_is_retried_within_seconds_every_time() {
        for attempt in [1, 5, 50] {
            for r in [0.0, 0.5, 0.999] {
                let d = retry_delay(attempt, RetryClass::ClockSkew, None, r);
                assert!(d >= CLOCK_SKEW_RETRY / 2 && d <= CLOCK_SKEW_RETRY, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_and_permanent_errors_wait_long() {
        let d = retry_delay(1, RetryClass::Transient { after: Some(Duration::from_secs(30)) }, None, 0.0);
        assert_eq!(d, Duration::from_secs(30));
        let d = retry_delay(1, RetryClass::Permanent, None, 0.0);
        assert!(d >= PERMANENT_RETRY / 2);
    }

    proptest! {
        #[test]
        fn backoff_never_schedules_past_expiry(attempt in 1u32..200, remaining_ms in 1u64..(40 * 86_400_000), r in 0.0f64..1.0, permanent: bool, after in proptest::option::of(0u64..100_000)) {
            let class = match (permanent, after) {
                (true, Some(a)) if a % 2 == 0 => RetryClass::ClockSkew,
                (true, _) => RetryClass::Permanent,
                (false, after) => RetryClass::Transient { after: after.map(Duration::from_secs) },
            };
            let remaining = Duration::from_millis(remaining_ms);
            let d = retry_delay(attempt, class, Some(remaining), r);
            prop_assert!(d < remaining);
            prop_assert!(d <= remaining / 2);
        }

        #[test]
        fn backoff_is_capped_and_fully_jittered(attempt in 1u32..200, r in 0.0f64..1.0) {
            let d = retry_delay(attempt, RetryClass::Transient { after: None }, None, r);
            prop_assert!(d <= BACKOFF_CAP);
            prop_assert!(d >= MIN_RETRY);
        }
    }
}
