//! Wall-clock time, injected.
//!
//! Expiries, signing dates and refresh deadlines are wall-clock facts, so the scheduler keys its
//! queue on `SystemTime` read from a [`Clock`]. The daemon uses [`SystemClock`]; tests use
//! [`PausedClock`], whose wall time advances exactly as tokio's (paused) time does, so a test can
//! simulate ninety days in milliseconds (and [`PausedClock::jump`] steps the wall clock alone).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Wall time that follows tokio's clock: `base + (tokio now - start)`.
///
/// Under `tokio::time::pause()` the runtime auto-advances when idle, and this clock advances with
/// it, so deadlines computed from wall time fire at the right simulated moment.
#[derive(Debug, Clone)]
pub struct PausedClock {
    base: SystemTime,
    start: tokio::time::Instant,
    skew: Arc<Mutex<Duration>>,
}

impl PausedClock {
    pub fn starting_at(base: SystemTime) -> Self {
        PausedClock { base, start: tokio::time::Instant::now(), skew: Arc::new(Mutex::new(Duration::ZERO)) }
    }

    /// Jump the wall clock forward without tokio time passing (a suspend, or an NTP step).
    pub fn jump(&self, by: Duration) {
        *self.skew.lock().expect("clock lock") += by;
    }
}

impl Clock for PausedClock {
    fn now(&self) -> SystemTime {
        let skew = *self.skew.lock().expect("clock lock");
        self.base + self.start.elapsed() + skew
    }
}

/// Seconds since the Unix epoch (0 for times before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The time `secs` seconds after the Unix epoch.
pub fn from_unix_seconds(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// RFC 3339 in UTC with second precision, e.g. `2024-01-02T03:04:05Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How long from `now` until `t`; zero when `t` is past.
pub fn until(now: SystemTime, t: SystemTime) -> Duration {
    t.duration_since(now).unwrap_or(Duration::ZERO)
}

/// Serde helpers storing a `SystemTime` as an RFC 3339 string.
pub mod serde_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<SystemTime>`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::SystemTime;

        pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::super::rfc3339(*t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
            let text: Option<String> = Option::deserialize(d)?;
            text.map(|t| humantime::parse_rfc3339_weak(&t).map_err(serde::de::Error::custom)).transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_clock_follows_tokio_time_and_jumps() {
        let base = from_unix_seconds(1_704_164_645);
        let clock = PausedClock::starting_at(base);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), base + Duration::from_secs(3600));
        clock.jump(Duration::from_secs(60));
        assert_eq!(clock.now(), base + Duration::from_secs(3660));
    }

    #[test]
    fn rfc3339_is_second_precision_utc() {
        assert_eq!(rfc3339(from_unix_seconds(1_704_164_645)), "2024-01-02T03:04:05Z");
    }
}
