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
//! No file is opened here: the server reads what it is told to and caches what it likes.
//!
//! # Serving a recording
//!
//! Once per file (then cached, e.g. `Arc<VodTs>` keyed by path and modification time):
//! [`read_index`](crate::mp4::read_index) on the open file reads only its `moov` (a few MB
//! for an hour), and [`VodTs::new`] plans it in one pass over the samples. It keeps the
//! sample table: about 32 bytes a sample, some 8 MB for an hour of 30 fps video with AAC.
//! [`MuxError::VodUnsupportedCodec`] means: offer the MP4 only.
//!
//! The playlist needs no file access: one [`VodSegment::entry`] per segment of
//! [`VodTs::plan`] (or of [`VodPlan::window`]), then [`render_vod_playlist`].
//!
//! A segment request reads the segment's media and nothing else: [`VodTs::mux_segment`]
//! with a closure over `FileExt::read_exact_at`, inside `spawn_blocking`; typically one to
//! three reads (a fast-start file interleaves about a second per track), one copy of the
//! media into transport packets, and a segment about 5% larger than its samples at usual
//! bitrates (the OBS capture at 2.5 Mbit/s), more at very low ones (transport packets per
//! frame, and PAT and PMT written 16 times a segment).
//!
//! [`MuxError::VodUnsupportedCodec`]: crate::MuxError::VodUnsupportedCodec

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
