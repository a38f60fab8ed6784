//! Bitrates as SRS reports them (`recv_30s`/`send_30s`): the change of a client's byte
//! counters over the last 30 s (since the start for a younger client), from samples taken
//! every [`SAMPLE_EVERY`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the registry's `sample` should run.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The bitrate window (SRS `kbps.recv_30s`).
const KBPS_WINDOW: Duration = Duration::from_secs(30);

/// Bitrates over the last 30 s, kbit/s.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Kbps {
    pub recv: u64,
    pub send: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    sent: u64,
    received: u64,
}

/// One client's samples over the window.
#[derive(Debug, Default)]
pub struct Samples {
    samples: Mutex<VecDeque<Sample>>,
}

impl Samples {
    /// Records the counters as they are `now`, dropping samples older than the window.
    pub fn take(&self, now: Instant, sent: u64, received: u64) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back(Sample {
            at: now,
            sent,
            received,
        });
        while samples.len() > 1 && samples.front().is_some_and(|s| now.duration_since(s.at) > KBPS_WINDOW) {
            samples.pop_front();
        }
    }

    /// Bitrates from the oldest sample in the window to the counters `sent` and `received`
    /// as they are at `now`, for a client that started at `started`. The caller passes the
    /// time, so the arithmetic is the same whatever the clock did meanwhile.
    pub fn kbps(&self, now: Instant, started: Instant, sent: u64, received: u64) -> Kbps {
        // A sample taken a moment ago would divide almost nothing by almost no time, so until
        // one is a second old, measure since the client started.
        let oldest = self.samples.lock().unwrap_or_else(|e| e.into_inner()).front().copied();
        let (at, sent_then, received_then) = match oldest {
            Some(s) if now.saturating_duration_since(s.at) >= Duration::from_secs(1) => (s.at, s.sent, s.received),
            _ => (started, 0, 0),
        };
        let ms = now.saturating_duration_since(at).as_millis().max(1) as u64;
        // bytes * 8 / ms = kbit/s
        Kbps {
            recv: received.saturating_sub(received_then) * 8 / ms,
            send: sent.saturating_sub(sent_then) * 8 / ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A client younger than a second's sample is measured since it started: 100 kB in
    /// 100 ms is 8000 kbit/s, exactly, however long the test itself takes.
    #[test]
    fn kbps_since_start() {
        let started = Instant::now();
        let samples = Samples::default();
        samples.take(started, 0, 0);
        let k = samples.kbps(started + 100 * MS, started, 0, 100_000);
        assert_eq!(k, Kbps { recv: 8000, send: 0 });
    }

    /// Once the oldest sample is a second old, the rate is over the samples' window: what was
    /// counted before the oldest sample does not count.
    #[test]
    fn kbps_over_the_window_of_samples() {
        let started = Instant::now();
        let samples = Samples::default();
        for i in 0..10u64 {
            // 10 kB sent and 1 kB received per 5-s sample.
            samples.take(started + SAMPLE_EVERY * i as u32, i * 10_000, i * 1000);
        }
        // At 45 s: samples older than 30 s (0, 5, 10 s) have gone; the oldest is from 15 s.
        let now = started + SAMPLE_EVERY * 9;
        let k = samples.kbps(now, started, 90_000, 9000);
        // (90 000 - 30 000) bytes * 8 / 30 000 ms = 16 kbit/s; (9000 - 3000) * 8 / 30 000 = 1.
        assert_eq!(k, Kbps { recv: 1, send: 16 });
    }

    /// A sample stamped after `now` (a clock read on another thread) gives no panic and no
    /// huge rate.
    #[test]
    fn a_sample_from_the_future_is_harmless() {
        let started = Instant::now();
        let samples = Samples::default();
        samples.take(started + 10 * MS, 5000, 5000);
        let k = samples.kbps(started + 5 * MS, started, 5000, 5000);
        assert_eq!(k, Kbps { recv: 8000, send: 8000 });
    }
}
