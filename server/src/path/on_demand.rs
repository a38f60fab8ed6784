//! On-demand sources: a path with viewers and no source can ask a provider to start one,
//! and stops it `stream.on_demand_close_after_ms` after its last viewer left (as MediaMTX's
//! `sourceOnDemand`). Edges and pulls provide them; the registry asks (`registry.rs`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::stream::StreamKey;

/// Starts sources for stream keys nobody publishes.
pub trait SourceProvider: Send + Sync {
    /// A viewer asked for `key`, which has no source. Start one that feeds the key's path
    /// (through `Source::start`), and stop it when `stop` is cancelled. False if this
    /// provider has no source for `key`.
    fn start(&self, key: &StreamKey, stop: CancellationToken) -> bool;

    /// How long the source of `key` goes on after its last viewer left, if the provider
    /// sets it per source; `None` takes `stream.on_demand_close_after_ms`.
    fn close_after(&self, _key: &StreamKey) -> Option<Duration> {
        None
    }
}
