//! The sample table an MP4 file is indexed into, the same for fragmented and progressive
//! files: per track, where each sample's bytes are and when it plays. VOD reads it to cut
//! segments; [`faststart()`](super::faststart()) turns it into a progressive `moov`.

use std::fmt;

use bytes::Bytes;
use estuary_protocol::MediaKind;

/// One sample (an access unit: a video frame, an AAC frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// File offset of its first byte.
    pub offset: u64,
    pub size: u32,
    /// Decode time in the track's timescale on the track's media timeline (`tfdt` based in a
    /// fragmented file, from 0 in a progressive one).
    pub dts: u64,
    /// In the track's timescale.
    pub duration: u32,
    /// Composition offset in the track's timescale: `pts = dts + cts`.
    pub cts: i32,
    /// A sync sample: a decoder can start here. Every audio sample is one.
    pub keyframe: bool,
}

/// What a track is, as its `moov` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub track_id: u32,
    /// `hdlr` handler type: `vide`, `soun`, ...
    pub handler: [u8; 4],
    /// Ticks per second of the track's times (`mdhd`).
    pub timescale: u32,
    /// Type of the first sample entry: `avc1`, `hvc1`, `mp4a`, ...
    pub codec: [u8; 4],
    /// Presentation size from `tkhd` (integer part), 0 for audio.
    pub width: u32,
    pub height: u32,
    /// `mdhd` language, ISO-639-2/T packed.
    pub language: u16,
    /// Add to a sample's `dts` (and pts) to place it on the movie timeline, in the track's
    /// timescale: the edit list's leading empty edits minus its first media time. 0 without
    /// an edit list.
    pub presentation_offset: i64,
    /// The `stsd` box as in the file (sample entries with the codec configuration).
    pub stsd: Bytes,
    /// The `hdlr` box as in the file.
    pub hdlr: Bytes,
    /// The media header box of `minf` (`vmhd`, `smhd`, `nmhd`, ...) as in the file.
    pub media_header: Bytes,
}

impl TrackInfo {
    pub fn kind(&self) -> Option<MediaKind> {
        match &self.handler {
            b"vide" => Some(MediaKind::Video),
            b"soun" => Some(MediaKind::Audio),
            _ => None,
        }
    }

    /// The sample entry type as text (`"avc1"`).
    pub fn codec_name(&self) -> String {
        String::from_utf8_lossy(&self.codec).into_owned()
    }
}

/// One track and its samples in decode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackIndex {
    pub info: TrackInfo,
    pub samples: Vec<Sample>,
}

impl TrackIndex {
    /// Sum of the sample durations, in the track's timescale.
    pub fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }

    /// Sum of the sample sizes.
    pub fn bytes(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.size)).sum()
    }

    /// `duration` in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        scale(self.duration(), 1000, self.info.timescale)
    }
}

/// `value` ticks of `from` per second, in ticks of `to` per second (rounded down).
pub(crate) fn scale(value: u64, to: u32, from: u32) -> u64 {
    if from == 0 {
        return 0;
    }
    (u128::from(value) * u128::from(to) / u128::from(from)) as u64
}

/// Why reading stopped before the end of a fragmented file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TornReason {
    /// A box that declares more bytes than the file has (the write was cut off).
    PartialBox {
        box_type: String,
        offset: u64,
        declared: u64,
    },
    /// A `moof` not followed by a complete `mdat` holding its samples.
    FragmentWithoutData { offset: u64 },
    /// Bytes that are not a box (a zero-filled or garbage tail after a crash).
    Garbage { offset: u64 },
    /// A `moof` that could not be parsed.
    BadFragment { offset: u64, reason: String },
}

impl fmt::Display for TornReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TornReason::PartialBox {
                box_type,
                offset,
                declared,
            } => write!(
                f,
                "{box_type:?} box at byte {offset} declares {declared} bytes past the end"
            ),
            TornReason::FragmentWithoutData { offset } => {
                write!(f, "moof at byte {offset} has no complete mdat after it")
            }
            TornReason::Garbage { offset } => write!(f, "bytes at {offset} are not a box"),
            TornReason::BadFragment { offset, reason } => write!(f, "moof at byte {offset}: {reason}"),
        }
    }
}

/// The end of a fragmented file that was dropped: what a crash or `kill -9` left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Bytes from the start up to the end of the last whole fragment: truncating the file
    /// to this length makes it whole again.
    pub valid_len: u64,
    /// The file's length.
    pub file_len: u64,
    pub reason: TornReason,
}

/// A whole file's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Index {
    /// The `moov` has `mvex`: samples are in `moof`/`mdat` fragments.
    pub fragmented: bool,
    /// `mvhd` timescale.
    pub movie_timescale: u32,
    pub tracks: Vec<TrackIndex>,
    /// Whole fragments read (0 for a progressive file).
    pub fragments: u64,
    /// The file's length.
    pub file_len: u64,
    /// Set when the end of a fragmented file was dropped.
    pub torn: Option<TornTail>,
}

impl Mp4Index {
    /// Bytes of the file that the index covers: all of it, or up to the last whole fragment.
    pub fn valid_len(&self) -> u64 {
        self.torn.as_ref().map_or(self.file_len, |t| t.valid_len)
    }

    /// The first track of a kind.
    pub fn track(&self, kind: MediaKind) -> Option<&TrackIndex> {
        self.tracks.iter().find(|t| t.info.kind() == Some(kind))
    }
}

/// The most samples one track may have: 16 M is 74 hours of 60 fps video or 100 hours of
/// 48 kHz AAC, and 512 MiB of sample table. A file claiming more is refused rather than
/// allowed to make the server allocate without bound.
pub const MAX_SAMPLES_PER_TRACK: usize = 16_000_000;
