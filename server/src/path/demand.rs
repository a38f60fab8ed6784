//! A demand on a path by something that is not a viewer: a recording waiting for its stream
//! or writing it. Like a viewer it starts the key's on-demand source (a pulled source with
//! `on_demand`, an edge) and keeps it running; it is counted nowhere as playback.

use std::sync::Arc;

use super::registry::Paths;
use super::Path;
use crate::stream::StreamKey;

/// Held while the stream is wanted; dropping it lets an on-demand source stop after its
/// close-after time.
pub struct Demand {
    path: Arc<Path>,
    paths: Paths,
}

impl Demand {
    pub fn new(paths: &Paths, key: &StreamKey) -> Demand {
        let path = paths.path(key);
        paths.demand_arrived(&path);
        Demand {
            path,
            paths: paths.clone(),
        }
    }
}

impl Drop for Demand {
    fn drop(&mut self) {
        self.paths.demand_left(&self.path);
    }
}
