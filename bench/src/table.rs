//! What the publishers sent: per publisher, the wall-clock send time of every video frame,
//! shared with the viewers (one process, so a table beats a side channel).

use std::sync::atomic::{AtomicU64, Ordering};

/// Send records of one publisher, indexed by frame sequence number.
#[derive(Debug)]
pub struct SendTable {
    /// `send_ns` with bit 0 the keyframe flag and bit 1 set (so a sent frame is never 0);
    /// 0 = not sent.
    slots: Vec<AtomicU64>,
    /// Frames sent so far.
    sent: AtomicU64,
}

/// One sent frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// CLOCK_REALTIME nanoseconds just before the frame's first byte was written.
    pub ns: u64,
    pub keyframe: bool,
}

impl SendTable {
    pub fn new(capacity: usize) -> Self {
        SendTable {
            slots: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            sent: AtomicU64::new(0),
        }
    }

    /// Records frame `seq`; frames past the capacity are not recorded (and not matched).
    pub fn record(&self, seq: u64, ns: u64, keyframe: bool) {
        if let Some(slot) = self.slots.get(seq as usize) {
            slot.store((ns & !3) | 2 | u64::from(keyframe), Ordering::Release);
        }
        self.sent.fetch_max(seq + 1, Ordering::AcqRel);
    }

    pub fn get(&self, seq: u64) -> Option<Sent> {
        let v = self.slots.get(seq as usize)?.load(Ordering::Acquire);
        (v != 0).then_some(Sent {
            ns: v & !3,
            keyframe: v & 1 == 1,
        })
    }

    /// Number of frames sent (the next sequence number).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reads() {
        let t = SendTable::new(4);
        assert_eq!(t.get(0), None);
        t.record(0, 1_000_000_001, true);
        t.record(1, 1_000_033_000, false);
        t.record(9, 5, false); // past capacity: counted, not stored
        assert_eq!(
            t.get(0),
            Some(Sent {
                ns: 1_000_000_000,
                keyframe: true
            })
        );
        assert_eq!(
            t.get(1),
            Some(Sent {
                ns: 1_000_033_000,
                keyframe: false
            })
        );
        assert_eq!(t.get(9), None);
        assert_eq!(t.sent(), 10);
    }
}
