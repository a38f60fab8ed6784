//! Edge mode (issue 15): a node serves a stream it does not have by pulling it over RTMP
//! from the node that has it, for as long as it has local viewers. It is the path registry's
//! last [`SourceProvider`] (after the on-demand `[[sources]]`): the path makes one upstream
//! feed every local viewer and stops it `edge.close_after_ms` after the last one left.
//!
//! Where a stream is pulled from, each try:
//! 1. with `[cluster] redis`, the stream's owner in the directory (at its advertised RTMP
//!    address), unless that is this node;
//! 2. otherwise `[edge] origins`, in order: a try that fails or ends moves to the next one,
//!    so that a dead origin is left for its hot standby. The viewers stay and wait for the
//!    next try as for a reconnecting publisher, and the stream's timeline carries on past
//!    the change (`stream::timeline`, `begin_publisher`).
//!
//! After a whole round of origins without a live try, it waits (`pull.retry_min_ms`,
//! doubling up to `pull.retry_max_ms`) before the next round.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::feed::Feed;
use super::runner::Deps;
use super::status::SourceStatus;
use super::{rtmp, PullError};
use crate::cluster::Cluster;
use crate::config::EdgeConfig;
use crate::outputs::hls::HlsStore;
use crate::path::on_demand::SourceProvider;
use crate::stream::StreamKey;

/// The edge's source provider.
pub struct Edge {
    deps: Deps,
    origins: Arc<[String]>,
    cluster: Option<Cluster>,
    close_after: Duration,
    tasks: TaskTracker,
    hls: HlsStore,
}

/// Where one try pulls from, as logs say it.
enum Upstream {
    Owner { node: String, rtmp: String },
    Origin(usize),
}

impl Edge {
    /// The provider, if this node is an edge: it has `[edge] origins` or a cluster directory.
    pub fn new(
        deps: Deps,
        config: &EdgeConfig,
        cluster: Option<Cluster>,
        tasks: TaskTracker,
        hls: HlsStore,
    ) -> Option<Edge> {
        if config.origins.is_empty() && cluster.is_none() {
            return None;
        }
        Some(Edge {
            deps,
            origins: config.origins.clone().into(),
            cluster,
            close_after: Duration::from_millis(config.close_after_ms),
            tasks,
            hls,
        })
    }
}

impl SourceProvider for Edge {
    fn start(&self, key: &StreamKey, stop: CancellationToken) -> bool {
        let span = tracing::info_span!(parent: None, "edge", stream = %key);
        let pull = EdgePull {
            key: key.clone(),
            deps: self.deps.clone(),
            origins: Arc::clone(&self.origins),
            cluster: self.cluster.clone(),
            hls: self.hls.clone(),
            stop,
        };
        self.tasks.spawn(pull.run().instrument(span));
        true
    }

    fn close_after(&self, _key: &StreamKey) -> Option<Duration> {
        Some(self.close_after)
    }
}

/// One stream's edge pull, until its last viewer has been gone `edge.close_after_ms`.
struct EdgePull {
    key: StreamKey,
    deps: Deps,
    origins: Arc<[String]>,
    cluster: Option<Cluster>,
    hls: HlsStore,
    stop: CancellationToken,
}

impl EdgePull {
    async fn run(self) {
        let min = Duration::from_millis(self.deps.limits.retry_min_ms);
        let max = Duration::from_millis(self.deps.limits.retry_max_ms);
        let mut wait = min;
        let mut next = 0usize;
        let mut live_this_round = false;
        tracing::info!("edge pull for local viewers");
        while !self.stop.is_cancelled() {
            // A local publisher took the key meanwhile: nothing to pull while it is there.
            let published = self.deps.paths.get(&self.key).is_some_and(|p| p.has_active_source());
            let upstream = if published { None } else { self.upstream(next).await };
            let round_over = match upstream {
                Some(upstream) => {
                    let (url, at) = match &upstream {
                        Upstream::Owner { node, rtmp } => (self.url(rtmp), format!("owner {node} at {rtmp}")),
                        Upstream::Origin(i) => (self.url(&self.origins[*i]), format!("origin {}", self.origins[*i])),
                    };
                    // The owner packages its stream's HLS; an origin's stream is this edge's to.
                    let owners = matches!(upstream, Upstream::Owner { .. });
                    self.hls.set_packaged_elsewhere(&self.key, owners);
                    let (result, was_live) = self.try_once(&url).await;
                    if self.stop.is_cancelled() {
                        break;
                    }
                    let reason = match result {
                        Ok(()) => "the pull ended".to_string(),
                        Err(e) => e.to_string(),
                    };
                    metrics::counter!(crate::metrics::EDGE_PULL_FAILURES_TOTAL).increment(1);
                    live_this_round |= was_live;
                    if was_live {
                        wait = min;
                    }
                    match upstream {
                        Upstream::Origin(i) => {
                            next = (i + 1) % self.origins.len();
                            let then = self.origins.get(next).map_or("", String::as_str);
                            tracing::warn!(%reason, from = %at, next = %then, "edge pull failed; moving to the next origin");
                            next == 0
                        }
                        Upstream::Owner { .. } => {
                            tracing::warn!(%reason, from = %at, "edge pull from the owner failed; asking again");
                            true
                        }
                    }
                }
                None => true,
            };
            // A round in which no upstream delivered waits before the next; a live stream
            // that ended or failed is followed at once by the next upstream.
            if round_over && !std::mem::take(&mut live_this_round) {
                tokio::select! {
                    _ = self.stop.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(max);
            }
        }
        self.hls.set_packaged_elsewhere(&self.key, false);
        tracing::info!("edge pull stopped");
    }

    fn url(&self, at: &str) -> String {
        EdgeConfig::url(at, &self.key.app, &self.key.name)
    }

    /// Where the next try pulls from: the stream's owner in the cluster directory (never
    /// this node), else origin `next`; `None` if there is neither.
    async fn upstream(&self, next: usize) -> Option<Upstream> {
        if let Some(cluster) = &self.cluster {
            match cluster.owner(&self.key).await {
                Ok(Some(owner)) if owner.node_id != cluster.node_id() => {
                    return Some(Upstream::Owner {
                        node: owner.node_id,
                        rtmp: owner.rtmp,
                    });
                }
                Ok(_) => {}
                // Counted and logged by the cluster; the origins (if any) are the fallback.
                Err(_) => {}
            }
        }
        (!self.origins.is_empty()).then_some(Upstream::Origin(next % self.origins.len()))
    }

    /// One pull; whether it put anything on the path.
    async fn try_once(&self, url: &str) -> (Result<(), PullError>, bool) {
        let mut feed = Feed::new(
            self.deps.paths.clone(),
            self.deps.clients.clone(),
            self.key.clone(),
            Arc::new(SourceStatus::default()),
            self.stop.clone(),
        );
        let result = rtmp::pull(url, &self.deps.limits, &mut feed, &self.stop).await;
        (result, feed.is_live())
    }
}
