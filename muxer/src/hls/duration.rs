//! Segment durations as HLS compares them with `EXT-X-TARGETDURATION`.

/// Seconds rounded to the nearest integer, as RFC 8216 §4.3.3.1 compares them.
pub fn rounded_secs(ms: u64) -> u64 {
    (ms + 500) / 1000
}
