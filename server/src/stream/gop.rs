//! The GOP cache: the packets since the last video keyframe, so a viewer that joins starts
//! decoding at once instead of waiting for the next keyframe.

use std::sync::Arc;

use estuary_protocol::Packet;

/// Packets from the last keyframe on (audio interleaved), bounded in count.
#[derive(Debug)]
pub struct GopCache {
    packets: Vec<Arc<Packet>>,
    max_packets: usize,
    /// The current GOP outgrew the bound; nothing is cached until the next keyframe.
    overflowed: bool,
}

impl GopCache {
    pub fn new(max_packets: usize) -> Self {
        GopCache {
            packets: Vec::new(),
            max_packets,
            overflowed: false,
        }
    }

    /// Records a media packet (not sequence headers or metadata, which are kept apart).
    pub fn push(&mut self, packet: &Arc<Packet>) {
        if self.max_packets == 0 {
            return;
        }
        if packet.is_video() && packet.keyframe {
            self.packets.clear();
            self.overflowed = false;
        } else if self.packets.is_empty() || self.overflowed {
            // Nothing decodable to append to: a GOP starts with a keyframe.
            return;
        }
        if self.packets.len() >= self.max_packets {
            self.packets.clear();
            self.overflowed = true;
            return;
        }
        self.packets.push(Arc::clone(packet));
    }

    pub fn clear(&mut self) {
        self.packets.clear();
    }

    pub fn packets(&self) -> &[Arc<Packet>] {
        &self.packets
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.packets.iter().map(|p| p.payload.len()).sum()
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
        let mut g = GopCache::new(100);
        g.push(&pkt(MediaKind::Video, false)); // before any keyframe: not cached
        g.push(&pkt(MediaKind::Audio, false));
        assert!(g.packets().is_empty());
        g.push(&pkt(MediaKind::Video, true));
        g.push(&pkt(MediaKind::Audio, false));
        g.push(&pkt(MediaKind::Video, false));
        assert_eq!(g.packets().len(), 3);
        g.push(&pkt(MediaKind::Video, true));
        assert_eq!(g.packets().len(), 1);
        assert!(g.packets()[0].keyframe);
    }

    #[test]
    fn overlong_gop_is_dropped_until_the_next_keyframe() {
        let mut g = GopCache::new(3);
        g.push(&pkt(MediaKind::Video, true));
        for _ in 0..5 {
            g.push(&pkt(MediaKind::Video, false));
        }
        assert!(g.packets().is_empty());
        g.push(&pkt(MediaKind::Video, true));
        assert_eq!(g.packets().len(), 1);
    }
}
