//! A path's hook events, in order.
//!
//! The path sends `on_unpublish` when its source ends and `on_stop` when a viewer leaves, and
//! keeps the receipt of the last `on_unpublish`: a successor's `on_publish` waits for it to
//! settle (`crate::admission`), so a backend keyed by stream never sees a newcomer's
//! `on_publish` before its predecessor's `on_unpublish`, even when the two hooks go to
//! different URLs. The receipts these return let a connection hold its `on_close` back
//! until they settle (`Hooks::notify_after`).

use std::sync::Mutex;
use std::time::Duration;

use crate::hooks::{HookSubject, Hooks, NotifyEvent, Receipt};

/// The events of one path.
pub struct PathEvents {
    hooks: Hooks,
    /// The last `on_unpublish` sent for this path.
    last_unpublish: Mutex<Receipt>,
}

impl PathEvents {
    pub fn new(hooks: Hooks) -> PathEvents {
        PathEvents {
            hooks,
            last_unpublish: Mutex::new(Receipt::settled()),
        }
    }

    /// The source of `subject` stopped publishing.
    pub fn unpublished(&self, subject: &HookSubject) -> Receipt {
        let receipt = self.hooks.notify(&NotifyEvent::Unpublish {
            client: subject.client.clone(),
            stream: subject.stream.clone(),
        });
        *self.last_unpublish.lock().unwrap_or_else(|e| e.into_inner()) = receipt.clone();
        receipt
    }

    /// The viewer `subject` stopped playing.
    pub fn stopped(&self, subject: &HookSubject) -> Receipt {
        self.hooks.notify(&NotifyEvent::Stop {
            client: subject.client.clone(),
            stream: subject.stream.clone(),
        })
    }

    /// Waits until the last `on_unpublish` of this path is done with, at most `limit`.
    /// False if it is still being delivered (its backend is slow or down).
    pub async fn unpublish_settled(&self, limit: Duration) -> bool {
        let last = self.last_unpublish.lock().unwrap_or_else(|e| e.into_inner()).clone();
        last.is_settled() || tokio::time::timeout(limit, last.wait()).await.is_ok()
    }
}
