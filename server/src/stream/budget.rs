//! Byte budgets of a stream: what a packet costs against them, and the byte window of the
//! fan-out ring.
//!
//! The ring (a tokio broadcast channel) is bounded in entries: a batch stays in it until
//! every reader has seen it or a later send overwrites its slot ("the oldest value currently
//! held by the channel is released", tokio's docs). So a reader that stops reading (a viewer
//! whose socket accepts nothing, a packager stuck on a disk) keeps up to `queue_packets`
//! batches alive, which with 8 MB messages is gigabytes. [`RingWindow`] remembers the size of
//! each send occupying the ring's slots; when what is still queued for the slowest reader is
//! over `ring_max_bytes`, the stream sends empty filler batches, each overwriting the oldest
//! slot, until what is queued fits. The reader that lost those batches sees a lag and skips
//! to the next keyframe, exactly as when the ring laps it, and readers at the live edge
//! ignore the fillers. Nothing is paid while the window fits the budget: its sum is checked
//! first, and the ring's queue length is asked only when it is over.

use std::collections::VecDeque;

use estuary_protocol::Packet;

/// What a packet costs besides its payload: the `Packet` itself and its `Arc`'s counters.
/// (The RTMP and FLV framings a packet builds once for its viewers are not counted: each
/// is about the payload again, for the formats being watched.)
pub const PACKET_OVERHEAD: usize = std::mem::size_of::<Packet>() + 2 * std::mem::size_of::<usize>();

/// Bytes `packet` counts against a stream's budgets.
pub fn cost(packet: &Packet) -> usize {
    packet.payload.len() + PACKET_OVERHEAD
}

/// Sizes of the sends occupying the ring's slots, oldest first (see the module docs).
#[derive(Debug)]
pub struct RingWindow {
    max_bytes: usize,
    /// Slots of the ring: tokio rounds the capacity asked for up to a power of two.
    slots: usize,
    sizes: VecDeque<usize>,
    sum: usize,
}

impl RingWindow {
    /// The window of a ring made with `broadcast::channel(capacity)`.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        let slots = capacity.max(1).next_power_of_two();
        RingWindow {
            max_bytes,
            slots,
            sizes: VecDeque::with_capacity(slots),
            sum: 0,
        }
    }

    /// Records a send of `bytes` that the ring accepted (a send with no reader stores nothing
    /// and is not recorded).
    pub fn sent(&mut self, bytes: usize) {
        if self.sizes.len() == self.slots {
            self.sum -= self.sizes.pop_front().unwrap_or(0);
        }
        self.sizes.push_back(bytes);
        self.sum += bytes;
    }

    /// Whether the ring's slots together hold more than the budget (what is queued can be
    /// over it only then).
    pub fn over(&self) -> bool {
        self.sum > self.max_bytes
    }

    /// How many sends (fillers) release enough of the oldest of the `queued` batches (the
    /// ring's `len()`: the newest sends, not yet seen by every reader) for the rest to fit
    /// the budget. The newest batch is never released. Sends first fill the slots nobody
    /// needs any more, then overwrite queued batches, oldest first.
    pub fn fillers_needed(&self, queued: usize) -> usize {
        let queued = queued.min(self.sizes.len());
        let first = self.sizes.len() - queued;
        let mut held: usize = self.sizes.range(first..).sum();
        let mut released = 0;
        while held > self.max_bytes && released + 1 < queued {
            held -= self.sizes[first + released];
            released += 1;
        }
        if released == 0 {
            return 0;
        }
        self.slots - queued + released
    }

    /// Bytes of the newest `queued` sends: what the ring holds for its slowest reader.
    pub fn queued_bytes(&self, queued: usize) -> usize {
        let queued = queued.min(self.sizes.len());
        self.sizes.range(self.sizes.len() - queued..).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_until_what_is_queued_is_over_the_budget() {
        let mut w = RingWindow::new(8, 100);
        for _ in 0..8 {
            w.sent(30);
        }
        assert!(w.over(), "8 x 30 in the slots");
        // Readers have seen all but the newest three: 90 bytes queued, nothing to do.
        assert_eq!(w.fillers_needed(3), 0);
        // A reader stuck five batches back: 150 queued; releasing the two oldest leaves 90.
        // The three slots nobody needs are overwritten first.
        assert_eq!(w.fillers_needed(5), 3 + 2);
    }

    #[test]
    fn fillers_count_as_empty_slots_and_the_newest_batch_stays() {
        let mut w = RingWindow::new(5, 100); // 8 slots
        w.sent(500);
        // One huge batch alone: never released, whatever the budget.
        assert_eq!(w.fillers_needed(1), 0);
        w.sent(10);
        // The ring has 6 free slots, then the 500-byte batch is the oldest queued.
        assert_eq!(w.fillers_needed(2), 6 + 1);
        for _ in 0..7 {
            w.sent(0);
        }
        assert_eq!(w.queued_bytes(8), 10, "the fillers pushed the 500 bytes out");
        assert!(!w.over());
    }
}
