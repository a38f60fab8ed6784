//! The life of one source: try, and when a try fails or ends, wait (with a backoff that
//! doubles up to `pull.retry_max_ms`) and try again, until stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::feed::Feed;
use super::status::SourceStatus;
use super::{hls, rtmp};
use crate::clients::Clients;
use crate::config::{PullConfig, SourceProtocol, SourceSpec};
use crate::path::registry::Paths;
use crate::stream::StreamKey;

/// A try that stayed live this long was a success: the next wait starts again from
/// `pull.retry_min_ms`.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// What a runner needs besides its spec.
#[derive(Clone)]
pub struct Deps {
    pub paths: Paths,
    pub clients: Clients,
    pub limits: PullConfig,
}

/// Pulls `spec` into its stream until `stop` is cancelled.
pub async fn run(id: i64, spec: SourceSpec, deps: Deps, status: Arc<SourceStatus>, stop: CancellationToken) {
    let span = tracing::info_span!("source", id, name = %spec.name, stream = %spec.stream);
    tries(spec, deps, status, stop).instrument(span).await
}

async fn tries(spec: SourceSpec, deps: Deps, status: Arc<SourceStatus>, stop: CancellationToken) {
    let Some((app, stream)) = spec.stream.split_once('/') else {
        return;
    };
    let key = StreamKey::new(app, stream);
    let min = Duration::from_millis(deps.limits.retry_min_ms);
    let max = Duration::from_millis(deps.limits.retry_max_ms);
    let mut wait = min;
    tracing::info!(protocol = spec.protocol.as_str(), "pulling source");
    while !stop.is_cancelled() {
        let started = Instant::now();
        let mut feed = Feed::new(
            deps.paths.clone(),
            deps.clients.clone(),
            key.clone(),
            Arc::clone(&status),
            stop.clone(),
        );
        let result = match spec.protocol {
            SourceProtocol::Rtmp => rtmp::pull(&spec.url, &deps.limits, &mut feed, &stop).await,
            SourceProtocol::Hls => hls::pull(&spec, &deps.limits, &mut feed, &stop).await,
        };
        let was_live = feed.is_live();
        drop(feed);
        if stop.is_cancelled() {
            status.offline(None);
            break;
        }
        let reason = match result {
            Ok(()) => "the pull ended".to_string(),
            Err(e) => e.to_string(),
        };
        if was_live && started.elapsed() >= HEALTHY_AFTER {
            wait = min;
        }
        tracing::warn!(reason = %reason, retry_in_ms = wait.as_millis() as u64, "source offline; retrying");
        status.offline(Some(reason));
        metrics::counter!(crate::metrics::SOURCE_FAILURES_TOTAL, "protocol" => spec.protocol.as_str()).increment(1);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(max);
    }
    tracing::info!("source stopped");
}
