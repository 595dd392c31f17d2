//! The file-descriptor budget: at start, the soft `RLIMIT_NOFILE` is raised to the hard limit,
//! and what the limit then allows is shared out once: a reserve that only sink writes, state
//! saves, cloud calls and hooks draw on, and a connection cap for each listener.
//!
//! Connections are the one thing outsiders can multiply, so they get a fixed share and nothing
//! more; a connection beyond its listener's cap is closed as soon as it is accepted
//! (by the listeners' server loop). Whatever clients do, at least `FdBudget::reserve` descriptors stay free
//! for the daemon's own work. The formula, from the effective soft limit `L`:
//!
//! ```text
//! reserve     = max(MIN_RESERVE, L / 4)
//! connections = (L - BASELINE - reserve) / FDS_PER_CONNECTION           (shared by the listeners)
//! metrics cap = clamp(connections / 8, MIN_CONNECTIONS, MAX_METRICS_CONNECTIONS)  (if metrics_listen)
//! socket cap  = clamp(connections - metrics cap, MIN_CONNECTIONS, MAX_SOCKET_CONNECTIONS)
//! ```
//!
//! At systemd's default soft limit of 1,024: a reserve of 256, 44 metrics and 308 socket
//! connections (704 descriptors at two each), and 64 for the baseline.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors the process holds whatever it does: the standard streams, the runtime's epoll and
/// wake-up fds, the listeners, the state lock and directory, log files, and the one descriptor
/// each accept loop holds for an instant while it closes a refused connection.
pub(crate) const BASELINE: u64 = 64;
/// The least reserve: the scheduler's 64 cloud calls in flight, of one socket each (plus
/// the client's idle pooled connections and DNS lookups), a state save (temp file, directory,
/// lock: 3), sink writes (temp file and directory: 2 each), and hooks (3 pipes each).
pub(crate) const MIN_RESERVE: u64 = 256;
/// Each connection is counted as two descriptors: its socket, and one file a request may open
/// while it is answered (`/metrics` reads `/proc/self/stat`, `/proc/self/fd` one at a time).
pub(crate) const FDS_PER_CONNECTION: u64 = 2;
/// The socket API never serves more than this many connections at once, however high the limit.
pub(crate) const MAX_SOCKET_CONNECTIONS: usize = 4096;
/// Scrapers and probes are few: the metrics listener serves at most this many at once.
pub(crate) const MAX_METRICS_CONNECTIONS: usize = 64;
/// Each listener keeps at least this many, even under a limit too small for the formula (then the
/// reserve shrinks, and a warning says so).
pub(crate) const MIN_CONNECTIONS: usize = 4;

/// How the descriptors are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdBudget {
    /// The effective soft limit.
    pub(crate) limit: u64,
    /// Descriptors no connection may use.
    pub(crate) reserve: u64,
    pub(crate) socket_connections: usize,
    /// 0 without `metrics_listen`.
    pub(crate) metrics_connections: usize,
}

impl FdBudget {
    /// The budget for a soft limit of `limit` descriptors, with or without the metrics listener.
    pub(crate) fn for_limit(limit: u64, metrics_listen: bool) -> FdBudget {
        let reserve = MIN_RESERVE.max(limit / 4);
        let connections = limit.saturating_sub(BASELINE + reserve) / FDS_PER_CONNECTION;
        let connections = usize::try_from(connections).unwrap_or(usize::MAX);
        let metrics_connections =
            if metrics_listen { (connections / 8).clamp(MIN_CONNECTIONS, MAX_METRICS_CONNECTIONS) } else { 0 };
        let socket_connections =
            connections.saturating_sub(metrics_connections).clamp(MIN_CONNECTIONS, MAX_SOCKET_CONNECTIONS);
        FdBudget { limit, reserve, socket_connections, metrics_connections }
    }

    /// Whether the limit is too small to keep the whole reserve beside the smallest caps.
    pub(crate) fn is_short(&self) -> bool {
        let connections = (self.socket_connections + self.metrics_connections) as u64;
        BASELINE + self.reserve + connections * FDS_PER_CONNECTION > self.limit
    }
}

/// What [`raise_soft_limit`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdLimit {
    /// The soft limit now in effect.
    pub(crate) soft: u64,
    /// The soft limit before.
    pub(crate) was: u64,
    pub(crate) hard: u64,
    /// Why the soft limit could not be raised (it stays at `was`).
    pub(crate) refused: Option<rustix::io::Errno>,
}

/// An unlimited value (none on Linux for descriptors, in practice) counts as this.
const UNLIMITED: u64 = 1 << 20;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (allowed to any process). Under a sandbox that
/// forbids it, the limit stays as it is, which the caller logs: then `LimitNOFILE=` (systemd) or
/// `ulimit -n` must set it.
pub(crate) fn raise_soft_limit() -> FdLimit {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let was = current.unwrap_or(UNLIMITED);
    let hard = maximum.unwrap_or(UNLIMITED);
    if was >= hard {
        return FdLimit { soft: was, was, hard, refused: None };
    }
    match setrlimit(Resource::Nofile, Rlimit { current: maximum, maximum }) {
        Ok(()) => {
            let soft = getrlimit(Resource::Nofile).current.unwrap_or(UNLIMITED);
            FdLimit { soft, was, hard, refused: None }
        }
        Err(e) => FdLimit { soft: was, was, hard, refused: Some(e) },
    }
}

/// Raise the limit, share it out, and say so in the log.
pub(crate) fn at_start(metrics_listen: bool) -> FdBudget {
    let limit = raise_soft_limit();
    let budget = FdBudget::for_limit(limit.soft, metrics_listen);
    match limit.refused {
        None => tracing::info!(
            soft = limit.soft,
            was = limit.was,
            hard = limit.hard,
            reserve = budget.reserve,
            socket_connections = budget.socket_connections,
            metrics_connections = budget.metrics_connections,
            "file descriptor limit and budget"
        ),
        Some(e) => tracing::warn!(
            soft = limit.soft,
            hard = limit.hard,
            error = %e,
            reserve = budget.reserve,
            socket_connections = budget.socket_connections,
            metrics_connections = budget.metrics_connections,
            "cannot raise the soft file descriptor limit to the hard one; set LimitNOFILE= (systemd) or ulimit -n"
        ),
    }
    if budget.is_short() {
        tracing::warn!(
            soft = limit.soft,
            "the file descriptor limit is too small for the connection caps and the reserve; raise it"
        );
    }
    budget
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemds_default_soft_limit_keeps_a_quarter_in_reserve() {
        let b = FdBudget::for_limit(1024, true);
        assert_eq!((b.reserve, b.metrics_connections, b.socket_connections), (256, 44, 308));
        assert!(!b.is_short());
        let used = BASELINE + b.reserve + (b.socket_connections + b.metrics_connections) as u64 * FDS_PER_CONNECTION;
        assert!(used <= 1024, "{used}");
        // Without the metrics listener the socket takes its share.
        assert_eq!(FdBudget::for_limit(1024, false).socket_connections, 352);
    }

    #[test]
    fn a_high_limit_is_capped_and_a_tiny_one_keeps_the_minimum() {
        let b = FdBudget::for_limit(524_288, true);
        assert_eq!((b.socket_connections, b.metrics_connections, b.reserve), (4096, 64, 131_072));
        let tiny = FdBudget::for_limit(128, true);
        assert_eq!((tiny.socket_connections, tiny.metrics_connections), (MIN_CONNECTIONS, MIN_CONNECTIONS));
        assert!(tiny.is_short());
    }

    #[test]
    fn every_limit_leaves_the_reserve_free() {
        for limit in (400..70_000).step_by(97) {
            for metrics in [false, true] {
                let b = FdBudget::for_limit(limit, metrics);
                let connections = (b.socket_connections + b.metrics_connections) as u64;
                assert!(BASELINE + b.reserve + connections * FDS_PER_CONNECTION <= limit, "{limit}: {b:?}");
                assert!(b.reserve >= MIN_RESERVE && b.reserve >= limit / 4);
            }
        }
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let limit = raise_soft_limit();
        assert!(limit.refused.is_none(), "{limit:?}");
        assert_eq!(limit.soft, limit.hard);
        assert_eq!(getrlimit(Resource::Nofile).current.unwrap_or(UNLIMITED), limit.hard);
    }
}
