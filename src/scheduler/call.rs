//! One API call as a task of its own: fresh credentials, the call under its timeout, exactly one
//! report back to the loop.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use crate::apis::{Operation, Provider};
use crate::clock::Clock;
use crate::config::TicketSpec;
use crate::credentials::CredentialStore;
use crate::scheduler::error::CallError;
use crate::scheduler::reports::CallReport;

/// A call to start.
pub(crate) struct Call {
    pub(crate) spec: TicketSpec,
    pub(crate) op: Operation,
    /// Abandoned (and reported failed) after this long.
    pub(crate) timeout: Duration,
    /// Made before the task starts: whatever becomes of the task, the loop hears of it.
    pub(crate) report: CallReport,
}

/// Start `call` on `calls`, with keys from `store`.
pub(crate) fn spawn(
    calls: &TaskTracker,
    store: CredentialStore,
    clock: Arc<dyn Clock>,
    provider: Arc<dyn Provider>,
    call: Call,
) {
    let Call { spec, op, timeout, report } = call;
    calls.spawn(async move {
        // Keys being fetched or refreshed: wait for them rather than race with the old ones.
        let credentials = match store.fresh(&spec.credentials, clock.as_ref(), crate::credentials::FRESH_WAIT).await {
            Ok(c) => c,
            Err(e) => return report.send(Err(CallError::Credentials(e)), None),
        };
        let credentials_expire = credentials.expires_at;
        let call = provider.call(&spec, op, credentials);
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r.map_err(CallError::Api),
            Err(_) => Err(CallError::Timeout { after: timeout }),
        };
        report.send(result, credentials_expire);
    });
}
