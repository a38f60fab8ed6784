//! Why a packet could not be packaged.

use estuary_protocol::codec::{AacError, Av1Error, AvcError, HevcError, OpusError, Vp9Error};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::Codec;

/// A packet the packager rejected, or an MP4 file that could not be read, rewritten or
/// served as VOD.
///
/// For a packet, the packet is dropped and nothing else changes: the caller logs it (once
/// per kind, not per packet) and counts it under [`MuxError::reason`]. The `Mp4*` variants
/// of reading come with the byte offset in the file where the problem is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MuxError {
    #[error("video sequence header rejected: {0}")]
    VideoSequenceHeader(#[source] AvcError),
    #[error("audio sequence header rejected: {0}")]
    AudioSequenceHeader(#[source] AacError),
    #[error("video frame rejected: {0}")]
    VideoFrame(#[source] AvcError),
    #[error("audio frame rejected: {0}")]
    AudioFrame(#[source] AacError),
    #[error("video frame before any avc sequence header")]
    VideoBeforeSequenceHeader,
    #[error("audio frame before any aac sequence header")]
    AudioBeforeSequenceHeader,
    #[error("video codec {0:?} is not supported in mpeg-ts segments")]
    UnsupportedVideoCodec(VideoCodec),
    #[error("audio codec {0:?} is not supported in mpeg-ts segments")]
    UnsupportedAudioCodec(AudioCodec),
    #[error("hevc sequence header rejected: {0}")]
    HevcSequenceHeader(#[source] HevcError),
    #[error("av1 sequence header rejected: {0}")]
    Av1SequenceHeader(#[source] Av1Error),
    #[error("vp9 sequence header rejected: {0}")]
    Vp9SequenceHeader(#[source] Vp9Error),
    #[error("opus sequence header rejected: {0}")]
    OpusSequenceHeader(#[source] OpusError),
    #[error("codec {0:?} cannot be written in mp4 (h264, hevc, av1, vp9, aac and opus can)")]
    Mp4UnsupportedCodec(Codec),
    /// The file has no complete `moov`: not an MP4, or a recording that stopped before its
    /// init segment was written (nothing in it can be played).
    #[error("mp4 has no complete moov box in its first {scanned} bytes")]
    Mp4NoMovie { scanned: u64 },
    /// The file has a `moov` but no sample in it: a recording that stopped before its first
    /// whole fragment. There is nothing to finalise.
    #[error("mp4 has no sample in its first {valid_len} bytes: nothing to finalise")]
    Mp4Empty { valid_len: u64 },
    #[error("mp4 {box_type} box at byte {offset} is malformed: {reason}")]
    Mp4Malformed {
        box_type: String,
        offset: u64,
        reason: String,
    },
    /// A box that is read into memory (`moov`, `moof`) is larger than the reader allows:
    /// a hostile or corrupt file must not make the server allocate gigabytes.
    #[error("mp4 {box_type} box at byte {offset} is {size} bytes, more than the {limit} bytes allowed")]
    Mp4BoxTooLarge {
        box_type: String,
        offset: u64,
        size: u64,
        limit: u64,
    },
    #[error("mp4 i/o error at byte {offset} while {during}: {kind}: {message}")]
    Mp4Io {
        during: &'static str,
        offset: u64,
        kind: std::io::ErrorKind,
        message: String,
    },
    /// The file has no video or audio sample: there is nothing to play.
    #[error("mp4 has no video or audio sample: nothing to play")]
    VodNothingToPlay,
    /// A video track without any sync sample: no segment could start with a keyframe.
    #[error("mp4 video track {track_id} has no keyframe (sync sample): no segment can start")]
    VodNoKeyframe { track_id: u32 },
    /// A track whose samples lie too far before the timeline's start for MPEG-TS
    /// timestamps (a composition offset or edit list of many seconds).
    #[error("mp4 track {track_id} decodes {ms} ms before its presentation starts, more than vod allows")]
    VodTimestamp { track_id: u32, ms: u64 },
    /// A codec that HLS in MPEG-TS is not offered for (HEVC, Opus, MP3, ...): serve the MP4.
    #[error("mp4 track {track_id} is {codec}: hls vod in mpeg-ts carries h264 (avc1, avc3) and aac (mp4a) only")]
    VodUnsupportedCodec { track_id: u32, codec: String },
    /// The codec configuration in a track's sample entry (`avcC`, `esds`) is missing or bad.
    #[error("mp4 track {track_id} sample entry {codec}: {reason}")]
    VodCodecConfig {
        track_id: u32,
        codec: String,
        reason: String,
    },
    #[error("vod segment {segment} does not exist: the plan has {segments} segments")]
    VodNoSegment { segment: usize, segments: usize },
    /// A segment larger than a request may hold in memory (a file with keyframes minutes
    /// apart, or a corrupt sample table): `bytes` counts its samples and a transport packet
    /// for each.
    #[error("vod segment {segment} would be {bytes} bytes, more than the {limit} allowed")]
    VodSegmentTooLarge { segment: usize, bytes: u64, limit: u64 },
    /// The bytes handed in for a segment are not those of its byte ranges.
    #[error("vod segment {segment}: {reason}")]
    VodSegmentData { segment: usize, reason: String },
    /// Reading a segment's byte range failed.
    #[error("vod segment {segment}: i/o error reading {len} bytes at byte {offset}: {kind}: {message}")]
    VodRead {
        segment: usize,
        offset: u64,
        len: u64,
        kind: std::io::ErrorKind,
        message: String,
    },
    /// A sample that cannot be put in MPEG-TS (a NAL unit length past its end, an AAC frame
    /// too long for ADTS).
    #[error("mp4 track {track_id} sample {sample} at byte {offset}: {reason}")]
    VodSample {
        track_id: u32,
        sample: usize,
        offset: u64,
        reason: String,
    },
}

impl MuxError {
    /// A short, bounded label for metrics (`reason="video_frame"`).
    pub fn reason(&self) -> &'static str {
        match self {
            MuxError::VideoSequenceHeader(_) => "video_sequence_header",
            MuxError::AudioSequenceHeader(_) => "audio_sequence_header",
            MuxError::VideoFrame(_) => "video_frame",
            MuxError::AudioFrame(_) => "audio_frame",
            MuxError::VideoBeforeSequenceHeader => "video_before_sequence_header",
            MuxError::AudioBeforeSequenceHeader => "audio_before_sequence_header",
            MuxError::UnsupportedVideoCodec(_) => "unsupported_video_codec",
            MuxError::UnsupportedAudioCodec(_) => "unsupported_audio_codec",
            MuxError::HevcSequenceHeader(_) => "hevc_sequence_header",
            MuxError::Av1SequenceHeader(_) => "av1_sequence_header",
            MuxError::Vp9SequenceHeader(_) => "vp9_sequence_header",
            MuxError::OpusSequenceHeader(_) => "opus_sequence_header",
            MuxError::Mp4UnsupportedCodec(_) => "mp4_unsupported_codec",
            MuxError::Mp4NoMovie { .. } => "mp4_no_movie",
            MuxError::Mp4Empty { .. } => "mp4_empty",
            MuxError::Mp4Malformed { .. } => "mp4_malformed",
            MuxError::Mp4BoxTooLarge { .. } => "mp4_box_too_large",
            MuxError::Mp4Io { .. } => "mp4_io",
            MuxError::VodNothingToPlay => "vod_nothing_to_play",
            MuxError::VodNoKeyframe { .. } => "vod_no_keyframe",
            MuxError::VodTimestamp { .. } => "vod_timestamp",
            MuxError::VodUnsupportedCodec { .. } => "vod_unsupported_codec",
            MuxError::VodCodecConfig { .. } => "vod_codec_config",
            MuxError::VodNoSegment { .. } => "vod_no_segment",
            MuxError::VodSegmentTooLarge { .. } => "vod_segment_too_large",
            MuxError::VodSegmentData { .. } => "vod_segment_data",
            MuxError::VodRead { .. } => "vod_read",
            MuxError::VodSample { .. } => "vod_sample",
        }
    }
}

impl MuxError {
    /// An I/O error met at `offset` of an MP4 file while doing `during` ("reading a moof").
    pub(crate) fn mp4_io(during: &'static str, offset: u64, err: &std::io::Error) -> Self {
        MuxError::Mp4Io {
            during,
            offset,
            kind: err.kind(),
            message: err.to_string(),
        }
    }

    pub(crate) fn mp4_malformed(box_type: [u8; 4], offset: u64, reason: impl Into<String>) -> Self {
        MuxError::Mp4Malformed {
            box_type: String::from_utf8_lossy(&box_type).into_owned(),
            offset,
            reason: reason.into(),
        }
    }
}
