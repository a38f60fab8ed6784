//! [`MediaKind`], what a media message carries: audio, video or script data.

/// What a packet carries; the values are the FLV/RTMP message type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio = 8,
    Video = 9,
    /// AMF0 script data (`onMetaData`), message type 18.
    Script = 18,
}
