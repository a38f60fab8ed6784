//! Per-IP connection limits of one listener, checked in the accept loop before anything is
//! read: at most `limits.max_connections_per_ip` open connections per address, and at most
//! `limits.max_new_connections_per_ip_per_sec` new ones per second (a token bucket whose
//! burst is the same number).
//!
//! The table is bounded: an address is forgotten once it has no connection and its bucket
//! is full again (at once when its last connection closes, otherwise at the next prune), and
//! at most `limits.max_tracked_ips` addresses are tracked; a new address past that is
//! refused (`table_full`) until tracked ones go quiet. IPv4-mapped IPv6 addresses count as
//! their IPv4; addresses in `limits.per_ip_exempt` are not tracked at all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::{IpRange, LimitsConfig};

/// How often a full table is swept for quiet addresses (at most).
const PRUNE_EVERY: Duration = Duration::from_secs(1);
/// How often the table is swept anyway, so quiet addresses do not linger.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(30);

/// Why a connection was refused; [`Refused::reason`] is the metric's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("limits.max_connections_per_ip reached")]
    PerIp,
    #[error("limits.max_new_connections_per_ip_per_sec exceeded")]
    Rate,
    #[error("limits.max_tracked_ips reached")]
    TableFull,
}

impl Refused {
    /// The `reason` label of `estuary_connections_rejected_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::PerIp => "per_ip",
            Refused::Rate => "rate",
            Refused::TableFull => "table_full",
        }
    }
}

/// One address's open connections and token bucket.
#[derive(Debug)]
struct Entry {
    conns: usize,
    tokens: f64,
    refilled: Instant,
}

impl Entry {
    fn refill(&mut self, now: Instant, rate: u32) {
        if rate == 0 || now <= self.refilled {
            return;
        }
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        self.refilled = now;
    }

    /// No connection and a full bucket: nothing to remember.
    fn is_quiet(&mut self, now: Instant, rate: u32) -> bool {
        self.refill(now, rate);
        self.conns == 0 && (rate == 0 || self.tokens >= f64::from(rate))
    }
}

struct Table {
    ips: HashMap<IpAddr, Entry>,
    last_prune: Instant,
}

/// The per-IP limits of one listener; shared by its accept loop and its connections' slots.
pub struct PerIpLimits {
    max_conns: usize,
    rate: u32,
    max_ips: usize,
    exempt: Vec<IpRange>,
    table: Mutex<Table>,
}

/// A connection counted against its address; dropping it gives the place back.
pub struct Slot {
    limits: Arc<PerIpLimits>,
    ip: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            self.limits.release(ip, Instant::now());
        }
    }
}

impl PerIpLimits {
    pub fn new(limits: &LimitsConfig) -> Arc<PerIpLimits> {
        Arc::new(PerIpLimits {
            max_conns: limits.max_connections_per_ip,
            rate: limits.max_new_connections_per_ip_per_sec,
            max_ips: limits.max_tracked_ips.max(1),
            exempt: limits.per_ip_exempt.clone(),
            table: Mutex::new(Table {
                ips: HashMap::new(),
                last_prune: Instant::now(),
            }),
        })
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection from `ip` at `now`, or says why it is refused.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<Slot, Refused> {
        let ip = ip.to_canonical();
        let slot = |ip| Slot {
            limits: Arc::clone(self),
            ip,
        };
        if (self.max_conns == 0 && self.rate == 0) || self.exempt.iter().any(|r| r.contains(ip)) {
            return Ok(slot(None));
        }
        let mut table = self.table();
        let due = now.saturating_duration_since(table.last_prune);
        if due >= HOUSEKEEPING_EVERY || (table.ips.len() >= self.max_ips && due >= PRUNE_EVERY) {
            self.prune(&mut table, now);
        }
        if !table.ips.contains_key(&ip) && table.ips.len() >= self.max_ips {
            return Err(Refused::TableFull);
        }
        let rate = self.rate;
        let entry = table.ips.entry(ip).or_insert_with(|| Entry {
            conns: 0,
            tokens: f64::from(rate),
            refilled: now,
        });
        entry.refill(now, rate);
        if self.max_conns > 0 && entry.conns >= self.max_conns {
            return Err(Refused::PerIp);
        }
        if rate > 0 {
            if entry.tokens < 1.0 {
                return Err(Refused::Rate);
            }
            entry.tokens -= 1.0;
        }
        entry.conns += 1;
        Ok(slot(Some(ip)))
    }

    fn release(&self, ip: IpAddr, now: Instant) {
        let mut table = self.table();
        let Some(entry) = table.ips.get_mut(&ip) else { return };
        entry.conns = entry.conns.saturating_sub(1);
        if entry.is_quiet(now, self.rate) {
            table.ips.remove(&ip);
        }
    }

    fn prune(&self, table: &mut Table, now: Instant) {
        table.last_prune = now;
        let rate = self.rate;
        table.ips.retain(|_, e| !e.is_quiet(now, rate));
    }

    /// Addresses tracked now.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.table().ips.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: usize, rate: u32, max_ips: usize) -> Arc<PerIpLimits> {
        PerIpLimits::new(&LimitsConfig {
            max_connections_per_ip: per_ip,
            max_new_connections_per_ip_per_sec: rate,
            max_tracked_ips: max_ips,
            ..LimitsConfig::default()
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn open_connections_are_counted_per_ip() {
        let l = limits(2, 0, 10);
        let now = Instant::now();
        let a = l.admit(ip("10.0.0.1"), now).unwrap();
        let _b = l.admit(ip("10.0.0.1"), now).unwrap();
        assert_eq!(l.admit(ip("10.0.0.1"), now).err(), Some(Refused::PerIp));
        let _other = l.admit(ip("10.0.0.2"), now).expect("another address has its own count");
        drop(a);
        let _c = l
            .admit(ip("10.0.0.1"), now)
            .expect("a closed connection gives its place back");
    }

    #[test]
    fn the_bucket_refills_at_the_rate_with_a_burst_of_the_same_size() {
        let l = limits(0, 4, 10);
        let t0 = Instant::now();
        let held: Vec<Slot> = (0..4).map(|_| l.admit(ip("10.0.0.1"), t0).unwrap()).collect();
        assert_eq!(l.admit(ip("10.0.0.1"), t0).err(), Some(Refused::Rate), "burst spent");
        let t1 = t0 + Duration::from_millis(250);
        let _one = l.admit(ip("10.0.0.1"), t1).expect("a quarter second refills one token");
        assert_eq!(l.admit(ip("10.0.0.1"), t1).err(), Some(Refused::Rate));
        // A long pause refills the burst, not more.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..4 {
            l.admit(ip("10.0.0.1"), t2).unwrap();
        }
        assert_eq!(l.admit(ip("10.0.0.1"), t2).err(), Some(Refused::Rate));
        drop(held);
    }

    #[test]
    fn quiet_addresses_are_forgotten_and_the_table_is_bounded() {
        let l = limits(10, 10, 3);
        let t0 = Instant::now();
        let a = l.admit(ip("10.0.0.1"), t0).unwrap();
        let b = l.admit(ip("10.0.0.2"), t0).unwrap();
        let _c = l.admit(ip("10.0.0.3"), t0).unwrap();
        assert_eq!(l.tracked(), 3);
        assert_eq!(l.admit(ip("10.0.0.4"), t0).err(), Some(Refused::TableFull));
        // A known address still gets in while the table is full.
        let _a2 = l.admit(ip("10.0.0.1"), t0).unwrap();
        // Closing does not forget an address whose bucket is not full yet…
        drop(b);
        assert_eq!(l.tracked(), 3);
        // …the next sweep of a full table does, once the bucket has refilled.
        let t1 = t0 + Duration::from_secs(2);
        let _d = l.admit(ip("10.0.0.4"), t1).expect("a quiet address made room");
        assert_eq!(l.tracked(), 3);
        drop(a);
    }

    #[test]
    fn a_connection_closed_with_a_full_bucket_is_forgotten_at_once() {
        let l = limits(10, 0, 10);
        let a = l.admit(ip("10.0.0.1"), Instant::now()).unwrap();
        assert_eq!(l.tracked(), 1);
        drop(a);
        assert_eq!(l.tracked(), 0);
    }

    #[test]
    fn mapped_addresses_count_as_their_ipv4() {
        let l = limits(1, 0, 10);
        let now = Instant::now();
        let _v4 = l.admit(ip("192.0.2.7"), now).unwrap();
        assert_eq!(l.admit(ip("::ffff:192.0.2.7"), now).err(), Some(Refused::PerIp));
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn exempt_ranges_and_disabled_limits_track_nothing() {
        let l = PerIpLimits::new(&LimitsConfig {
            max_connections_per_ip: 1,
            per_ip_exempt: vec![IpRange::try_from("127.0.0.0/8".to_string()).unwrap()],
            ..LimitsConfig::default()
        });
        let now = Instant::now();
        let held: Vec<Slot> = (0..5).map(|_| l.admit(ip("127.0.0.1"), now).unwrap()).collect();
        assert_eq!(l.tracked(), 0);
        drop(held);
        let off = limits(0, 0, 1);
        let held: Vec<Slot> = (0..5)
            .map(|i| off.admit(ip(&format!("10.0.0.{i}")), now).unwrap())
            .collect();
        assert_eq!(off.tracked(), 0);
        drop(held);
    }
}
