//! The 90 kHz system clock that PTS, DTS and the PCR base count in, and its 33-bit wrap.

/// Ticks of the 90 kHz system clock base in one millisecond.
pub const TICKS_PER_MS: u64 = 90;
/// PTS, DTS and the PCR base are 33-bit counters that wrap (about every 26.5 hours).
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;

/// A millisecond timestamp on the 90 kHz clock, wrapped to 33 bits.
pub fn ms_to_90khz(ms: u64) -> u64 {
    ms.wrapping_mul(TICKS_PER_MS) & TIMESTAMP_MASK
}
