//! HLS playback sessions: an HLS viewer makes no connection that lasts, so it is counted by
//! the session its signed token names (`session_token.rs`). This is the session index:
//! which client entry a session id names, how many sessions each address holds, which
//! sessions were kicked (refused for a while), and when each ends.
//!
//! Ends are kept ordered by deadline (as mini-redis expires keys): a `BTreeSet` of
//! `(deadline, what)`, so the registry's expiry task sleeps until the first one and finds
//! what is due without looking at the rest. Refreshing a session moves its deadline.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{IpRange, LimitsConfig};

/// A kicked HLS session stays refused this long.
pub const KICKED_KEEP: Duration = Duration::from_secs(600);

/// Why an HLS session is refused.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum HlsRefusal {
    #[error("hls session was kicked")]
    Kicked,
    #[error("{0} hls sessions from this address (limits.max_hls_sessions_per_ip)")]
    PerIp(usize),
    #[error("{0} hls sessions (limits.max_hls_sessions)")]
    Total(usize),
}

impl HlsRefusal {
    /// The `reason` label of `estuary_connections_rejected_total`.
    pub fn reason(self) -> &'static str {
        match self {
            HlsRefusal::Kicked => "kicked",
            HlsRefusal::PerIp(_) | HlsRefusal::Total(_) => "hls_sessions",
        }
    }
}

/// The session ceilings (`limits.max_hls_sessions[_per_ip]`, 0 for none).
#[derive(Debug, Clone, Default)]
pub struct HlsLimits {
    pub per_ip: usize,
    pub total: usize,
    /// Addresses the per-IP ceiling does not apply to (`limits.per_ip_exempt`).
    pub exempt: Vec<IpRange>,
}

impl From<&LimitsConfig> for HlsLimits {
    fn from(l: &LimitsConfig) -> Self {
        HlsLimits {
            per_ip: l.max_hls_sessions_per_ip,
            total: l.max_hls_sessions,
            exempt: l.per_ip_exempt.clone(),
        }
    }
}

/// What ends at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Due {
    /// A session with no request for the idle time.
    Session(u64),
    /// A kicked session's refusal.
    Kick(u64),
}

struct Live {
    client: u64,
    /// The address it counts against, if it counts against one.
    ip: Option<IpAddr>,
    deadline: Instant,
}

#[derive(Default)]
pub(super) struct HlsSessions {
    live: HashMap<u64, Live>,
    per_ip: HashMap<IpAddr, usize>,
    /// Kicked sessions, until when.
    kicked: HashMap<u64, Instant>,
    deadlines: BTreeSet<(Instant, Due)>,
    limits: HlsLimits,
}

impl HlsSessions {
    pub fn new(limits: HlsLimits) -> HlsSessions {
        HlsSessions {
            limits,
            ..HlsSessions::default()
        }
    }

    pub fn is_kicked(&self, session: u64) -> bool {
        self.kicked.contains_key(&session)
    }

    /// The client of live session `session`, its deadline moved to `deadline`.
    pub fn refresh(&mut self, session: u64, deadline: Instant) -> Option<u64> {
        let live = self.live.get_mut(&session)?;
        if live.deadline != deadline {
            self.deadlines.remove(&(live.deadline, Due::Session(session)));
            live.deadline = deadline;
            self.deadlines.insert((deadline, Due::Session(session)));
        }
        Some(live.client)
    }

    /// The address a new session from `ip` counts against (`None` if exempt), or why there
    /// is no room for it.
    pub fn room(&self, ip: IpAddr) -> Result<Option<IpAddr>, HlsRefusal> {
        let l = &self.limits;
        if l.total > 0 && self.live.len() >= l.total {
            return Err(HlsRefusal::Total(l.total));
        }
        let ip = ip.to_canonical();
        if l.per_ip == 0 || l.exempt.iter().any(|r| r.contains(ip)) {
            return Ok(None);
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= l.per_ip {
            return Err(HlsRefusal::PerIp(l.per_ip));
        }
        Ok(Some(ip))
    }

    /// Adds session `session` of `client` (room was checked). True if its deadline is now
    /// the first: the expiry task must wake earlier.
    pub fn open(&mut self, session: u64, client: u64, ip: Option<IpAddr>, deadline: Instant) -> bool {
        if let Some(ip) = ip {
            *self.per_ip.entry(ip).or_default() += 1;
        }
        self.live.insert(session, Live { client, ip, deadline });
        self.schedule(deadline, Due::Session(session))
    }

    /// Ends session `session`; returns its client.
    pub fn remove(&mut self, session: u64) -> Option<u64> {
        let live = self.live.remove(&session)?;
        self.deadlines.remove(&(live.deadline, Due::Session(session)));
        if let Some(ip) = live.ip {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
        Some(live.client)
    }

    /// Ends session `session` and refuses it until `until`. True if the expiry task must
    /// wake earlier.
    pub fn kick(&mut self, session: u64, until: Instant) -> bool {
        self.remove(session);
        if let Some(old) = self.kicked.insert(session, until) {
            self.deadlines.remove(&(old, Due::Kick(session)));
        }
        self.schedule(until, Due::Kick(session))
    }

    fn schedule(&mut self, at: Instant, due: Due) -> bool {
        let first = self.deadlines.first().is_none_or(|(next, _)| at < *next);
        self.deadlines.insert((at, due));
        first
    }

    /// Ends everything due at `now`: the clients of the sessions that ended, and the next
    /// deadline.
    pub fn expire(&mut self, now: Instant) -> (Vec<u64>, Option<Instant>) {
        let mut ended = Vec::new();
        while let Some(&(at, due)) = self.deadlines.first() {
            if at > now {
                return (ended, Some(at));
            }
            self.deadlines.pop_first();
            match due {
                Due::Session(session) => ended.extend(self.remove(session)),
                Due::Kick(session) => {
                    self.kicked.remove(&session);
                }
            }
        }
        (ended, None)
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Deadlines held (sessions and kicks): what the expiry task has to go through.
    pub fn scheduled(&self) -> usize {
        self.deadlines.len()
    }
}
