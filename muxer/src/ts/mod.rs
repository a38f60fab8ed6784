//! MPEG-TS (ISO/IEC 13818-1) for HLS segments: 188-byte transport packets, PAT/PMT
//! (§2.4.4), PES packets with PTS/DTS (§2.4.3.6–7), PCR (§2.4.3.5), H.264 in Annex-B form
//! (ITU-T H.222.0 §2.14, stream_type 0x1b) and AAC in ADTS (stream_type 0x0f).
//!
//! [`TsWriter`] keeps the continuity counters and the PMT version across segments, so one
//! writer serves the whole life of a stream.

mod packet;
pub mod pes;
pub mod psi;
mod video;
mod writer;

pub use packet::{pcr_from_adaptation_field, TS_PACKET_LEN, TS_SYNC_BYTE};
pub use video::AvcAccessUnit;
pub use writer::{AdtsFrame, TrackLayout, TsWriter};

/// PID of the Program Association Table.
pub const PAT_PID: u16 = 0x0000;
/// PID of the Program Map Table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the H.264 elementary stream.
pub const VIDEO_PID: u16 = 0x0100;
/// PID of the AAC elementary stream.
pub const AUDIO_PID: u16 = 0x0101;
/// The one program of every segment.
pub const PROGRAM_NUMBER: u16 = 1;
/// `stream_type` of H.264 video (ITU-T H.222.0 Table 2-34).
pub const STREAM_TYPE_H264: u8 = 0x1b;
/// `stream_type` of AAC audio in ADTS (ISO/IEC 13818-7).
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;
/// PES `stream_id` of the first video stream.
pub const VIDEO_STREAM_ID: u8 = 0xe0;
/// PES `stream_id` of the first audio stream.
pub const AUDIO_STREAM_ID: u8 = 0xc0;

/// Ticks of the 90 kHz system clock base in one millisecond.
pub const TICKS_PER_MS: u64 = 90;
/// PTS, DTS and the PCR base are 33-bit counters that wrap (about every 26.5 hours).
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;

/// A millisecond timestamp on the 90 kHz clock, wrapped to 33 bits.
pub fn ms_to_90khz(ms: u64) -> u64 {
    ms.wrapping_mul(TICKS_PER_MS) & TIMESTAMP_MASK
}
