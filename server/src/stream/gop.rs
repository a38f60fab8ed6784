//! The GOP cache: the packets since the last video keyframe, so a viewer that joins starts
//! decoding at once instead of waiting for the next keyframe.

use std::sync::Arc;

use estuary_protocol::Packet;

use super::budget;

/// Packets from the last keyframe on (audio interleaved), bounded in count and in bytes.
#[derive(Debug)]
pub struct GopCache {
    packets: Vec<Arc<Packet>>,
    max_packets: usize,
    /// `stream.gop_cache_max_bytes`, counted with [`budget::cost`].
    max_bytes: usize,
    bytes: usize,
    /// The current GOP outgrew a bound; nothing is cached until the next keyframe.
    overflowed: bool,
}

impl GopCache {
    pub fn new(max_packets: usize, max_bytes: usize) -> Self {
        GopCache {
            packets: Vec::new(),
            max_packets,
            max_bytes,
            bytes: 0,
            overflowed: false,
        }
    }

    /// Records a media packet (not sequence headers or metadata, which are kept apart).
    /// Returns true when this packet made the current GOP outgrow the cache: the GOP is
    /// dropped, and joining viewers wait for the next keyframe.
    #[must_use]
    pub fn push(&mut self, packet: &Arc<Packet>) -> bool {
        if self.max_packets == 0 {
            return false;
        }
        if packet.is_video() && packet.keyframe {
            self.clear();
            self.overflowed = false;
        } else if self.packets.is_empty() || self.overflowed {
            // Nothing decodable to append to: a GOP starts with a keyframe.
            return false;
        }
        let cost = budget::cost(packet);
        if self.packets.len() >= self.max_packets || self.bytes + cost > self.max_bytes {
            self.clear();
            // Give the memory back: a GOP this long is not cached, the next may be short.
            self.packets = Vec::new();
            self.overflowed = true;
            return true;
        }
        self.bytes += cost;
        self.packets.push(Arc::clone(packet));
        false
    }

    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
    }

    pub fn packets(&self) -> &[Arc<Packet>] {
        &self.packets
    }

    /// Bytes held, counted with [`budget::cost`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use estuary_protocol::MediaKind;

    fn pkt(kind: MediaKind, keyframe: bool) -> Arc<Packet> {
        let mut p = Packet::new(kind, 0, Bytes::from_static(b"x"));
        p.keyframe = keyframe;
        Arc::new(p)
    }

    #[test]
    fn starts_at_keyframe_and_resets_on_the_next() {
        let mut g = GopCache::new(100, usize::MAX);
        let _ = g.push(&pkt(MediaKind::Video, false)); // before any keyframe: not cached
        let _ = g.push(&pkt(MediaKind::Audio, false));
        assert!(g.packets().is_empty());
        let _ = g.push(&pkt(MediaKind::Video, true));
        let _ = g.push(&pkt(MediaKind::Audio, false));
        let _ = g.push(&pkt(MediaKind::Video, false));
        assert_eq!(g.packets().len(), 3);
        let _ = g.push(&pkt(MediaKind::Video, true));
        assert_eq!(g.packets().len(), 1);
        assert!(g.packets()[0].keyframe);
    }

    #[test]
    fn overlong_gop_is_dropped_until_the_next_keyframe() {
        let mut g = GopCache::new(3, usize::MAX);
        let _ = g.push(&pkt(MediaKind::Video, true));
        for _ in 0..5 {
            let _ = g.push(&pkt(MediaKind::Video, false));
        }
        assert!(g.packets().is_empty());
        let _ = g.push(&pkt(MediaKind::Video, true));
        assert_eq!(g.packets().len(), 1);
    }

    fn sized(keyframe: bool, bytes: usize) -> Arc<Packet> {
        let mut p = Packet::new(MediaKind::Video, 0, Bytes::from(vec![0u8; bytes]));
        p.keyframe = keyframe;
        Arc::new(p)
    }

    #[test]
    fn a_gop_over_its_byte_budget_is_dropped_until_the_next_keyframe() {
        // Room for a 4000-byte keyframe and three 1000-byte frames.
        let max = 7000 + 4 * budget::PACKET_OVERHEAD;
        let mut g = GopCache::new(4096, max);
        assert!(!g.push(&sized(true, 4000)));
        for _ in 0..3 {
            assert!(!g.push(&sized(false, 1000)));
        }
        assert_eq!((g.packets().len(), g.bytes()), (4, max));
        // The next frame would go over: the GOP is dropped (reported once) and nothing of it
        // is cached any more.
        assert!(g.push(&sized(false, 1)));
        for _ in 0..100 {
            assert!(!g.push(&sized(false, 100_000)));
        }
        assert_eq!((g.packets().len(), g.bytes()), (0, 0));
        // A keyframe starts a GOP that fits again.
        assert!(!g.push(&sized(true, 4000)));
        assert_eq!(g.packets().len(), 1);
        // A keyframe bigger than the whole budget is never cached.
        assert!(g.push(&sized(true, max)));
        assert!(g.packets().is_empty());
    }
}
