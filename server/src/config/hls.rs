//! `[hls]` keys of fMP4 HLS and LL-HLS, and `[apps.NAME.hls]`: which segment format a stream
//! gets and whether its playlist is low-latency.

use serde::Deserialize;

/// `hls.variant`: the segment format of a stream's HLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HlsVariant {
    /// MPEG-TS segments (H.264 and AAC only; other codecs are not packaged).
    Ts,
    /// Fragmented MP4 (`EXT-X-MAP` + `.m4s`) for every codec the MP4 writer carries
    /// (H.264, HEVC as `hvc1`, AAC), behind a master playlist with `CODECS`.
    Fmp4,
    /// H.264 + AAC (or either alone) get MPEG-TS, anything else fMP4 (HEVC must be fMP4
    /// for Apple devices).
    #[default]
    Auto,
}

/// `[apps.NAME.hls]`: each key set here replaces the global `[hls]` one for that app.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsOverride {
    pub variant: Option<HlsVariant>,
    pub low_latency: Option<bool>,
}

/// Smallest and largest `hls.part_ms`: below 100 ms a part holds two or three frames and the
/// requests cost more than they save; Apple recommends 1 s.
pub const PART_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=2000;
