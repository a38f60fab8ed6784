//! Knowing when a notification is done with, so events that must follow it can wait.
//!
//! Each queued job of a notification holds a [`Pending`]; when the last of them is dropped —
//! the notification was delivered, definitely refused, or dropped (queue full, shutdown) at
//! every URL it went to — its [`Receipt`] settles. A backend keyed by stream or client reads
//! its events in order across URLs because the event that must come second waits for the
//! first one's receipt (`on_publish` after a predecessor's `on_unpublish`, `on_close` after a
//! client's `on_stop`/`on_unpublish`), as SRS waits for one call before it makes the next.

use std::sync::Arc;

use tokio::sync::watch;

/// Held by every queued job of one notification; the last one dropped settles the receipt.
#[derive(Debug, Clone)]
pub(crate) struct Pending(#[allow(dead_code)] Arc<watch::Sender<()>>);

/// Settles when a notification is done with at every URL it went to. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    /// `None`: settled from the start (nothing was queued).
    rx: Option<watch::Receiver<()>>,
}

/// A receipt and what its jobs hold until they are done.
pub(crate) fn pending() -> (Pending, Receipt) {
    let (tx, rx) = watch::channel(());
    (Pending(Arc::new(tx)), Receipt { rx: Some(rx) })
}

impl Receipt {
    /// A receipt with nothing to wait for.
    pub fn settled() -> Receipt {
        Receipt { rx: None }
    }

    /// Whether every job of the notification is done with.
    pub fn is_settled(&self) -> bool {
        self.rx.as_ref().is_none_or(|rx| rx.has_changed().is_err())
    }

    /// Completes when the notification is done with.
    pub async fn wait(&self) {
        if let Some(rx) = &self.rx {
            let mut rx = rx.clone();
            // Nothing is ever sent: `changed` ends with an error when the last sender goes.
            while rx.changed().await.is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settles_when_the_last_job_is_dropped() {
        let (pending, receipt) = pending();
        let other = pending.clone();
        assert!(!receipt.is_settled());
        drop(pending);
        assert!(!receipt.is_settled(), "one job is still queued");
        drop(other);
        assert!(receipt.is_settled());
        receipt.wait().await;
        assert!(Receipt::settled().is_settled());
        Receipt::settled().wait().await;
    }
}
