//! Background delivery of notifications: one bounded FIFO queue and one task per endpoint URL.
//!
//! A task sends its queue's events one at a time, so an endpoint sees them in the order
//! `notify` was called (which implies per-stream order). A failing endpoint holds up only its
//! own queue; the other endpoints keep receiving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::config::HookUrl;
use super::event::HookKind;
use super::http::{HttpClient, Outcome};
use super::receipt::Pending;
use super::stats::{Counters, Undelivered};

/// How long the tasks keep delivering after shutdown was requested, at least (a hook
/// `timeout_ms` longer than this extends it: see `Hooks::shutdown_flush`).
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);

/// One notification for one endpoint.
#[derive(Debug)]
pub(crate) struct Job {
    pub kind: HookKind,
    pub body: Bytes,
    pub timeout: Duration,
    /// Dropped with the job, whatever becomes of it: settles the notification's receipt.
    #[allow(dead_code)] // held for its drop
    pub settles: Pending,
}

/// What the delivery tasks share with the decisions: the HTTP client, the counters, and the
/// retry delays.
pub(crate) struct Transport {
    pub client: HttpClient,
    pub counters: Counters,
    pub backoff: Backoff,
}

/// Exponential retry delay: `min`, doubling up to `max`, for at most `tries` calls of one
/// notification.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub min: Duration,
    pub max: Duration,
    pub tries: u32,
}

enum Delivery {
    /// Accepted, or given up (a definite rejection, or `max_tries` transient failures).
    Done,
    /// Shutdown was requested while waiting to retry.
    Interrupted,
}

/// Delivers `rx` to `url` until shutdown, then flushes for up to `flush`.
pub(crate) async fn run_endpoint(
    inner: Arc<Transport>,
    url: HookUrl,
    mut rx: mpsc::Receiver<Job>,
    shutdown: CancellationToken,
    flush: Duration,
) {
    let mut state = Endpoint {
        inner: &inner,
        url: &url,
        failing_since: None,
    };
    let mut current = None;
    loop {
        let job = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            job = rx.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        if let Delivery::Interrupted = state.deliver(&job, Some(&shutdown)).await {
            current = Some(job);
            break;
        }
    }

    let deadline = tokio::time::Instant::now() + flush;
    loop {
        let job = match current.take() {
            Some(job) => job,
            None => match rx.try_recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        if tokio::time::timeout_at(deadline, state.deliver(&job, None))
            .await
            .is_err()
        {
            rx.close();
            let mut left = 1;
            inner.counters.record_undelivered(job.kind, Undelivered::Shutdown, 1);
            while let Ok(job) = rx.try_recv() {
                left += 1;
                inner.counters.record_undelivered(job.kind, Undelivered::Shutdown, 1);
            }
            tracing::warn!(url = %url.shown, undelivered = left, "hook notifications not delivered before shutdown");
            return;
        }
    }
    tracing::debug!(url = %url.shown, "hook endpoint flushed");
}

struct Endpoint<'a> {
    inner: &'a Transport,
    url: &'a HookUrl,
    /// Set while the endpoint fails, to log the outage once and its end once.
    failing_since: Option<Instant>,
}

impl Endpoint<'_> {
    async fn deliver(&mut self, job: &Job, shutdown: Option<&CancellationToken>) -> Delivery {
        let mut delay = self.inner.backoff.min;
        let hook = job.kind.as_str();
        let mut tries = 0u32;
        loop {
            tries += 1;
            let start = Instant::now();
            let outcome = self.inner.client.post(self.url, job.body.clone(), job.timeout).await;
            self.inner.counters.record_call(job.kind, &outcome, start.elapsed());
            let reason = match outcome {
                Outcome::Accepted => {
                    if let Some(since) = self.failing_since.take() {
                        tracing::info!(url = %self.url.shown, down_ms = since.elapsed().as_millis() as u64, "hook endpoint accepts notifications again");
                    }
                    tracing::debug!(hook, url = %self.url.shown, "hook notification delivered");
                    return Delivery::Done;
                }
                Outcome::Rejected(reason) => {
                    // A definite answer: retrying would get the same one, and would hold up
                    // every later event for this endpoint.
                    tracing::warn!(hook, url = %self.url.shown, %reason, "hook notification rejected by backend, not retried");
                    self.inner
                        .counters
                        .record_undelivered(job.kind, Undelivered::Rejected, 1);
                    return Delivery::Done;
                }
                Outcome::ServerError(reason) | Outcome::Unreachable(reason) => reason,
            };
            if tries >= self.inner.backoff.tries {
                // The endpoint may stay down for hours: holding this event until then would
                // hold every later one too (and the queue would fill and drop them instead).
                tracing::warn!(hook, url = %self.url.shown, %reason, tries, "hook notification given up after hooks.max_tries failed tries");
                self.inner.counters.record_undelivered(job.kind, Undelivered::GaveUp, 1);
                return Delivery::Done;
            }
            if self.failing_since.is_none() {
                self.failing_since = Some(Instant::now());
                tracing::warn!(hook, url = %self.url.shown, %reason, "hook endpoint failing, retrying with backoff");
            } else {
                tracing::debug!(hook, url = %self.url.shown, %reason, retry_ms = delay.as_millis() as u64, "hook notification failed");
            }
            match shutdown {
                Some(token) => tokio::select! {
                    () = token.cancelled() => return Delivery::Interrupted,
                    () = tokio::time::sleep(delay) => {}
                },
                None => tokio::time::sleep(delay).await,
            }
            delay = (delay * 2).min(self.inner.backoff.max);
        }
    }
}
