//! On-demand sources: a path with viewers and no source can ask a provider to start one,
//! and stops it `stream.on_demand_close_after_ms` after its last viewer left (as MediaMTX's
//! `sourceOnDemand`). Edges and pulls provide them; the registry asks (`registry.rs`).

use tokio_util::sync::CancellationToken;

use crate::stream::StreamKey;

/// Starts sources for stream keys nobody publishes.
pub trait SourceProvider: Send + Sync {
    /// A viewer asked for `key`, which has no source. Start one that feeds the key's path
    /// (through `Source::start`), and stop it when `stop` is cancelled. False if this
    /// provider has no source for `key`.
    fn start(&self, key: &StreamKey, stop: CancellationToken) -> bool;
}
