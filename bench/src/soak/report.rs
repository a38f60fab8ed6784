//! The soak report: what ran, what the server looked like before, during and after, and the
//! checks (each failed check is one line in `problems`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::clients::ClientTally;
use super::receiver::Tally;

/// Idle value before the churn, highest seen during it, value once everyone left.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Levels {
    pub baseline: u64,
    pub peak: u64,
    pub end: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct RssReport {
    /// VmRSS samples of the measured window (one a second).
    pub samples: usize,
    pub first_kb: u64,
    pub last_kb: u64,
    pub peak_kb: u64,
    /// Least-squares slope of VmRSS over the measured window, KB per minute.
    pub slope_kb_per_min: f64,
    /// The largest slope the run accepts (see `SoakConfig::rss_slope_bound`).
    pub bound_kb_per_min: f64,
    /// Every sample, warm-up included: (seconds into the churn, VmRSS kB).
    pub series: Vec<(u32, u64)>,
}

/// Hooks as the server counted them and as the receiver counted them.
#[derive(Debug, Default, Clone, Serialize)]
pub struct HooksReport {
    /// Calls the server saw accepted, by hook (`estuary_hook_calls_total{result="accepted"}`).
    pub sent_accepted: BTreeMap<String, u64>,
    /// Calls the server made that failed (receiver down), by hook; notifications among them
    /// were retried.
    pub sent_failed: BTreeMap<String, u64>,
    /// Calls the receiver answered, by action (duplicates included).
    pub received: BTreeMap<String, u64>,
    /// Events the receiver got twice for the same client (delivery is at-least-once).
    pub duplicates: u64,
    /// `estuary_hook_undelivered_total`, all reasons.
    pub undelivered: u64,
    /// Per pair ("on_publish without on_unpublish"), the first client ids that lack it.
    pub unmatched: BTreeMap<String, Vec<String>>,
}

/// The pairs every client id must complete: `(first, then, both ways)`. `on_close` may come
/// without `on_connect` (a client that connected while the receiver was down was refused
/// and still closes), so that pair is checked one way.
pub const PAIRS: [(&str, &str, bool); 3] = [
    ("on_connect", "on_close", false),
    ("on_publish", "on_unpublish", true),
    ("on_play", "on_stop", true),
];

impl HooksReport {
    pub fn fill_from(&mut self, tally: &Tally) {
        self.received = tally.counts();
        self.duplicates = tally.duplicates();
        self.unmatched.clear();
        for (first, then, both) in PAIRS {
            let mut add = |a: &str, b: &str| {
                let missing = tally.unmatched(a, b);
                if !missing.is_empty() {
                    self.unmatched.insert(
                        format!("{a} without {b} ({})", missing.len()),
                        missing.into_iter().take(10).collect(),
                    );
                }
            };
            add(first, then);
            if both {
                add(then, first);
            }
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct SoakReport {
    pub seed: u64,
    /// Seconds of churn before the idle baseline.
    pub prime_secs: f64,
    /// Seconds of churn before the measured window (left out of the RSS fit).
    pub warmup_secs: f64,
    /// Seconds of churn measured after the warm-up (the steady state).
    pub steady_secs: f64,
    /// Seconds from the last client leaving to the server back at its idle counts.
    pub settle_secs: f64,
    pub clients: ClientTally,
    /// Connections the server accepted during the measured window (RTMP + HTTP, the
    /// scenario's one-a-second `/metrics` scrapes included).
    pub connections: u64,
    pub rss: RssReport,
    /// Open file descriptors (`/proc/PID/fd`).
    pub fds: Levels,
    /// `estuary_tasks`: tokio tasks alive in the server.
    pub tasks: Levels,
    /// `estuary_tracked_tasks`: connection and output tasks.
    pub tracked_tasks: Levels,
    pub hooks: HooksReport,
    pub problems: Vec<String>,
}

/// Least-squares slope of `(x, y)` points (`None` under 2 points or with no spread in x).
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

impl SoakReport {
    /// The checks; fills `problems`.
    pub fn check(&mut self, expect_outages: bool) {
        let mut p = Vec::new();
        for (what, l) in [
            ("open fds", self.fds),
            ("estuary_tasks", self.tasks),
            ("estuary_tracked_tasks", self.tracked_tasks),
        ] {
            if l.end > l.baseline {
                p.push(format!(
                    "{what} did not return to the idle baseline: {} at the end, {} before the churn",
                    l.end, l.baseline
                ));
            }
        }
        for (pair, ids) in &self.hooks.unmatched {
            p.push(format!("hook lost: {pair}, e.g. client ids {ids:?}"));
        }
        if self.hooks.undelivered > 0 {
            p.push(format!(
                "estuary_hook_undelivered_total is {} (notifications dropped)",
                self.hooks.undelivered
            ));
        }
        if self.rss.slope_kb_per_min > self.rss.bound_kb_per_min {
            p.push(format!(
                "RSS grows {:.1} KB/min over the churn, above the bound {:.1} KB/min",
                self.rss.slope_kb_per_min, self.rss.bound_kb_per_min
            ));
        }
        let s = &self.clients.stalled;
        if s.not_cut > 0 {
            p.push(format!(
                "{} of {} stalled viewers were still served after the hold (never cut)",
                s.not_cut, s.started
            ));
        }
        // The run must have exercised what it claims to check.
        if self.clients.publishers.ok == 0 {
            p.push("no publisher session started".into());
        }
        for kind in ["RTMP", "HTTP-FLV", "HLS", "probe"] {
            if self.clients.viewers.get(kind).is_none_or(|k| k.ok == 0) {
                p.push(format!("no {kind} viewer got media"));
            }
        }
        if s.started == 0 {
            p.push("no stalled viewer started playing".into());
        }
        if expect_outages && self.clients.outages.count == 0 {
            p.push("the hook receiver never went down".into());
        }
        for action in PAIRS.iter().flat_map(|(a, b, _)| [*a, *b]) {
            if self.hooks.received.get(action).copied().unwrap_or(0) == 0 {
                p.push(format!("the receiver got no {action}"));
            }
        }
        self.problems = p;
    }

    /// A human summary.
    pub fn human(&self) -> String {
        let mut o = String::new();
        let c = &self.clients;
        let _ = writeln!(
            o,
            "soak: seed {}, {:.0} s priming, then {:.0} s warm-up + {:.0} s measured churn; settled {:.1} s after the last client left",
            self.seed, self.prime_secs, self.warmup_secs, self.steady_secs, self.settle_secs
        );
        let _ = writeln!(
            o,
            "clients: publisher sessions {} ({} started); hook receiver down {} times, {:.0} s in all",
            c.publishers.sessions, c.publishers.ok, c.outages.count, c.outages.down_secs
        );
        for (kind, k) in &c.viewers {
            let _ = writeln!(o, "  {kind} viewer sessions {} ({} got media)", k.sessions, k.ok);
        }
        let _ = writeln!(
            o,
            "  stalled viewers {} (started {}, cut by the server {}, never cut {})",
            c.stalled.sessions, c.stalled.started, c.stalled.cut, c.stalled.not_cut
        );
        let _ = writeln!(o, "  connections accepted in the measured window: {}", self.connections);
        let _ = writeln!(
            o,
            "RSS: {} -> {} KB (peak {}), slope {:.1} KB/min over {} samples (bound {:.1})",
            self.rss.first_kb,
            self.rss.last_kb,
            self.rss.peak_kb,
            self.rss.slope_kb_per_min,
            self.rss.samples,
            self.rss.bound_kb_per_min
        );
        for (what, l) in [
            ("fds", self.fds),
            ("tasks", self.tasks),
            ("tracked tasks", self.tracked_tasks),
        ] {
            let _ = writeln!(o, "{what}: idle {} / peak {} / end {}", l.baseline, l.peak, l.end);
        }
        let h = &self.hooks;
        let _ = writeln!(
            o,
            "hooks: server accepted {:?}, failed {:?}; receiver got {:?}; duplicates {}; undelivered {}",
            h.sent_accepted, h.sent_failed, h.received, h.duplicates, h.undelivered
        );
        for (pair, ids) in &h.unmatched {
            let _ = writeln!(o, "  {pair}: {ids:?}");
        }
        let reasons = |o: &mut String, what: &str, r: &BTreeMap<String, u64>| {
            for (why, n) in r {
                let _ = writeln!(o, "  {what}: {n} x {why}");
            }
        };
        reasons(&mut o, "publisher ended", &c.publishers.reasons);
        for (kind, k) in &c.viewers {
            reasons(&mut o, &format!("{kind} viewer ended"), &k.reasons);
        }
        reasons(&mut o, "stalled viewer refused", &c.stalled.refused);
        if self.problems.is_empty() {
            let _ = writeln!(o, "all checks passed");
        } else {
            for p in &self.problems {
                let _ = writeln!(o, "PROBLEM: {p}");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let line: Vec<(f64, f64)> = (0..60).map(|i| (f64::from(i), 1000.0 + 2.5 * f64::from(i))).collect();
        assert!((slope(&line).unwrap() - 2.5).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..60)
            .map(|i| (f64::from(i), if i % 2 == 0 { 10.0 } else { 12.0 }))
            .collect();
        assert!(slope(&flat).unwrap().abs() < 0.01);
        assert_eq!(slope(&[(1.0, 1.0)]), None);
    }
}
