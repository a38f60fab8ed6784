//! Metric names and the plain counters behind [`HooksStats`](super::HooksStats).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::event::HookKind;
use super::http::Outcome;

/// Counter `{hook, result}`: one per HTTP call; result is `accepted`, `rejected`,
/// `server_error` or `unreachable`.
pub const HOOK_CALLS_TOTAL: &str = "estuary_hook_calls_total";
/// Histogram `{hook}`: wall time of one HTTP call, in seconds.
pub const HOOK_DURATION_SECONDS: &str = "estuary_hook_duration_seconds";
/// Counter `{hook, decision}`: outcome of `decide`, `allow` or `reject`.
pub const HOOK_DECISIONS_TOTAL: &str = "estuary_hook_decisions_total";
/// Counter `{hook, reason}`: notifications never delivered; reason is `queue_full`,
/// `rejected` (the backend definitely refused it), `gave_up` (`hooks.max_tries` transient
/// failures) or `shutdown`.
pub const HOOK_UNDELIVERED_TOTAL: &str = "estuary_hook_undelivered_total";

const RESULTS: usize = 4;

fn result_index(o: &Outcome) -> usize {
    match o {
        Outcome::Accepted => 0,
        Outcome::Rejected(_) => 1,
        Outcome::ServerError(_) => 2,
        Outcome::Unreachable(_) => 3,
    }
}

/// Why a notification was never delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Undelivered {
    QueueFull,
    Rejected,
    GaveUp,
    Shutdown,
}

impl Undelivered {
    fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Rejected => "rejected",
            Self::GaveUp => "gave_up",
            Self::Shutdown => "shutdown",
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    calls: [[AtomicU64; RESULTS]; HookKind::COUNT],
    micros: [AtomicU64; HookKind::COUNT],
    queue_full: AtomicU64,
    rejected: AtomicU64,
    gave_up: AtomicU64,
    shutdown: AtomicU64,
}

impl Counters {
    pub fn record_call(&self, kind: HookKind, outcome: &Outcome, took: Duration) {
        self.calls[kind as usize][result_index(outcome)].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.micros[kind as usize].fetch_add(us, Ordering::Relaxed);
        let hook = kind.as_str();
        metrics::counter!(HOOK_CALLS_TOTAL, "hook" => hook, "result" => outcome.label()).increment(1);
        metrics::histogram!(HOOK_DURATION_SECONDS, "hook" => hook).record(took.as_secs_f64());
    }

    pub fn record_decision(&self, kind: HookKind, allowed: bool) {
        let decision = if allowed { "allow" } else { "reject" };
        metrics::counter!(HOOK_DECISIONS_TOTAL, "hook" => kind.as_str(), "decision" => decision).increment(1);
    }

    pub fn record_undelivered(&self, kind: HookKind, why: Undelivered, n: u64) {
        let c = match why {
            Undelivered::QueueFull => &self.queue_full,
            Undelivered::Rejected => &self.rejected,
            Undelivered::GaveUp => &self.gave_up,
            Undelivered::Shutdown => &self.shutdown,
        };
        c.fetch_add(n, Ordering::Relaxed);
        metrics::counter!(HOOK_UNDELIVERED_TOTAL, "hook" => kind.as_str(), "reason" => why.label()).increment(n);
    }

    pub fn dropped(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> HooksStats {
        let calls = std::array::from_fn(|k| std::array::from_fn(|r| self.calls[k][r].load(Ordering::Relaxed)));
        let total_micros = std::array::from_fn(|k| self.micros[k].load(Ordering::Relaxed));
        HooksStats {
            calls,
            total_micros,
            dropped_queue_full: self.queue_full.load(Ordering::Relaxed),
            abandoned_rejected: self.rejected.load(Ordering::Relaxed),
            abandoned_gave_up: self.gave_up.load(Ordering::Relaxed),
            abandoned_shutdown: self.shutdown.load(Ordering::Relaxed),
        }
    }
}

/// A copy of the hook counters, for the HTTP API or tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HooksStats {
    calls: [[u64; RESULTS]; HookKind::COUNT],
    total_micros: [u64; HookKind::COUNT],
    /// Notifications dropped because their endpoint's queue was full.
    pub dropped_queue_full: u64,
    /// Notifications given up after a definite rejection by the backend.
    pub abandoned_rejected: u64,
    /// Notifications given up after `hooks.max_tries` transient failures.
    pub abandoned_gave_up: u64,
    /// Notifications still pending when the shutdown flush ran out of time.
    pub abandoned_shutdown: u64,
}

impl HooksStats {
    /// HTTP calls of `kind` that ended as `result` (`accepted`, `rejected`, `server_error`,
    /// `unreachable`); 0 for an unknown label.
    pub fn calls(&self, kind: HookKind, result: &str) -> u64 {
        let r = match result {
            "accepted" => 0,
            "rejected" => 1,
            "server_error" => 2,
            "unreachable" => 3,
            _ => return 0,
        };
        self.calls[kind as usize][r]
    }

    /// All HTTP calls of `kind`.
    pub fn total_calls(&self, kind: HookKind) -> u64 {
        self.calls[kind as usize].iter().sum()
    }

    /// Mean duration of the HTTP calls of `kind`, if there were any.
    pub fn mean_latency(&self, kind: HookKind) -> Option<Duration> {
        let n = self.total_calls(kind);
        (n > 0).then(|| Duration::from_micros(self.total_micros[kind as usize] / n))
    }
}

/// Lets through at most one event per `every` (for warnings that could flood the log).
pub(crate) struct RateLimit {
    base: std::time::Instant,
    every_ms: u64,
    /// Milliseconds after `base` of the last event let through, plus one (0 = never).
    last: AtomicU64,
}

impl RateLimit {
    pub fn new(every: Duration) -> Self {
        Self {
            base: std::time::Instant::now(),
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            last: AtomicU64::new(0),
        }
    }

    pub fn allow(&self) -> bool {
        let now = u64::try_from(self.base.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= self.every_ms)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_lets_one_through_per_period() {
        let r = RateLimit::new(Duration::from_secs(3600));
        assert!(r.allow());
        assert!(!r.allow());
        let r = RateLimit::new(Duration::ZERO);
        assert!(r.allow() && r.allow());
    }
}
