//! One access-list entry: an IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`,
//! `2001:db8::/32`) or a single address (`192.0.2.7`, `::1`).
//!
//! A client on a dual-stack socket shows up as an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`,
//! RFC 4291 §2.5.5.2); it is an IPv4 client and is matched as one. An entry written in that
//! form (`::ffff:10.0.0.0/104`) is read as the IPv4 network it covers (`10.0.0.0/8`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network: its address with the host bits zero, and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` (canonicalised: a mapped IPv4 address is IPv4) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNet {
    /// Why the text is not a network, for the config error that names the key.
    type Err = String;

    fn from_str(text: &str) -> Result<IpNet, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be at most {max}"))?,
            Some(_) => return Err(format!("{text:?}: the prefix length must be a number")),
        };
        let net = canonical(addr, prefix);
        let masked = match net.addr {
            IpAddr::V4(a) => IpAddr::from(Ipv4Addr::from(u32::from(a) & mask32(net.prefix))),
            IpAddr::V6(a) => IpAddr::from(Ipv6Addr::from(u128::from(a) & mask128(net.prefix))),
        };
        if masked != net.addr {
            // Refused rather than truncated: `10.1.2.3/8` is more likely a typo than a wish.
            return Err(format!(
                "{text:?} has host bits set; the network is {}",
                IpNet { addr: masked, ..net }
            ));
        }
        Ok(net)
    }
}

/// An IPv4-mapped network of at least /96 is the IPv4 network it maps.
fn canonical(addr: IpAddr, prefix: u8) -> IpNet {
    match addr {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => IpNet {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            None => IpNet { addr, prefix },
        },
        _ => IpNet { addr, prefix },
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_networks_and_single_addresses() {
        let n = net("10.0.0.0/8");
        assert!(n.contains(ip("10.255.1.2")));
        assert!(!n.contains(ip("11.0.0.0")));
        assert_eq!(net("192.0.2.7").to_string(), "192.0.2.7/32");
        assert!(net("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!net("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_networks() {
        let n = net("2001:db8::/32");
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(net("::1").contains(ip("::1")));
        assert!(net("::/0").contains(ip("fe80::1")));
        assert!(!net("::/0").contains(ip("10.0.0.1")));
        assert!(net("2001:db8::1/128").contains(ip("2001:db8::1")));
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        assert!(net("1.2.3.0/24").contains(ip("::ffff:1.2.3.4")));
        assert!(!net("1.2.4.0/24").contains(ip("::ffff:1.2.3.4")));
        // A mapped peer is an IPv4 client, not one of "all IPv6".
        assert!(!net("::/0").contains(ip("::ffff:1.2.3.4")));
        let mapped = net("::ffff:10.0.0.0/104");
        assert_eq!(mapped, net("10.0.0.0/8"));
        assert!(mapped.contains(ip("10.9.9.9")));
        assert_eq!(net("::ffff:1.2.3.4"), net("1.2.3.4"));
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.256",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "2001:db8::/129",
            "2001:db8::/0x20",
            "fe80::1%eth0",
            "localhost",
            " 10.0.0.1",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
        }
        let e = "10.1.2.3/8".parse::<IpNet>().unwrap_err();
        assert!(e.contains("host bits") && e.contains("10.0.0.0/8"), "{e}");
        let e = "2001:db8::1/32".parse::<IpNet>().unwrap_err();
        assert!(e.contains("2001:db8::/32"), "{e}");
    }
}
