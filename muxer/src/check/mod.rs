//! Verifiers for what an HLS server serves, for unit and end-to-end tests: MPEG-TS segments
//! ([`TsChecker`], ISO/IEC 13818-1 and Apple HLS authoring spec §7) and live media playlists
//! ([`PlaylistChecker`], RFC 8216 §4.3.3 and §6.2.2, Apple §8; LL-HLS parts, hints, skips
//! and hold-back, RFC 8216bis and Apple §14), and VOD playlists
//! ([`check_vod_playlist`]).
//!
//! Each check returns a report, or every violation found as a sentence.

mod low_latency;
mod playlist;
mod ts;
mod vod_playlist;

pub use low_latency::{ListedPart, LowLatencyReport};
pub use playlist::{PlaylistChecker, PlaylistReport, PlaylistSegment};
pub use ts::{check_segment, SegmentContext, SegmentReport, TsChecker};
pub use vod_playlist::check_vod_playlist;
