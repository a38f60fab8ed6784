//! MPEG-TS (ISO/IEC 13818-1) for HLS segments: 188-byte transport packets, PAT/PMT
//! (§2.4.4), PES packets with PTS/DTS (§2.4.3.6–7), PCR (§2.4.3.5), H.264 in Annex-B form
//! (ITU-T H.222.0 §2.14, stream_type 0x1b) and AAC in ADTS (stream_type 0x0f).
//!
//! [`TsReader`] reads such a stream back into packets (H.264, H.265, AAC), for HLS pulls.
//!
//! [`TsWriter`] keeps the continuity counters and the PMT version across segments, so one
//! writer serves the whole life of a stream.

mod clock;
mod ids;
mod packet;
pub mod pes;
pub mod psi;
mod reader;
mod video;
mod writer;

pub use clock::{ms_to_90khz, TICKS_PER_MS, TIMESTAMP_MASK};
pub use ids::{
    AUDIO_PID, AUDIO_STREAM_ID, PAT_PID, PMT_PID, PROGRAM_NUMBER, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, VIDEO_PID,
    VIDEO_STREAM_ID,
};
pub use packet::{pcr_from_adaptation_field, TS_PACKET_LEN, TS_SYNC_BYTE};
pub use reader::{TsReader, TsReaderLimits};
pub use video::AvcAccessUnit;
pub use writer::{AdtsFrame, CounterEnd, TrackLayout, TsWriter, MAX_PCR_INTERVAL_MS, PCR_LEAD_MS};
