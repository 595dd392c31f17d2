//! When the heap's free pages go back to the system: once a burst of frees is over, on a thread of its own.
//!
//! The binary's allocator ([`crate::secret::ZeroOnFree`]) only counts here the bytes it frees
//! ([`freed`]: one atomic add, no lock, no allocation). A thread of its own (started with the
//! first secret, [`start`]) watches the count in windows of [`QUIET`] and trims the heap
//! (`malloc_trim`, handed in by the allocator's module, the only one with unsafe code) when a
//! window freed less than [`QUIET_BYTES`] (the burst is over: the last save of a refresh wave,
//! the end of a scrape) after at least [`MIN_TRIM`] were freed, or, during a long burst, once
//! [`TRIM_AFTER`] bytes were freed since the last trim (at most once a window). So no caller asks
//! for it, no thread that frees pays for it (a trim walks the whole heap, under the heap's one
//! lock), and an idle daemon, which frees nothing, wakes nothing: the thread sleeps until the
//! first free after its last look.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;

/// The frees are watched in windows of this long.
pub(crate) const QUIET: Duration = Duration::from_millis(500);
/// A window that freed less than this ends a burst (a trickle of small frees, such as a reader
/// polling a socket, does not keep a burst going).
pub(crate) const QUIET_BYTES: usize = 64 * 1024;
/// A burst that freed less than this in all is not worth a trim: the count starts again.
pub(crate) const MIN_TRIM: usize = 256 * 1024;
/// During a burst longer than a window, the heap is trimmed once this much was freed since the
/// last trim (at most once a window).
pub const TRIM_AFTER: usize = 8 * 1024 * 1024;

/// Bytes freed since the heap was last trimmed.
static FREED: AtomicUsize = AtomicUsize::new(0);
/// The trimming thread (`None`: it could not be started, and frees trim the heap themselves).
static TRIMMER: OnceLock<Option<Thread>> = OnceLock::new();

/// Count `bytes` just freed. Called by the allocator on every free: it allocates nothing and
/// takes no lock. `true` when the caller must trim the heap itself: no trimming thread runs (a
/// process that made no secret, or could not start it) and [`TRIM_AFTER`] bytes were freed.
pub(crate) fn freed(bytes: usize) -> bool {
    let before = FREED.fetch_add(bytes, Ordering::Relaxed);
    match TRIMMER.get() {
        // The first free since the last trim wakes the thread (it sleeps until then).
        Some(Some(thread)) => {
            if before == 0 {
                thread.unpark();
            }
            false
        }
        _ => before + bytes >= TRIM_AFTER && FREED.swap(0, Ordering::Relaxed) > 0,
    }
}

/// Start the trimming thread once (later calls do nothing); `trim` gives the heap's free pages
/// back. If the thread cannot be started, frees trim the heap themselves (see [`freed`]).
pub(crate) fn start(trim: fn()) {
    TRIMMER.get_or_init(|| {
        let thread =
            std::thread::Builder::new().name("heap-trim".into()).stack_size(64 * 1024).spawn(move || run(trim));
        thread.ok().map(|t| t.thread().clone())
    });
}

/// What the trimming thread does after watching a window.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) enum Next {
    /// Nothing freed since the last trim: sleep until the next free.
    Sleep,
    /// Trim the heap now.
    Trim,
    /// The burst is over but freed too little to trim for: forget it and sleep.
    Forget,
    /// Frees go on: watch another window.
    Watch,
}

/// The decision after a window that began with `before` and ended with `after` bytes freed since
/// the last trim.
pub(crate) fn next(before: usize, after: usize) -> Next {
    let quiet = after.saturating_sub(before) < QUIET_BYTES;
    if after == 0 {
        Next::Sleep
    } else if after >= TRIM_AFTER || (quiet && after >= MIN_TRIM) {
        Next::Trim
    } else if quiet {
        Next::Forget
    } else {
        Next::Watch
    }
}

fn run(trim: fn()) {
    loop {
        // A free that comes between this look and `park` unparks it first: `park` returns.
        while FREED.load(Ordering::Relaxed) == 0 {
            std::thread::park();
        }
        let mut before = FREED.load(Ordering::Relaxed);
        loop {
            std::thread::sleep(QUIET);
            let after = FREED.load(Ordering::Relaxed);
            match next(before, after) {
                Next::Sleep => break,
                Next::Watch => before = after,
                Next::Trim | Next::Forget => {
                    if next(before, after) == Next::Trim {
                        trim();
                    }
                    // What was freed since `after` was read stays counted, for the next one.
                    FREED.fetch_sub(after, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_is_trimmed_once_frees_stop_or_a_long_burst_freed_enough() {
        assert_eq!(next(0, 0), Next::Sleep, "nothing freed since the last look");
        assert_eq!(next(MIN_TRIM, MIN_TRIM), Next::Trim, "a window with no free ends the burst");
        assert_eq!(next(MIN_TRIM, MIN_TRIM + QUIET_BYTES - 1), Next::Trim, "nor does a trickle keep it going");
        assert_eq!(next(MIN_TRIM, MIN_TRIM + QUIET_BYTES), Next::Watch, "frees go on, below the threshold");
        assert_eq!(next(0, TRIM_AFTER - 1), Next::Watch);
        assert_eq!(next(TRIM_AFTER - 1, TRIM_AFTER), Next::Trim, "a long burst is trimmed every TRIM_AFTER");
        assert_eq!(next(0, TRIM_AFTER), Next::Trim);
        assert_eq!(next(4096, 4096), Next::Forget, "a burst too small to trim for is forgotten");
        assert_eq!(next(0, QUIET_BYTES - 1), Next::Forget);
    }
}
