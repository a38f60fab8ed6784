//! The tracks of a recording as their sequence headers describe them, and their MP4 sample
//! entries (ISO/IEC 14496-12 §8.5.2): `avc1` + `avcC` and `hvc1` + `hvcC` (ISO/IEC 14496-15
//! §5.4, §8.4), `av01` + `av1C` (AV1 ISOBMFF binding §2.2–2.3), `vp09` + `vpcC` (VP codec
//! ISOBMFF binding §2.2–2.3), `mp4a` + `esds` (ISO/IEC 14496-14 §5.6, 14496-1 §7.2.6.5) and
//! `Opus` + `dOps` (Opus in ISOBMFF §4.3).
//!
//! The decoder configuration records are copied verbatim from the sequence headers (the
//! `av1C` too: Enhanced RTMP sends the box body), since the samples are the publisher's own
//! bytes and must be read with the record they came with. Two are rewritten: VP9's `vpcC`
//! (normalised to version 1 without initialisation data) and Opus's little-endian
//! `OpusHead` (as the big-endian `dOps`).

use bytes::Bytes;
use estuary_protocol::codec::{
    av1, vp9, AudioSpecificConfig, Av1Config, AvcDecoderConfig, HevcDecoderConfig, OpusHead, Vp9Config,
};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};

use crate::mp4::boxes::BoxBuf;
use crate::MuxError;

/// Video timescale: the 90 kHz of MPEG systems, which every common frame rate divides.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Opus always decodes at 48 kHz; its MP4 timescale is that rate (Opus in ISOBMFF §4.3.1).
pub const OPUS_TIMESCALE: u32 = 48_000;

/// A video track: H.264, H.265, AV1 or VP9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    pub codec: VideoCodec,
    /// The body of the configuration box: `avcC`, `hvcC`, `av1C` or `vpcC` (the last with
    /// its version and flags).
    pub record: Bytes,
    /// Picture size; 0 × 0 for an AV1 record without a sequence header OBU.
    pub width: u16,
    pub height: u16,
}

impl VideoTrack {
    /// From the body of a video sequence header (the record after the FLV tag header).
    /// VP9's record has no picture size: its track is made by [`VideoTrack::vp9`] at the
    /// first key frame.
    pub fn from_sequence_header(codec: VideoCodec, record: Bytes) -> Result<Self, MuxError> {
        let (width, height) = match codec {
            VideoCodec::Avc => {
                let config = AvcDecoderConfig::parse(&record).map_err(MuxError::VideoSequenceHeader)?;
                let sps = config.sps_info().map_err(MuxError::VideoSequenceHeader)?;
                (sps.width, sps.height)
            }
            VideoCodec::Hevc => {
                let config = HevcDecoderConfig::parse(&record).map_err(MuxError::HevcSequenceHeader)?;
                let sps = config.sps_info().map_err(MuxError::HevcSequenceHeader)?;
                (sps.width, sps.height)
            }
            VideoCodec::Av1 => {
                let config = Av1Config::parse(&record).map_err(MuxError::Av1SequenceHeader)?;
                config.max_frame_size.unwrap_or((0, 0))
            }
            VideoCodec::Vp9 => return Err(MuxError::Mp4UnsupportedCodec(estuary_protocol::Codec::Video(codec))),
        };
        Ok(VideoTrack {
            codec,
            record,
            width: u16::try_from(width).unwrap_or(u16::MAX),
            height: u16::try_from(height).unwrap_or(u16::MAX),
        })
    }

    /// A VP9 track from its `vpcC` sequence header and its first key frame, whose header
    /// gives the picture size; `None` when `keyframe` is not a VP9 key frame.
    pub fn vp9(record: &[u8], keyframe: &[u8]) -> Result<Option<Self>, MuxError> {
        let config = Vp9Config::parse(record).map_err(MuxError::Vp9SequenceHeader)?;
        Ok(vp9::keyframe_size(keyframe).map(|(width, height)| VideoTrack {
            codec: VideoCodec::Vp9,
            record: Bytes::copy_from_slice(&config.vpcc_body()),
            width: u16::try_from(width).unwrap_or(u16::MAX),
            height: u16::try_from(height).unwrap_or(u16::MAX),
        }))
    }

    /// The sample entry type.
    pub fn fourcc(&self) -> [u8; 4] {
        match self.codec {
            VideoCodec::Avc => *b"avc1",
            VideoCodec::Hevc => *b"hvc1",
            VideoCodec::Av1 => *b"av01",
            VideoCodec::Vp9 => *b"vp09",
        }
    }

    /// The sample of a frame: the publisher's bytes, less a leading AV1 temporal delimiter
    /// (the AV1 ISOBMFF binding §2.4 wants none in samples; the sample is the temporal unit).
    /// A slice of the same buffer, never a copy.
    pub fn sample(&self, frame: Bytes) -> Bytes {
        if self.codec == VideoCodec::Av1 {
            if let Some(Ok(obu)) = av1::obus(&frame, 0).next() {
                if obu.obu_type == av1::obu_type::TEMPORAL_DELIMITER {
                    let end = obu.payload.as_ptr() as usize + obu.payload.len() - frame.as_ptr() as usize;
                    return frame.slice(end.min(frame.len())..);
                }
            }
        }
        frame
    }
}

/// An audio track: AAC or Opus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTrack {
    pub codec: AudioCodec,
    /// The `AudioSpecificConfig` (AAC) or `dOps` body (Opus).
    pub config: Bytes,
    pub sample_rate: u32,
    pub channels: u16,
}

impl AudioTrack {
    /// From the body of an AAC sequence header.
    pub fn from_sequence_header(config: Bytes) -> Result<Self, MuxError> {
        let asc = AudioSpecificConfig::parse(&config).map_err(MuxError::AudioSequenceHeader)?;
        Ok(AudioTrack {
            codec: AudioCodec::Aac,
            sample_rate: asc.sampling_frequency,
            // Channel configuration 0 (layout in the stream) and the 7.1 of 7: stereo is what
            // the sample entry's field is read as by players anyway.
            channels: match asc.channel_config {
                1..=6 => u16::from(asc.channel_config),
                7 => 8,
                _ => 2,
            },
            config,
        })
    }

    /// From an Opus sequence start (`OpusHead`, or a `dOps` body).
    pub fn opus(head: &[u8]) -> Result<Self, MuxError> {
        let head = OpusHead::parse(head).map_err(MuxError::OpusSequenceHeader)?;
        Ok(AudioTrack {
            codec: AudioCodec::Opus,
            config: Bytes::from(head.dops_body()),
            sample_rate: OPUS_TIMESCALE,
            channels: u16::from(head.channels),
        })
    }

    /// The track's timescale: its sampling rate, so AAC frames are 1024 ticks long and Opus
    /// frames 120 to 5760.
    pub fn timescale(&self) -> u32 {
        self.sample_rate.max(1)
    }

    /// Ticks of a typical frame, given to a last sample whose successor never came: 1024 for
    /// AAC, 20 ms for Opus (what encoders use by default).
    pub fn frame_ticks(&self) -> u32 {
        match self.codec {
            AudioCodec::Opus => OPUS_TIMESCALE / 50,
            _ => 1024,
        }
    }
}

/// `stsd` with one video sample entry.
pub(crate) fn write_video_stsd(b: &mut BoxBuf, video: &VideoTrack) {
    b.full_box(b"stsd", 0, 0, |b| {
        b.u32(1);
        b.boxed(&video.fourcc(), |b| {
            b.zeros(6);
            b.u16(1); // data_reference_index
            b.zeros(16); // pre_defined, reserved
            b.u16(video.width);
            b.u16(video.height);
            b.u32(0x0048_0000); // 72 dpi
            b.u32(0x0048_0000);
            b.u32(0);
            b.u16(1); // frame_count
            b.zeros(32); // compressorname
            b.u16(0x0018); // depth
            b.u16(0xffff); // pre_defined = -1
            let config_box = match video.codec {
                VideoCodec::Avc => b"avcC",
                VideoCodec::Hevc => b"hvcC",
                VideoCodec::Av1 => b"av1C",
                // A full box; its version and flags lead the record.
                VideoCodec::Vp9 => b"vpcC",
            };
            b.boxed(config_box, |b| b.bytes(&video.record));
        });
    });
}

/// `stsd` with one `mp4a` or `Opus` sample entry for track `track_id`.
pub(crate) fn write_audio_stsd(b: &mut BoxBuf, audio: &AudioTrack, track_id: u32) {
    let opus = audio.codec == AudioCodec::Opus;
    b.full_box(b"stsd", 0, 0, |b| {
        b.u32(1);
        b.boxed(if opus { b"Opus" } else { b"mp4a" }, |b| {
            b.zeros(6);
            b.u16(1); // data_reference_index
            b.zeros(8);
            b.u16(audio.channels);
            b.u16(16); // samplesize
            b.zeros(4); // pre_defined, reserved
                        // 16.16 fixed point; rates past 65535 Hz do not fit, and players use the ASC's.
            b.u32(u32::try_from(u64::from(audio.sample_rate) << 16).unwrap_or(0));
            if opus {
                b.boxed(b"dOps", |b| b.bytes(&audio.config));
            } else {
                b.full_box(b"esds", 0, 0, |b| write_es_descriptor(b, audio, track_id));
            }
        });
    });
}

/// ES_Descriptor with its DecoderConfigDescriptor (AAC, object type 0x40), the
/// AudioSpecificConfig as DecoderSpecificInfo, and an SLConfigDescriptor.
fn write_es_descriptor(b: &mut BoxBuf, audio: &AudioTrack, track_id: u32) {
    let asc_len = audio.config.len();
    let decoder_config_len = 13 + 5 + asc_len;
    let es_len = 3 + 5 + decoder_config_len + 5 + 1;
    descriptor_header(b, 0x03, es_len);
    b.u16(u16::try_from(track_id).unwrap_or(0)); // ES_ID
    b.u8(0); // no dependency, URL or OCR stream
    descriptor_header(b, 0x04, decoder_config_len);
    b.u8(0x40); // objectTypeIndication: MPEG-4 Audio
    b.u8(0x15); // streamType 5 (audio) << 2 | reserved 1
    b.bytes(&[0, 0, 0]); // bufferSizeDB
    b.u32(0); // maxBitrate
    b.u32(0); // avgBitrate
    descriptor_header(b, 0x05, asc_len);
    b.bytes(&audio.config);
    descriptor_header(b, 0x06, 1);
    b.u8(0x02); // predefined: MP4
}

/// A descriptor tag and its length in the 4-byte form ffmpeg writes.
fn descriptor_header(b: &mut BoxBuf, tag: u8, len: usize) {
    b.u8(tag);
    b.u8(0x80 | ((len >> 21) & 0x7f) as u8);
    b.u8(0x80 | ((len >> 14) & 0x7f) as u8);
    b.u8(0x80 | ((len >> 7) & 0x7f) as u8);
    b.u8((len & 0x7f) as u8);
}
