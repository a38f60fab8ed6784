//! Web origins for `play_referers`: the origin a browser's `Origin` or `Referer` header names
//! (RFC 6454: scheme, host, port), and the patterns an operator lists.
//!
//! Patterns: an exact origin `https://example.com` or `http://127.0.0.1:3000` (no port: the
//! scheme's default); or subdomains at any depth `*.example.com` (http or https, any port) or
//! `https://*.example.com[:port]` (that scheme, that port or its default). `*.example.com`
//! does not match `example.com` itself: list it too. Only `http` and `https` are origins here.

use std::fmt;
use std::str::FromStr;

/// The origin of a request: lowercase scheme and host, and the port (the default one filled in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an `Origin` header (`https://example.com:8443`) or of a `Referer` URL
    /// (`https://example.com/page?x`); `None` for anything else: `null`, another scheme, user
    /// info (`https://example.com@evil.test/`), a bad host or port.
    pub fn parse(header: &str) -> Option<Origin> {
        let (scheme, rest) = header.split_once("://")?;
        let scheme = known_scheme(scheme)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = host_and_port(authority)?;
        Some(Origin {
            scheme,
            host: host?,
            port: port.unwrap_or(default_port(scheme)),
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// One entry of `play_referers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// `None`: http or https.
    scheme: Option<&'static str>,
    host: HostPattern,
    /// `None`: any port (only for a wildcard without a scheme).
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// Strict subdomains of this domain.
    Under(String),
}

impl OriginPattern {
    pub fn matches(&self, origin: &Origin) -> bool {
        let host = match &self.host {
            HostPattern::Exact(host) => origin.host == *host,
            HostPattern::Under(domain) => origin
                .host
                .strip_suffix(domain.as_str())
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        };
        host && (self.scheme.is_none() || self.scheme == Some(origin.scheme))
            && (self.port.is_none() || self.port == Some(origin.port))
    }
}

impl FromStr for OriginPattern {
    /// Why the text is not a pattern, for the config error that names the key.
    type Err = String;

    fn from_str(text: &str) -> Result<OriginPattern, String> {
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => {
                let scheme =
                    known_scheme(scheme).ok_or_else(|| format!("{text:?}: the scheme must be http or https"))?;
                (Some(scheme), rest)
            }
            None => (None, text),
        };
        // A trailing `/` is forgiven (people copy origins from address bars); a path is not.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(format!("{text:?}: an origin has no path or query"));
        }
        let (wildcard, authority) = match authority.strip_prefix("*.") {
            Some(after) => (true, after),
            None => (false, authority),
        };
        let bad_host = || format!("{text:?} is not an origin like https://example.com[:port] or *.example.com");
        let (host, port) = host_and_port(authority).ok_or_else(bad_host)?;
        let host = host.ok_or_else(bad_host)?;
        let host = match (wildcard, scheme) {
            (true, _) if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() => {
                return Err(format!("{text:?}: a wildcard stands for subdomains, not IP addresses"));
            }
            (true, _) => HostPattern::Under(host),
            (false, Some(_)) => HostPattern::Exact(host),
            (false, None) => {
                return Err(format!(
                    "{text:?}: an exact origin needs its scheme (https://{authority}); *.{authority} stands for subdomains"
                ));
            }
        };
        Ok(OriginPattern {
            scheme,
            host,
            port: port.or(scheme.map(default_port)),
        })
    }
}

fn known_scheme(scheme: &str) -> Option<&'static str> {
    ["http", "https"].into_iter().find(|s| s.eq_ignore_ascii_case(scheme))
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// The lowercase host (`None` if unusable) and port (if written) of `host[:port]`, where the
/// host is a DNS name, an IPv4 address or a bracketed IPv6 address; `None` for user info or
/// a bad port.
fn host_and_port(authority: &str) -> Option<(Option<String>, Option<u16>)> {
    if authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => (&authority[..at], Some(&authority[at + 1..])),
        _ => (authority, None),
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok().filter(|&p| p != 0)?)
        }
        Some(_) => return None,
        None => None,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let usable = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.len() <= 253
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
        }
    };
    Some((usable.then_some(host), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    fn pattern(text: &str) -> OriginPattern {
        text.parse().unwrap()
    }

    #[test]
    fn reads_origins_from_origin_and_referer_headers() {
        assert_eq!(origin("https://Example.COM").to_string(), "https://example.com:443");
        assert_eq!(
            origin("http://example.com:8080/live/player.html?x=1#t").to_string(),
            "http://example.com:8080"
        );
        assert_eq!(
            origin("HTTP://[2001:DB8::1]:8443/").to_string(),
            "http://[2001:db8::1]:8443"
        );
        assert_eq!(origin("https://example.com./").to_string(), "https://example.com:443");
        for bad in [
            "null",
            "",
            "example.com",
            "file:///home/x.html",
            "chrome-extension://abc",
            "https://example.com@evil.test/",
            "https://user:pw@example.com/",
            "https://example.com:0/",
            "https://example.com:65536/",
            "https://example.com:x/",
            "https://exa mple.com/",
            "https:///path",
            "https://[::1/",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let p = pattern("https://example.com");
        assert!(p.matches(&origin("https://example.com")));
        assert!(p.matches(&origin("https://EXAMPLE.com:443/page")));
        assert!(!p.matches(&origin("http://example.com")));
        assert!(!p.matches(&origin("https://example.com:8443")));
        assert!(!p.matches(&origin("https://www.example.com")));
        assert!(!p.matches(&origin("https://example.com.evil.test")));
        assert!(!p.matches(&origin("https://notexample.com")));
        let p = pattern("http://127.0.0.1:3000/");
        assert!(p.matches(&origin("http://127.0.0.1:3000")));
        assert!(!p.matches(&origin("http://127.0.0.1")));
        assert!(pattern("http://[::1]:8080").matches(&origin("http://[::1]:8080/x")));
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let any = pattern("*.example.com");
        for yes in [
            "https://a.example.com",
            "http://a.b.example.com:8080",
            "https://WWW.Example.Com",
        ] {
            assert!(any.matches(&origin(yes)), "{yes}");
        }
        for no in [
            "https://example.com",
            "https://evilexample.com",
            "https://a.example.com.evil.test",
            "https://.example.com",
        ] {
            assert!(!Origin::parse(no).is_some_and(|o| any.matches(&o)), "{no}");
        }
        let https = pattern("https://*.example.com");
        assert!(https.matches(&origin("https://a.example.com")));
        assert!(!https.matches(&origin("http://a.example.com")));
        assert!(!https.matches(&origin("https://a.example.com:8443")));
        assert!(pattern("https://*.example.com:8443").matches(&origin("https://a.example.com:8443")));
    }

    #[test]
    fn refuses_what_is_not_a_pattern() {
        for bad in [
            "",
            "*",
            "example.com",
            "ftp://example.com",
            "https://example.com/player",
            "https://example.com?x",
            "https://*",
            "*.10.0.0.1",
            "*.[::1]",
            "https://a.*.example.com",
            "https://example.com:0",
            "https://user@example.com",
            "https://exa mple.com",
        ] {
            assert!(bad.parse::<OriginPattern>().is_err(), "{bad:?}");
        }
        let e = "example.com".parse::<OriginPattern>().unwrap_err();
        assert!(e.contains("https://example.com") && e.contains("*.example.com"), "{e}");
    }
}
