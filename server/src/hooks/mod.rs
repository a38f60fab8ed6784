//! HTTP callbacks to the platform backend (SRS-compatible).
//!
//! A backend written for SRS's `http_hooks` works with Estuary unchanged.
//!
//! # Hooks
//!
//! | hook | when | kind |
//! |---|---|---|
//! | `on_connect` | an RTMP client sent `connect` | decision |
//! | `on_publish` | a client wants to publish a stream | decision |
//! | `on_play` | a client wants to play a stream | decision |
//! | `on_unpublish` | a publisher stopped | notification |
//! | `on_stop` | a player stopped | notification |
//! | `on_close` | a client connection closed | notification |
//! | `on_hls` | an HLS segment was written | notification |
//! | `on_dvr` | a recording file was finished | notification |
//!
//! # Request
//!
//! Each call is an HTTP/1.1 `POST` of a JSON object (`Content-Type: application/json`) to
//! each URL configured for the hook. Every body has `server_id`, `service_id`, `action` (the
//! hook name), `client_id`, `ip`, `vhost` (always `"__defaultVhost__"`) and `app`; then:
//!
//! | hook | extra fields |
//! |---|---|
//! | `on_connect` | `stream, param, tcUrl, pageUrl` |
//! | `on_close` | `send_bytes, recv_bytes` |
//! | `on_publish`, `on_unpublish`, `on_stop` | `tcUrl, stream, param, stream_url, stream_id` |
//! | `on_play` | the same plus `pageUrl` |
//! | `on_dvr` | the same plus `cwd, file`, and Estuary's `recording_id` (with `error` when it failed) |
//! | `on_hls` | the same plus `duration` (float seconds), `cwd, file, url, m3u8, m3u8_url, seq_no` |
//!
//! `param` is the query string the client sent, with its `?` (`"?token=abc"`), or `""`.
//! `stream_url` is `/app/stream`. The ids are the API's: `client_id` is the client's id in
//! `/api/v1/clients` (HLS viewers included: a backend kicks one by it), `stream_id` the
//! stream's id in `/api/v1/streams` (its path's id), `server_id` the API's `server`, kept
//! across restarts (`crate::server_id`). An HTTP player's `tcUrl` is `rtmp://HOST/app`, as
//! SRS reports it. `on_hls` speaks for the publisher, as SRS's does: its `client_id`, `ip`,
//! `tcUrl` and `param`; `url` and `m3u8_url` are `app/stream-….ts` and `app/stream.m3u8`,
//! `cwd` the server's working directory. Only `http://` URLs are supported; put a TLS-terminating
//! proxy in front of an `https` backend.
//!
//! # Answer
//!
//! A call is **accepted** only if the status is 200 or 201 **and** the body, trimmed, is `0` or
//! a JSON object whose `code` is the integer 0 (`{"code":0}`). Anything else is a refusal: any
//! other status (a 401 with `{"code":0}` refuses), any other body, a body over 64 KiB. Each
//! call, including connecting, must finish within `timeout_ms`.
//!
//! **Decisions** (`on_connect`, `on_publish`, `on_play`) call the URLs one after another; the
//! first refusal refuses the client. If a backend cannot be reached (connection refused, DNS
//! failure, reset, timeout), `unreachable_policy` decides: `refuse` (default, as SRS) or
//! `allow` (skip that URL and log a warning). An HTTP error status such as 500 or 502 is an
//! answer and refuses under either policy. With no URL configured the client is let in at
//! once.
//!
//! **Notifications** (`on_unpublish`, `on_stop`, `on_close`, `on_hls`, `on_dvr`) never hold up
//! the server: each is put in a bounded queue per endpoint URL (`queue_capacity`) and sent by
//! a background task, one at a time, in the order they happened. A notification that fails
//! for a transient reason (unreachable, timeout, status 5xx or 429) is retried after
//! `retry_min_ms`, doubling up to `retry_max_ms`, and the events after it wait: a backend
//! that was down for a while receives every event afterwards, in order. After `max_tries`
//! failed tries (20: about 75 s of outage at the default delays) the notification is
//! dropped, logged with the last reason and counted (`reason="gave_up"`), and the events
//! after it go on: a backend down for good, or one that answers 500 to one event, does not
//! hold back every later event for its URL (SRS and MediaMTX never retry). A definite
//! refusal (another status, or 200 with a non-zero `code`) is logged and not retried, unlike
//! a transient failure, so that one bad event cannot block the queue forever (SRS never
//! retries). When a queue is full, new events for it are dropped, counted and logged. On
//! shutdown the queues are flushed for up to 2 seconds. Delivery is at-least-once: a
//! notification whose answer was lost (e.g. timeout) is sent again.
//!
//! # Configuration
//!
//! `[hooks]` ([`HooksConfig`]) holds the URL lists (`on_connect = ["http://..."]`, …),
//! `timeout_ms` (5000), `unreachable_policy` (`"refuse"`), `queue_capacity` (10000),
//! `retry_min_ms` (100), `retry_max_ms` (5000) and `max_tries` (20). `[apps.NAME.hooks]` ([`HooksOverride`])
//! may set the URL lists, `timeout_ms` and `unreachable_policy` for one app: a key it sets
//! replaces the global one (`on_play = []` turns the hook off for that app), a key it leaves
//! out falls back to `[hooks]`.
//!
//! The 5 s default timeout (SRS waits 30 s) keeps a publisher or player from hanging on a
//! slow backend for longer than encoders and players usually wait for an answer.
//!
//! # Metrics
//!
//! [`HOOK_CALLS_TOTAL`]`{hook,result}`, [`HOOK_DURATION_SECONDS`]`{hook}`,
//! [`HOOK_DECISIONS_TOTAL`]`{hook,decision}` and [`HOOK_UNDELIVERED_TOTAL`]`{hook,reason}`
//! through the `metrics` facade; the same numbers are readable with [`Hooks::stats`].

mod config;
mod delivery;
mod event;
mod http;
mod receipt;
mod stats;
#[cfg(test)]
mod test_backend;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{
    HooksConfig, HooksConfigError, HooksOverride, UnreachablePolicy, DEFAULT_MAX_TRIES, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_RETRY_MAX_MS, DEFAULT_RETRY_MIN_MS, DEFAULT_TIMEOUT_MS,
};
pub use delivery::SHUTDOWN_FLUSH;
pub use event::{
    ClientInfo, DecisionEvent, HlsSegmentInfo, HookKind, HookSubject, NotifyEvent, ServerIdentity, StreamInfo,
    DEFAULT_VHOST,
};
pub use receipt::Receipt;
pub use stats::{HooksStats, HOOK_CALLS_TOTAL, HOOK_DECISIONS_TOTAL, HOOK_DURATION_SECONDS, HOOK_UNDELIVERED_TOTAL};

use config::{Effective, HookUrl};
use delivery::{Backoff, Job, Transport};
use http::{HttpClient, Outcome};
use stats::{Counters, RateLimit, Undelivered};

/// The answer of a decision hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// `reason` is for logs, e.g. `on_publish http://x/auth rejected: status 403`.
    Reject {
        reason: String,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// The hooks client. Cheap to clone; all clones share queues and connections.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    identity: ServerIdentity,
    global: Effective,
    apps: HashMap<String, Effective>,
    transport: Arc<Transport>,
    /// Notification queue per endpoint URL (as configured).
    queues: HashMap<String, mpsc::Sender<Job>>,
    /// Taken by [`Hooks::start`].
    receivers: Mutex<Vec<(HookUrl, mpsc::Receiver<Job>)>>,
    /// At most one "queue full" warning per second.
    drop_warning: RateLimit,
    /// Notifications waiting for others to settle first ([`Hooks::notify_after`]).
    deferred: TaskTracker,
}

impl Hooks {
    /// Validates the configuration and builds the client. No task runs until [`Hooks::start`];
    /// notifications sent before then wait in their queues.
    pub fn new(
        global: HooksConfig,
        per_app: HashMap<String, HooksOverride>,
        identity: ServerIdentity,
    ) -> Result<Self, HooksConfigError> {
        global.validate()?;
        let mut apps = HashMap::with_capacity(per_app.len());
        for (name, o) in &per_app {
            o.validate(name)?;
            apps.insert(name.clone(), Effective::resolve(&global, Some((name, o)))?);
        }
        let global_eff = Effective::resolve(&global, None)?;

        let mut queues = HashMap::new();
        let mut receivers = Vec::new();
        for eff in std::iter::once(&global_eff).chain(apps.values()) {
            for (kind, url) in eff.all_urls() {
                if is_decision(kind) || queues.contains_key(&url.raw) {
                    continue;
                }
                let (tx, rx) = mpsc::channel(global.queue_capacity);
                queues.insert(url.raw.clone(), tx);
                receivers.push((url.clone(), rx));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                identity,
                global: global_eff,
                apps,
                transport: Arc::new(Transport {
                    client: HttpClient::default(),
                    counters: Counters::default(),
                    backoff: Backoff {
                        min: Duration::from_millis(global.retry_min_ms),
                        max: Duration::from_millis(global.retry_max_ms),
                        tries: global.max_tries,
                    },
                }),
                queues,
                receivers: Mutex::new(receivers),
                drop_warning: RateLimit::new(Duration::from_secs(1)),
                deferred: TaskTracker::new(),
            }),
        })
    }

    /// Spawns the notification delivery tasks (call once, inside the tokio runtime). When
    /// `shutdown` is cancelled they flush their queues for up to [`shutdown_flush`](Self::shutdown_flush) and the
    /// returned handle completes. Cancel it after the connections have closed, so that their
    /// `on_unpublish`/`on_stop`/`on_close` are in the queues.
    pub fn start(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let receivers = std::mem::take(&mut *self.inner.receivers.lock().unwrap_or_else(|p| p.into_inner()));
        tracing::info!(endpoints = receivers.len(), "hooks delivery started");
        let mut tasks = tokio::task::JoinSet::new();
        for (url, rx) in receivers {
            tasks.spawn(delivery::run_endpoint(
                Arc::clone(&self.inner.transport),
                url,
                rx,
                shutdown.clone(),
                self.shutdown_flush(),
            ));
        }
        tokio::spawn(async move {
            while let Some(res) = tasks.join_next().await {
                if let Err(e) = res {
                    tracing::error!(cause = %e, "hook delivery task failed");
                }
            }
            tracing::info!("hooks delivery stopped");
        })
    }

    /// Asks the backend whether `event`'s client may go on. Calls every URL of the hook for
    /// the client's app in order, each within `timeout_ms`; the first refusal wins.
    pub async fn decide(&self, event: &DecisionEvent) -> Decision {
        let kind = event.kind();
        let eff = self.effective(&event.client().app);
        let urls = eff.urls(kind);
        if urls.is_empty() {
            return Decision::Allow;
        }
        let body = event::body_bytes(&event.to_json(&self.inner.identity));
        let hook = kind.as_str();
        for url in urls {
            let start = Instant::now();
            let outcome = self.inner.transport.client.post(url, body.clone(), eff.timeout).await;
            let took = start.elapsed();
            self.inner.transport.counters.record_call(kind, &outcome, took);
            let url_s = url.shown.as_str();
            let reason = match outcome {
                Outcome::Accepted => {
                    tracing::debug!(hook, url = url_s, took_ms = took.as_millis() as u64, "hook accepted");
                    continue;
                }
                Outcome::Rejected(r) => {
                    tracing::debug!(hook, url = url_s, reason = %r, "hook rejected");
                    format!("{hook} {url_s} rejected: {r}")
                }
                Outcome::ServerError(r) => {
                    tracing::warn!(hook, url = url_s, reason = %r, "hook backend error, refusing client");
                    format!("{hook} {url_s} rejected: {r}")
                }
                Outcome::Unreachable(r) => match eff.policy {
                    UnreachablePolicy::Refuse => {
                        tracing::warn!(hook, url = url_s, reason = %r, "hook backend unreachable, refusing client");
                        format!("{hook} {url_s} unreachable: {r}")
                    }
                    UnreachablePolicy::Allow => {
                        tracing::warn!(hook, url = url_s, reason = %r, "hook backend unreachable, allowed by unreachable_policy");
                        continue;
                    }
                },
            };
            self.inner.transport.counters.record_decision(kind, false);
            return Decision::Reject { reason };
        }
        self.inner.transport.counters.record_decision(kind, true);
        Decision::Allow
    }

    /// Queues `event` for every URL of its hook for the client's app. Never blocks; if a
    /// queue is full the event is dropped for that URL, counted and logged. The receipt
    /// settles when every URL is done with it (see `receipt.rs`).
    pub fn notify(&self, event: &NotifyEvent) -> Receipt {
        let kind = event.kind();
        let eff = self.effective(&event.client().app);
        let urls = eff.urls(kind);
        if urls.is_empty() {
            return Receipt::settled();
        }
        let body = event::body_bytes(&event.to_json(&self.inner.identity));
        let (settles, receipt) = receipt::pending();
        for url in urls {
            let Some(tx) = self.inner.queues.get(&url.raw) else {
                tracing::error!(url = %url.shown, "no queue for hook url");
                continue;
            };
            let job = Job {
                kind,
                body: body.clone(),
                timeout: eff.timeout,
                settles: settles.clone(),
            };
            match tx.try_send(job) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let c = &self.inner.transport.counters;
                    c.record_undelivered(kind, Undelivered::QueueFull, 1);
                    let n = c.dropped();
                    if self.inner.drop_warning.allow() {
                        tracing::warn!(hook = kind.as_str(), url = %url.shown, dropped_total = n, "hook queue full, notification dropped");
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.inner
                        .transport
                        .counters
                        .record_undelivered(kind, Undelivered::Shutdown, 1);
                    tracing::debug!(hook = kind.as_str(), url = %url.shown, "hooks stopped, notification dropped");
                }
            }
        }
        receipt
    }

    /// Queues `event` once every receipt in `after` has settled, without waiting for them
    /// here: `on_close` after the client's `on_unpublish`/`on_stop`, even when those go to
    /// another URL or their backend is down and they are being retried.
    pub fn notify_after(&self, event: NotifyEvent, after: Vec<Receipt>) {
        let after: Vec<Receipt> = after.into_iter().filter(|r| !r.is_settled()).collect();
        if after.is_empty() {
            self.notify(&event);
            return;
        }
        let hooks = self.clone();
        self.inner.deferred.spawn(async move {
            for receipt in &after {
                receipt.wait().await;
            }
            hooks.notify(&event);
        });
    }

    /// Waits, at most `limit`, for the notifications held back by
    /// [`notify_after`](Self::notify_after) to be queued; call at shutdown before stopping
    /// delivery.
    pub async fn flush_deferred(&self, limit: Duration) {
        self.inner.deferred.close();
        if tokio::time::timeout(limit, self.inner.deferred.wait()).await.is_err() {
            tracing::warn!(
                waiting = self.inner.deferred.len(),
                "hook notifications still waiting for earlier ones at shutdown"
            );
        }
    }

    /// Whether `kind` has any URL for `app`.
    pub fn is_configured(&self, kind: HookKind, app: &str) -> bool {
        !self.effective(app).urls(kind).is_empty()
    }

    /// `timeout_ms` and `unreachable_policy` in effect for `app`.
    pub fn decision_limits(&self, app: &str) -> (Duration, UnreachablePolicy) {
        let eff = self.effective(app);
        (eff.timeout, eff.policy)
    }

    /// How long notifications still go out after shutdown: [`SHUTDOWN_FLUSH`], or the longest
    /// `timeout_ms` of any app if longer, so that one in flight gets its whole time.
    pub fn shutdown_flush(&self) -> Duration {
        std::iter::once(&self.inner.global)
            .chain(self.inner.apps.values())
            .map(|eff| eff.timeout)
            .fold(SHUTDOWN_FLUSH, Duration::max)
    }

    /// Notifications dropped so far because a queue was full.
    pub fn dropped_total(&self) -> u64 {
        self.inner.transport.counters.dropped()
    }

    /// A copy of all counters.
    pub fn stats(&self) -> HooksStats {
        self.inner.transport.counters.snapshot()
    }

    fn effective(&self, app: &str) -> &Effective {
        self.inner.apps.get(app).unwrap_or(&self.inner.global)
    }
}

fn is_decision(kind: HookKind) -> bool {
    matches!(kind, HookKind::Connect | HookKind::Publish | HookKind::Play)
}
