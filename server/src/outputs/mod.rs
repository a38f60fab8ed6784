//! Outputs: what a path feeds besides its viewers. Each is started by the path when the
//! source starts, reads the path's packets like a viewer, and is ended by the path after its
//! grace period (`crate::path`'s output driver).
//!
//! Adding a kind of output is one module here and one entry in [`builtin`].

mod output;

pub mod forward;
pub mod hls;
pub mod record;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

pub use output::{Output, OutputKind};

use crate::config::Config;
use crate::hooks::Hooks;

/// What the outputs are made with.
pub struct Parts<'a> {
    pub config: &'a Config,
    pub hooks: &'a Hooks,
    pub hls: &'a hls::HlsStore,
    /// The catalogue the recorder reports to; no recorder without one.
    pub recordings: Option<Arc<dyn record::Ledger>>,
    /// The recorder's writer threads: shutdown waits for them, longer than for connections
    /// (`record.shutdown_grace_ms`), since finishing a long file takes a while.
    pub recorders: &'a TaskTracker,
    /// The forwards registry the forward outputs report to.
    pub forwards: &'a forward::Forwards,
}

/// Every kind of output a path may start, in the order they start.
pub fn builtin(parts: Parts<'_>) -> Vec<Arc<dyn OutputKind>> {
    let mut kinds: Vec<Arc<dyn OutputKind>> = vec![Arc::new(
        hls::HlsOutputs::new(&parts.config.hls, parts.hooks.clone(), parts.hls.clone()).with_apps(parts.config),
    )];
    if let Some(ledger) = parts.recordings {
        let grace = Duration::from_millis(parts.config.record.reconnect_window_ms);
        kinds.push(Arc::new(record::RecordOutputs::new(
            ledger,
            grace,
            parts.recorders.clone(),
        )));
    }
    kinds.push(Arc::new(forward::ForwardOutputs::new(parts.forwards.clone())));
    kinds
}
