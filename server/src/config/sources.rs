//! `[[sources]]` and `[pull]`: live sources pulled from RTMP or HLS URLs into local paths
//! (issue 14), and the limits every pull works under.

use serde::{Deserialize, Serialize};

/// How a source is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceProtocol {
    /// `rtmp://host[:port]/app/stream`, played with our RTMP client.
    Rtmp,
    /// `http://host[:port]/path.m3u8`: a live HLS playlist of MPEG-TS segments.
    Hls,
}

impl SourceProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceProtocol::Rtmp => "rtmp",
            SourceProtocol::Hls => "hls",
        }
    }
}

/// One live source: what to pull and which local `app/stream` it feeds. The same shape is
/// read from `[[sources]]` and from the API's bodies.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// A name for people (the API shows it).
    pub name: String,
    pub protocol: SourceProtocol,
    /// Where the source is pulled from: `rtmp://...` or `http://....m3u8` (plain HTTP only).
    pub url: String,
    /// The local `app/stream` the source feeds; viewers play it there.
    pub stream: String,
    /// An inactive source is kept but never pulled.
    #[serde(default = "yes")]
    pub active: bool,
    /// Pulled only while someone watches or records the stream (started by the first viewer),
    /// and stopped `close_after_ms` after the last left; otherwise pulled all the time.
    #[serde(default)]
    pub on_demand: bool,
    /// How long an on-demand source goes on after its last viewer left.
    #[serde(default = "default_close_after_ms")]
    pub close_after_ms: u64,
    /// HLS: the highest `BANDWIDTH` of a master playlist's variant to pick; 0 picks the
    /// highest there is.
    #[serde(default)]
    pub max_bandwidth: u64,
}

fn yes() -> bool {
    true
}

fn default_close_after_ms() -> u64 {
    10_000
}

impl SourceSpec {
    /// Every problem with the spec, each prefixed by `at` (`sources[2]` or `body`).
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() || self.name.len() > 256 {
            problems.push(format!("{at}.name must be 1 to 256 bytes"));
        }
        let scheme = match self.protocol {
            SourceProtocol::Rtmp => "rtmp://",
            SourceProtocol::Hls => "http://",
        };
        if !self.url.starts_with(scheme) || self.url.len() > 2048 || self.url.contains(char::is_whitespace) {
            problems.push(format!(
                "{at}.url must be a {scheme} URL of at most 2048 bytes for protocol {} (https is not supported)",
                self.protocol.as_str()
            ));
        }
        match self.stream.split_once('/') {
            Some((app, stream)) if !app.is_empty() && !stream.is_empty() && !stream.contains('/') => {}
            _ => problems.push(format!("{at}.stream = {:?} must be app/stream", self.stream)),
        }
        if !(100..=3_600_000).contains(&self.close_after_ms) {
            problems.push(format!(
                "{at}.close_after_ms = {} must be between 100 and 3600000",
                self.close_after_ms
            ));
        }
        problems
    }
}

/// `[pull]`: the deadlines, byte caps and retry pace of every pulled source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PullConfig {
    /// Longest a TCP connect to a source may take.
    pub connect_timeout_ms: u64,
    /// A source that delivers nothing for this long is dropped and retried.
    pub read_timeout_ms: u64,
    /// Longest one HTTP fetch (an HLS playlist or segment) may take, headers and body.
    pub fetch_timeout_ms: u64,
    /// Largest HLS playlist accepted.
    pub max_playlist_bytes: usize,
    /// Largest HLS segment accepted.
    pub max_segment_bytes: usize,
    /// First wait before a failed or ended source is tried again; it doubles on each
    /// failure up to `retry_max_ms`, and starts over once a pull has run a while.
    pub retry_min_ms: u64,
    /// Longest wait between two tries.
    pub retry_max_ms: u64,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            connect_timeout_ms: 5_000,
            read_timeout_ms: 15_000,
            fetch_timeout_ms: 10_000,
            max_playlist_bytes: 1024 * 1024,
            max_segment_bytes: 64 * 1024 * 1024,
            retry_min_ms: 500,
            retry_max_ms: 30_000,
        }
    }
}

impl PullConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("pull.connect_timeout_ms", self.connect_timeout_ms),
            ("pull.read_timeout_ms", self.read_timeout_ms),
            ("pull.fetch_timeout_ms", self.fetch_timeout_ms),
            ("pull.retry_min_ms", self.retry_min_ms),
            ("pull.retry_max_ms", self.retry_max_ms),
        ] {
            if !(100..=3_600_000).contains(&value) {
                problems.push(format!("{key} = {value} must be between 100 and 3600000"));
            }
        }
        if self.retry_max_ms < self.retry_min_ms {
            problems.push("pull.retry_max_ms must not be less than pull.retry_min_ms".into());
        }
        const MIB: usize = 1024 * 1024;
        for (key, value, min, max) in [
            ("pull.max_playlist_bytes", self.max_playlist_bytes, 1024, 64 * MIB),
            ("pull.max_segment_bytes", self.max_segment_bytes, 64 * 1024, 1024 * MIB),
        ] {
            if !(min..=max).contains(&value) {
                problems.push(format!("{key} = {value} must be between {min} and {max}"));
            }
        }
        problems
    }
}

/// Problems of the list as a whole: at most 1000 sources (the API's ids start above), and
/// two sources feeding one stream would take turns at it.
pub fn duplicate_streams(sources: &[SourceSpec]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut problems: Vec<String> = sources
        .iter()
        .filter(|s| !seen.insert(s.stream.as_str()))
        .map(|s| format!("sources: two sources feed {:?}", s.stream))
        .collect();
    if sources.len() > 1000 {
        problems.push(format!("sources: {} sources, at most 1000", sources.len()));
    }
    problems
}
