//! What a stream's ring carries: packets published together.

use std::sync::Arc;

use estuary_protocol::Packet;

/// Packets published together (a video frame and the audio held before it), delivered to
/// viewers in one write.
#[derive(Debug)]
pub struct Batch {
    /// Numbers batches from 1 in publishing order, so a viewer can tell a batch it was
    /// already written directly (see `direct.rs`) or one it lost.
    pub seq: u64,
    pub packets: Box<[Arc<Packet>]>,
}

impl Batch {
    /// An empty batch the stream sends to push the ring's oldest entries out when the ring
    /// is over its byte budget (`budget.rs`). Readers skip it; it takes no `seq`.
    pub(super) fn filler() -> Batch {
        Batch {
            seq: 0,
            packets: Box::new([]),
        }
    }

    /// Whether this is a [`filler`](Self::filler), which carries nothing to deliver.
    pub fn is_filler(&self) -> bool {
        self.packets.is_empty()
    }
}
