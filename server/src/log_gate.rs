//! Refusal warnings at most once per address and kind every [`WARN_EVERY`]: a flood of
//! refused connections or requests from one address logs one line (with how many were
//! refused quietly since), not one per connection. Every refusal is still counted in
//! `estuary_connections_rejected_total`.
//!
//! The table is bounded: past [`MAX_ADDRESSES`] addresses, entries older than the period are
//! swept (at most once a second), and while it is still full new addresses are not logged.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest silence about one address between two warnings.
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// Most addresses remembered.
const MAX_ADDRESSES: usize = 10_000;
const SWEEP_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Seen {
    last: HashMap<(&'static str, IpAddr), (Instant, u64)>,
    swept: Option<Instant>,
}

#[derive(Default)]
pub struct LogGate {
    seen: Mutex<Seen>,
}

impl LogGate {
    /// `Some(n)` if a warning of kind `what` about `ip` should be logged now, `n` being how
    /// many were held back since the last one; `None` to stay quiet.
    pub fn pass(&self, what: &'static str, ip: IpAddr, now: Instant) -> Option<u64> {
        let ip = ip.to_canonical();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, held)) = seen.last.get_mut(&(what, ip)) {
            if now.saturating_duration_since(*at) < WARN_EVERY {
                *held += 1;
                return None;
            }
            let n = std::mem::take(held);
            *at = now;
            return Some(n);
        }
        if seen.last.len() >= MAX_ADDRESSES {
            if seen
                .swept
                .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
            {
                return None;
            }
            seen.swept = Some(now);
            seen.last
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < WARN_EVERY);
            if seen.last.len() >= MAX_ADDRESSES {
                return None;
            }
        }
        seen.last.insert((what, ip), (now, 0));
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_address_and_kind_per_period() {
        let gate = LogGate::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!(gate.pass("rate", a, t0), Some(0));
        assert_eq!(gate.pass("rate", a, t0), None);
        assert_eq!(gate.pass("rate", a, t0 + Duration::from_secs(1)), None);
        assert_eq!(gate.pass("per_ip", a, t0), Some(0), "another kind");
        assert_eq!(gate.pass("rate", b, t0), Some(0), "another address");
        assert_eq!(gate.pass("rate", a, t0 + WARN_EVERY), Some(2), "two held back");
    }
}
