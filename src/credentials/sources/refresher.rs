//! Keeps fetched credential sets fresh: one task per set that is not resolved at start-up.
//!
//! Why a task of its own rather than entries in the scheduler's queue: credential fetches have
//! their own timing (the vendor's renew margin), their own failure handling, and feed many tickets
//! at once; the scheduler only needs to know "wait, keys are being replaced". So the refresher
//! marks a set as refreshing in the [`CredentialStore`] before each fetch, and every token call
//! the scheduler starts takes its keys through [`CredentialStore::fresh`], which waits for the
//! fetch to finish. Temporary keys always carry `expires_at`, and the scheduler caps each token by
//! it. Files (profiles, token files) are re-read at each fetch; keys from a profile are fetched
//! again when a profile file's modification time changes (checked every [`FILE_STAT_INTERVAL`], a
//! `stat`, no busy polling) and at least every [`FILE_RECHECK`], so a rotated secret is picked up
//! without a restart. Keys that a chain found in the environment cannot change while ticketd runs:
//! their task ends after the first fetch, so an idle daemon does not wake for them.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::answer::Watch;
use super::context::Context;
use super::dispatch::fetch_watched;
use super::timing::{FILE_RECHECK, next_refresh, renew_before};
use std::time::SystemTime;

use crate::clock::Clock;
use crate::config::{Config, CredentialSpec};
use crate::credentials::store::{CredentialStore, resolved_at_start};

/// A failed fetch is retried after 1, 2, 4 ... s, at most this long.
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(60);
/// How often the profile files of a set without expiry are `stat`ed for changes.
pub(crate) const FILE_STAT_INTERVAL: Duration = Duration::from_secs(5);

fn mtimes(files: &[std::path::PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

/// Start one refresh task per fetched set; they stop when `shutdown` is cancelled.
pub(crate) fn start(store: &CredentialStore, config: &Config, ctx: Context, shutdown: CancellationToken) {
    let ctx = ctx.with_store(store.clone());
    for spec in config.credentials.values().filter(|s| !resolved_at_start(&s.source)) {
        let (spec, store, ctx, shutdown) = (spec.clone(), store.clone(), ctx.clone(), shutdown.clone());
        tokio::spawn(async move {
            let run = || {
                let (store, spec, ctx) = (store.clone(), spec.clone(), ctx.clone());
                async move { keep_fresh(&store, &spec, &ctx).await }
            };
            supervised(&spec.name, &store, &shutdown, run).await;
        });
    }
}

/// Run the refresher `run` makes until `shutdown`. A run that ends by panicking (a bug) is
/// reported: logged, and recorded as a failed fetch of set `name`, so token calls waiting for its
/// keys go ahead with what is held and say why; a new run starts after [`MAX_RETRY`]. Without
/// this the set would stay "being fetched" and never be fetched again.
async fn supervised<F, Fut>(name: &str, store: &CredentialStore, shutdown: &CancellationToken, mut run: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let mut task = tokio::spawn(run());
        tokio::select! {
            () = shutdown.cancelled() => {
                task.abort();
                return;
            }
            ended = &mut task => match ended {
                Ok(()) => return,
                Err(_) => {
                    // Not the join error's text: a panic's message may quote what was being parsed.
                    tracing::error!(credentials = %name, retry_in = ?MAX_RETRY, "the credentials refresher failed (it panicked); starting it again");
                    store.fetch_failed(name, "the credentials refresher failed; it is started again".into());
                }
            },
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(MAX_RETRY) => {}
        }
    }
}

async fn keep_fresh(store: &CredentialStore, spec: &CredentialSpec, ctx: &Context) {
    let mut attempt: u32 = 0;
    let mut last_description = String::new();
    loop {
        store.begin_refresh(&spec.name);
        let fetched_at = ctx.clock.now();
        let (next, files) = match fetch_watched(spec, ctx).await {
            Ok((f, watch)) => {
                attempt = 0;
                let expires_at = f.credentials.expires_at;
                if f.description != last_description || expires_at.is_some() {
                    tracing::info!(
                        credentials = %spec.name,
                        source = %f.description,
                        expires_at = %expires_at.map(crate::clock::rfc3339).unwrap_or_else(|| "-".into()),
                        "fetched credentials"
                    );
                }
                last_description = f.description;
                store.store(&spec.name, f.credentials);
                match (expires_at, watch) {
                    // Temporary keys from a profile (a CLI RamRoleArn, OIDC ... mode) are fetched
                    // again before they expire, and at once when a profile file changes.
                    (Some(exp), watch) => {
                        let jitter = rand::rng().random::<f64>();
                        let files = match watch {
                            Watch::Files(files) => files,
                            Watch::Nothing | Watch::Service => Vec::new(),
                        };
                        (next_refresh(fetched_at, exp, renew_before(spec.vendor), jitter), files)
                    }
                    // Keys from the environment or the config: nothing changes them until a restart or
                    // reload (which starts a new refresher), so this task is done.
                    (None, Watch::Nothing) => return,
                    (None, Watch::Files(files)) => (fetched_at + FILE_RECHECK, files),
                    (None, Watch::Service) => (fetched_at + FILE_RECHECK, Vec::new()),
                }
            }
            Err(e) => {
                attempt += 1;
                let delay = Duration::from_secs(1u64 << attempt.min(6)).min(MAX_RETRY);
                tracing::warn!(credentials = %spec.name, error = %e, attempt, retry_in = ?delay, "cannot fetch credentials");
                store.fetch_failed(&spec.name, e.to_string());
                (ctx.clock.now() + delay, Vec::new())
            }
        };
        match wait_until(ctx.clock.as_ref(), next, &files).await {
            Woke::Due => {}
            Woke::FileChanged => {
                tracing::info!(credentials = %spec.name, "a credentials file changed; reading it again");
            }
            Woke::ClockStepped => {
                tracing::warn!(credentials = %spec.name, "the wall clock stepped; fetching the credentials again");
            }
        }
    }
}

/// Why [`wait_until`] returned.
#[derive(Debug, PartialEq, Eq)]
enum Woke {
    Due,
    FileChanged,
    ClockStepped,
}

/// The longest nap between two looks at the wall clock while waiting.
const CLOCK_RECHECK: Duration = Duration::from_secs(300);

/// Wait until the wall clock reads `next`, counted in monotonic time from now (a step of the wall
/// clock does not move the wait); return early when one of `files` changes, or when the wall
/// clock steps (looked at least every [`CLOCK_RECHECK`]): the wait was planned in the old frame.
async fn wait_until(clock: &dyn Clock, next: SystemTime, files: &[std::path::PathBuf]) -> Woke {
    let seen = mtimes(files);
    let start = clock.read();
    let due = start.mono_at(next);
    loop {
        let now = clock.read();
        if now.mono >= due {
            return Woke::Due;
        }
        if now.stepped_since(start) {
            return Woke::ClockStepped;
        }
        let most = if files.is_empty() { CLOCK_RECHECK } else { FILE_STAT_INTERVAL.min(CLOCK_RECHECK) };
        tokio::time::sleep(now.mono.until(due).min(most)).await;
        if !files.is_empty() && mtimes(files) != seen {
            return Woke::FileChanged;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn issue_16_a_refresh_wait_counts_in_monotonic_time_and_ends_when_the_wall_clock_steps() {
        use crate::clock::{Clock, PausedClock, from_unix_seconds};
        let hour = Duration::from_secs(3600);
        let clock = PausedClock::starting_at(from_unix_seconds(1_700_000_000));
        // No step: due after exactly an hour.
        let started = tokio::time::Instant::now();
        assert_eq!(wait_until(&clock, clock.now() + hour, &[]).await, Woke::Due);
        assert_eq!(started.elapsed(), hour);
        // The wall clock set back 30 minutes 10 s in: not 90 minutes of waiting, but a fetch
        // within CLOCK_RECHECK of the step (it was planned in the old frame).
        let started = tokio::time::Instant::now();
        let next = clock.now() + hour;
        let stepper = clock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            stepper.jump_back(hour / 2);
        });
        assert_eq!(wait_until(&clock, next, &[]).await, Woke::ClockStepped);
        assert!(started.elapsed() <= Duration::from_secs(10) + CLOCK_RECHECK, "{:?}", started.elapsed());
        // Forward: the same.
        let next = clock.now() + hour;
        let stepper = clock.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            stepper.jump(hour / 2);
        });
        assert_eq!(wait_until(&clock, next, &[]).await, Woke::ClockStepped);
    }

    #[tokio::test(start_paused = true)]
    async fn issue_16_a_refresher_that_panics_is_reported_and_started_again() {
        let store = CredentialStore::default();
        store.begin_refresh("sts");
        let runs = Arc::new(AtomicU32::new(0));
        let shutdown = CancellationToken::new();
        let counted = runs.clone();
        let run = move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("a source bug (test)");
                }
                std::future::pending::<()>().await
            }
        };
        let (s, stop) = (store.clone(), shutdown.clone());
        let supervisor = tokio::spawn(async move { supervised("sts", &s, &stop, run).await });
        // Waiting calls are let go at once with the reason, not after their whole wait.
        let clock = crate::clock::PausedClock::starting_at(crate::clock::from_unix_seconds(1_700_000_000));
        let started = tokio::time::Instant::now();
        let err = store.fresh("sts", &clock, Duration::from_secs(600)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(err.to_string().contains("the credentials refresher failed"), "{err}");
        tokio::time::sleep(3 * MAX_RETRY).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "started again after each panic");
        shutdown.cancel();
        supervisor.await.unwrap();
    }
}
