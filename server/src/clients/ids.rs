//! Ids the API shows: one counter for connections, clients and streams (unique for the life
//! of the process), and the id of each stream key, assigned on first use.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::stream::StreamKey;

#[derive(Debug)]
pub struct Ids {
    next: AtomicU64,
    streams: Mutex<HashMap<StreamKey, u64>>,
}

impl Default for Ids {
    fn default() -> Self {
        Ids {
            next: AtomicU64::new(1),
            streams: Mutex::new(HashMap::new()),
        }
    }
}

impl Ids {
    /// A new id, unique for the life of the process.
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The id of stream `key`, assigned on first use.
    pub fn stream(&self, key: &StreamKey) -> u64 {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = streams.get(key) {
            return *id;
        }
        let id = self.next();
        streams.insert(key.clone(), id);
        id
    }

    /// Forgets the ids of streams that are gone.
    pub fn retain_streams(&self, keys: &[StreamKey]) {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| keys.contains(k));
    }
}
