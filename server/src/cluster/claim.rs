//! A node's claim on one stream: renewed every third of `cluster.claim_ttl_ms` while it is
//! held, released (compare-and-delete) when it is dropped.

use tokio_util::sync::{CancellationToken, DropGuard};

use std::sync::Arc;

use tokio_util::task::TaskTracker;

use super::directory::Directory;
use super::redis_link::failed;
use crate::stream::StreamKey;

/// Counter: claims this node held and found taken by another node at renewal (its local
/// source was then ended).
pub const CLAIMS_LOST_TOTAL: &str = "estuary_cluster_claims_lost_total";

/// Held for as long as this node is the stream's source; dropping it releases the claim.
pub struct Claim {
    _stop: DropGuard,
}

impl Claim {
    pub(super) fn start(
        directory: Arc<Directory>,
        tasks: &TaskTracker,
        key: StreamKey,
        redis_key: String,
        lost: CancellationToken,
    ) -> Claim {
        let stop = CancellationToken::new();
        tasks.spawn(keep(directory, key, redis_key, lost, stop.clone()));
        Claim {
            _stop: stop.drop_guard(),
        }
    }
}

/// Renews the claim until `stop`, then releases it. A claim found gone (it expired while
/// Redis was out of reach) is taken again; one found taken by another node cancels `lost`:
/// the other node's publisher is the stream's now.
async fn keep(
    directory: Arc<Directory>,
    key: StreamKey,
    redis_key: String,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let every = directory.ttl / 3;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        let renewed = match directory.renew(&redis_key).await {
            Ok(true) => Ok(None),
            Ok(false) => directory.try_claim(&redis_key).await,
            Err(e) => Err(e),
        };
        match renewed {
            Ok(None) => {
                if std::mem::replace(&mut failing, false) {
                    tracing::info!(stream = %key, "cluster claim renewed again");
                }
            }
            Ok(Some(owner)) => {
                metrics::counter!(CLAIMS_LOST_TOTAL).increment(1);
                tracing::warn!(stream = %key, owner = %owner, "cluster claim lost to another node (it expired while redis was out of reach): ending the local source");
                lost.cancel();
                return;
            }
            Err(e) => {
                failed("renew", &e);
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(stream = %key, cause = %e, "cluster claim not renewed; the stream goes on and the renewal is retried");
                }
            }
        }
    }
    if let Err(e) = directory.release(&redis_key).await {
        failed("release", &e);
        tracing::warn!(stream = %key, cause = %e, "cluster claim not released; it expires within cluster.claim_ttl_ms");
    }
}
