//! The origin cluster's stream directory in Redis (DESIGN.md "Past one machine"; issue 15).
//!
//! The node that accepts a publish claims the stream with an expiring key, renews it while
//! the stream lives and releases it when the stream ends; every node can ask who owns a
//! stream. Keys (all under `cluster.key_prefix`):
//!
//! - `stream:{app}/{stream}` → the owner's node id; `SET NX PX cluster.claim_ttl_ms`. Renewed
//!   (`renew`) and released (`release`) by compare-and-… scripts, so that a node never
//!   extends or deletes a claim another node holds.
//! - `node:{node_id}` → the node's record (its addresses and load, JSON), with the same
//!   expiry, written every third of it: a dead node's record is gone within the TTL, as its
//!   claims are.
//!
//! A publish of a key another node owns is refused (see [`ClaimRefused::Owned`] for why
//! not redirected). Redis unreachable: the node keeps serving what it has, refuses claims it
//! cannot record, logs and counts it (`estuary_cluster_redis_errors_total`), and reconnects
//! by itself on the next command.

mod claim;
mod directory;
pub mod peer_auth;
mod redis_link;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use claim::{Claim, CLAIMS_LOST_TOTAL};
use directory::Directory;
use redis_link::{failed, RedisLink};
pub use redis_link::{RedisError, REDIS_ERRORS_TOTAL};

use crate::config::{ClusterConfig, Config};
use crate::stream::StreamKey;

/// Why this node may not become a stream's source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefused {
    /// Another node owns the stream. Refused rather than redirected: RTMP encoders (OBS,
    /// ffmpeg, GStreamer, hardware boxes) do not follow a `connect` redirect, and a
    /// publisher behind a load balancer reconnects to wherever it is sent; the refusal
    /// keeps one timeline per stream and the encoder's retry lands once the owner released
    /// the key or died (within `cluster.claim_ttl_ms`).
    #[error("published on node {0}")]
    Owned(String),
    /// Redis did not answer: a claim that cannot be recorded is not taken.
    #[error("the cluster directory is unreachable: {0}")]
    Unreachable(String),
}

/// Where other nodes reach a node, and how loaded it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub node_id: String,
    /// `host:port` of its RTMP listener.
    pub rtmp: String,
    /// `host:port` of its HTTP listener.
    pub http: String,
    /// Streams with a source on it.
    pub streams: usize,
    /// Viewers connected to it.
    pub viewers: usize,
    /// The key a peer signs its HLS requests to this node with (`peer_auth.rs`).
    #[serde(default)]
    pub peer_key: String,
}

/// The cluster directory; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Arc<Directory>,
    owner_cache_for: Duration,
    advertise_rtmp: String,
    advertise_http: String,
    /// This node's peer key (`peer_auth.rs`), published in its record.
    peer_key: String,
    /// Owners looked up lately: key → (when, owner node id).
    owners: Mutex<HashMap<StreamKey, (Instant, Option<String>)>>,
    /// Renewal tasks, so shutdown waits for their releases.
    tasks: TaskTracker,
}

/// Owners remembered at most; the cache is emptied when full.
const OWNER_CACHE_ENTRIES: usize = 4096;

impl Cluster {
    /// The directory `config.cluster` names; `None` when it names none. `server_id` names
    /// this node unless `cluster.node_id` does.
    pub fn new(config: &Config, server_id: &str, tasks: TaskTracker) -> Result<Option<Cluster>, RedisError> {
        let c: &ClusterConfig = &config.cluster;
        if c.redis.is_empty() {
            return Ok(None);
        }
        let node_id = if c.node_id.is_empty() { server_id } else { &c.node_id };
        let or = |advertised: &str, listen: &str| {
            if advertised.is_empty() {
                listen.to_string()
            } else {
                advertised.to_string()
            }
        };
        let link = RedisLink::new(&c.redis, Duration::from_millis(c.redis_timeout_ms))?;
        Ok(Some(Cluster {
            inner: Arc::new(Inner {
                directory: Arc::new(Directory::new(
                    node_id.to_string(),
                    c.key_prefix.clone(),
                    Duration::from_millis(c.claim_ttl_ms),
                    link,
                )),
                owner_cache_for: Duration::from_millis(c.owner_cache_ms),
                advertise_rtmp: or(&c.advertise_rtmp, &config.rtmp.listen),
                advertise_http: or(&c.advertise_http, &config.http.listen),
                peer_key: peer_auth::new_key(),
                owners: Mutex::new(HashMap::new()),
                tasks,
            }),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.inner.directory.node_id
    }

    /// Claims `key` for this node, or says who owns it. The claim is renewed until it is
    /// dropped (then released); if another node takes it meanwhile (this node's claim
    /// expired while Redis was out of reach), `lost` is cancelled.
    pub async fn claim(&self, key: &StreamKey, lost: CancellationToken) -> Result<Claim, ClaimRefused> {
        let directory = &self.inner.directory;
        let redis_key = directory.stream_key(key);
        match directory.try_claim(&redis_key).await {
            Ok(None) => {
                lock(&self.inner.owners).remove(key);
                Ok(Claim::start(
                    Arc::clone(directory),
                    &self.inner.tasks,
                    key.clone(),
                    redis_key,
                    lost,
                ))
            }
            Ok(Some(owner)) => Err(ClaimRefused::Owned(owner)),
            Err(e) => {
                failed("claim", &e);
                Err(ClaimRefused::Unreachable(e.to_string()))
            }
        }
    }

    /// Whether `signature` (the `x-estuary-peer` header) proves a request for `path` comes
    /// from a node of this cluster.
    pub fn is_peer_request(&self, path: &str, signature: &str) -> bool {
        peer_auth::verify(&self.inner.peer_key, path, signature)
    }

    /// Whether `record` is this node's own (by id, or by the HTTP address others reach it
    /// at): a request is never proxied to the node it came to.
    pub fn is_self(&self, record: &NodeRecord) -> bool {
        record.node_id == self.inner.directory.node_id || record.http == self.inner.advertise_http
    }

    /// The node that owns `key` and where to reach it, if any node does (this one included).
    /// Owners are cached for `cluster.owner_cache_ms`.
    pub async fn owner(&self, key: &StreamKey) -> Result<Option<NodeRecord>, RedisError> {
        let directory = &self.inner.directory;
        let cached = lock(&self.inner.owners)
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.inner.owner_cache_for)
            .map(|(_, owner)| owner.clone());
        let owner = match cached {
            Some(owner) => owner,
            None => {
                let owner = directory
                    .owner(&directory.stream_key(key))
                    .await
                    .inspect_err(|e| failed("lookup", e))?;
                let mut owners = lock(&self.inner.owners);
                // Bounded: lookups of many distinct keys cannot grow it past this.
                if owners.len() >= OWNER_CACHE_ENTRIES {
                    owners.clear();
                }
                owners.insert(key.clone(), (Instant::now(), owner.clone()));
                owner
            }
        };
        let Some(node_id) = owner else { return Ok(None) };
        let raw = directory
            .read_node(&node_id)
            .await
            .inspect_err(|e| failed("lookup", e))?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Until `shutdown`: writes this node's record every third of the TTL (`load` says its
    /// streams and viewers), then deletes it.
    pub async fn heartbeat(self, load: impl Fn() -> (usize, usize), shutdown: CancellationToken) {
        let directory = &self.inner.directory;
        let mut failing = false;
        loop {
            let (streams, viewers) = load();
            let record = NodeRecord {
                node_id: directory.node_id.clone(),
                rtmp: self.inner.advertise_rtmp.clone(),
                http: self.inner.advertise_http.clone(),
                streams,
                viewers,
                peer_key: self.inner.peer_key.clone(),
            };
            let body = serde_json::to_string(&record).unwrap_or_default();
            match directory.write_node(&body).await {
                Ok(()) => {
                    if std::mem::replace(&mut failing, false) {
                        tracing::info!(node = %directory.node_id, "cluster directory reachable again");
                    }
                }
                Err(e) => {
                    failed("heartbeat", &e);
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!(cause = %e, "cluster directory unreachable: serving what this node has, refusing new publishes until it answers");
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(directory.ttl / 3) => {}
            }
        }
        let _ = directory.delete_node().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
