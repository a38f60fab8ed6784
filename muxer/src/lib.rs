//! Estuary's sans-IO packagers: [`Packet`](estuary_protocol::Packet)s in, `Bytes` out.
//!
//! - [`ts`]: an MPEG-TS writer (ISO/IEC 13818-1) for H.264 and AAC.
//! - [`hls`]: the HLS segmenters that cut MPEG-TS segments, or fMP4 init sections, LL-HLS
//!   parts and segments (over [`mp4`]'s writer), at keyframes; the live media playlist with
//!   its LL-HLS tags, and the master playlist (RFC 8216, RFC 8216bis, Apple HLS authoring
//!   specification).
//! - [`flv_file`]: FLV files, for the recorder.
//! - [`mp4`]: the fragmented MP4 the recorder writes, the index of fragmented and
//!   progressive MP4 files, and their finalisation into a fast-start MP4.
//! - [`vod`]: HLS VOD packaged on request from finished MP4 recordings: segment plans,
//!   MPEG-TS segments muxed from the file's byte ranges, VOD playlists, time ranges across
//!   files.
//! - [`check`]: verifiers for MPEG-TS segments and media playlists (LL-HLS parts, hints,
//!   skips and hold-back included), used by tests to walk what the server really serves.
//!
//! No I/O, no clock reads, no async runtime: time comes in with the packets.
#![forbid(unsafe_code)]

pub mod check;
mod error;
pub mod flv_file;
/// Entry point of the `ts_check` fuzz target in `fuzz/`; not part of the API.
#[doc(hidden)]
pub mod fuzzing;
pub mod hls;
pub mod mp4;
pub mod ts;
pub mod vod;

pub use error::MuxError;
pub use flv_file::FlvFileWriter;
pub use hls::{HlsSegmenter, HlsSegmenterConfig, LivePlaylist, LivePlaylistConfig, Segment};
