//! The live media playlist (RFC 8216 §4.3.3, §6.2.2; RFC 8216bis LL-HLS; Apple HLS
//! authoring spec §8, §14), for MPEG-TS and fMP4 segments.
//!
//! What it writes, every time: `EXT-X-VERSION` (3; 6 with `EXT-X-MAP`; 9 with LL-HLS),
//! `EXT-X-INDEPENDENT-SEGMENTS` while every listed segment starts with an IDR (Apple 9.11;
//! after a forced cut it is left out until that segment has left the window),
//! `EXT-X-TARGETDURATION`, `EXT-X-MEDIA-SEQUENCE`, `EXT-X-DISCONTINUITY-SEQUENCE` (Apple
//! 8.17: always present when a discontinuity may ever appear), then per segment
//! `EXT-X-DISCONTINUITY` when it has one, `EXT-X-MAP` when its init section is not the one of
//! the segment before (Apple 8.20), `EXT-X-PROGRAM-DATE-TIME` (Apple 8.4) and `EXTINF`;
//! `EXT-X-ENDLIST` once ended. With parts (LL-HLS) see [`write`].
//!
//! The text is written by [`write`], not `m3u8-rs`: `m3u8-rs` 6 cannot write
//! `EXT-X-PART`, `EXT-X-PART-INF`, `EXT-X-SERVER-CONTROL`, `EXT-X-PRELOAD-HINT` or
//! `EXT-X-SKIP` (its playlist-level unknown tags are never written), and it drops
//! `EXT-X-MEDIA-SEQUENCE:0`; one writer for every media playlist is simpler than patching
//! its output. (`m3u8-rs` still parses playlists in [`crate::check`].)
//!
//! # Target duration
//!
//! `EXT-X-TARGETDURATION` must not change (RFC 8216 §6.2.1) and every `EXTINF` rounded to
//! the nearest second must be at most it (§4.3.3.1). The segmenter chooses it and cuts
//! segments to keep it (see [`super::segmenter`]); the playlist writes the target its first
//! segment came with. A segment that exceeds it anyway is refused, never listed: the
//! playlist would lie (counted in [`LivePlaylist::oversize_segments`]).

mod write;

pub use write::{PartEntry, PlaylistEntry, PlaylistUris};

use std::collections::VecDeque;

pub use super::duration::rounded_secs;
use super::Segment;
use bytes::Bytes;

/// Settings of a [`LivePlaylist`].
#[derive(Debug, Clone)]
pub struct LivePlaylistConfig {
    /// The segmenter's fragment duration in ms (default 2000).
    pub fragment_ms: u64,
    /// Segments kept in the playlist (default 6, Apple 8.11). More are kept when needed to
    /// cover three target durations (RFC 8216 §6.2.2).
    pub window_segments: usize,
    /// LL-HLS: the part target in ms (`EXT-X-PART-INF`); `None` writes no LL tags.
    pub part_target_ms: Option<u64>,
}

impl Default for LivePlaylistConfig {
    fn default() -> Self {
        LivePlaylistConfig {
            fragment_ms: 2000,
            window_segments: 6,
            part_target_ms: None,
        }
    }
}

impl From<&Segment> for PlaylistEntry {
    fn from(segment: &Segment) -> Self {
        PlaylistEntry {
            sequence: segment.sequence,
            duration_ms: segment.duration_ms,
            discontinuity: segment.discontinuity,
            independent: segment.independent,
            program_date_time_ms: segment.program_date_time_ms,
            target_duration_secs: segment.target_duration_secs,
            init: None,
        }
    }
}

impl From<&super::Fmp4Segment> for PlaylistEntry {
    fn from(segment: &super::Fmp4Segment) -> Self {
        PlaylistEntry {
            sequence: segment.sequence,
            duration_ms: segment.duration_ms,
            discontinuity: segment.discontinuity,
            independent: segment.independent,
            program_date_time_ms: segment.program_date_time_ms,
            target_duration_secs: segment.target_duration_secs,
            init: Some(segment.init_id),
        }
    }
}

/// Where a client's blocking request stands against the playlist (RFC 8216bis §6.2.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The playlist already holds it: answer now.
    Ready,
    /// It is the next segment or the one after (or one of their parts): wait for it.
    Wait,
    /// More than two segments ahead: answer 400 at once.
    TooFar,
}

/// How far a playlist got: its last segment and the parts of the segment being written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub last_segment: Option<u64>,
    pub open_sequence: Option<u64>,
    pub open_parts: u32,
}

impl Progress {
    /// Whether the playlist holds segment `msn` (or, with `part`, that part of it), is about
    /// to, or is asked too far ahead (RFC 8216bis §6.2.5.2: more than two segments past the
    /// last one).
    pub fn position(&self, msn: u64, part: Option<u32>) -> Position {
        let Some(last) = self.last_segment else {
            return if msn <= 1 { Position::Wait } else { Position::TooFar };
        };
        if msn <= last {
            return Position::Ready;
        }
        if msn > last + 2 {
            return Position::TooFar;
        }
        match part {
            Some(p) if self.open_sequence == Some(msn) && p < self.open_parts => Position::Ready,
            _ => Position::Wait,
        }
    }

    /// Whether part `index` of segment `sequence` exists (or its whole segment does).
    pub fn has_part(&self, sequence: u64, index: u32) -> bool {
        self.position(sequence, Some(index)) == Position::Ready
    }
}

/// Segment URIs from a closure; the playlist of MPEG-TS segments names nothing else.
struct SegmentsOnly<F>(F);

impl<F: Fn(u64) -> String> PlaylistUris for SegmentsOnly<F> {
    fn segment(&self, sequence: u64) -> String {
        (self.0)(sequence)
    }
    fn part(&self, sequence: u64, index: u32) -> String {
        format!("{}.{index}", (self.0)(sequence))
    }
    fn init(&self, id: u64) -> String {
        format!("init-{id}")
    }
}

/// What adding a segment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentAdded {
    /// Sequence numbers that left the playlist. The server keeps serving them for their
    /// duration plus the playlist's duration (RFC 8216 §6.2.2), then drops them.
    pub removed: std::ops::Range<u64>,
}

/// Why a segment was not added.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlaylistError {
    #[error("hls segment {got} does not follow segment {last}; sequence numbers must be consecutive")]
    SequenceGap { last: u64, got: u64 },
    #[error(
        "hls segment {sequence} lasts {duration_ms} ms, which rounds above the target duration of {target_secs} s"
    )]
    LongerThanTarget {
        sequence: u64,
        duration_ms: u64,
        target_secs: u64,
    },
}

/// A live media playlist over a sliding window of segments.
#[derive(Debug)]
pub struct LivePlaylist {
    config: LivePlaylistConfig,
    target_duration_secs: Option<u64>,
    entries: VecDeque<PlaylistEntry>,
    media_sequence: u64,
    discontinuity_sequence: u64,
    ended: bool,
    oversize_segments: u64,
    /// Parts of the listed segments whose parts are still written (the last few), by
    /// sequence, oldest first.
    segment_parts: VecDeque<(u64, Vec<PartEntry>)>,
    /// Parts of the segment being written, and its sequence number.
    open_parts: Vec<PartEntry>,
    open_sequence: Option<u64>,
}

/// Completed segments whose parts stay listed (gohlslib lists the last two; RFC 8216bis
/// §4.4.4.9 wants parts gone past three target durations from the end).
const SEGMENTS_WITH_PARTS: usize = 2;

impl LivePlaylist {
    pub fn new(config: LivePlaylistConfig) -> Self {
        LivePlaylist {
            config,
            target_duration_secs: None,
            entries: VecDeque::new(),
            media_sequence: 0,
            discontinuity_sequence: 0,
            ended: false,
            oversize_segments: 0,
            segment_parts: VecDeque::new(),
            open_parts: Vec::new(),
            open_sequence: None,
        }
    }

    /// Adds a part of the segment being written (`sequence`, the one after the last listed).
    /// Parts of another segment than the open one start it over.
    pub fn push_part(&mut self, sequence: u64, part: PartEntry) {
        if self.open_sequence != Some(sequence) {
            self.open_parts.clear();
            self.open_sequence = Some(sequence);
        }
        self.ended = false;
        self.open_parts.push(part);
    }

    /// The sequence number the next segment will have, once one was listed.
    pub fn next_sequence(&self) -> Option<u64> {
        self.entries.back().map(|e| e.sequence + 1)
    }

    /// The newest part listed: (segment, part index).
    pub fn last_part(&self) -> Option<(u64, u32)> {
        if let (Some(seq), Some(_)) = (self.open_sequence, self.open_parts.last()) {
            return Some((seq, self.open_parts.len() as u32 - 1));
        }
        self.segment_parts
            .back()
            .filter(|(_, parts)| !parts.is_empty())
            .map(|(seq, parts)| (*seq, parts.len() as u32 - 1))
    }

    /// How far the playlist got, for answering blocking requests away from it.
    pub fn progress(&self) -> Progress {
        Progress {
            last_segment: self.entries.back().map(|e| e.sequence),
            open_sequence: self.open_sequence,
            open_parts: self.open_parts.len() as u32,
        }
    }

    /// Appends a segment and slides the window. A segment whose rounded duration exceeds the
    /// target duration is refused rather than listed (the segmenter never makes one; the
    /// segments after a refused one are then refused as a sequence gap). Pushing after [`LivePlaylist::end`] reopens
    /// the playlist (the segmenter marks that segment discontinuous); RFC 8216 §6.2.1 wants
    /// an ended playlist never to change, so a strict server starts a new playlist instead.
    pub fn push_segment(&mut self, segment: &Segment) -> Result<SegmentAdded, PlaylistError> {
        self.push_entry(PlaylistEntry::from(segment))
    }

    /// [`LivePlaylist::push_segment`] for a segment's metadata alone.
    pub fn push_entry(&mut self, entry: PlaylistEntry) -> Result<SegmentAdded, PlaylistError> {
        if let Some(last) = self.entries.back() {
            if entry.sequence != last.sequence + 1 {
                return Err(PlaylistError::SequenceGap {
                    last: last.sequence,
                    got: entry.sequence,
                });
            }
        }
        let target = self.target_duration_secs.unwrap_or(entry.target_duration_secs.max(1));
        if rounded_secs(entry.duration_ms) > target {
            self.oversize_segments += 1;
            return Err(PlaylistError::LongerThanTarget {
                sequence: entry.sequence,
                duration_ms: entry.duration_ms,
                target_secs: target,
            });
        }
        if self.entries.is_empty() {
            self.media_sequence = entry.sequence;
        }
        self.target_duration_secs = Some(target);
        self.ended = false;
        self.entries.push_back(entry);
        if self.config.part_target_ms.is_some() {
            let parts = if self.open_sequence == Some(entry.sequence) {
                std::mem::take(&mut self.open_parts)
            } else {
                Vec::new()
            };
            self.open_parts.clear();
            self.open_sequence = None;
            self.segment_parts.push_back((entry.sequence, parts));
            while self.segment_parts.len() > SEGMENTS_WITH_PARTS {
                self.segment_parts.pop_front();
            }
        }
        let first_removed = self.media_sequence;
        let min_duration_ms = 3 * target * 1000;
        // Segments shorter than half a fragment (frozen timestamps, cut only by
        // hls.max_segment_bytes, last 0 s) would never add up to three target durations:
        // past as many as half-fragment segments would need, the oldest go anyway, so the
        // playlist and the segments kept for it stay bounded.
        let half_fragment_ms = (self.config.fragment_ms / 2).max(1);
        let max_entries = (min_duration_ms.div_ceil(half_fragment_ms) as usize).max(self.config.window_segments);
        while self.entries.len() > self.config.window_segments.max(1) {
            let total: u64 = self.entries.iter().map(|e| e.duration_ms).sum();
            let Some(front) = self.entries.front() else {
                break;
            };
            if total - front.duration_ms < min_duration_ms && self.entries.len() <= max_entries {
                break;
            }
            self.discontinuity_sequence += u64::from(front.discontinuity);
            self.media_sequence += 1;
            self.entries.pop_front();
        }
        Ok(SegmentAdded {
            removed: first_removed..self.media_sequence,
        })
    }

    /// Marks the stream ended: `EXT-X-ENDLIST` is written from now on.
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// True before the first segment; serve no playlist then (it would have no segment and
    /// a provisional target duration).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `EXT-X-TARGETDURATION` in seconds (provisional until the first segment).
    pub fn target_duration_secs(&self) -> u64 {
        self.target_duration_secs
            .unwrap_or_else(|| (self.config.fragment_ms * 3).div_ceil(2000).max(1))
    }

    pub fn media_sequence(&self) -> u64 {
        self.media_sequence
    }

    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// Segments refused because their rounded duration exceeded the target duration (for a
    /// metric; the segmenter never makes one).
    pub fn oversize_segments(&self) -> u64 {
        self.oversize_segments
    }

    /// The segments in the window, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &PlaylistEntry> {
        self.entries.iter()
    }

    /// Whether `sequence` is listed now.
    pub fn contains(&self, sequence: u64) -> bool {
        self.entries.front().is_some_and(|first| sequence >= first.sequence)
            && self.entries.back().is_some_and(|last| sequence <= last.sequence)
    }

    /// Writes the playlist of MPEG-TS segments. `segment_uri` names a segment by its
    /// sequence number, e.g. `|seq| format!("s-{seq}.ts")`.
    pub fn render(&self, segment_uri: impl Fn(u64) -> String) -> Bytes {
        write::write(&self.view(), &SegmentsOnly(segment_uri), false)
    }

    /// Writes the playlist with every URI `uris` gives; `delta` writes a delta update
    /// (`EXT-X-SKIP`, RFC 8216bis §4.4.5.2) when LL-HLS is on and segments can be skipped.
    pub fn render_with(&self, uris: &impl PlaylistUris, delta: bool) -> Bytes {
        write::write(&self.view(), uris, delta)
    }

    fn view(&self) -> write::View<'_> {
        write::View {
            target_duration_secs: self.target_duration_secs(),
            part_target_ms: self.config.part_target_ms,
            skip_until_ms: self.skip_until_ms(),
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            ended: self.ended,
            entries: &self.entries,
            segment_parts: &self.segment_parts,
            open: match self.open_sequence {
                Some(sequence) => Some((sequence, &self.open_parts[..])),
                None => self.next_sequence().map(|sequence| (sequence, &[][..])),
            },
        }
    }

    /// `CAN-SKIP-UNTIL` in ms: six target durations (RFC 8216bis §4.4.3.8).
    pub fn skip_until_ms(&self) -> u64 {
        6 * self.target_duration_secs() * 1000
    }
}

#[cfg(test)]
mod tests;
