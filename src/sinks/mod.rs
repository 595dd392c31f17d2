//! Where tokens go: files written atomically, and docker `config.json` entries merged in.

pub mod atomic;
pub mod docker_config;
pub mod notify;
pub mod render;

use std::path::PathBuf;

use crate::config::{SinkSpec, TicketSpec};
use crate::token::Current;

/// A sink that could not be written; the previous file is intact.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct SinkError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Write every sink of `spec` with `current`. Stops at the first failure (earlier sinks are
/// already updated; all are rewritten on the retry).
pub fn publish(spec: &TicketSpec, current: &Current) -> Result<(), SinkError> {
    for sink in &spec.sinks {
        let path = sink.path();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            create_dir(dir).map_err(|source| SinkError { path: dir.to_path_buf(), source })?;
        }
        let result = match sink {
            SinkSpec::File(file) => {
                atomic::write_atomically(&file.path, &render::render(file, spec, current), file.mode)
            }
            SinkSpec::DockerConfig(docker) => docker_config::publish(docker, current),
        };
        result.map_err(|source| SinkError { path: path.to_path_buf(), source })?;
    }
    Ok(())
}

fn create_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)
}
