//! FLV: tag headers of audio and video messages (legacy and Enhanced RTMP) and the framing
//! of FLV files and tags (Adobe FLV spec v10.1, Annex E; Enhanced RTMP v1 and v2).
//!
//! - `tag`: what the headers mean ([`VideoHeader`], [`AudioHeader`]), and the framing.
//! - `header`: parsing them, legacy and Enhanced RTMP (FourCC, ModEx, Multitrack).

mod header;
pub mod tag;

pub use header::{parse_audio_header, parse_audio_tag, parse_video_header, parse_video_tag, MAX_TRACKS_PER_MESSAGE};
pub use tag::{AudioHeader, AudioTag, TagError, VideoHeader, VideoTag};
