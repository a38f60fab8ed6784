//! `[edge]`: edge mode (issue 15). A node with origins serves a stream it does not have by
//! pulling it from an origin when its first viewer comes, and forwards what is published to
//! it to the first origin, as SRS edges do.

use serde::Deserialize;

use estuary_protocol::rtmp::client::{ClientConfig, ClientMode};

/// Origins an edge lists at most.
const MAX_ORIGINS: usize = 64;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// RTMP origins, `host[:port]` (port 1935 if left out), tried in this order: a viewer's
    /// stream `{app}/{stream}` that this node does not have is pulled from
    /// `rtmp://ORIGIN/{app}/{stream}`, moving to the next origin when one fails. A publish
    /// to this node is forwarded to the first. Empty: not an edge (with `[cluster] redis`,
    /// the node still pulls a stream another node owns from that owner).
    pub origins: Vec<String>,
    /// How long an edge pull goes on after its last local viewer left.
    pub close_after_ms: u64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            origins: Vec::new(),
            close_after_ms: 10_000,
        }
    }
}

impl EdgeConfig {
    /// The URL a stream is pulled from (or forwarded to) on `origin`.
    pub fn url(origin: &str, app: &str, stream: &str) -> String {
        format!("rtmp://{origin}/{app}/{stream}")
    }

    /// Every problem, each naming its `edge.*` key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.origins.len() > MAX_ORIGINS {
            problems.push(format!(
                "edge.origins lists {} origins, at most {MAX_ORIGINS}",
                self.origins.len()
            ));
        }
        for (i, origin) in self.origins.iter().enumerate() {
            let plain = !origin.is_empty()
                && !origin.contains(['/', '?', '@'])
                && !origin.chars().any(|c| c.is_whitespace() || c.is_control());
            if !plain || ClientConfig::from_url(&Self::url(origin, "app", "stream"), ClientMode::Play).is_err() {
                problems.push(format!("edge.origins[{i}] = {origin:?} must be host[:port]"));
            }
        }
        if !(100..=3_600_000).contains(&self.close_after_ms) {
            problems.push(format!(
                "edge.close_after_ms = {} must be between 100 and 3600000",
                self.close_after_ms
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_host_and_port_and_close_after_is_bounded() {
        let good = EdgeConfig {
            origins: vec!["127.0.0.1:1935".into(), "origin.example".into()],
            close_after_ms: 1000,
        };
        assert!(good.validate().is_empty(), "{:?}", good.validate());
        let bad = EdgeConfig {
            origins: vec!["rtmp://o/live".into(), "".into(), "a b:1".into()],
            close_after_ms: 0,
        };
        let problems = bad.validate();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("edge.origins[0]"), "{problems:?}");
    }
}
