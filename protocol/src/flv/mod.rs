//! FLV: tag headers of audio and video messages (legacy and Enhanced RTMP) and the framing
//! of FLV files and tags (Adobe FLV spec v10.1, Annex E; Enhanced RTMP v1 and v2).
//!
//! - `tag`: the headers' meaning ([`VideoHeader`], [`AudioHeader`]), legacy tags, framing.
//! - `enhanced`: the Enhanced RTMP ExHeader walk (FourCC, ModEx, Multitrack).

mod enhanced;
pub mod tag;

pub use enhanced::MAX_TRACKS_PER_MESSAGE;
pub use tag::{
    parse_audio_header, parse_audio_tag, parse_video_header, parse_video_tag, AudioHeader, AudioTag, TagError,
    VideoHeader, VideoTag,
};
