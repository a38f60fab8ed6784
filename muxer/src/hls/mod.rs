//! HLS (RFC 8216): the [`HlsSegmenter`] that turns packets into MPEG-TS segments, and the
//! [`LivePlaylist`] that lists them.

pub(crate) mod date;
pub mod duration;
pub mod playlist;
pub mod segmenter;

pub use playlist::{LivePlaylist, LivePlaylistConfig, PlaylistEntry, PlaylistError, SegmentAdded};
pub use segmenter::{HlsSegmenter, HlsSegmenterConfig, Segment, SegmenterStats};
