//! Wiring: config, credentials, state and scheduler, and the one loop that reacts to control
//! messages (shutdown; reload comes with the service issue).

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, Environment, Problems};
use crate::control::Control;
use crate::credentials::{CredentialError, CredentialStore};
use crate::providers::{CloudProvider, Provider};
use crate::scheduler::{Event, Parts, Persistence, Scheduler};
use crate::state::{StateDir, StateError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] Problems),
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Credentials(Vec<CredentialError>),
    #[error("{0}")]
    State(#[from] StateError),
}

/// A daemon ready to run: state locked and loaded, credentials resolved, scheduler planned.
pub struct Daemon {
    scheduler: Scheduler,
    _state_dir: Arc<StateDir>,
}

impl Daemon {
    /// Prepare to run `config` against the real clouds.
    pub fn prepare(config: &Config, env: &dyn Environment, clock: Arc<dyn Clock>) -> Result<Daemon, DaemonError> {
        let provider = Arc::new(CloudProvider::new(clock.clone()));
        Daemon::with_provider(config, env, clock, provider)
    }

    /// Prepare with any provider (tests, benchmarks).
    pub fn with_provider(
        config: &Config,
        env: &dyn Environment,
        clock: Arc<dyn Clock>,
        provider: Arc<dyn Provider>,
    ) -> Result<Daemon, DaemonError> {
        let credentials = CredentialStore::resolve_all(config, env).map_err(DaemonError::Credentials)?;
        let state_dir = Arc::new(StateDir::open(&config.state_dir)?);
        let loaded = state_dir.load()?;
        if let Some((aside, why)) = &loaded.set_aside {
            tracing::error!(
                moved_to = %aside.display(),
                reason = %why,
                "the state file was corrupt; it was moved aside and tickets will be obtained anew"
            );
        }
        let parts = Parts {
            clock,
            provider,
            credentials,
            persistence: Persistence::Disk(state_dir.clone()),
            seed: rand::random(),
        };
        let scheduler = Scheduler::new(parts, &config.tickets, &loaded.state);
        tracing::info!(
            tickets = config.tickets.len(),
            state = %state_dir.path().display(),
            "ticketd started"
        );
        Ok(Daemon { scheduler, _state_dir: state_dir })
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.scheduler.events()
    }

    /// Run until a shutdown control arrives (or the control channel closes), then finish in-flight
    /// work, save state and return.
    pub async fn run(self, mut control: mpsc::UnboundedReceiver<Control>) -> Result<(), DaemonError> {
        let shutdown = CancellationToken::new();
        let scheduler = tokio::spawn(self.scheduler.run(shutdown.child_token()));
        while let Some(message) = control.recv().await {
            match message {
                Control::Shutdown => break,
                Control::Reload => {
                    tracing::warn!(
                        "SIGHUP: reloading is not supported by this version; restart to apply config changes"
                    )
                }
            }
        }
        tracing::info!("stopping: finishing writes and saving state");
        shutdown.cancel();
        if let Err(e) = scheduler.await {
            tracing::error!(error = %e, "the scheduler task failed");
        }
        tracing::info!("stopped");
        Ok(())
    }
}
