//! `[cluster]`: the origin cluster's stream directory in Redis.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Redis holding the cluster's stream directory, `redis://HOST:PORT/DB` (a password as
    /// `redis://:PASSWORD@HOST:PORT`). Empty: no cluster, this node owns what is published to it.
    pub redis: String,
    /// This node's name in the directory. Empty: the hooks' `server_id`. Two nodes must not
    /// share one.
    pub node_id: String,
    /// Prefix of every key this cluster writes, so that clusters can share one Redis.
    pub key_prefix: String,
    /// A claim on a stream (and a node record) expires this long after it was last renewed;
    /// it is renewed every third of it while the stream lives. A dead node's streams become
    /// claimable by another node within this time.
    pub claim_ttl_ms: u64,
    /// Longest one Redis command may take before it counts as failed.
    pub redis_timeout_ms: u64,
    /// How long a looked-up owner is trusted before Redis is asked again.
    pub owner_cache_ms: u64,
    /// `host:port` other nodes reach this node's RTMP on. Empty: `rtmp.listen`.
    pub advertise_rtmp: String,
    /// `host:port` other nodes reach this node's HTTP on. Empty: `http.listen`.
    pub advertise_http: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            redis: String::new(),
            node_id: String::new(),
            key_prefix: "estuary:".into(),
            claim_ttl_ms: 10_000,
            redis_timeout_ms: 1_000,
            owner_cache_ms: 1_000,
            advertise_rtmp: String::new(),
            advertise_http: String::new(),
        }
    }
}

impl ClusterConfig {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.redis.is_empty() {
            if !(self.redis.starts_with("redis://") || self.redis.starts_with("unix://")) {
                problems.push("cluster.redis must start with redis:// or unix://".to_string());
            } else if let Err(e) = redis::Client::open(self.redis.as_str()) {
                // The URL may carry a password: the error names the key, not the value.
                problems.push(format!("cluster.redis is not a Redis URL: {}", e.category()));
            }
        }
        if self.node_id.len() > 128 || self.node_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
            problems.push(format!(
                "cluster.node_id = {:?} must be at most 128 characters with no spaces",
                self.node_id
            ));
        }
        for (key, value, range) in [
            ("cluster.claim_ttl_ms", self.claim_ttl_ms, 1_000..=600_000),
            ("cluster.redis_timeout_ms", self.redis_timeout_ms, 50..=60_000),
            ("cluster.owner_cache_ms", self.owner_cache_ms, 0..=60_000),
        ] {
            if !range.contains(&value) {
                problems.push(format!(
                    "{key} = {value} must be between {} and {}",
                    range.start(),
                    range.end()
                ));
            }
        }
        if self.redis_timeout_ms * 3 > self.claim_ttl_ms {
            problems.push(format!(
                "cluster.redis_timeout_ms = {} must be at most a third of cluster.claim_ttl_ms = {}: a renewal must fit before the claim expires",
                self.redis_timeout_ms, self.claim_ttl_ms
            ));
        }
        problems
    }
}
