//! Running the daemon: its parts wired, then the one loop that reacts to control messages.
//!
//! It builds config, credentials, state and scheduler; the loop handles shutdown, and reload
//! (validated aside, applied as a diff, or refused whole).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::api::serve::Limits;
use crate::api::{ApiServer, MetricsServer};
use crate::apis::{CloudProvider, Provider};
use crate::board::Board;
use crate::clock::Clock;
use crate::cluster::view::ClusterView;
use crate::config::{self, Config};
use crate::control::Control;
use crate::credentials::CredentialStore;
use crate::credentials::Environment;
use crate::scheduler::{Command, Event, Parts, ReloadSummary, Scheduler};
use crate::store::FileStore;
use crate::systemd;

mod error;
pub(crate) mod fleet;
pub(crate) use error::{DaemonError, ReloadError, TaskEnd};

/// A daemon ready to run: state locked and loaded, credentials resolved, scheduler planned.
pub(crate) struct Daemon {
    /// The running configuration, without its tickets: the scheduler owns those.
    config: Config,
    scheduler: Scheduler,
    board: Arc<Board>,
    clock: Arc<dyn Clock>,
    changes: mpsc::UnboundedReceiver<crate::sinks::notify::Changed>,
    /// Shared with the scheduler; the refresher keeps fetched sets in it fresh.
    credentials: CredentialStore,
    sources: crate::credentials::sources::Context,
    /// Shared with the scheduler; the revoker deletes superseded TCR long-term tokens with it.
    provider: Arc<dyn Provider>,
    _state_dir: Arc<FileStore>,
    /// The fleet's view from this node, which `GET /v1/cluster`, `ticketd status` and the
    /// `ticketd_cluster_*` metrics show; the fleet backend sets it when the config has `[cluster]`
    /// ([`Daemon::set_cluster_view`]). `None`: this node runs alone.
    cluster: Option<Arc<ClusterView>>,
    /// This node's fleet (`[cluster]`), whose task [`Daemon::run`] starts beside the scheduler.
    fleet: Option<fleet::Fleet>,
}

/// How `run --once` ended, per ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OnceReport {
    pub ok: Vec<String>,
    /// Tickets without a valid token, with the last error.
    pub failed: Vec<(String, String)>,
    /// Replaced TCR long-term tokens not revoked in this run (still active), each with its ticket,
    /// `TokenId` and the last error (none: not tried, or waiting for its sinks). They stay in the
    /// state file; the next run (or the daemon) retries them. They do not fail the run: every
    /// consumer got its token.
    pub revocations_pending: Vec<(String, String, Option<String>)>,
}

impl Daemon {
    /// Prepare to run `config` against the real clouds.
    pub(crate) fn prepare(config: Config, env: &dyn Environment, clock: Arc<dyn Clock>) -> Result<Daemon, DaemonError> {
        let provider = Arc::new(CloudProvider::with_limits(clock.clone(), config.rate_limits));
        Daemon::with_provider(config, env, clock, provider)
    }

    /// Prepare with any provider (tests, benchmarks).
    pub(crate) fn with_provider(
        mut config: Config,
        env: &dyn Environment,
        clock: Arc<dyn Clock>,
        provider: Arc<dyn Provider>,
    ) -> Result<Daemon, DaemonError> {
        let credentials = CredentialStore::resolve_all(&config, env).map_err(DaemonError::Credentials)?;
        if let Some(warning) = config.static_keys_warning() {
            tracing::warn!("{warning}");
        }
        // [cluster]: its password, key and TLS files, checked before anything is opened.
        let fleet = fleet::Fleet::prepare(&config, env)?;
        let sources = crate::credentials::sources::Context::for_config(&config, env, clock.clone());
        let state_dir = Arc::new(FileStore::open(&config.state_dir)?);
        // Resolve and hold every sink's directory now, refusing one another user could change, and
        // clear the temp files a crash mid-write leaves beside a sink (never a partial sink).
        crate::sinks::open_dirs(config.tickets.iter().flat_map(|t| &t.sinks), true)?;
        let board = Arc::new(Board::default());
        let (changed, changes) = mpsc::unbounded_channel();
        let parts = Parts {
            clock: clock.clone(),
            provider: provider.clone(),
            credentials: credentials.clone(),
            store: state_dir.clone(),
            board: board.clone(),
            watchdog: systemd::watchdog(),
            changed: Some(changed),
            seed: rand::random(),
            fleet: fleet.as_ref().map(fleet::Fleet::link),
        };
        let count = config.tickets.len();
        // The scheduler owns the tickets from here; the daemon keeps the rest of the config.
        // The saved state is read record by record into the scheduler's board (never whole).
        let (scheduler, set_aside) =
            Scheduler::restore(parts, std::mem::take(&mut config.tickets), state_dir.as_ref())?;
        if let Some((aside, why)) = &set_aside {
            tracing::error!(
                moved_to = %aside.display(),
                reason = %why,
                "the state file was corrupt; it was moved aside and tickets will be obtained anew"
            );
        }
        tracing::info!(tickets = count, state = %state_dir.path().display(), "ticketd started");
        Ok(Daemon {
            config,
            scheduler,
            board,
            clock,
            changes,
            credentials,
            sources,
            provider,
            _state_dir: state_dir,
            cluster: fleet.as_ref().map(fleet::Fleet::view),
            fleet,
        })
    }

    pub(crate) fn events(&self) -> broadcast::Receiver<Event> {
        self.scheduler.events()
    }

    /// Show `view` on the socket API (`GET /v1/cluster`) and in the metrics from [`Daemon::run`] on
    /// (the fleet backend, whose election and watch keep it current).
    #[expect(dead_code, reason = "the fleet runtime (#19) calls it: delete this line then")]
    pub(crate) fn set_cluster_view(&mut self, view: Arc<ClusterView>) {
        self.cluster = Some(view);
    }

    /// Run until a shutdown control arrives (or the control channel closes), then finish in-flight
    /// work, save state and return. `env` is read again on reload.
    pub(crate) async fn run(
        self,
        mut control: mpsc::UnboundedReceiver<Control>,
        env: &dyn Environment,
    ) -> Result<(), DaemonError> {
        let cluster = self.cluster.clone();
        // `_state_dir` (the state directory, held) stays in `self` until `run` returns.
        let Daemon { mut config, scheduler, board, clock, changes, credentials, sources, provider, fleet, .. } = self;
        // Before any listener: the soft fd limit goes up to the hard one, and the connection caps
        // leave a reserve for sinks, state saves and cloud calls.
        let budget = crate::fd_budget::at_start(config.metrics_listen.is_some());
        // The reserve is at least one descriptor for each cloud call in flight, whatever the limit.
        const _: () = assert!(crate::fd_budget::MIN_RESERVE >= crate::scheduler::MAX_IN_FLIGHT as u64);
        // Read by each scrape; a reload changes it.
        let ticket_series = Arc::new(std::sync::atomic::AtomicUsize::new(config.metrics_ticket_series));
        warn_if_series_hidden(&config, board.table().len());
        let mut api = match &config.socket {
            Some(spec) => {
                let limits = Limits::new("socket", budget.socket_connections);
                let series = ticket_series.clone();
                Some(ApiServer::start(spec, board.clone(), clock.clone(), limits, series, cluster.clone()).await?)
            }
            None => None,
        };
        let mut metrics = match config.metrics_listen {
            Some(addr) => Some(
                MetricsServer::start(
                    addr,
                    board.clone(),
                    clock.clone(),
                    Limits::new("metrics_listen", budget.metrics_connections),
                    ticket_series.clone(),
                    cluster.clone(),
                )
                .await
                .map_err(|source| DaemonError::Metrics { addr, source })?,
            ),
            None => None,
        };
        let mut hooks = tokio::spawn(crate::sinks::notify::run_hooks(changes));
        let shutdown = CancellationToken::new();
        let mut refresher = shutdown.child_token();
        crate::credentials::sources::refresher::start(&credentials, &config, sources, refresher.clone());
        let (commands, command_rx) = mpsc::unbounded_channel();
        let mut scheduler = tokio::spawn(scheduler.run(shutdown.child_token(), command_rx));
        let mut fleet = fleet.map(|fleet| fleet.start(commands.clone()));
        let mut revoker = tokio::spawn(crate::revocation::run(
            board.clone(),
            provider,
            credentials.clone(),
            clock.clone(),
            shutdown.child_token(),
        ));
        let mut notifier = tokio::spawn(systemd::follow(board.clone(), clock.clone()));
        // A reload runs beside the loop, so a stop request is handled at once even while the
        // config is being read (a slow disk, a hung network mount).
        let mut reloading: Option<Pin<Box<dyn Future<Output = Reloaded> + '_>>> = None;
        let mut reload_again = false;
        // None of these ends while the daemon runs; one that does (a panic) is reported, and the
        // daemon stops with an error rather than run on with tokens no longer refreshed, hooks
        // no longer run, readiness no longer told, or the socket or metrics no longer served.
        let mut died = None;
        loop {
            tokio::select! {
                ended = &mut scheduler => {
                    if let Err(e) = ended {
                        tracing::error!(error = %describe(&e), "the scheduler task failed");
                    }
                    died = Some("scheduler");
                    break;
                }
                _ = &mut hooks => { died = Some("on_change hook"); break }
                _ = &mut revoker => { died = Some("revocation"); break }
                () = async { match api.as_mut() { Some(api) => api.ended().await, None => std::future::pending().await } } => {
                    died = Some("socket API");
                    break;
                }
                () = async { match metrics.as_mut() { Some(m) => m.ended().await, None => std::future::pending().await } } => {
                    died = Some("metrics listener");
                    break;
                }
                _ = &mut notifier => { died = Some("systemd notifier"); break }
                () = async { match fleet.as_mut() { Some(f) => f.ended().await, None => std::future::pending().await } } => {
                    died = Some("fleet");
                    break;
                }
                message = control.recv() => match message {
                    None | Some(Control::Shutdown) => break,
                    Some(Control::Reload) if reloading.is_some() => {
                        tracing::info!("a reload is under way; another one follows it");
                        reload_again = true;
                    }
                    Some(Control::Reload) => {
                        systemd::reloading();
                        reloading = Some(Box::pin(reload(config.clone(), env, commands.clone())));
                    }
                },
                outcome = async { reloading.as_mut().expect("guarded by the branch condition").await }, if reloading.is_some() => {
                    reloading = None;
                    match outcome {
                        Ok((next, summary)) => {
                            if next.socket != config.socket {
                                tracing::warn!("socket settings changed; they take effect at the next restart");
                            }
                            if next.metrics_listen != config.metrics_listen {
                                tracing::warn!("metrics_listen changed; it takes effect at the next restart");
                            }
                            ticket_series.store(next.metrics_ticket_series, std::sync::atomic::Ordering::Relaxed);
                            warn_if_series_hidden(&next, board.table().len());
                            if next.core_dumps != config.core_dumps {
                                match crate::secret::set_core_dumps(next.core_dumps) {
                                    Ok(()) => tracing::info!(core_dumps = next.core_dumps, "core dumps setting changed"),
                                    Err(e) => tracing::error!(error = %e, "cannot change whether core dumps are allowed"),
                                }
                            }
                            if next.rate_limits != config.rate_limits {
                                tracing::warn!("rate_limits changed; they take effect at the next restart");
                            }
                            tracing::info!(
                                added = ?summary.added,
                                removed = ?summary.removed,
                                changed = ?summary.changed,
                                replaced = ?summary.replaced,
                                unchanged = summary.unchanged,
                                "reloaded the configuration"
                            );
                            if next.credentials != config.credentials {
                                refresher.cancel();
                                refresher = shutdown.child_token();
                                let sources = crate::credentials::sources::Context::for_config(&next, env, clock.clone());
                                crate::credentials::sources::refresher::start(&credentials, &next, sources, refresher.clone());
                            }
                            config = next;
                        }
                        Err(e) => {
                            tracing::error!("reload refused, the running configuration stays: {e}");
                        }
                    }
                    systemd::reloaded(&systemd::status_line(&board, clock.read()));
                    if std::mem::take(&mut reload_again) {
                        systemd::reloading();
                        reloading = Some(Box::pin(reload(config.clone(), env, commands.clone())));
                    }
                }
            }
        }
        drop(reloading);
        if let Some(task) = died {
            tracing::error!(task, "a task ticketd cannot run without stopped unexpectedly (a bug); stopping");
        }
        tracing::info!("stopping: finishing writes and saving state");
        systemd::stopping();
        shutdown.cancel();
        if died != Some("scheduler")
            && let Err(e) = scheduler.await
        {
            tracing::error!(error = %describe(&e), "the scheduler task failed");
            died = Some("scheduler");
        }
        // After the scheduler: its last fenced writes are in; the lease goes, another node leads.
        if let Some(fleet) = fleet {
            fleet.stop().await;
        }
        notifier.abort();
        hooks.abort();
        revoker.abort();
        if let Some(api) = api {
            api.stop().await;
        }
        if let Some(metrics) = metrics {
            metrics.stop().await;
        }
        tracing::info!("stopped");
        died.map_or(Ok(()), |task| Err(DaemonError::TaskDied(task)))
    }

    /// Obtain every token and write every sink, then stop (`run --once`). A saved token that is
    /// still valid and not yet due is written as it is. `limit` bounds the whole run.
    pub(crate) async fn run_once(self, limit: Duration) -> OnceReport {
        let Daemon { scheduler, board, clock, credentials, sources, config, provider, changes, fleet, .. } = self;
        // One-shot runs no hooks: a revocation waiting for one is due once the sinks hold its
        // successor (the loop is told at once that no hook will run).
        drop(changes);
        let started = tokio::time::Instant::now();
        let refresher = CancellationToken::new();
        let _stop_refresher = refresher.clone().drop_guard();
        crate::credentials::sources::refresher::start(&credentials, &config, sources, refresher);
        let shutdown = CancellationToken::new();
        let (commands, command_rx) = mpsc::unbounded_channel();
        let mut task = tokio::spawn(scheduler.run(shutdown.child_token(), command_rx));
        // A fleet node takes what etcd holds (a follower) or refreshes for the fleet (the leader).
        let fleet = fleet.map(|fleet| fleet.start(commands));
        let mut changes = board.subscribe();
        let settled = |board: &Board| {
            let now = clock.read();
            board.read(|table| {
                table.tickets().all(|t| {
                    let written = t.valid(now).is_some() && t.next_at(now).is_some_and(|at| at > now.wall);
                    // A sink that cannot be written fails the run at once, with its error.
                    written || t.failures() > 0 || t.publish_failures() > 0
                })
            })
        };
        let wait = async {
            while !settled(&board) {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        };
        let mut died = false;
        tokio::select! {
            settled = tokio::time::timeout(limit, wait) => if settled.is_err() {
                tracing::error!(limit = %humantime::format_duration(limit), "--once: not every ticket settled in time");
            },
            // The scheduler never ends on its own: it failed, and no ticket will settle.
            ended = &mut task => {
                died = true;
                tracing::error!(error = %ended.err().as_ref().map_or_else(|| "it stopped early".into(), describe), "the scheduler task failed");
            }
        }
        // Replaced long-term tokens, while the loop still runs: it saves what is left when it stops.
        let deadline = (started + limit).min(tokio::time::Instant::now() + crate::revocation::ONCE_LIMIT);
        let pending = if !died && !board.revocations().is_empty() && deadline > tokio::time::Instant::now() {
            crate::revocation::once(&board, provider.as_ref(), &credentials, clock.as_ref(), deadline).await
        } else {
            board.revocations().entries().to_vec()
        };
        shutdown.cancel();
        if !died && let Err(e) = task.await {
            died = true;
            tracing::error!(error = %describe(&e), "the scheduler task failed");
        }
        if let Some(fleet) = fleet {
            fleet.stop().await;
        }
        let now = clock.read();
        let revocations_pending =
            pending.into_iter().map(|e| (e.pending.ticket, e.pending.token_id, e.last_error)).collect();
        let mut report = OnceReport { ok: Vec::new(), failed: Vec::new(), revocations_pending };
        board.by_name(|tickets| {
            for ticket in tickets {
                let name = ticket.name().to_string();
                if ticket.valid(now).is_some() {
                    report.ok.push(name);
                } else if died {
                    report.failed.push((name, DaemonError::TaskDied("scheduler").to_string()));
                } else {
                    let error = ticket.last_error().unwrap_or("no token obtained in time");
                    report.failed.push((name, error.to_string()));
                }
            }
        });
        report
    }
}

/// What a reload gives the loop.
type Reloaded = Result<(Config, ReloadSummary), DaemonError>;

/// A failed task, said without its panic's message (which may quote a secret).
fn describe(e: &tokio::task::JoinError) -> String {
    TaskEnd::from(e).to_string()
}

/// Load and validate the config file again, resolve its credentials, and hand the result to the
/// scheduler. Nothing running changes unless all of it succeeds.
async fn reload(running: Config, env: &dyn Environment, commands: mpsc::UnboundedSender<Command>) -> Reloaded {
    let Some(path) = running.source.clone() else {
        return Err(ReloadError::NotFromFile.into());
    };
    // Read on a blocking thread: the loop stays free to handle a stop request meanwhile. A valid
    // file is read a piece at a time, never whole (14 MiB at 100,000 tickets); one with a problem
    // is read again whole, to say where each is.
    let failed = |e: tokio::task::JoinError| ReloadError::TaskFailed { step: "reading the config", how: (&e).into() };
    let read_path = path.clone();
    let by_pieces = tokio::task::spawn_blocking(move || config::check_by_pieces(&read_path)).await.map_err(failed)?;
    let mut next = match by_pieces.and_then(|checked| crate::credentials::environment::valid(checked, env)) {
        Some(next) => next,
        None => {
            let read_path = path.clone();
            let text = tokio::task::spawn_blocking(move || config::read(&read_path)).await.map_err(failed)??;
            crate::credentials::environment::parse_read(&text, &path, env)?
        }
    };
    if next.state_dir != running.state_dir {
        return Err(ReloadError::StateDirChanged { from: running.state_dir, to: next.state_dir }.into());
    }
    if next.cluster != running.cluster {
        return Err(ReloadError::ClusterChanged.into());
    }
    let credentials = CredentialStore::resolve_all(&next, env).map_err(DaemonError::Credentials)?;
    // New sink directories are walked and made on a blocking thread too (a hung mount must not
    // hold the loop).
    let sinks: Vec<_> = next.tickets.iter().flat_map(|t| t.sinks.iter().cloned()).collect();
    tokio::task::spawn_blocking(move || crate::sinks::open_dirs(sinks.iter(), false))
        .await
        .map_err(|e| ReloadError::TaskFailed { step: "opening the sink directories", how: (&e).into() })??;
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::Reconfigure { tickets: std::mem::take(&mut next.tickets), credentials, reply })
        .map_err(|_| ReloadError::SchedulerStopped)?;
    let summary = answer.await.map_err(|_| ReloadError::SchedulerStopped)?;
    Ok((next, summary))
}

/// Says, at start and at each reload, when `/metrics` leaves out the per-ticket series because the
/// board holds more `tickets` than `metrics_ticket_series` (alerts on them would go quiet otherwise).
/// The count is the board's: the running `Config` has handed its tickets to the scheduler.
fn warn_if_series_hidden(config: &Config, tickets: usize) {
    if config.metrics_listen.is_some() && tickets > config.metrics_ticket_series {
        tracing::warn!(
            tickets,
            metrics_ticket_series = config.metrics_ticket_series,
            "/metrics shows no per-ticket series: there are more tickets than metrics_ticket_series \
             (only the aggregates and the soonest-to-expire token); raise metrics_ticket_series to see them"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused reload says why in the words the `String` error had.
    #[test]
    fn reload_refusals_keep_their_texts() {
        let cases = [
            (ReloadError::NotFromFile, "this configuration was not read from a file"),
            (
                ReloadError::TaskFailed { step: "reading the config", how: TaskEnd::Panicked },
                "reading the config failed: it panicked",
            ),
            (
                ReloadError::TaskFailed { step: "opening the sink directories", how: TaskEnd::Cancelled },
                "opening the sink directories failed: it was cancelled",
            ),
            (
                ReloadError::StateDirChanged { from: "/var/lib/a".into(), to: "/var/lib/b".into() },
                "state_dir cannot change on reload (/var/lib/a -> /var/lib/b); restart to move it",
            ),
            (ReloadError::SchedulerStopped, "the scheduler has stopped"),
            (
                ReloadError::ClusterChanged,
                "[cluster] cannot change on reload; restart ticketd to apply it (the running configuration stays)",
            ),
        ];
        for (e, said) in cases {
            assert_eq!(DaemonError::from(e).to_string(), said);
        }
    }
}
