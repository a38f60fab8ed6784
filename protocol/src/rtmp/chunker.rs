//! The shared media chunker: turns one media message into RTMP chunks whose bytes do not
//! depend on the peer, so every player of a stream can be sent the same buffer.
//!
//! Header compression (chunk formats 1 and 2) makes chunk bytes depend on what was sent to
//! that peer before; this chunker never uses it. Each message is a format-0 chunk followed by
//! format-3 continuations (as SRS's `chunk_header(c0)` does), on chunk stream ids that the
//! per-connection control serializer (`rml_rtmp`, csids 2–6) never uses, so its compression
//! state stays valid. The extended timestamp is repeated in every continuation chunk, which
//! is what librtmp and FFmpeg expect (RTMP 1.0 §5.3.1.3).
//!
//! [`Packet::rtmp_chunks`], which caches a packet's chunks beside it, is defined here rather
//! than in [`crate::media`], so that `media` does not depend on the chunker that depends on it.

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::{wire_timestamp, Packet};
use crate::media_kind::MediaKind;

/// Chunk stream id for shared audio chunks.
pub const AUDIO_CSID: u8 = 7;
/// Chunk stream id for shared video chunks.
pub const VIDEO_CSID: u8 = 8;
/// Chunk stream id for shared script data (`onMetaData`).
pub const SCRIPT_CSID: u8 = 9;

const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;

/// Chunks `packet` for message stream `stream_id` at `chunk_size` bytes per chunk.
pub fn chunk_media(packet: &Packet, stream_id: u32, chunk_size: u32) -> Bytes {
    let csid = match packet.kind {
        MediaKind::Audio => AUDIO_CSID,
        MediaKind::Video => VIDEO_CSID,
        MediaKind::Script => SCRIPT_CSID,
    };
    chunk_message(
        csid,
        packet.kind as u8,
        wire_timestamp(packet.dts),
        stream_id,
        &packet.payload,
        chunk_size,
    )
}

impl Packet {
    /// This packet as RTMP chunks for message stream 1 at `chunk_size`, built on the first
    /// call and shared by every later caller. A server uses one out-chunk size for all its
    /// players; a call with another size builds (and returns) uncached chunks.
    pub fn rtmp_chunks(&self, chunk_size: u32) -> Bytes {
        let (size, bytes) = self
            .rtmp_chunks
            .get_or_init(|| (chunk_size, chunk_media(self, 1, chunk_size)));
        if *size == chunk_size {
            bytes.clone()
        } else {
            chunk_media(self, 1, chunk_size)
        }
    }
}

/// Chunks one message: a format-0 chunk, then format-3 continuations. `csid` must be in
/// 2..=63 (one-byte basic header).
pub fn chunk_message(csid: u8, type_id: u8, timestamp: u32, stream_id: u32, payload: &[u8], chunk_size: u32) -> Bytes {
    debug_assert!((2..64).contains(&csid));
    let chunk_size = chunk_size.max(1) as usize;
    let extended = timestamp >= EXTENDED_TIMESTAMP;
    let chunks = payload.len().div_ceil(chunk_size).max(1);
    let ext_len = if extended { 4 } else { 0 };
    let mut out = BytesMut::with_capacity(12 + ext_len + payload.len() + (chunks - 1) * (1 + ext_len));

    out.put_u8(csid); // fmt 0
    out.put_uint(u64::from(timestamp.min(EXTENDED_TIMESTAMP)), 3);
    out.put_uint(payload.len() as u64, 3);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    for (i, piece) in payload.chunks(chunk_size).enumerate() {
        if i > 0 {
            out.put_u8(0xc0 | csid); // fmt 3
            if extended {
                out.put_u32(timestamp);
            }
        }
        out.put_slice(piece);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use rml_rtmp::chunk_io::ChunkDeserializer;

    use super::*;
    use crate::rtmp::chunk::{ChunkLimits, ChunkReader};

    const WRAP: u64 = 1 << 32;

    fn video_at(dts: u64, len: usize) -> Packet {
        let mut body = vec![0x27, 1, 0, 0, 0];
        body.resize(len, 0x41);
        let mut p = Packet::from_flv_body(MediaKind::Video, 0, Bytes::from(body)).unwrap();
        p.dts = dts;
        p
    }

    /// The timestamp fields of a fmt-0 chunk on a one-byte basic header: the 24-bit field
    /// and, when it is 0xFFFFFF, the extended one.
    fn header_timestamps(chunks: &[u8]) -> (u32, Option<u32>) {
        let field = u32::from_be_bytes([0, chunks[1], chunks[2], chunks[3]]);
        let extended =
            (field == 0x00ff_ffff).then(|| u32::from_be_bytes([chunks[12], chunks[13], chunks[14], chunks[15]]));
        (field, extended)
    }

    /// The 64-bit stream clock is written modulo 2^32: under 0xFFFFFF in the header, from
    /// 0xFFFFFF up in the extended field (repeated on every continuation chunk, as FFmpeg
    /// and librtmp read it), and back in the header once it wraps.
    #[test]
    fn chunk_timestamps_wrap_at_2_32_with_extended_timestamps() {
        let cases: [(u64, u32, Option<u32>); 6] = [
            (0x00ff_fffe, 0x00ff_fffe, None),
            (0x00ff_ffff, 0x00ff_ffff, Some(0x00ff_ffff)),
            (WRAP - 1, 0x00ff_ffff, Some(u32::MAX)),
            (WRAP, 0, None),
            (WRAP + 5, 5, None),
            (WRAP + 0x0100_0000, 0x00ff_ffff, Some(0x0100_0000)),
        ];
        for (dts, field, extended) in cases {
            let chunks = video_at(dts, 300).rtmp_chunks(128);
            assert_eq!(header_timestamps(&chunks), (field, extended), "dts {dts:#x}");
            let ext_len = if extended.is_some() { 4 } else { 0 };
            // 300 bytes at 128 per chunk: two continuation chunks, each repeating the field.
            assert_eq!(chunks.len(), 12 + ext_len + 300 + 2 * (1 + ext_len), "dts {dts:#x}");
            let second = 12 + ext_len + 128;
            assert_eq!(chunks[second], 0xc0 | VIDEO_CSID);
            if let Some(ext) = extended {
                assert_eq!(chunks[second + 1..second + 5], ext.to_be_bytes(), "dts {dts:#x}");
            }
        }
    }

    /// A run of packets whose stream clock crosses 2^32 reads back, with our reader and with
    /// `rml_rtmp`'s (what players built on it use), as consecutive 32-bit timestamps that
    /// step over the wrap by the packets' own spacing.
    #[test]
    fn chunks_across_the_wrap_read_back_as_wrapping_timestamps() {
        let dts: Vec<u64> = (0..12).map(|i| WRAP - 200 + i * 40).collect();
        let mut wire = Vec::new();
        for (i, d) in dts.iter().enumerate() {
            wire.extend_from_slice(&video_at(*d, 100 + 50 * i).rtmp_chunks(128));
        }
        let want: Vec<u32> = dts.iter().map(|d| (*d % WRAP) as u32).collect();
        assert!(want.windows(2).any(|w| w[1] < w[0]), "the run crosses the wrap");

        let mut reader = ChunkReader::new(ChunkLimits::default());
        let mut buf = BytesMut::from(&wire[..]);
        let mut ours = Vec::new();
        while let Some(m) = reader.read(&mut buf).unwrap() {
            ours.push(m.timestamp);
        }
        assert_eq!(ours, want);

        let mut rml = ChunkDeserializer::new();
        let mut theirs = Vec::new();
        let mut input: &[u8] = &wire;
        while let Some(m) = rml.get_next_message(input).unwrap() {
            theirs.push(m.timestamp.value);
            input = &[];
        }
        assert_eq!(theirs, want);
        let steps: Vec<u32> = theirs.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        assert!(steps.iter().all(|s| *s == 40), "{steps:?}");
    }
}
