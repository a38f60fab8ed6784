//! HLS: in-memory packaging of every live stream (one packager per stream, shared by all
//! HLS viewers) and the store HTTP serves playlists and segments from.

pub mod packager;
pub mod store;

use std::collections::HashSet;
use std::sync::Mutex;

pub use store::{HlsStore, HlsStream};

use crate::hub::StreamKey;

/// Streams whose packager task is running.
#[derive(Debug, Default)]
pub struct Packagers {
    running: Mutex<HashSet<StreamKey>>,
}

impl Packagers {
    /// Marks `key` running; false if it already was.
    pub fn insert(&self, key: StreamKey) -> bool {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).insert(key)
    }

    pub fn remove(&self, key: &StreamKey) {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}
