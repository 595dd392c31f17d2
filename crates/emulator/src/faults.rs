//! Fault injection: make the emulator fail like a real cloud does, per service, on a schedule.
//!
//! A [`FaultPlan`] says which calls fail ([`Trigger`]: the first N, every Kth, or a seeded random
//! fraction) and how ([`Fault`]): a vendor-shaped 5xx or throttling answer (with retry-after), a
//! connection reset, a hang, a slow body, malformed JSON, a wrong content type, an oversized body,
//! or a clock-skew rejection. It is applied by a middleware in front of every route, before any
//! signature check, so the call never reaches the real handler.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Which API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Sls,
    Dsw,
    /// TCR CreateInstanceToken.
    Tcr,
    /// TCR DeleteInstanceToken (faults in the TCR error shape, like [`Service::Tcr`]).
    TcrDelete,
}

/// How a call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The vendor's server-error answer (SLS 500 InternalServerError, POP 503 ServiceUnavailable,
    /// TCR 200 InternalError).
    ServerError,
    /// The vendor's throttling answer, with a retry-after where the vendor has one.
    Throttle { retry_after_secs: u64 },
    /// The connection drops before an answer is complete.
    Reset,
    /// No answer for this long.
    Hang(Duration),
    /// A slow cloud: the call waits this long, then reaches the real handler and succeeds as it
    /// would have (the fleet tests stop a leader while its call is in flight).
    Delay(Duration),
    /// A correct-looking answer, one byte every this often.
    SlowBody(Duration),
    /// HTTP 200 with JSON cut short.
    MalformedJson,
    /// HTTP 200 with an HTML page.
    WrongContentType,
    /// HTTP 200 with a body larger than any client should read (1 MiB).
    Oversized,
    /// The vendor's "request time too far from server time" rejection.
    ClockSkew,
    /// A success answer whose secret holds multi-byte characters (`é`, U+200B): an SLS ticket or
    /// access token, a DSW token, a TCR token. The next call with such a ticket gets an error.
    NonAsciiSecret,
    /// A success answer a consumer could not use as is: an SLS ticket or token and a DSW token
    /// with a newline and a NUL in them, a TCR `Username` with a `:`.
    BadCharacters,
}

/// Which calls fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    FirstN(u64),
    EveryKth(u64),
    /// Each call fails with this probability, from a seeded generator (reproducible).
    Fraction {
        p: f64,
        seed: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    pub fault: Fault,
    pub trigger: Trigger,
}

/// One service's live plan: how many calls it has seen, and its random source.
type LivePlan = (Service, FaultPlan, u64, Option<StdRng>);

/// The live plans and their counters.
#[derive(Default)]
pub(crate) struct Faults {
    plans: std::sync::Mutex<Vec<LivePlan>>,
}

impl Faults {
    pub(crate) fn set(&self, service: Service, plan: Option<FaultPlan>) {
        let mut plans = self.plans.lock().expect("fault plans");
        plans.retain(|(s, ..)| *s != service);
        if let Some(plan) = plan {
            let rng = match plan.trigger {
                Trigger::Fraction { seed, .. } => Some(StdRng::seed_from_u64(seed)),
                _ => None,
            };
            plans.push((service, plan, 0, rng));
        }
    }

    /// Count a call for `service`; the fault to inject, if this call is one to fail.
    pub(crate) fn next(&self, service: Service) -> Option<Fault> {
        let mut plans = self.plans.lock().expect("fault plans");
        let (_, plan, count, rng) = plans.iter_mut().find(|(s, ..)| *s == service)?;
        *count += 1;
        let fire = match plan.trigger {
            Trigger::FirstN(n) => *count <= n,
            Trigger::EveryKth(k) => k > 0 && *count % k == 0,
            Trigger::Fraction { p, .. } => rng.as_mut().is_some_and(|r| r.random::<f64>() < p),
        };
        fire.then_some(plan.fault)
    }
}
