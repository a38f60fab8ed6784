//! HLS VOD from finished recordings, packaged on request from the MP4 file without
//! rewriting it (as nginx-vod-module does).
//!
//! - [`VodPlan`]: a file's segments, cut at keyframes from its sample table alone, the same
//!   on every request; [`VodPlan::window`] for a time range inside one file.
//! - [`VodTs`]: the file's index, plan and codec configurations; per segment, the byte
//!   ranges to read ([`VodTs::segment_ranges`]) and the MPEG-TS segment made from them
//!   ([`VodTs::mux_segment`], [`VodTs::mux_segment_from`]). H.264 and AAC only.
//! - [`render_vod_playlist`]: the playlist of [`VodEntry`]s.
//! - [`plan_range`]: a time range of a stream across several files, with discontinuities
//!   where the files do not join.
//!
//! No file is opened here: the server reads the ranges and caches what it likes.

mod codecs;
mod mux;
mod plan;
mod playlist;
mod range;
mod ranges;
#[cfg(test)]
mod test_support;
mod timeline;

pub use mux::{VodTs, MAX_SEGMENT_BYTES};
pub use plan::{VodPlan, VodSegment, DEFAULT_TARGET_MS};
pub use playlist::{render_vod_playlist, VodEntry};
pub use range::{plan_range, RangeFile, RangeSegment, JOIN_TOLERANCE_MS};
pub use ranges::ByteRange;
pub use timeline::VOD_TIMESTAMP_BASE_MS;
