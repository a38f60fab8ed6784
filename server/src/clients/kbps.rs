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

    /// Bitrates from the oldest sample in the window to the counters now, for a client that
    /// started at `started`.
    pub fn kbps(&self, started: Instant, sent: u64, received: u64) -> Kbps {
        // A sample taken a moment ago would divide almost nothing by almost no time, so until
        // one is a second old, measure since the client started.
        let oldest = self.samples.lock().unwrap_or_else(|e| e.into_inner()).front().copied();
        let (at, sent_then, received_then) = match oldest {
            Some(s) if s.at.elapsed() >= Duration::from_secs(1) => (s.at, s.sent, s.received),
            _ => (started, 0, 0),
        };
        let ms = at.elapsed().as_millis().max(1) as u64;
        // bytes * 8 / ms = kbit/s
        Kbps {
            recv: received.saturating_sub(received_then) * 8 / ms,
            send: sent.saturating_sub(sent_then) * 8 / ms,
        }
    }
}
