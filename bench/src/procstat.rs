//! CPU time and memory of the server process, from /proc.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

fn clock_ticks() -> f64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// Reads /proc/PID/stat and /proc/PID/status.
pub fn sample(pid: u32) -> std::io::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    Ok(Sample {
        cpu_s: parse_cpu_ticks(&stat).unwrap_or(0) as f64 / clock_ticks(),
        ..status(pid)?
    })
}

fn status(pid: u32) -> std::io::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Sample {
        cpu_s: 0.0,
        rss_kb: kb("VmRSS:"),
        hwm_kb: kb("VmHWM:"),
    })
}

/// utime + stime (fields 14 and 15) in clock ticks. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last ')'.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ')' index 0 is field 3 (state); utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// What the server used over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct ServerReport {
    pub pid: u32,
    pub cpu_seconds: f64,
    /// CPU seconds per wall second (1.0 = one core busy).
    pub cpu_utilisation: f64,
    /// CPU seconds per GB (1e9 bytes) the viewers received.
    pub cpu_seconds_per_gb: Option<f64>,
    /// Highest VmRSS seen while sampling.
    pub peak_rss_mb: f64,
    /// The kernel's lifetime high-water mark (VmHWM) at the end.
    pub vm_hwm_mb: f64,
    pub error: Option<String>,
}

/// First sample, last sample, peak RSS (kB), and why sampling stopped early.
type SamplerResult = (Option<Sample>, Option<Sample>, u64, Option<String>);

/// Samples a process every 200 ms on its own thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<SamplerResult>,
    pid: u32,
    started: std::time::Instant,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let first = sample(pid).ok();
            let mut last = first;
            let mut peak = first.map_or(0, |s| s.rss_kb);
            let mut error = None;
            while !flag.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(200));
                match sample(pid) {
                    Ok(s) => {
                        peak = peak.max(s.rss_kb);
                        last = Some(s);
                    }
                    Err(e) => {
                        error = Some(format!("reading /proc/{pid}: {e} (did the server exit?)"));
                        break;
                    }
                }
            }
            if error.is_none() {
                if let Ok(s) = sample(pid) {
                    peak = peak.max(s.rss_kb);
                    last = Some(s);
                }
            }
            (first, last, peak, error)
        });
        Sampler {
            stop,
            handle,
            pid,
            started: std::time::Instant::now(),
        }
    }

    pub fn finish(self, bytes_delivered: u64) -> ServerReport {
        let wall = self.started.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Release);
        let (first, last, peak, error) =
            self.handle
                .join()
                .unwrap_or((None, None, 0, Some("sampler thread panicked".to_string())));
        let cpu = match (first, last) {
            (Some(a), Some(b)) => b.cpu_s - a.cpu_s,
            _ => 0.0,
        };
        let error = error.or_else(|| first.is_none().then(|| format!("no process {}", self.pid)));
        ServerReport {
            pid: self.pid,
            cpu_seconds: cpu,
            cpu_utilisation: if wall > 0.0 { cpu / wall } else { 0.0 },
            cpu_seconds_per_gb: (bytes_delivered > 0).then(|| cpu / (bytes_delivered as f64 / 1e9)),
            peak_rss_mb: peak as f64 / 1024.0,
            vm_hwm_mb: last.map_or(0.0, |s| s.hwm_kb as f64 / 1024.0),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let stat = "1234 (my (weird) srv) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 100 1000 200";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb);
    }
}
