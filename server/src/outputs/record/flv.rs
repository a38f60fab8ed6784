//! FLV recordings: tags as they come (an FLV file is readable up to its last whole tag),
//! synced every fragment's worth of stream time.

use std::time::Duration;

use bytes::Bytes;
use estuary_muxer::FlvFileWriter;
use estuary_protocol::{MediaKind, Packet};

use super::format::{FileMuxer, Muxed};

/// FLV: tags as they come, synced every fragment's worth of stream time.
pub struct FlvMuxer {
    writer: FlvFileWriter,
    fragment_ms: u64,
    /// Duration at the last sync point.
    synced_ms: u64,
    /// After a gap, nothing until the next video keyframe.
    waiting_for_keyframe: bool,
}

impl FlvMuxer {
    pub fn new(fragment: Duration) -> FlvMuxer {
        FlvMuxer {
            writer: FlvFileWriter::new(),
            fragment_ms: fragment.as_millis() as u64,
            synced_ms: 0,
            waiting_for_keyframe: false,
        }
    }
}

impl FileMuxer for FlvMuxer {
    fn push(&mut self, packet: &Packet) -> Result<Muxed, String> {
        if self.waiting_for_keyframe && !packet.seq_header && packet.kind != MediaKind::Script {
            if !(packet.is_video() && packet.keyframe) {
                return Ok(Muxed::default());
            }
            self.waiting_for_keyframe = false;
        }
        let bytes = self.writer.push(packet);
        let duration = self.writer.duration_ms();
        let durable = duration >= self.synced_ms + self.fragment_ms;
        if durable {
            self.synced_ms = duration;
        }
        Ok(Muxed {
            bytes: vec![bytes],
            durable,
            restart: false,
        })
    }

    fn gap(&mut self) {
        self.waiting_for_keyframe = self.writer.started();
    }

    fn finish(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn duration_ms(&self) -> u64 {
        self.writer.duration_ms()
    }
}
