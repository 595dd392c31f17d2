//! Time, injected: the wall clock with a monotonic clock beside it.
//!
//! Wall time (`SystemTime`) is what expiries and signing dates are written in; it can step (NTP,
//! an admin, a VM restored from a snapshot). Monotonic time ([`Mono`]) never steps: the scheduler
//! waits in it, and a token also counts as expired once the monotonic time since its request was
//! sent reaches its life, so a clock set back cannot keep an expired token in use. The daemon uses
//! [`SystemClock`]; tests use [`PausedClock`], whose clocks advance exactly as tokio's (paused)
//! time does, so a test can simulate ninety days in milliseconds, and whose wall and monotonic
//! time can be made to diverge either way ([`PausedClock::jump`], [`PausedClock::jump_back`],
//! [`PausedClock::suspend`]).

use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Source of wall-clock and monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time: for expiries and signing, never for waiting.
    fn now(&self) -> SystemTime;

    /// Monotonic time that also counts a suspend (`CLOCK_BOOTTIME`): for waiting and for how long
    /// a token has been held.
    fn monotonic(&self) -> Mono {
        boot_time()
    }

    /// Both clocks, read together.
    fn read(&self) -> Now {
        let mono = self.monotonic();
        Now { wall: self.now(), mono }
    }
}

/// `CLOCK_BOOTTIME`: monotonic, and counting the time the host was suspended.
fn boot_time() -> Mono {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let nanos =
        u64::try_from(t.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000) + u64::try_from(t.tv_nsec).unwrap_or(0);
    Mono::from_nanos(nanos)
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A point in monotonic time, in 8 bytes (nanoseconds from the clock's origin, never zero, so
/// an `Option<Mono>` is 8 bytes too). Only readings of one clock compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mono(NonZeroU64);

impl Mono {
    /// The reading `nanos` nanoseconds after the origin (0 reads as 1).
    pub fn from_nanos(nanos: u64) -> Mono {
        Mono(NonZeroU64::new(nanos).unwrap_or(NonZeroU64::MIN))
    }

    /// Nanoseconds since the origin (the scheduler's queue keys).
    pub fn nanos(self) -> u64 {
        self.0.get()
    }

    /// How long from `self` until `later`; zero when `later` is not later.
    pub fn until(self, later: Mono) -> Duration {
        Duration::from_nanos(later.nanos().saturating_sub(self.nanos()))
    }
}

impl std::ops::Add<Duration> for Mono {
    type Output = Mono;

    fn add(self, by: Duration) -> Mono {
        Mono::from_nanos(self.nanos().saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX)))
    }
}

impl std::ops::Sub<Duration> for Mono {
    type Output = Mono;

    fn sub(self, by: Duration) -> Mono {
        Mono::from_nanos(self.nanos().saturating_sub(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX)))
    }
}

/// A wall clock that moved against the monotonic one by this much or more between two looks
/// stepped (NTP slews at most 0.5 ms a second: 150 ms in five minutes).
pub const CLOCK_STEP: Duration = Duration::from_secs(1);

/// Both clocks at one moment: what every decision about time takes as `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub wall: SystemTime,
    pub mono: Mono,
}

impl Now {
    /// The monotonic time at which the wall clock reads `t`, if it does not step meanwhile.
    pub fn mono_at(self, t: SystemTime) -> Mono {
        match t.duration_since(self.wall) {
            Ok(ahead) => self.mono + ahead,
            Err(behind) => self.mono - behind.duration(),
        }
    }

    /// What the wall clock will read at monotonic time `m`, if it does not step meanwhile.
    pub fn wall_at(self, m: Mono) -> SystemTime {
        if m >= self.mono {
            self.wall + self.mono.until(m)
        } else {
            self.wall.checked_sub(m.until(self.mono)).unwrap_or(SystemTime::UNIX_EPOCH)
        }
    }

    /// Whether the wall clock stepped (by [`CLOCK_STEP`] or more, either way) between `earlier`
    /// and this reading.
    pub fn stepped_since(self, earlier: Now) -> bool {
        (self.wall_offset() - earlier.wall_offset()).unsigned_abs() >= CLOCK_STEP.as_nanos()
    }

    /// How far the wall clock is ahead of the monotonic one, in nanoseconds (negative: behind).
    /// Between two readings it stays the same unless the wall clock stepped (or was slewed).
    pub fn wall_offset(self) -> i128 {
        let wall = match self.wall.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        wall - i128::from(self.mono.nanos())
    }
}

/// Clocks that follow tokio's: wall time is `base + (tokio now - start)` and monotonic time is
/// `tokio now - start`, each plus what the test moved it by.
///
/// Under `tokio::time::pause()` the runtime auto-advances when idle, and these clocks advance with
/// it, so deadlines fire at the right simulated moment.
#[derive(Debug, Clone)]
pub struct PausedClock {
    base: SystemTime,
    start: tokio::time::Instant,
    moved: Arc<Mutex<Moved>>,
}

/// What a test moved a [`PausedClock`] by.
#[derive(Debug, Default)]
struct Moved {
    /// Wall clock steps: forward, and back.
    ahead: Duration,
    behind: Duration,
    /// Suspends: both clocks moved on, tokio's timers did not.
    suspended: Duration,
}

/// A [`PausedClock`]'s monotonic origin is this far before its start (never a zero reading).
const PAUSED_MONO_ORIGIN: Duration = Duration::from_secs(1);

impl PausedClock {
    pub fn starting_at(base: SystemTime) -> Self {
        PausedClock { base, start: tokio::time::Instant::now(), moved: Arc::default() }
    }

    fn moved(&self) -> std::sync::MutexGuard<'_, Moved> {
        self.moved.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Step the wall clock forward; monotonic time does not move (an NTP step, an admin's
    /// `date -s`, a VM restored from a snapshot).
    pub fn jump(&self, by: Duration) {
        self.moved().ahead += by;
    }

    /// Step the wall clock back; monotonic time does not move.
    pub fn jump_back(&self, by: Duration) {
        self.moved().behind += by;
    }

    /// A suspend of the host: the wall clock and the monotonic clock (`CLOCK_BOOTTIME`) move on
    /// by `by`, tokio's timers (`CLOCK_MONOTONIC`) do not.
    pub fn suspend(&self, by: Duration) {
        self.moved().suspended += by;
    }
}

impl Clock for PausedClock {
    fn now(&self) -> SystemTime {
        let moved = self.moved();
        let t = self.base + self.start.elapsed() + moved.suspended + moved.ahead;
        t.checked_sub(moved.behind).unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn monotonic(&self) -> Mono {
        let since = PAUSED_MONO_ORIGIN + self.start.elapsed() + self.moved().suspended;
        Mono::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_clock_follows_tokio_time_and_its_clocks_diverge_both_ways() {
        let base = from_unix_seconds(1_704_164_645);
        let clock = PausedClock::starting_at(base);
        let start = clock.read();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now(), base + Duration::from_secs(3600));
        assert_eq!(start.mono.until(clock.monotonic()), Duration::from_secs(3600));
        let offset = clock.read().wall_offset();
        assert_eq!(offset, start.wall_offset(), "no step: the clocks keep their distance");
        // A step forward moves the wall clock alone.
        clock.jump(Duration::from_secs(60));
        assert_eq!(clock.now(), base + Duration::from_secs(3660));
        assert_eq!(start.mono.until(clock.monotonic()), Duration::from_secs(3600));
        assert_eq!(clock.read().wall_offset() - offset, 60_000_000_000);
        // A step back, past where it started: the wall clock is now behind.
        clock.jump_back(Duration::from_secs(180));
        assert_eq!(clock.now(), base + Duration::from_secs(3480));
        assert_eq!(clock.read().wall_offset() - offset, -120_000_000_000);
        // A suspend moves both clocks, and no timer.
        let before = tokio::time::Instant::now();
        clock.suspend(Duration::from_secs(600));
        assert_eq!(clock.now(), base + Duration::from_secs(4080));
        assert_eq!(start.mono.until(clock.monotonic()), Duration::from_secs(4200));
        assert_eq!(clock.read().wall_offset() - offset, -120_000_000_000, "a suspend is no step");
        assert_eq!(tokio::time::Instant::now(), before);
    }

    #[test]
    fn now_converts_between_the_clocks_either_way() {
        let now = Now { wall: from_unix_seconds(1_704_164_645), mono: Mono::from_nanos(5_000_000_000) };
        let ahead = now.wall + Duration::from_secs(3);
        assert_eq!(now.mono_at(ahead), Mono::from_nanos(8_000_000_000));
        assert_eq!(now.wall_at(Mono::from_nanos(8_000_000_000)), ahead);
        let behind = now.wall - Duration::from_secs(2);
        assert_eq!(now.mono_at(behind), Mono::from_nanos(3_000_000_000));
        assert_eq!(now.wall_at(Mono::from_nanos(3_000_000_000)), behind);
        // Before the origin: the earliest reading.
        assert_eq!(now.mono_at(now.wall - Duration::from_secs(60)), Mono::from_nanos(1));
        assert_eq!(Mono::from_nanos(0).nanos(), 1);
        assert_eq!(size_of::<Option<Mono>>(), 8);
    }

    #[test]
    fn the_system_clock_reads_boot_time_which_never_goes_back() {
        let a = SystemClock.monotonic();
        let b = SystemClock.monotonic();
        assert!(b >= a);
        assert!(a.nanos() > 0);
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
