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
    /// Milliseconds the whole disks spent doing I/O (`io_ticks`), summed, and how many disks.
    pub disk_io_ms: u64,
    pub disks: usize,
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
            u.disk_io_ms += sectors(12);
            u.disks += 1;
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

/// The parent's pid (`/proc/self/stat` field 4); 0 if unknown.
pub fn ppid() -> u32 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_stat_ppid(&s))
        .unwrap_or(0)
}

fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state (3), ppid (4).
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Seconds every CPU has spent idle since boot, summed (`/proc/uptime`'s second number).
pub fn idle_seconds() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0)
}

/// Bytes through the network interfaces since boot (`/proc/net/dev`), split as SRS splits
/// them: interfaces with a public IPv4 network ("internet") and the others, `lo` included
/// ("intranet", SRS's `net_recvi_bytes`/`net_sendi_bytes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkBytes {
    pub recv: u64,
    pub send: u64,
    pub recv_intranet: u64,
    pub send_intranet: u64,
}

pub fn network_bytes() -> NetworkBytes {
    let (Ok(dev), route) = (
        std::fs::read_to_string("/proc/net/dev"),
        std::fs::read_to_string("/proc/net/route").unwrap_or_default(),
    ) else {
        return NetworkBytes::default();
    };
    parse_net_dev(&dev, &internet_interfaces(&route))
}

fn parse_net_dev(dev: &str, internet: &[String]) -> NetworkBytes {
    let mut n = NetworkBytes::default();
    for line in dev.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<u64> = counters.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
        // Receive bytes is the first counter, transmit bytes the ninth.
        let (recv, send) = (f.first().copied().unwrap_or(0), f.get(8).copied().unwrap_or(0));
        if internet.iter().any(|i| i == name.trim()) {
            n.recv += recv;
            n.send += send;
        } else {
            n.recv_intranet += recv;
            n.send_intranet += send;
        }
    }
    n
}

/// Interfaces that have a route to a public IPv4 network of their own (the network their
/// address is in; `/proc/net/route`, destinations in host-order hex). Without a way to list
/// addresses from `/proc`, a directly attached network stands for the address in it.
fn internet_interfaces(route: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in route.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(dest), Some(mask)) = (f.first(), f.get(1), f.get(7)) else {
            continue;
        };
        let (Ok(dest), Ok(mask)) = (u32::from_str_radix(dest, 16), u32::from_str_radix(mask, 16)) else {
            continue;
        };
        if mask == 0 {
            continue; // the default route says nothing of the interface's own address
        }
        let ip = std::net::Ipv4Addr::from(u32::from_be(dest));
        let private = ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.octets()[0] == 100 && ip.octets()[1] & 0xc0 == 64;
        if !private && !out.iter().any(|o| o == name) {
            out.push((*name).to_string());
        }
    }
    out
}

/// The system's sockets as SRS counts them (`/proc/net/sockstat`, `/proc/net/snmp`): TCP
/// sockets allocated plus those in TIME-WAIT, TCP established, TIME-WAIT, UDP in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sockets {
    pub tcp: u64,
    pub tcp_established: u64,
    pub tcp_time_wait: u64,
    pub udp: u64,
}

pub fn sockets() -> Sockets {
    parse_sockets(
        &std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default(),
        &std::fs::read_to_string("/proc/net/snmp").unwrap_or_default(),
    )
}

fn parse_sockets(sockstat: &str, snmp: &str) -> Sockets {
    let mut s = Sockets::default();
    // `TCP: inuse 1 orphan 0 tw 29 alloc 1 mem 171`: pairs of name and number.
    let value = |line: &str, key: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.windows(2)
            .find(|w| w[0] == key)
            .and_then(|w| w[1].parse::<u64>().ok())
            .unwrap_or(0)
    };
    for line in sockstat.lines() {
        if let Some(rest) = line.strip_prefix("TCP:") {
            s.tcp_time_wait = value(rest, "tw");
            s.tcp = value(rest, "alloc") + s.tcp_time_wait;
        } else if let Some(rest) = line.strip_prefix("UDP:") {
            s.udp = value(rest, "inuse");
        }
    }
    // Two `Tcp:` lines, the names then the numbers: CurrEstab is a name.
    let tcp: Vec<Vec<&str>> = snmp
        .lines()
        .filter_map(|l| l.strip_prefix("Tcp:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    if let [names, numbers] = &tcp[..] {
        if let Some(i) = names.iter().position(|n| *n == "CurrEstab") {
            s.tcp_established = numbers.get(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    s
}

/// Figures that are rates: taken between this reading and the previous one at least
/// [`MIN_SAMPLE_GAP`] older (SRS samples on a timer; we sample when asked, so two requests in
/// a row still span a second or more). The first reading gives averages since boot (CPU) or
/// since the process started (its own CPU), and no disk rates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Busy share of all CPUs, 0..=1.
    pub cpu: f64,
    /// The process's CPU time per second (1.0 is one CPU busy).
    pub self_cpu: f64,
    pub disk_read_kbyte_per_s: u64,
    pub disk_write_kbyte_per_s: u64,
    /// Share of the time the disks were busy (mean over the whole disks), 0..=1.
    pub disk_busy: f64,
}

/// The shortest span a rate is taken over.
pub const MIN_SAMPLE_GAP: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: std::time::Instant,
    cpu_busy: u64,
    cpu_total: u64,
    self_cpu_seconds: f64,
    disk_read_bytes: u64,
    disk_write_bytes: u64,
    disk_io_ms: u64,
}

static LAST_SAMPLE: std::sync::Mutex<Option<(Sample, Rates)>> = std::sync::Mutex::new(None);

/// The rates now (see [`Rates`]); `process_age` is how long the process has run.
pub fn rates(system: &SystemUsage, process: &ProcessUsage, process_age: std::time::Duration) -> Rates {
    let now = Sample {
        at: std::time::Instant::now(),
        cpu_busy: system.cpu_busy_ticks,
        cpu_total: system.cpu_total_ticks,
        self_cpu_seconds: process.cpu_seconds,
        disk_read_bytes: system.disk_read_bytes,
        disk_write_bytes: system.disk_write_bytes,
        disk_io_ms: system.disk_io_ms,
    };
    let mut last = LAST_SAMPLE.lock().unwrap_or_else(|e| e.into_inner());
    match *last {
        Some((before, rates)) if now.at.duration_since(before.at) < MIN_SAMPLE_GAP => rates,
        Some((before, _)) => {
            let rates = between(&before, &now, system.disks);
            *last = Some((now, rates));
            rates
        }
        None => {
            let rates = Rates {
                cpu: ratio(system.cpu_busy_ticks as f64, system.cpu_total_ticks as f64),
                self_cpu: ratio(process.cpu_seconds, process_age.as_secs_f64()),
                ..Rates::default()
            };
            *last = Some((now, rates));
            rates
        }
    }
}

fn between(before: &Sample, now: &Sample, disks: usize) -> Rates {
    let secs = now.at.duration_since(before.at).as_secs_f64();
    let per_s = |a: u64, b: u64| (b.saturating_sub(a) as f64 / secs) as u64;
    Rates {
        cpu: ratio(
            now.cpu_busy.saturating_sub(before.cpu_busy) as f64,
            now.cpu_total.saturating_sub(before.cpu_total) as f64,
        ),
        self_cpu: ratio(now.self_cpu_seconds - before.self_cpu_seconds, secs),
        disk_read_kbyte_per_s: per_s(before.disk_read_bytes, now.disk_read_bytes) / 1024,
        disk_write_kbyte_per_s: per_s(before.disk_write_bytes, now.disk_write_bytes) / 1024,
        disk_busy: ratio(
            now.disk_io_ms.saturating_sub(before.disk_io_ms) as f64,
            secs * 1000.0 * disks.max(1) as f64,
        )
        .min(1.0),
    }
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part / whole).max(0.0)
    } else {
        0.0
    }
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

    #[test]
    fn ppid_after_an_odd_name() {
        let stat = "1234 (my (odd) name) S 77 1234 1234 0 -1";
        assert_eq!(parse_stat_ppid(stat), Some(77));
    }

    #[test]
    fn network_bytes_split_by_public_networks() {
        let route = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     eth1\t00711BCB\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            internet_interfaces(route),
            vec!["eth1".to_string()],
            "10.0.0.0/24 is private, 203.27.113.0/24 not"
        );
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n\
                       lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
                     eth0: 200 2 0 0 0 0 0 0 300 3 0 0 0 0 0 0\n\
                     eth1: 400 4 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n";
        let n = parse_net_dev(dev, &internet_interfaces(route));
        assert_eq!(
            n,
            NetworkBytes {
                recv: 400,
                send: 500,
                recv_intranet: 300,
                send_intranet: 400
            }
        );
    }

    #[test]
    fn sockets_as_srs_counts_them() {
        let sockstat = "sockets: used 19\nTCP: inuse 5 orphan 0 tw 29 alloc 7 mem 171\nUDP: inuse 3 mem 0\n";
        let snmp = "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs\n\
                    Tcp: 1 200 120000 -1 10 20 0 0 4 999\n";
        assert_eq!(
            parse_sockets(sockstat, snmp),
            Sockets {
                tcp: 36,
                tcp_established: 4,
                tcp_time_wait: 29,
                udp: 3
            }
        );
    }

    #[test]
    fn rates_between_two_samples() {
        let at = std::time::Instant::now();
        let before = Sample {
            at,
            cpu_busy: 100,
            cpu_total: 400,
            self_cpu_seconds: 1.0,
            disk_read_bytes: 0,
            disk_write_bytes: 0,
            disk_io_ms: 0,
        };
        let now = Sample {
            at: at + std::time::Duration::from_secs(2),
            cpu_busy: 150,
            cpu_total: 600,
            self_cpu_seconds: 1.5,
            disk_read_bytes: 4 * 1024 * 1024,
            disk_write_bytes: 2048,
            disk_io_ms: 500,
        };
        let r = between(&before, &now, 1);
        assert_eq!(r.cpu, 0.25);
        assert_eq!(r.self_cpu, 0.25);
        assert_eq!(r.disk_read_kbyte_per_s, 2048);
        assert_eq!(r.disk_write_kbyte_per_s, 1);
        assert_eq!(r.disk_busy, 0.25);
    }
}
