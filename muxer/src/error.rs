//! Why a packet could not be packaged.

use estuary_protocol::codec::{AacError, AvcError};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};

/// A packet the packager rejected. The packet is dropped and nothing else changes: the
/// caller logs it (once per kind, not per packet) and counts it under [`MuxError::reason`].
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
        }
    }
}
