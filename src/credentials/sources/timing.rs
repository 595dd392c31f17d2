//! When temporary keys are fetched again: the vendors' renewal margins, the file recheck
//! interval and the jitter in front of a refresh point.

use std::time::{Duration, SystemTime};

use crate::config::Vendor;

/// Alibaba SDKs treat temporary keys as stale this long before they expire.
pub(crate) const ALIBABA_RENEW_BEFORE: Duration = Duration::from_secs(15 * 60);
/// Tencent SDKs refresh this long before `ExpiredTime`.
pub(crate) const TENCENT_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Files (profiles, static keys) are re-read at least this often, so a rotated secret is picked up.
pub(crate) const FILE_RECHECK: Duration = Duration::from_secs(60);
/// The most jitter added in front of a refresh point.
pub(crate) const MAX_JITTER: Duration = Duration::from_secs(60);

/// How long before expiry the vendor's SDK renews temporary keys.
pub(crate) fn renew_before(vendor: Vendor) -> Duration {
    match vendor {
        Vendor::Alibaba => ALIBABA_RENEW_BEFORE,
        Vendor::Tencent => TENCENT_RENEW_BEFORE,
    }
}

/// When to fetch temporary keys again: `renew_before` ahead of `expires_at` (at most half their
/// lifetime, for short-lived keys), minus up to [`MAX_JITTER`] (at most a tenth of the lifetime)
/// scaled by `jitter` in [0, 1); never sooner than a second after `fetched_at`.
pub(crate) fn next_refresh(
    fetched_at: SystemTime,
    expires_at: SystemTime,
    renew_before: Duration,
    jitter: f64,
) -> SystemTime {
    let lifetime = expires_at.duration_since(fetched_at).unwrap_or_default();
    let ahead = renew_before.min(lifetime / 2);
    let spread = MAX_JITTER.min(lifetime / 10).mul_f64(jitter.clamp(0.0, 1.0));
    let at = expires_at - ahead - spread;
    at.max(fetched_at + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_points_keep_the_vendor_margin_and_stay_inside_short_lifetimes() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = t0 + Duration::from_secs(3600);
        // One hour of Alibaba keys: 15 minutes before, minus up to a minute of jitter.
        assert_eq!(next_refresh(t0, hour, ALIBABA_RENEW_BEFORE, 0.0), hour - ALIBABA_RENEW_BEFORE);
        assert_eq!(
            next_refresh(t0, hour, ALIBABA_RENEW_BEFORE, 0.5),
            hour - ALIBABA_RENEW_BEFORE - Duration::from_secs(30)
        );
        assert_eq!(next_refresh(t0, hour, TENCENT_RENEW_BEFORE, 0.0), hour - TENCENT_RENEW_BEFORE);
        // 30 s keys: half their life ahead, a tenth of it as jitter at most.
        let short = t0 + Duration::from_secs(30);
        assert_eq!(next_refresh(t0, short, ALIBABA_RENEW_BEFORE, 0.0), t0 + Duration::from_secs(15));
        assert_eq!(next_refresh(t0, short, ALIBABA_RENEW_BEFORE, 0.999_999).duration_since(t0).unwrap().as_secs(), 12);
        // Already expired: not sooner than a second later (no spinning).
        assert_eq!(next_refresh(t0, t0, ALIBABA_RENEW_BEFORE, 0.3), t0 + Duration::from_secs(1));
        for j in [0.0, 0.25, 0.5, 0.75, 0.99] {
            for life in [2u64, 30, 900, 3600, 43_200] {
                let exp = t0 + Duration::from_secs(life);
                let at = next_refresh(t0, exp, ALIBABA_RENEW_BEFORE, j);
                assert!(at > t0 && at < exp, "life {life} jitter {j}");
            }
        }
    }
}
