//! The fixed identifiers of every segment: PIDs, program number, stream types, PES stream ids.

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
