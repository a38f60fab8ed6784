//! FLV: tag headers of audio and video messages (legacy and Enhanced RTMP) and the framing
//! of FLV files and tags (Adobe FLV spec v10.1, Annex E; Enhanced RTMP v1).

pub mod tag;

pub use tag::{parse_audio_header, parse_video_header, AudioHeader, TagError, VideoHeader};
