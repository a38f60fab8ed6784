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

use crate::media::Packet;
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
        packet.dts as u32,
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
