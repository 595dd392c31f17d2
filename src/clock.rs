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
pub fn rfc3339(t: impl Into<SystemTime>) -> String {
    humantime::format_rfc3339_seconds(t.into()).to_string()
}

/// How long from `now` until `t`; zero when `t` is past.
pub fn until(now: SystemTime, t: impl Into<SystemTime>) -> Duration {
    t.into().duration_since(now).unwrap_or(Duration::ZERO)
}

/// A wall-clock time in 8 bytes where a `SystemTime` takes 16: nanoseconds since the Unix epoch,
/// exact from 1970 until the year 2554 (earlier times become the epoch, later ones the end).
/// Tokens and tickets keep their times this way: at 100,000 tickets that is 4 MB less resident.
///
/// It compares with a `SystemTime` directly, and is written as RFC 3339 (second precision) like
/// any other time in the state file and the API.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(u64);

impl Stamp {
    /// The time this stands for.
    pub fn time(self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(self.0)
    }

    /// Nanoseconds since the Unix epoch (the scheduler's queue keys).
    pub(crate) fn nanos(self) -> u64 {
        self.0
    }

    pub(crate) fn from_nanos(nanos: u64) -> Stamp {
        Stamp(nanos)
    }
}

impl From<SystemTime> for Stamp {
    fn from(t: SystemTime) -> Stamp {
        let nanos = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Stamp(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl From<Stamp> for SystemTime {
    fn from(t: Stamp) -> SystemTime {
        t.time()
    }
}

impl PartialEq<SystemTime> for Stamp {
    fn eq(&self, other: &SystemTime) -> bool {
        self.time() == *other
    }
}

impl PartialOrd<SystemTime> for Stamp {
    fn partial_cmp(&self, other: &SystemTime) -> Option<std::cmp::Ordering> {
        self.time().partial_cmp(other)
    }
}

impl PartialEq<Stamp> for SystemTime {
    fn eq(&self, other: &Stamp) -> bool {
        *self == other.time()
    }
}

impl PartialOrd<Stamp> for SystemTime {
    fn partial_cmp(&self, other: &Stamp) -> Option<std::cmp::Ordering> {
        self.partial_cmp(&other.time())
    }
}

impl std::ops::Add<Duration> for Stamp {
    type Output = SystemTime;

    fn add(self, by: Duration) -> SystemTime {
        self.time() + by
    }
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_nanos(self.time()))
    }
}

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_rfc3339::serialize(&self.time(), s)
    }
}

impl<'de> serde::Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Stamp, D::Error> {
        serde_rfc3339::deserialize(d).map(Stamp::from)
    }
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
    fn a_stamp_is_exact_compares_with_system_time_and_is_written_as_before() {
        assert_eq!(size_of::<Stamp>(), 8);
        let t = from_unix_seconds(1_704_164_645) + Duration::from_nanos(123_456_789);
        let stamp = Stamp::from(t);
        assert_eq!(stamp.time(), t, "nanoseconds survive");
        assert!(stamp == t && stamp < t + Duration::from_nanos(1) && t - Duration::from_nanos(1) < stamp);
        assert_eq!(stamp + Duration::from_secs(1), t + Duration::from_secs(1));
        // The state file and the API keep their RFC 3339 strings, second precision.
        let json = serde_json::to_string(&stamp).unwrap();
        assert_eq!(json, "\"2024-01-02T03:04:05Z\"");
        let back: Stamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Stamp::from(from_unix_seconds(1_704_164_645)));
        assert!(serde_json::from_str::<Stamp>("\"yesterday\"").is_err());
        // Outside the range: the epoch below, the end above.
        assert_eq!(Stamp::from(SystemTime::UNIX_EPOCH - Duration::from_secs(1)).time(), SystemTime::UNIX_EPOCH);
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(600 * 365 * 86_400);
        assert_eq!(Stamp::from(far).time(), SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn rfc3339_is_second_precision_utc() {
        assert_eq!(rfc3339(from_unix_seconds(1_704_164_645)), "2024-01-02T03:04:05Z");
    }
}
