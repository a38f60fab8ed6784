//! `[limits]`: ceilings a hostile or broken peer cannot raise: message sizes, connections
//! (in total, per IP and per second per IP), streams, viewers and HLS sessions.
//!
//! Where each is enforced: connections in the accept loop (`servers/listener.rs`, before a
//! byte is read), streams and viewers in the admission pipeline (`admission/limits.rs`), HLS
//! sessions in the client registry (`clients/hls_sessions.rs`), the RTMP connection's byte
//! budgets (message, chunk streams, pre-connect) by its session (`estuary_protocol::rtmp`).

use std::net::IpAddr;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest chunk size a peer may set (RTMP Set Chunk Size).
    pub max_chunk_size: u32,
    /// Largest RTMP message a peer may send, in bytes.
    pub max_message_bytes: u32,
    /// Most simultaneous connections (RTMP and HTTP counted separately).
    pub max_connections: usize,
    /// Most simultaneous connections from one IP address, per listener; 0: no limit.
    pub max_connections_per_ip: usize,
    /// New connections one IP address may open per second, per listener (a token bucket
    /// with a burst of the same size); 0: no limit.
    pub max_new_connections_per_ip_per_sec: u32,
    /// Most IP addresses the per-IP limits track at once, per listener; past it a new
    /// address is refused (`table_full`) until tracked ones go quiet.
    pub max_tracked_ips: usize,
    /// Addresses and CIDR ranges the per-IP limits (connections, rate, HLS sessions) do
    /// not apply to: a reverse proxy or CDN that brings every viewer from a few addresses.
    pub per_ip_exempt: Vec<IpRange>,
    /// Most streams with a source at once; 0: no limit.
    pub max_streams: usize,
    /// Most admitted viewers of one stream (RTMP, HTTP-FLV and HLS sessions); 0: no limit.
    pub max_viewers_per_stream: usize,
    /// Most admitted viewers of the server; 0: no limit.
    pub max_viewers: usize,
    /// Most HLS playback sessions from one IP address; 0: no limit.
    pub max_hls_sessions_per_ip: usize,
    /// Most HLS playback sessions at once; 0: no limit.
    pub max_hls_sessions: usize,
    // Byte budgets of one RTMP connection (issue 12). `max_message_bytes` above bounds one
    // half-read message.
    /// Most bytes all chunk streams of one RTMP connection may hold together: partial
    /// messages (their declared length) and about 80 bytes of state per chunk stream id.
    /// Past it the connection is closed.
    pub max_chunk_streams_bytes: usize,
    /// Most bytes held for an RTMP peer before its `connect` is accepted (chunk streams and
    /// unread bytes). Past it the connection is closed.
    pub max_preconnect_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            // SRS's ceiling: encoders use 4096 (OBS, librtmp, FFmpeg) to 60000 (SRS).
            max_chunk_size: 65_536,
            max_message_bytes: 8 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_new_connections_per_ip_per_sec: 20,
            max_tracked_ips: 100_000,
            per_ip_exempt: Vec::new(),
            max_streams: 1000,
            max_viewers_per_stream: 0,
            max_viewers: 0,
            max_hls_sessions_per_ip: 100,
            max_hls_sessions: 100_000,
            max_chunk_streams_bytes: 16 * 1024 * 1024,
            max_preconnect_bytes: 64 * 1024,
        }
    }
}

impl LimitsConfig {
    /// Whether the per-IP limits leave `ip` alone (`per_ip_exempt`).
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.per_ip_exempt.iter().any(|r| r.contains(ip))
    }

    /// Every problem with the values, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.max_chunk_size == 0 || self.max_chunk_size > 0x7fff_ffff {
            problems.push("limits.max_chunk_size must be between 1 and 2147483647".into());
        }
        if self.max_message_bytes < 1024 || self.max_message_bytes > 16_777_215 {
            problems.push("limits.max_message_bytes must be between 1024 and 16777215".into());
        }
        if self.max_connections == 0 {
            problems.push("limits.max_connections must be at least 1".into());
        }
        if self.max_tracked_ips == 0 || self.max_tracked_ips > 10_000_000 {
            problems.push(format!(
                "limits.max_tracked_ips = {} must be between 1 and 10000000",
                self.max_tracked_ips
            ));
        }
        if self.max_new_connections_per_ip_per_sec > 1_000_000 {
            problems.push(format!(
                "limits.max_new_connections_per_ip_per_sec = {} must be at most 1000000",
                self.max_new_connections_per_ip_per_sec
            ));
        }
        if self.max_chunk_streams_bytes < self.max_message_bytes as usize || self.max_chunk_streams_bytes > 1 << 30 {
            problems.push(format!(
                "limits.max_chunk_streams_bytes = {} must be between limits.max_message_bytes ({}) and 1073741824",
                self.max_chunk_streams_bytes, self.max_message_bytes
            ));
        }
        if self.max_preconnect_bytes < 4096 || self.max_preconnect_bytes > self.max_chunk_streams_bytes {
            problems.push(format!(
                "limits.max_preconnect_bytes = {} must be between 4096 and limits.max_chunk_streams_bytes ({})",
                self.max_preconnect_bytes, self.max_chunk_streams_bytes
            ));
        }
        problems
    }
}

/// An address or a CIDR range (`10.0.0.0/8`, `::1`, `2001:db8::/32`), as written in
/// `limits.per_ip_exempt`. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are their IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

/// Whether the first `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[whole] & mask) == (b[whole] & mask)
}

impl TryFrom<String> for IpRange {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IP address or a CIDR range like 10.0.0.0/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.as_str(), None),
        };
        let addr: IpAddr = addr.trim().parse::<IpAddr>().map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(IpRange { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str) -> IpRange {
        IpRange::try_from(s.to_string()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_match_by_prefix_and_mapped_addresses_as_ipv4() {
        assert!(range("127.0.0.0/8").contains(ip("127.9.9.9")));
        assert!(range("127.0.0.0/8").contains(ip("::ffff:127.0.0.1")));
        assert!(!range("127.0.0.0/8").contains(ip("128.0.0.1")));
        assert!(range("10.1.2.3").contains(ip("10.1.2.3")));
        assert!(!range("10.1.2.3").contains(ip("10.1.2.4")));
        assert!(range("192.168.0.0/17").contains(ip("192.168.127.1")));
        assert!(!range("192.168.0.0/17").contains(ip("192.168.128.1")));
        assert!(range("::1").contains(ip("::1")));
        assert!(range("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!range("2001:db8::/32").contains(ip("10.0.0.1")));
        assert!(range("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(
            range("::ffff:10.0.0.0/8").contains(ip("10.3.3.3")),
            "a mapped range is IPv4"
        );
    }

    #[test]
    fn bad_ranges_are_refused_with_the_key() {
        for bad in ["10.0.0.0/33", "nowhere", "::/129", "1.2.3.4/x"] {
            assert!(IpRange::try_from(bad.to_string()).is_err(), "{bad}");
        }
        let e = toml::from_str::<crate::config::Config>("[limits]\nper_ip_exempt = [\"10.0.0.0/99\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("per_ip_exempt"), "{e}");
    }

    #[test]
    fn defaults_are_valid() {
        assert!(LimitsConfig::default().validate().is_empty());
        let c = LimitsConfig {
            max_tracked_ips: 0,
            ..LimitsConfig::default()
        };
        assert!(c.validate()[0].contains("limits.max_tracked_ips"));
    }

    #[test]
    fn connection_budgets_are_ordered() {
        let defaults = LimitsConfig::default();
        assert_eq!(defaults.max_chunk_size, 65_536, "SRS's default ceiling");
        let c = LimitsConfig {
            max_chunk_streams_bytes: 1024 * 1024,
            ..LimitsConfig::default()
        };
        assert!(
            c.validate()[0].contains("limits.max_chunk_streams_bytes"),
            "{:?}",
            c.validate()
        );
        let c = LimitsConfig {
            max_preconnect_bytes: 100,
            ..LimitsConfig::default()
        };
        assert!(
            c.validate()[0].contains("limits.max_preconnect_bytes"),
            "{:?}",
            c.validate()
        );
    }
}
