//! Ids the API shows: one counter for connections, clients and streams (a path takes its id
//! from it when it is created), unique for the life of the process.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct Ids {
    next: AtomicU64,
}

impl Default for Ids {
    fn default() -> Self {
        Ids {
            next: AtomicU64::new(1),
        }
    }
}

impl Ids {
    /// A new id, unique for the life of the process.
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}
