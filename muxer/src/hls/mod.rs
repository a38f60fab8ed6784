//! HLS (RFC 8216, RFC 8216bis): the [`HlsSegmenter`] that turns packets into MPEG-TS
//! segments, the [`Fmp4Segmenter`] that turns them into fMP4 init sections, LL-HLS parts and
//! segments, and the [`LivePlaylist`] that lists either.

pub mod codecs;
pub(crate) mod date;
pub mod duration;
pub mod fmp4;
pub mod master;
pub mod playlist;
pub mod segmenter;

pub use fmp4::{Fmp4Output, Fmp4Segment, Fmp4Segmenter, Fmp4SegmenterConfig, InitSection, Part};
pub use playlist::{
    LivePlaylist, LivePlaylistConfig, PartEntry, PlaylistEntry, PlaylistError, PlaylistUris, Position, Progress,
    SegmentAdded,
};
pub use segmenter::{HlsSegmenter, HlsSegmenterConfig, Segment, SegmenterStats};
