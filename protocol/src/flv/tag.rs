//! FLV audio/video tag headers and tag framing.
//!
//! Every RTMP audio (8) and video (9) message body is an FLV tag body: a tag header that
//! names the codec and frame type, then the codec data. This module parses those headers —
//! including the Enhanced RTMP `IsExHeader` form with a FourCC — and frames packets as FLV
//! tags for HTTP-FLV and recording.

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

/// What the header of a video tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    pub codec: VideoCodec,
    pub keyframe: bool,
    pub seq_header: bool,
    /// End of sequence marker; carries no picture.
    pub end_of_sequence: bool,
    /// Composition time offset in ms (signed 24 bit).
    pub cts: i32,
    /// Length of the tag header; the codec data starts here.
    pub header_len: usize,
}

/// What the header of an audio tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHeader {
    pub codec: AudioCodec,
    pub seq_header: bool,
    pub header_len: usize,
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
}

fn need_video(data: &[u8], need: usize) -> Result<(), TagError> {
    if data.len() < need {
        return Err(TagError::VideoTooShort { len: data.len(), need });
    }
    Ok(())
}

fn si24(b: &[u8]) -> i32 {
    let v = (i32::from(b[0]) << 16) | (i32::from(b[1]) << 8) | i32::from(b[2]);
    (v << 8) >> 8
}

fn fourcc_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses the header of a video tag body.
pub fn parse_video_header(data: &[u8]) -> Result<VideoHeader, TagError> {
    need_video(data, 1)?;
    let b0 = data[0];
    let frame_type = (b0 >> 4) & 0x07;
    if b0 & 0x80 != 0 {
        return parse_enhanced_video(data, frame_type, b0 & 0x0f);
    }
    let codec = match b0 & 0x0f {
        7 => VideoCodec::Avc,
        12 => VideoCodec::Hevc,
        id => return Err(TagError::UnknownVideoCodec(id)),
    };
    // AVC/HEVC legacy: frame type/codec, AVCPacketType, SI24 composition time.
    need_video(data, 5)?;
    Ok(VideoHeader {
        codec,
        keyframe: frame_type == 1,
        seq_header: data[1] == 0,
        end_of_sequence: data[1] == 2,
        cts: if data[1] == 1 { si24(&data[2..5]) } else { 0 },
        header_len: 5,
    })
}

/// Enhanced RTMP v1: `IsExHeader | FrameType(3) | PacketType(4)`, FourCC, then for
/// `CodedFrames` of AVC/HEVC a SI24 composition time.
fn parse_enhanced_video(data: &[u8], frame_type: u8, packet_type: u8) -> Result<VideoHeader, TagError> {
    need_video(data, 5)?;
    let codec = match &data[1..5] {
        b"avc1" => VideoCodec::Avc,
        b"hvc1" => VideoCodec::Hevc,
        b"av01" => VideoCodec::Av1,
        b"vp09" => VideoCodec::Vp9,
        other => return Err(TagError::UnknownVideoFourCc(fourcc_text(other))),
    };
    let mut header = VideoHeader {
        codec,
        keyframe: frame_type == 1,
        seq_header: false,
        end_of_sequence: false,
        cts: 0,
        header_len: 5,
    };
    match packet_type {
        0 | 5 => header.seq_header = true,
        1 => {
            if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) {
                need_video(data, 8)?;
                header.cts = si24(&data[5..8]);
                header.header_len = 8;
            }
        }
        2 => header.end_of_sequence = true,
        3 | 4 => {}
        other => return Err(TagError::UnknownVideoPacketType(other)),
    }
    Ok(header)
}

/// Parses the header of an audio tag body.
pub fn parse_audio_header(data: &[u8]) -> Result<AudioHeader, TagError> {
    let too_short = |need| TagError::AudioTooShort { len: data.len(), need };
    let b0 = *data.first().ok_or(too_short(1))?;
    match b0 >> 4 {
        10 => {
            if data.len() < 2 {
                return Err(too_short(2));
            }
            Ok(AudioHeader {
                codec: AudioCodec::Aac,
                seq_header: data[1] == 0,
                header_len: 2,
            })
        }
        2 | 14 => Ok(AudioHeader {
            codec: AudioCodec::Mp3,
            seq_header: false,
            header_len: 1,
        }),
        // Enhanced RTMP v2 audio: SoundFormat 9 = ExHeader, PacketType in the low nibble.
        9 => {
            if data.len() < 5 {
                return Err(too_short(5));
            }
            let codec = match &data[1..5] {
                b"Opus" => AudioCodec::Opus,
                b"mp4a" => AudioCodec::Aac,
                b".mp3" => AudioCodec::Mp3,
                other => return Err(TagError::UnknownAudioFourCc(fourcc_text(other))),
            };
            Ok(AudioHeader {
                codec,
                seq_header: b0 & 0x0f == 0,
                header_len: 5,
            })
        }
        f @ (0 | 1 | 3 | 4 | 5 | 6 | 7 | 8 | 11) => Ok(AudioHeader {
            codec: AudioCodec::Legacy(f),
            seq_header: false,
            header_len: 1,
        }),
        f => Err(TagError::UnknownAudioFormat(f)),
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
