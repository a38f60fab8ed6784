//! The totals the admission enforces, read from the paths' counts: streams with a source
//! (`limits.max_streams`), viewers of one stream (`limits.max_viewers_per_stream`) and of the
//! server (`limits.max_viewers`; RTMP and HTTP-FLV players and HLS sessions alike). 0 turns a
//! limit off.
//!
//! The pipeline checks before asking the hook (a refused client costs no hook call) and again
//! right before the source starts or the viewer joins, with no wait in between; clients
//! admitted at the very same instant may still pass a limit by the few that raced.

use crate::config::LimitsConfig;
use crate::path::registry::Paths;
use crate::path::Path;

/// A limit that refuses the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Exceeded {
    #[error("{0} streams have a source (limits.max_streams)")]
    Streams(usize),
    #[error("{0}")]
    Viewers(String),
}

/// Whether one more stream may get a source. A path that has a source already (a silent one
/// about to be replaced) adds none.
pub(super) fn check_streams(paths: &Paths, limits: &LimitsConfig, path: &Path) -> Result<(), Exceeded> {
    let max = limits.max_streams;
    if max > 0 && !path.has_source() && paths.sources() >= max {
        return Err(Exceeded::Streams(max));
    }
    Ok(())
}

/// Whether one more viewer may join `path` (`None`: the key has no path yet, so no viewer).
pub(super) fn check_viewers(paths: &Paths, limits: &LimitsConfig, path: Option<&Path>) -> Result<(), Exceeded> {
    let per_stream = limits.max_viewers_per_stream;
    if let Some(path) = path.filter(|_| per_stream > 0) {
        if path.viewers() >= per_stream {
            return Err(Exceeded::Viewers(format!(
                "stream {} has {per_stream} viewers (limits.max_viewers_per_stream)",
                path.key
            )));
        }
    }
    let total = limits.max_viewers;
    if total > 0 && paths.viewers() >= total {
        return Err(Exceeded::Viewers(format!(
            "the server has {total} viewers (limits.max_viewers)"
        )));
    }
    Ok(())
}
