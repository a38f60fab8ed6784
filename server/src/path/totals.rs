//! Sources and viewers over every path, for the admission's limits: each path adds and
//! removes its own as they come and go, so reading a total costs one atomic load.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Sources and viewers over every path; each path adds and removes its own.
#[derive(Debug, Default)]
pub struct Totals {
    sources: AtomicUsize,
    viewers: AtomicUsize,
}

impl Totals {
    pub fn source_started(&self) {
        self.sources.fetch_add(1, Ordering::Relaxed);
    }

    pub fn source_ended(&self) {
        let _ = self
            .sources
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub fn viewer_arrived(&self) {
        self.viewers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn viewer_left(&self) {
        let _ = self
            .viewers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

impl Totals {
    pub fn sources(&self) -> usize {
        self.sources.load(Ordering::Relaxed)
    }

    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }
}
