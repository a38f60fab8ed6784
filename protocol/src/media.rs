//! The one packet type every crate shares.
//!
//! A [`Packet`] is one RTMP/FLV media message — an audio frame, a video frame or a script-data
//! message such as `onMetaData` — whose payload is the FLV tag body exactly as the publisher
//! sent it. The payload is copied once, when RTMP chunks are reassembled, and from then on
//! shared by every consumer. Each output format's framing (FLV tag header, RTMP chunk
//! headers) is computed at most once per packet and cached beside it, so all viewers of one
//! format write the same bytes (DESIGN.md rule 1).

use std::sync::OnceLock;

use bytes::Bytes;

use crate::flv::tag::{parse_audio_header, parse_video_header, AudioCodec, TagError, VideoCodec};
pub use crate::media_kind::MediaKind;

/// A normalised timestamp as RTMP and FLV carry it: 32-bit milliseconds, which wrap every
/// 2^32 ms (49.7 days). The stream's clock is 64-bit and monotonic; these formats get it
/// modulo 2^32 (RTMP 1.0 §5.3.1.3 and FLV's `TimestampExtended` byte both define the field as
/// wrapping), which players unwrap as they do for any stream that has run that long.
pub fn wire_timestamp(dts: u64) -> u32 {
    (dts & u64::from(u32::MAX)) as u32
}

/// Codec of a packet, known once its tag header has been parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Video(VideoCodec),
    Audio(AudioCodec),
    None,
}

/// One media message on the normalised timeline of its stream.
#[derive(Debug)]
pub struct Packet {
    pub kind: MediaKind,
    /// Decode timestamp in milliseconds on the stream's normalised timeline (monotonic per
    /// track, starts near 0, survives publisher reconnects). Set by the stream.
    pub dts: u64,
    /// Composition offset in milliseconds: `pts = dts + cts`. Zero for audio and script data.
    pub cts: i32,
    /// A video keyframe (an IDR for AVC), where a decoder can start.
    pub keyframe: bool,
    /// A codec configuration record (AVC/HEVC decoder configuration, AAC AudioSpecificConfig).
    pub seq_header: bool,
    pub codec: Codec,
    /// The first packet after a break in the timeline (publisher reconnect, timestamp jump).
    pub discontinuity: bool,
    /// Wall-clock arrival in milliseconds since the Unix epoch, stamped by the stream when the
    /// packet entered it; packagers use it for `EXT-X-PROGRAM-DATE-TIME` instead of a clock.
    pub arrival_ms: u64,
    /// The FLV tag body as received: the audio/video tag header followed by codec data, or
    /// the AMF0 values of a script tag.
    pub payload: Bytes,
    /// Offset in `payload` where the codec data starts (after the FLV audio/video tag
    /// header): AVC NAL units in AVCC form, raw AAC frames, or the configuration record.
    pub body_offset: usize,
    flv_tag: OnceLock<Bytes>,
    /// The cache of [`Packet::rtmp_chunks`]: the chunk size and the chunks built at it. That
    /// method is in [`crate::rtmp::chunker`], which depends on this module.
    pub(crate) rtmp_chunks: OnceLock<(u32, Bytes)>,
}

impl Packet {
    /// A packet with no cached framing yet. `dts` is the publisher's timestamp until the stream
    /// normalises it.
    pub fn new(kind: MediaKind, dts: u64, payload: Bytes) -> Self {
        Packet {
            kind,
            dts,
            cts: 0,
            keyframe: false,
            seq_header: false,
            codec: Codec::None,
            discontinuity: false,
            arrival_ms: 0,
            payload,
            body_offset: 0,
            flv_tag: OnceLock::new(),
            rtmp_chunks: OnceLock::new(),
        }
    }

    /// Builds a packet from an RTMP audio or video message (an FLV tag body), parsing its
    /// tag header once: codec, keyframe, sequence header, composition offset. Script data is
    /// taken as is.
    pub fn from_flv_body(kind: MediaKind, timestamp: u32, payload: Bytes) -> Result<Packet, TagError> {
        let mut packet = Packet::new(kind, u64::from(timestamp), Bytes::new());
        match kind {
            MediaKind::Video => {
                let h = parse_video_header(&payload)?;
                packet.codec = Codec::Video(h.codec);
                packet.keyframe = h.keyframe && !h.seq_header;
                packet.seq_header = h.seq_header;
                packet.cts = h.cts;
                packet.body_offset = h.header_len;
            }
            MediaKind::Audio => {
                let h = parse_audio_header(&payload)?;
                packet.codec = Codec::Audio(h.codec);
                packet.seq_header = h.seq_header;
                packet.body_offset = h.header_len;
            }
            MediaKind::Script => {}
        }
        packet.payload = payload;
        Ok(packet)
    }

    /// Presentation timestamp in milliseconds.
    pub fn pts(&self) -> u64 {
        self.dts.saturating_add_signed(i64::from(self.cts))
    }

    /// The codec data after the FLV audio/video tag header.
    pub fn body(&self) -> Bytes {
        self.payload.slice(self.body_offset.min(self.payload.len())..)
    }

    pub fn is_video(&self) -> bool {
        self.kind == MediaKind::Video
    }

    pub fn is_audio(&self) -> bool {
        self.kind == MediaKind::Audio
    }

    /// The complete FLV tag (11-byte header, payload, 4-byte PreviousTagSize), built on the
    /// first call and shared by every later caller.
    pub fn flv_tag(&self) -> &Bytes {
        self.flv_tag
            .get_or_init(|| crate::flv::tag::encode_tag(self.kind, wire_timestamp(self.dts), &self.payload))
    }
}
