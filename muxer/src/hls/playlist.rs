//! The live media playlist (RFC 8216 §4.3.3, §6.2.2; Apple HLS authoring spec §8), written
//! with `m3u8-rs`.
//!
//! What it writes, every time: `EXT-X-VERSION:3` (decimal `EXTINF`), `EXT-X-INDEPENDENT-
//! SEGMENTS` while every listed segment starts with an IDR (Apple 9.11; after a forced cut
//! it is left out until that segment has left the window), `EXT-X-TARGETDURATION`,
//! `EXT-X-MEDIA-SEQUENCE`, `EXT-X-DISCONTINUITY-SEQUENCE` (Apple 8.17: always present when a
//! discontinuity may ever appear), then per segment `EXT-X-DISCONTINUITY` when it has one,
//! `EXT-X-PROGRAM-DATE-TIME` (Apple 8.4) and `EXTINF`; `EXT-X-ENDLIST` once ended.
//!
//! `m3u8-rs` 6 omits `EXT-X-MEDIA-SEQUENCE` and `EXT-X-DISCONTINUITY-SEQUENCE` when they are
//! 0, and writes a chrono date for `EXT-X-PROGRAM-DATE-TIME`; so both sequence tags are
//! written here, right after `EXT-X-TARGETDURATION`, and the date goes in as a segment tag.
//!
//! # Target duration
//!
//! `EXT-X-TARGETDURATION` must not change (RFC 8216 §6.2.1) and every `EXTINF` rounded to
//! the nearest second must be at most it (§4.3.3.1). The segmenter chooses it and cuts
//! segments to keep it (see [`super::segmenter`]); the playlist writes the target its first
//! segment came with. A segment that exceeds it anyway is refused, never listed: the
//! playlist would lie (counted in [`LivePlaylist::oversize_segments`]).

use std::collections::VecDeque;

use bytes::Bytes;
use m3u8_rs::{ExtTag, MediaPlaylist, MediaSegment};

use super::date::rfc3339_millis;
pub use super::duration::rounded_secs;
use super::Segment;

/// Settings of a [`LivePlaylist`].
#[derive(Debug, Clone)]
pub struct LivePlaylistConfig {
    /// The segmenter's fragment duration in ms (default 2000).
    pub fragment_ms: u64,
    /// Segments kept in the playlist (default 6, Apple 8.11). More are kept when needed to
    /// cover three target durations (RFC 8216 §6.2.2).
    pub window_segments: usize,
}

impl Default for LivePlaylistConfig {
    fn default() -> Self {
        LivePlaylistConfig {
            fragment_ms: 2000,
            window_segments: 6,
        }
    }
}

/// What the playlist remembers of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistEntry {
    pub sequence: u64,
    pub duration_ms: u64,
    pub discontinuity: bool,
    /// Starts with an IDR: decodes without the segment before it.
    pub independent: bool,
    pub program_date_time_ms: u64,
    /// The target duration the segmenter cut it for ([`Segment::target_duration_secs`]).
    pub target_duration_secs: u64,
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
        }
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
}

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

    /// Writes the playlist. `segment_uri` names a segment by its sequence number, e.g.
    /// `|seq| format!("s-{seq}.ts")`, or with a query string for session tracking.
    pub fn render(&self, segment_uri: impl Fn(u64) -> String) -> Bytes {
        let target = self.target_duration_secs();
        let playlist = MediaPlaylist {
            version: Some(3),
            target_duration: target,
            // Written below: m3u8-rs drops both tags when they are 0.
            media_sequence: 0,
            discontinuity_sequence: 0,
            end_list: self.ended,
            independent_segments: self.entries.iter().all(|entry| entry.independent),
            segments: self
                .entries
                .iter()
                .map(|entry| media_segment(entry, &segment_uri))
                .collect(),
            ..Default::default()
        };
        let mut text = Vec::with_capacity(128 + 120 * self.entries.len());
        playlist
            .write_to(&mut text)
            .expect("writing a playlist into a Vec cannot fail");
        let target_line = format!("#EXT-X-TARGETDURATION:{target}\n");
        let sequence_lines = format!(
            "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            self.media_sequence, self.discontinuity_sequence
        );
        let at = find(&text, target_line.as_bytes()).map_or(text.len(), |pos| pos + target_line.len());
        text.splice(at..at, sequence_lines.into_bytes());
        Bytes::from(text)
    }
}

fn media_segment(entry: &PlaylistEntry, segment_uri: &impl Fn(u64) -> String) -> MediaSegment {
    MediaSegment {
        uri: segment_uri(entry.sequence),
        duration: entry.duration_ms as f32 / 1000.0,
        discontinuity: entry.discontinuity,
        unknown_tags: vec![ExtTag {
            tag: "X-PROGRAM-DATE-TIME".to_owned(),
            rest: Some(rfc3339_millis(entry.program_date_time_ms)),
        }],
        ..Default::default()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests;
