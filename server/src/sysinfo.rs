//! Process and system figures read from Linux `/proc` (proc(5)) at scrape or request time.
//! On other systems, or if a file cannot be read, the figures are zero.

/// `/proc` reports CPU times in USER_HZ ticks, which is 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// The process's own usage.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessUsage {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

/// The process's CPU time (`/proc/self/stat` fields 14 and 15) and RSS (`VmRSS` of
/// `/proc/self/status`).
pub fn process() -> ProcessUsage {
    let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat_cpu(&s))
        .unwrap_or(0.0);
    let rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| kib_field(&s, "VmRSS:"))
        .map_or(0, |kib| kib * 1024);
    ProcessUsage { cpu_seconds, rss_bytes }
}

/// utime + stime in seconds from a `/proc/PID/stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// A `Key:   1234 kB` line's number.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// System-wide figures for `/api/v1/summaries`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemUsage {
    pub load_1m: f64,
    pub load_5m: f64,
    pub load_15m: f64,
    pub mem_total_kbyte: u64,
    pub mem_available_kbyte: u64,
    pub swap_total_kbyte: u64,
    pub swap_free_kbyte: u64,
    /// Total busy CPU ticks and total ticks (`/proc/stat` first line).
    pub cpu_busy_ticks: u64,
    pub cpu_total_ticks: u64,
    pub cpus: usize,
    /// Sectors read and written by whole disks since boot, in bytes.
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
    pub uptime_seconds: f64,
}

pub fn system() -> SystemUsage {
    let mut u = SystemUsage::default();
    if let Ok(s) = std::fs::read_to_string("/proc/loadavg") {
        let mut it = s.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(0.0));
        u.load_1m = it.next().unwrap_or(0.0);
        u.load_5m = it.next().unwrap_or(0.0);
        u.load_15m = it.next().unwrap_or(0.0);
    }
    if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
        u.mem_total_kbyte = kib_field(&s, "MemTotal:").unwrap_or(0);
        u.mem_available_kbyte = kib_field(&s, "MemAvailable:").unwrap_or(0);
        u.swap_total_kbyte = kib_field(&s, "SwapTotal:").unwrap_or(0);
        u.swap_free_kbyte = kib_field(&s, "SwapFree:").unwrap_or(0);
    }
    if let Ok(s) = std::fs::read_to_string("/proc/stat") {
        if let Some(line) = s.lines().next().and_then(|l| l.strip_prefix("cpu ")) {
            let ticks: Vec<u64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            u.cpu_total_ticks = ticks.iter().take(8).sum();
            // idle (3) and iowait (4) are not busy.
            let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
            u.cpu_busy_ticks = u.cpu_total_ticks.saturating_sub(idle);
        }
        u.cpus = s
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
    }
    if let Ok(s) = std::fs::read_to_string("/proc/diskstats") {
        for l in s.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Whole disks only (partitions would count twice): skip names ending in a digit
            // after a letter-only prefix such as sda1, and loop/ram devices.
            let Some(name) = f.get(2) else { continue };
            if name.starts_with("loop") || name.starts_with("ram") || is_partition(name) {
                continue;
            }
            let sectors = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            u.disk_read_bytes += sectors(5) * 512;
            u.disk_write_bytes += sectors(9) * 512;
        }
    }
    if let Ok(s) = std::fs::read_to_string("/proc/uptime") {
        u.uptime_seconds = s.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    }
    u
}

/// `sda1`, `vdb2`, `nvme0n1p1`, `mmcblk0p1` are partitions; `sda`, `nvme0n1` are disks.
fn is_partition(name: &str) -> bool {
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        return name.rsplit_once('p').is_some_and(|(head, tail)| {
            head.ends_with(|c: char| c.is_ascii_digit()) && !tail.is_empty() && tail.chars().all(|c| c.is_ascii_digit())
        });
    }
    name.ends_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_the_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 12345 1000 200";
        assert_eq!(parse_stat_cpu(stat), Some(3.0));
    }

    #[test]
    fn partitions() {
        assert!(is_partition("sda1"));
        assert!(!is_partition("sda"));
        assert!(is_partition("nvme0n1p2"));
        assert!(!is_partition("nvme0n1"));
    }

    #[test]
    fn own_process_is_read() {
        let p = process();
        if cfg!(target_os = "linux") {
            assert!(p.rss_bytes > 0);
        }
    }
}
