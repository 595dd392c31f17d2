//! The TCP metrics listener (`metrics_listen`): `/metrics` for Prometheus, the probes (`/healthz`,
//! `/readyz`) for HTTP health checks such as Kubernetes'. Never a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use crate::api::serve::Limits;
use crate::board::Board;
use crate::clock::Clock;
use crate::cluster::view::ClusterView;

/// The TCP metrics listener (`metrics_listen`): `GET /metrics`, plus `/healthz` and `/readyz`
/// (as on the socket) for HTTP probes such as Kubernetes'.
pub(crate) struct MetricsServer {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// `task` has ended (see [`MetricsServer::ended`]).
    ended: bool,
}

impl MetricsServer {
    /// Listen on `addr` and serve within `limits` (its connection cap comes from the
    /// [`crate::fd_budget::FdBudget`]; it is open to whoever can reach the address).
    pub(crate) async fn start(
        addr: SocketAddr,
        board: Arc<Board>,
        clock: Arc<dyn Clock>,
        limits: Limits,
        ticket_series: Arc<AtomicUsize>,
        cluster: Option<Arc<ClusterView>>,
    ) -> std::io::Result<MetricsServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (ready, metrics_clock) = (board.clone(), clock.clone());
        let app = axum::Router::new()
            .route("/healthz", axum::routing::get(crate::api::probes::healthz))
            .route(
                "/readyz",
                axum::routing::get(move || async move { crate::api::probes::readyz(&ready, &*clock).await }),
            )
            .route(
                "/metrics",
                axum::routing::get(move |headers: axum::http::HeaderMap| async move {
                    // Sinks being written now: the scrape shows what they hold.
                    board.settle_writes(None, crate::board::WRITE_WAIT).await;
                    let limit = ticket_series.load(Ordering::Relaxed);
                    crate::api::metrics::response(&board, metrics_clock.read(), &headers, limit, cluster.as_deref())
                }),
            )
            .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "not found; try /metrics or /readyz\n") });
        let stop = CancellationToken::new();
        let task = tokio::spawn(crate::api::serve::serve(listener, limits, app, |_| Ok(()), stop.clone()));
        tracing::info!(listen = %local_addr, max_connections = limits.max_connections, "serving metrics");
        Ok(MetricsServer { stop, task, ended: false })
    }

    /// Resolves only if serving stopped before [`stop`](Self::stop) was called (a bug: it
    /// panicked), so the daemon can report it rather than run on without it.
    pub(crate) async fn ended(&mut self) {
        if self.ended {
            return std::future::pending().await;
        }
        let _ = (&mut self.task).await;
        self.ended = true;
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        if !self.ended {
            let _ = self.task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn issue_16_a_server_task_that_dies_is_noticed_and_stop_still_works() {
        let server = |task| MetricsServer { stop: CancellationToken::new(), task, ended: false };
        let mut dead = server(tokio::spawn(async { panic!("a serving bug (test)") }));
        let noticed = tokio::time::timeout(std::time::Duration::from_secs(5), dead.ended()).await;
        assert!(noticed.is_ok(), "a dead server task is noticed");
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), dead.ended()).await;
        assert!(again.is_err(), "and only once (then it waits for ever, like a live one)");
        dead.stop().await;
        let mut alive = server(tokio::spawn(std::future::pending()));
        let noticed = tokio::time::timeout(std::time::Duration::from_secs(60), alive.ended()).await;
        assert!(noticed.is_err(), "a live server is not reported");
        alive.task.abort();
        alive.stop().await;
    }
}
