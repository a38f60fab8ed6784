//! The one packet type every crate shares.
//!
//! A [`Packet`] is one RTMP/FLV media message — an audio frame, a video frame or a script-data
//! message such as `onMetaData` — whose payload is the FLV tag body exactly as the publisher
//! sent it. The payload is copied once, when RTMP chunks are reassembled, and from then on
//! shared by every consumer. Each output format's framing (FLV tag header, RTMP chunk
//! headers) is computed at most once per packet and cached beside it, so all viewers of one
//! format write the same bytes (DESIGN.md rule 1).

use std::sync::OnceLock;

use bytes::{Buf, Bytes, BytesMut};

use crate::codec::{Av1Config, ConfigError, HevcDecoderConfig, OpusHead, Vp9Config};
use crate::flv::tag::{AudioCodec, AudioHeader, AudioTag, PlainHeader, TagError, VideoCodec, VideoHeader, VideoTag};
use crate::flv::{parse_audio_tag, parse_video_tag};
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
    /// An audio or video message with neither a frame nor a configuration record: an end of
    /// sequence, Enhanced RTMP metadata (`colorInfo`), a command frame, an audio multichannel
    /// configuration. RTMP and FLV players get it as sent; packagers skip it.
    pub no_frame: bool,
    /// Enhanced RTMP v2 track id: 0 for the stream's main audio and video, 1 and up for the
    /// extra tracks of a Multitrack publisher, which are never mixed into track 0.
    pub track: u8,
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
            no_frame: false,
            track: 0,
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
    /// tag header once: codec, keyframe, sequence header, composition offset, track. Script
    /// data is taken as is. For a Multitrack message with several tracks this is its first
    /// track; [`Packet::from_flv_message`] gives them all.
    pub fn from_flv_body(kind: MediaKind, timestamp: u32, payload: Bytes) -> Result<Packet, TagError> {
        let len = payload.len();
        Packet::from_flv_message(kind, timestamp, payload)?
            .next()
            .ok_or(TagError::VideoTooShort { len, need: len + 1 })
    }

    /// Builds the packets of an RTMP audio or video message: one, or one per track of an
    /// Enhanced RTMP ManyTracks message.
    ///
    /// A plain tag (legacy or Enhanced RTMP v1) is kept exactly as received: the payload is
    /// the message's buffer. A Multitrack or ModEx message is turned into the plain tag of
    /// its track (see [`VideoHeader::plain_header`]), so that every consumer reads one form
    /// and `track` says which track it is. For the one track of a OneTrack message (what
    /// OBS and ffmpeg send) the shorter plain header is written over the end of the old one
    /// in the message's own buffer when nothing else holds it: no copy. A ManyTracks
    /// message (which no known encoder sends) costs one copy of each track's data.
    pub fn from_flv_message(kind: MediaKind, timestamp: u32, payload: Bytes) -> Result<FlvPackets, TagError> {
        let tracks = match kind {
            MediaKind::Video => match parse_video_tag(&payload)? {
                VideoTag::One(h) => Tracks::Video(h),
                VideoTag::Many(headers) => Tracks::ManyVideo(headers.into_iter()),
                VideoTag::Command => Tracks::Command,
            },
            MediaKind::Audio => match parse_audio_tag(&payload)? {
                AudioTag::One(h) => Tracks::Audio(h),
                AudioTag::Many(headers) => Tracks::ManyAudio(headers.into_iter()),
            },
            MediaKind::Script => Tracks::Script,
        };
        let packets = FlvPackets {
            dts: u64::from(timestamp),
            payload,
            tracks,
        };
        packets.check_configs()?;
        Ok(packets)
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

/// The packets of one RTMP message (see [`Packet::from_flv_message`]), each built when it
/// is taken: the message's tags are parsed, its packets not yet made.
#[derive(Debug)]
pub struct FlvPackets {
    dts: u64,
    payload: Bytes,
    tracks: Tracks,
}

/// The parsed headers of a message's tracks not yet taken.
#[derive(Debug)]
enum Tracks {
    Video(VideoHeader),
    Audio(AudioHeader),
    ManyVideo(std::vec::IntoIter<VideoHeader>),
    ManyAudio(std::vec::IntoIter<AudioHeader>),
    Command,
    Script,
    Done,
}

impl FlvPackets {
    /// Checks the configuration record of every sequence start (see
    /// [`check_config`]); other tracks cost a branch.
    fn check_configs(&self) -> Result<(), TagError> {
        let record = |start: usize, end: usize| &self.payload[start.min(end)..end.min(self.payload.len())];
        let video = |h: &VideoHeader| {
            if h.seq_header {
                check_config(Codec::Video(h.codec), record(h.header_len, h.body_end))?;
            }
            Ok::<(), TagError>(())
        };
        let audio = |h: &AudioHeader| {
            if h.seq_header {
                check_config(Codec::Audio(h.codec), record(h.header_len, h.body_end))?;
            }
            Ok::<(), TagError>(())
        };
        match &self.tracks {
            Tracks::Video(h) => video(h),
            Tracks::Audio(h) => audio(h),
            Tracks::ManyVideo(headers) => headers.as_slice().iter().try_for_each(video),
            Tracks::ManyAudio(headers) => headers.as_slice().iter().try_for_each(audio),
            Tracks::Command | Tracks::Script | Tracks::Done => Ok(()),
        }
    }
}

impl Iterator for FlvPackets {
    type Item = Packet;

    fn next(&mut self) -> Option<Packet> {
        let dts = self.dts;
        match std::mem::replace(&mut self.tracks, Tracks::Done) {
            Tracks::Video(h) => Some(video_packet(dts, std::mem::take(&mut self.payload), &h)),
            Tracks::Audio(h) => Some(audio_packet(dts, std::mem::take(&mut self.payload), &h)),
            Tracks::ManyVideo(mut headers) => {
                let packet = video_packet(dts, self.payload.clone(), &headers.next()?);
                self.tracks = Tracks::ManyVideo(headers);
                Some(packet)
            }
            Tracks::ManyAudio(mut headers) => {
                let packet = audio_packet(dts, self.payload.clone(), &headers.next()?);
                self.tracks = Tracks::ManyAudio(headers);
                Some(packet)
            }
            Tracks::Command => {
                let mut packet = Packet::new(MediaKind::Video, dts, std::mem::take(&mut self.payload));
                packet.no_frame = true;
                packet.body_offset = packet.payload.len();
                Some(packet)
            }
            Tracks::Script => Some(Packet::new(MediaKind::Script, dts, std::mem::take(&mut self.payload))),
            Tracks::Done => None,
        }
    }
}

/// Checks the configuration record of a sequence start of one of the Enhanced RTMP codecs
/// (`hvcC`, `av1C`, `vpcC`, `OpusHead`) as ingest does: it must parse. H.264 and AAC records
/// are read where they are used, as before Enhanced RTMP. An empty record passes: ffmpeg
/// sends one for AV1 before its encoder has produced the real one, which follows.
pub fn check_config(codec: Codec, record: &[u8]) -> Result<(), ConfigError> {
    if record.is_empty() {
        return Ok(());
    }
    match codec {
        Codec::Video(VideoCodec::Hevc) => {
            HevcDecoderConfig::parse(record)?;
        }
        Codec::Video(VideoCodec::Av1) => {
            Av1Config::parse(record)?;
        }
        Codec::Video(VideoCodec::Vp9) => {
            Vp9Config::parse(record)?;
        }
        Codec::Audio(AudioCodec::Opus) => {
            OpusHead::parse(record)?;
        }
        _ => {}
    }
    Ok(())
}

fn video_packet(dts: u64, payload: Bytes, h: &VideoHeader) -> Packet {
    let (payload, body_offset) = if h.wrapped {
        plain_payload(payload, h.plain_header(), h.header_len, h.body_end)
    } else {
        (payload, h.header_len)
    };
    Packet {
        codec: Codec::Video(h.codec),
        keyframe: h.keyframe && !h.seq_header,
        seq_header: h.seq_header,
        no_frame: h.no_frame,
        cts: h.cts,
        track: h.track,
        body_offset,
        ..Packet::new(MediaKind::Video, dts, payload)
    }
}

fn audio_packet(dts: u64, payload: Bytes, h: &AudioHeader) -> Packet {
    let (payload, body_offset) = if h.wrapped {
        plain_payload(payload, h.plain_header(), h.header_len, h.body_end)
    } else {
        (payload, h.header_len)
    };
    Packet {
        codec: Codec::Audio(h.codec),
        seq_header: h.seq_header,
        no_frame: h.no_frame,
        track: h.track,
        body_offset,
        ..Packet::new(MediaKind::Audio, dts, payload)
    }
}

/// The payload and body offset of a wrapped track whose data is `payload[start..end]`:
/// `header` followed by the data, written in place when the buffer is not shared (the plain
/// header is never longer than the wrapped one), copied when it is.
fn plain_payload(payload: Bytes, header: PlainHeader, start: usize, end: usize) -> (Bytes, usize) {
    let header = header.as_bytes();
    let end = end.min(payload.len());
    let start = start.min(end);
    let Some(at) = start.checked_sub(header.len()) else {
        return (copied(&payload[start..end], header), header.len());
    };
    match payload.try_into_mut() {
        Ok(mut buf) => {
            buf.truncate(end);
            buf[at..start].copy_from_slice(header);
            buf.advance(at);
            (buf.freeze(), header.len())
        }
        Err(shared) => (copied(&shared[start..end], header), header.len()),
    }
}

fn copied(data: &[u8], header: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header.len() + data.len());
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out.freeze()
}
