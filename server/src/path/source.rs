//! The hold a source has on its path. A source — an RTMP publisher today, a pull or an edge
//! later, a test's own feeder — starts with [`Source::start`] and then only ever calls
//! [`Source::publish`]. Dropping the hold (or [`Source::finish`]) ends the source: the path
//! tells the hooks and its outputs, and its viewers wait for the next source.

use std::sync::Arc;

use estuary_protocol::Packet;
use tokio_util::sync::CancellationToken;

use super::Path;
use crate::hooks::HookSubject;
use crate::hooks::Receipt;
use crate::stream::{ClaimError, Stream};

/// A source's hold on a path.
pub struct Source {
    path: Arc<Path>,
    id: u64,
    ended: bool,
    /// What lives exactly as long as this source (its claim in the cluster's directory).
    held: Vec<Box<dyn Send + Sync>>,
}

impl Source {
    /// Makes `id` the source of `path`, unless another source holds it. `kick` is cancelled
    /// when the path ends this source (an idle source replaced by a newcomer). `subject` is
    /// what the hooks are told when it ends (`on_unpublish`); `None` for a source with no
    /// client (a test feeder).
    pub fn start(
        path: &Arc<Path>,
        id: u64,
        kick: CancellationToken,
        subject: Option<HookSubject>,
    ) -> Result<Source, ClaimError> {
        path.stream().claim(id, kick)?;
        path.source_started(id, subject);
        tracing::debug!(stream = %path.key, source = id, "source started");
        Ok(Source {
            path: Arc::clone(path),
            id,
            ended: false,
            held: Vec::new(),
        })
    }

    /// Keeps `guard` until the source ends, then drops it (after the path heard of the end).
    pub fn hold_until_end(&mut self, guard: Box<dyn Send + Sync>) {
        self.held.push(guard);
    }

    /// Puts a packet on the path's timeline and fans it out. False if this source was ended
    /// by the path (replaced by another).
    pub fn publish(&self, packet: Packet) -> bool {
        self.path.stream().publish(self.id, packet)
    }

    /// [`publish`](Self::publish) from the source's own task: a large fan-out yields to the
    /// runtime between groups of viewers instead of holding up other connections.
    pub async fn publish_yielding(&self, packet: Packet) -> bool {
        self.path.stream().publish_yielding(self.id, packet).await
    }

    pub fn path(&self) -> &Arc<Path> {
        &self.path
    }

    pub fn stream(&self) -> &Arc<Stream> {
        self.path.stream()
    }

    /// Ends the source now; the receipt settles when its `on_unpublish` is done with.
    pub fn finish(mut self) -> Receipt {
        self.end()
    }

    fn end(&mut self) -> Receipt {
        if std::mem::replace(&mut self.ended, true) {
            return Receipt::settled();
        }
        self.path.stream().release(self.id);
        let receipt = self.path.source_ended(self.id);
        self.held.clear();
        receipt
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.end();
    }
}
