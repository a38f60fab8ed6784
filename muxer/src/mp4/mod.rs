//! MP4 for recording and VOD (ISO/IEC 14496-12, ISO/IEC 14496-14, ISO/IEC 14496-15).
//!
//! - [`Fmp4Writer`]: a stream's packets in, a fragmented MP4 out (init segment, then one
//!   `moof`+`mdat` per fragment), what the recorder writes while a stream is live, so a crash
//!   loses at most the open fragment.
//! - [`read_index`], [`index_fragmented`], [`index_progressive`]: a file (any `Read + Seek`)
//!   indexed into a per-track sample table ([`Mp4Index`]); a fragmented file's torn tail is
//!   dropped and reported ([`TornTail`]), never an error.
//! - [`faststart()`]: a fragmented MP4, torn or not, rewritten as a progressive fast-start MP4
//!   (`moov` before `mdat`), streaming the samples through.
//!
//! H.264 (`avc1`), H.265 (`hvc1`), AV1 (`av01`), VP9 (`vp09`), AAC (`mp4a`) and Opus
//! (`Opus`). Samples are the publisher's own bytes: length-prefixed NAL units, AV1 temporal
//! units (less their temporal delimiter), VP9 frames, raw AAC and Opus packets.
//!
//! No file is opened here: the recorder passes the writer's bytes to its file and opens the
//! files it wants indexed or finalised.

mod boxes;
pub mod faststart;
mod fragment;
pub mod index;
mod init;
mod parse;
mod progressive;
pub mod table;
pub mod track;
mod track_queue;
pub mod writer;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

pub use faststart::{faststart, faststart_indexed, FaststartReport, TrackReport};
pub use index::{index_fragmented, index_progressive, read_index};
pub use table::{Mp4Index, Sample, TornReason, TornTail, TrackIndex, TrackInfo};
pub use track::{AudioTrack, VideoTrack};
pub use writer::{Fmp4Event, Fmp4Writer, Fmp4WriterConfig, Fmp4WriterStats, Fragment, InitSegment, RestartReason};
