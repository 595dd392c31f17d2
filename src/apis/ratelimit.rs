//! Spacing calls per key (endpoint) so that an API's request-rate limit is never exceeded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// At most one call per `interval` per key; callers beyond that wait their turn, in order.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// At most `n` calls per second per key.
    pub(crate) fn per_second(n: u32) -> Self {
        RateLimiter { interval: Duration::from_secs(1) / n.max(1), next: Mutex::new(HashMap::new()) }
    }

    /// Wait until a call to `key` may be made, and take that slot.
    pub(crate) async fn acquire(&self, key: &str) {
        let slot = {
            let mut next = self.next.lock().expect("rate limiter lock");
            let now = Instant::now();
            // Forget idle keys so the map does not grow with every endpoint ever seen.
            next.retain(|_, t| *t > now);
            let slot = next.get(key).copied().unwrap_or(now).max(now);
            next.insert(key.to_string(), slot + self.interval);
            (slot > now).then_some(slot)
        };
        // A free slot is taken at once: a timer, even one already due, waits for the next
        // millisecond tick of tokio's timer wheel.
        if let Some(slot) = slot {
            tokio::time::sleep_until(slot).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_per_key_and_keys_are_independent() {
        let limiter = RateLimiter::per_second(100);
        let start = Instant::now();
        for _ in 0..250 {
            limiter.acquire("tcr.tencentcloudapi.com").await;
        }
        // 250 calls at 100/s: the last starts 2.49 s after the first.
        assert_eq!(start.elapsed(), Duration::from_millis(2490));
        let other = Instant::now();
        limiter.acquire("tcr.intl.tencentcloudapi.com").await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_never_exceed_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::per_second(100));
        let start = Instant::now();
        let tasks: Vec<_> = (0..300)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    l.acquire("e").await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        for window in times.windows(101) {
            assert!(window[100] - window[0] >= Duration::from_secs(1), "more than 100 calls within a second");
        }
        assert!(*times.last().unwrap() - start <= Duration::from_millis(2990));
    }
}
