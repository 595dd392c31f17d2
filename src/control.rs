//! Signals turned into [`Control`] messages for the daemon loop, so the loop itself never touches
//! signals and tests drive it with a channel.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tokio::sync::mpsc;

/// What the daemon is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// SIGTERM or SIGINT: finish writes, save state, exit 0.
    Shutdown,
    /// SIGHUP: reload the configuration.
    Reload,
}

/// Forward SIGTERM, SIGINT and SIGHUP as `Control`s. A second SIGTERM/SIGINT exits at once.
pub(crate) fn from_signals() -> std::io::Result<mpsc::UnboundedReceiver<Control>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        let mut stopping = false;
        for signal in signals.forever() {
            let control = if signal == SIGHUP { Control::Reload } else { Control::Shutdown };
            if control == Control::Shutdown {
                if stopping {
                    eprintln!("ticketd: second stop signal, exiting at once");
                    std::process::exit(130);
                }
                stopping = true;
            }
            if tx.send(control).is_err() {
                break;
            }
        }
    })?;
    Ok(rx)
}
