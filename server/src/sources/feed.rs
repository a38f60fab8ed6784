//! How a pull puts packets on its path: the [`Source`] hold is taken with the first packet
//! (so a source that cannot connect never claims the key, and an RTMP publisher may take it
//! meanwhile) and dropped when the pull ends, after which the path's viewers wait for the
//! next try as they do for a reconnecting publisher.

use std::sync::Arc;

use estuary_protocol::Packet;
use tokio_util::sync::CancellationToken;

use super::error::PullError;
use super::status::SourceStatus;
use crate::clients::Clients;
use crate::path::registry::Paths;
use crate::path::source::Source;
use crate::stream::StreamKey;

/// One try's link from a pull to its path.
pub struct Feed {
    paths: Paths,
    clients: Clients,
    key: StreamKey,
    status: Arc<SourceStatus>,
    stop: CancellationToken,
    source: Option<Source>,
}

impl Feed {
    pub fn new(
        paths: Paths,
        clients: Clients,
        key: StreamKey,
        status: Arc<SourceStatus>,
        stop: CancellationToken,
    ) -> Feed {
        Feed {
            paths,
            clients,
            key,
            status,
            stop,
            source: None,
        }
    }

    /// Publishes `packet` on the path, claiming it first if this try has not yet.
    pub async fn publish(&mut self, packet: Packet) -> Result<(), PullError> {
        let source = match &self.source {
            Some(source) => source,
            None => {
                let path = self.paths.path(&self.key);
                let id = self.clients.next_id();
                let source = Source::start(&path, id, self.stop.child_token(), None)
                    .map_err(|e| PullError::Busy(e.to_string()))?;
                tracing::info!(stream = %self.key, "pulled source is live");
                self.status.online();
                self.source.insert(source)
            }
        };
        self.status.count(packet.codec, packet.payload.len());
        if source.publish_yielding(packet).await {
            Ok(())
        } else {
            Err(PullError::Replaced)
        }
    }

    /// Whether this try has put anything on the path.
    pub fn is_live(&self) -> bool {
        self.source.is_some()
    }
}
