//! The stream hub: the registry of live streams, publisher claims and subscriptions.
//!
//! ```text
//! publisher ──► Stream::publish ──► timeline, headers, GOP cache ──► ring ──► Subscriber × N
//! ```
//! A stream exists while it has a publisher or a subscriber; the registry lock is taken
//! before a stream's own lock, never the other way round.

mod direct;
mod gop;
pub mod metadata;
mod stream;
mod subscriber;
mod timeline;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use estuary_protocol::Packet;
use tokio_util::sync::CancellationToken;

pub use direct::{DirectSink, SentCounter, SinkFormat};
pub use stream::{Batch, ClaimError, Snapshot, Stream, StreamKey, StreamStats};
pub use subscriber::{Subscriber, SubscriberEnd};

use crate::config::Config;

/// The registry of streams; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    config: Arc<Config>,
    streams: Mutex<HashMap<StreamKey, Arc<Stream>>>,
}

impl Hub {
    pub fn new(config: Arc<Config>) -> Self {
        Hub {
            inner: Arc::new(HubInner {
                config,
                streams: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<StreamKey, Arc<Stream>>> {
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stream_locked(&self, streams: &mut HashMap<StreamKey, Arc<Stream>>, key: &StreamKey) -> Arc<Stream> {
        Arc::clone(
            streams
                .entry(key.clone())
                .or_insert_with(|| Arc::new(Stream::new(key.clone(), &self.inner.config.stream))),
        )
    }

    /// Makes connection `conn_id` the publisher of `key` (see [`Stream::claim`]).
    pub fn claim(&self, key: &StreamKey, conn_id: u64, kick: CancellationToken) -> Result<Publisher, ClaimError> {
        let idle = Duration::from_millis(self.inner.config.rtmp.publisher_idle_timeout_ms);
        let mut streams = self.streams();
        let stream = self.stream_locked(&mut streams, key);
        stream.claim(conn_id, kick, idle)?;
        Ok(Publisher {
            stream,
            hub: self.clone(),
            conn_id,
        })
    }

    /// Subscribes to `key`, creating the stream entry if no publisher has come yet.
    pub fn subscribe(&self, key: &StreamKey) -> Subscriber {
        let mut streams = self.streams();
        let stream = self.stream_locked(&mut streams, key);
        let subscriber = Subscriber::new(stream, self.clone(), &self.inner.config.play);
        drop(streams);
        subscriber
    }

    /// The stream of `key`, if it exists.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<Stream>> {
        self.streams().get(key).cloned()
    }

    /// Every stream, sorted by key.
    pub fn list(&self) -> Vec<Arc<Stream>> {
        let mut all: Vec<_> = self.streams().values().cloned().collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }

    /// Removes a stream that has neither a publisher nor subscribers besides the
    /// `own_receivers` of the caller being dropped (its ring receiver goes after this returns).
    fn forget_if_unused(&self, key: &StreamKey, own_receivers: usize) {
        let mut streams = self.streams();
        if let Some(stream) = streams.get(key) {
            if stream.publisher().is_none() && stream.subscriber_count() <= own_receivers {
                streams.remove(key);
            }
        }
    }
}

/// A publisher's hold on a stream; dropping it ends the publishing.
pub struct Publisher {
    stream: Arc<Stream>,
    hub: Hub,
    conn_id: u64,
}

impl Publisher {
    /// Publishes a packet. False if this publisher was replaced by another.
    pub fn send(&self, packet: Packet) -> bool {
        self.stream.publish(self.conn_id, packet)
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.stream.release(self.conn_id) {
            tracing::info!(stream = %self.stream.key, conn = self.conn_id, "publisher left");
        }
        self.hub.forget_if_unused(&self.stream.key, 0);
    }
}

#[cfg(test)]
mod tests;
