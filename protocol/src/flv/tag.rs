//! FLV audio/video tag headers and tag framing.
//!
//! Every RTMP audio (8) and video (9) message body is an FLV tag body: a tag header that
//! names the codec and frame type, then the codec data. This module says what those headers
//! mean ([`VideoHeader`], [`AudioHeader`], the codecs, the plain form of a track's header),
//! and frames packets as FLV tags for HTTP-FLV and recording; `super::header` parses them.

use bytes::{BufMut, Bytes, BytesMut};

use crate::media_kind::MediaKind;

/// Video codecs a publisher may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (legacy codec id 7 or FourCC `avc1`).
    Avc,
    /// H.265 (Enhanced RTMP FourCC `hvc1`, or the non-standard legacy codec id 12).
    Hevc,
    /// AV1 (FourCC `av01`).
    Av1,
    /// VP9 (FourCC `vp09`).
    Vp9,
}

/// Audio codecs a publisher may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Mp3,
    /// Legacy sound formats carried through untouched (PCM, Nellymoser, G.711, Speex).
    Legacy(u8),
    Opus,
}

/// What the header of a video tag says about one track's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    pub codec: VideoCodec,
    pub keyframe: bool,
    pub seq_header: bool,
    /// End of sequence marker; carries no picture.
    pub end_of_sequence: bool,
    /// Carries neither a picture nor a configuration record: an end of sequence, Enhanced
    /// RTMP metadata (`colorInfo`) or a command frame. Players get it as sent; packagers
    /// skip it.
    pub no_frame: bool,
    /// Composition time offset in ms (signed 24 bit).
    pub cts: i32,
    /// Where this track's codec data starts (the length of a plain tag's header).
    pub header_len: usize,
    /// Where this track's codec data ends: the tag's end, except in a ManyTracks message.
    pub body_end: usize,
    /// Enhanced RTMP v2 track id; 0 outside a Multitrack message.
    pub track: u8,
    /// FrameType (1 key, 2 inter, 5 command, …).
    pub frame_type: u8,
    /// The Enhanced RTMP PacketType of this track's data, after ModEx and Multitrack are
    /// unwrapped; `None` for a legacy (non-ExHeader) tag.
    pub packet_type: Option<u8>,
    /// The header is not in its plain form (it is a Multitrack message, or has ModEx
    /// prefixes): [`VideoHeader::plain_header`] is what a plain tag of this data starts with.
    pub wrapped: bool,
}

/// What the header of an audio tag says about one track's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHeader {
    pub codec: AudioCodec,
    pub seq_header: bool,
    /// Carries no audio and no configuration record: an end of sequence or an Enhanced RTMP
    /// multichannel configuration. Players get it as sent; packagers skip it.
    pub no_frame: bool,
    /// Where this track's codec data starts (the length of a plain tag's header).
    pub header_len: usize,
    /// Where this track's codec data ends: the tag's end, except in a ManyTracks message.
    pub body_end: usize,
    /// Enhanced RTMP v2 track id; 0 outside a Multitrack message.
    pub track: u8,
    /// The Enhanced RTMP AudioPacketType of this track's data (after ModEx and Multitrack);
    /// `None` for a legacy tag.
    pub packet_type: Option<u8>,
    /// The header is not in its plain form (Multitrack or ModEx): see
    /// [`AudioHeader::plain_header`].
    pub wrapped: bool,
}

/// The tracks of one video message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// One track's data: a plain tag, or a Multitrack OneTrack message.
    One(VideoHeader),
    /// A ManyTracks or ManyTracksManyCodecs message: each track, in message order.
    Many(Vec<VideoHeader>),
    /// An Enhanced RTMP command frame (FrameType 5 without FourCC): one command byte, no
    /// codec.
    Command,
}

/// The tracks of one audio message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    One(AudioHeader),
    Many(Vec<AudioHeader>),
}

/// Why a tag body could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error("video tag is {len} bytes, too short for its {need}-byte header")]
    VideoTooShort { len: usize, need: usize },
    #[error("audio tag is {len} bytes, too short for its {need}-byte header")]
    AudioTooShort { len: usize, need: usize },
    #[error("unknown video codec id {0}")]
    UnknownVideoCodec(u8),
    #[error("unknown video FourCC {0:?}")]
    UnknownVideoFourCc(String),
    #[error("unknown audio sound format {0}")]
    UnknownAudioFormat(u8),
    #[error("unknown audio FourCC {0:?}")]
    UnknownAudioFourCc(String),
    #[error("unknown enhanced video packet type {0}")]
    UnknownVideoPacketType(u8),
    #[error("unknown enhanced audio packet type {0}")]
    UnknownAudioPacketType(u8),
    #[error("{kind} multitrack message has unknown AvMultitrackType {value}")]
    UnknownMultitrackType { kind: &'static str, value: u8 },
    #[error("{kind} multitrack message nests another multitrack packet type")]
    NestedMultitrack { kind: &'static str },
    #[error("{kind} multitrack message: track {track} declares {declared} bytes but only {left} remain")]
    TrackTruncated {
        kind: &'static str,
        track: u8,
        declared: usize,
        left: usize,
    },
    #[error("{kind} multitrack message carries more than {max} tracks")]
    TooManyTracks { kind: &'static str, max: usize },
    #[error("video command frame has no picture to parse a header of")]
    CommandFrame,
    #[error("sequence start: {0}")]
    BadConfig(#[from] crate::codec::ConfigError),
}

fn fourcc_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl VideoCodec {
    /// The codec from an Enhanced RTMP video FourCC.
    pub fn from_fourcc(fourcc: &[u8]) -> Result<Self, TagError> {
        Ok(match fourcc {
            b"avc1" => VideoCodec::Avc,
            b"hvc1" => VideoCodec::Hevc,
            b"av01" => VideoCodec::Av1,
            b"vp09" => VideoCodec::Vp9,
            other => return Err(TagError::UnknownVideoFourCc(fourcc_text(other))),
        })
    }

    /// The Enhanced RTMP FourCC of the codec.
    pub fn fourcc(self) -> [u8; 4] {
        *match self {
            VideoCodec::Avc => b"avc1",
            VideoCodec::Hevc => b"hvc1",
            VideoCodec::Av1 => b"av01",
            VideoCodec::Vp9 => b"vp09",
        }
    }
}

impl AudioCodec {
    /// The codec from an Enhanced RTMP audio FourCC.
    pub fn from_fourcc(fourcc: &[u8]) -> Result<Self, TagError> {
        Ok(match fourcc {
            b"Opus" => AudioCodec::Opus,
            b"mp4a" => AudioCodec::Aac,
            b".mp3" => AudioCodec::Mp3,
            other => return Err(TagError::UnknownAudioFourCc(fourcc_text(other))),
        })
    }
}

/// A plain tag header built for a track's data: at most 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainHeader {
    bytes: [u8; 8],
    len: usize,
}

impl PlainHeader {
    fn new(parts: &[&[u8]]) -> Self {
        let mut header = PlainHeader { bytes: [0; 8], len: 0 };
        for part in parts {
            header.bytes[header.len..header.len + part.len()].copy_from_slice(part);
            header.len += part.len();
        }
        header
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl VideoHeader {
    /// The header a plain tag of this track's data starts with: the legacy AVC header
    /// (`FrameType|7`, AVCPacketType, SI24 composition time) for H.264, which every FLV
    /// player reads, and the Enhanced RTMP v1 header (`0x80|FrameType|PacketType`, FourCC,
    /// and SI24 composition time for coded AVC/HEVC frames) for the other codecs.
    pub fn plain_header(&self) -> PlainHeader {
        let cts = self.cts.to_be_bytes();
        let packet_type = self.packet_type.unwrap_or(1);
        let legacy_avc = match packet_type {
            0 | 5 => Some(0),
            1 | 3 => Some(1),
            2 => Some(2),
            _ => None,
        };
        match (self.codec, legacy_avc) {
            (VideoCodec::Avc, Some(avc_packet_type)) => {
                PlainHeader::new(&[&[(self.frame_type << 4) | 7, avc_packet_type], &cts[1..]])
            }
            (codec, _) => {
                let first = [0x80 | (self.frame_type << 4) | packet_type];
                let fourcc = codec.fourcc();
                let with_cts = packet_type == 1 && matches!(codec, VideoCodec::Avc | VideoCodec::Hevc);
                PlainHeader::new(&[&first, &fourcc, if with_cts { &cts[1..] } else { &[] }])
            }
        }
    }
}

impl AudioHeader {
    /// The header a plain tag of this track's data starts with: the legacy AAC header
    /// (`0xAF`, AACPacketType) for AAC, the legacy MP3 byte for MP3, and the Enhanced RTMP
    /// header (`0x90|PacketType`, FourCC) for Opus.
    pub fn plain_header(&self) -> PlainHeader {
        let packet_type = self.packet_type.unwrap_or(1);
        match (self.codec, packet_type) {
            (AudioCodec::Aac, 0 | 1) => PlainHeader::new(&[&[0xaf, packet_type]]),
            (AudioCodec::Mp3, 1) => PlainHeader::new(&[&[0x2f]]),
            (AudioCodec::Opus, _) => PlainHeader::new(&[&[0x90 | packet_type], b"Opus"]),
            (AudioCodec::Aac, _) => PlainHeader::new(&[&[0x90 | packet_type], b"mp4a"]),
            (AudioCodec::Mp3, _) => PlainHeader::new(&[&[0x90 | packet_type], b".mp3"]),
            (AudioCodec::Legacy(format), _) => PlainHeader::new(&[&[format << 4]]),
        }
    }
}

/// The 9-byte FLV file header plus the first PreviousTagSize0.
pub fn file_header(has_audio: bool, has_video: bool) -> Bytes {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    Bytes::from_static(match flags {
        0b101 => b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00",
        0b100 => b"FLV\x01\x04\x00\x00\x00\x09\x00\x00\x00\x00",
        0b001 => b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00",
        _ => b"FLV\x01\x00\x00\x00\x00\x09\x00\x00\x00\x00",
    })
}

/// Frames `payload` as one FLV tag: 11-byte tag header, the payload, and the 4-byte
/// PreviousTagSize that follows every tag.
pub fn encode_tag(kind: MediaKind, timestamp: u32, payload: &[u8]) -> Bytes {
    let len = payload.len() as u32;
    let mut out = BytesMut::with_capacity(11 + payload.len() + 4);
    out.put_u8(kind as u8);
    out.put_uint(u64::from(len & 0x00ff_ffff), 3);
    out.put_uint(u64::from(timestamp & 0x00ff_ffff), 3);
    out.put_u8((timestamp >> 24) as u8);
    out.put_uint(0, 3); // stream id, always 0
    out.put_slice(payload);
    out.put_u32(len + 11);
    out.freeze()
}

/// The tag header alone, for framing a payload that is written separately.
pub fn tag_header(kind: MediaKind, timestamp: u32, len: usize) -> [u8; 11] {
    let len = len as u32;
    [
        kind as u8,
        (len >> 16) as u8,
        (len >> 8) as u8,
        len as u8,
        (timestamp >> 16) as u8,
        (timestamp >> 8) as u8,
        timestamp as u8,
        (timestamp >> 24) as u8,
        0,
        0,
        0,
    ]
}

#[cfg(test)]
mod tests {
    use super::super::header::{parse_audio_header, parse_video_header};
    use super::*;

    #[test]
    fn legacy_avc_keyframe_with_negative_cts() {
        let h = parse_video_header(&[0x17, 0x01, 0xff, 0xff, 0xfe, 0, 0, 0, 1]).unwrap();
        assert_eq!(h.codec, VideoCodec::Avc);
        assert!(h.keyframe && !h.seq_header);
        assert_eq!(h.cts, -2);
        assert_eq!(h.header_len, 5);
    }

    #[test]
    fn avc_sequence_header() {
        let h = parse_video_header(&[0x17, 0x00, 0, 0, 0, 1, 0x64]).unwrap();
        assert!(h.seq_header);
    }

    #[test]
    fn enhanced_hevc_coded_frames() {
        let mut tag = vec![0x80 | 0x10 | 1];
        tag.extend_from_slice(b"hvc1");
        tag.extend_from_slice(&[0, 0, 40, 0xaa]);
        let h = parse_video_header(&tag).unwrap();
        assert_eq!(h.codec, VideoCodec::Hevc);
        assert!(h.keyframe);
        assert_eq!(h.cts, 40);
        assert_eq!(h.header_len, 8);
    }

    #[test]
    fn short_and_unknown_video_are_errors() {
        assert_eq!(
            parse_video_header(&[]),
            Err(TagError::VideoTooShort { len: 0, need: 1 })
        );
        assert_eq!(
            parse_video_header(&[0x17, 1]),
            Err(TagError::VideoTooShort { len: 2, need: 5 })
        );
        assert_eq!(parse_video_header(&[0x13, 0]), Err(TagError::UnknownVideoCodec(3)));
        let mut tag = vec![0x91];
        tag.extend_from_slice(b"xxxx");
        assert!(matches!(parse_video_header(&tag), Err(TagError::UnknownVideoFourCc(_))));
    }

    #[test]
    fn aac_headers() {
        let h = parse_audio_header(&[0xaf, 0x00, 0x12, 0x10]).unwrap();
        assert!(h.seq_header);
        assert_eq!(h.codec, AudioCodec::Aac);
        assert!(!parse_audio_header(&[0xaf, 0x01, 0x21]).unwrap().seq_header);
        assert!(parse_audio_header(&[0xaf]).is_err());
        assert_eq!(parse_audio_header(&[0xf0]), Err(TagError::UnknownAudioFormat(15)));
    }

    #[test]
    fn tag_framing() {
        let tag = encode_tag(MediaKind::Video, 0x0102_0304, b"abc");
        assert_eq!(&tag[..11], &[9, 0, 0, 3, 0x02, 0x03, 0x04, 0x01, 0, 0, 0]);
        assert_eq!(&tag[11..14], b"abc");
        assert_eq!(&tag[14..], &14u32.to_be_bytes());
        assert_eq!(tag_header(MediaKind::Video, 0x0102_0304, 3), tag[..11]);
    }

    /// A packet's FLV tag carries its 64-bit stream clock modulo 2^32: the low 24 bits in
    /// Timestamp, bits 24..32 in TimestampExtended, so a reader that combines them (as the
    /// spec says) sees the wrap 49.7 days in and nothing else.
    #[test]
    fn tag_timestamps_wrap_at_2_32_with_the_extended_byte() {
        const WRAP: u64 = 1 << 32;
        let cases: [(u64, [u8; 4]); 5] = [
            (0x00ff_ffff, [0xff, 0xff, 0xff, 0x00]),
            (0x0100_0000, [0x00, 0x00, 0x00, 0x01]),
            (WRAP - 1, [0xff, 0xff, 0xff, 0xff]),
            (WRAP + 7, [0x00, 0x00, 0x07, 0x00]),
            (WRAP + 0x8012_3456, [0x12, 0x34, 0x56, 0x80]),
        ];
        for (dts, bytes) in cases {
            let mut p =
                crate::media::Packet::from_flv_body(MediaKind::Audio, 0, Bytes::from_static(&[0xaf, 1, 0x21])).unwrap();
            p.dts = dts;
            let tag = p.flv_tag();
            assert_eq!(tag[4..8], bytes, "dts {dts:#x}");
            let read = u32::from_be_bytes([tag[7], tag[4], tag[5], tag[6]]);
            assert_eq!(u64::from(read), dts % WRAP);
        }
    }
}
