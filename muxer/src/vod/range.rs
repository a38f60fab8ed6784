//! A time range of a stream played as one VOD playlist across several recording files:
//! which segments of which files, where each lands on the playlist's timeline, and where
//! `EXT-X-DISCONTINUITY` goes (RFC 8216 §4.3.2.3): before the first segment of a file that
//! does not join the one before it.
//!
//! Two files join when the second starts (by the wall clock) where the first ends, within
//! [`JOIN_TOLERANCE_MS`], the first is played to its end and the second from its start,
//! and both have the same codecs and configuration: a recording cut into files at
//! keyframes. Their segments then continue one timeline: the second file's segments are
//! muxed with a timeline offset that puts its start where the first file's media ends.
//! Any other boundary (a gap, an overlap, new encoder settings) gets a discontinuity, and the
//! timeline carries on after the previous file's media all the same, so timestamps never go
//! back. Files that overlap are trimmed: a file's segments start where the previous file's
//! media ended.

use super::plan::VodPlan;
use super::playlist::VodEntry;

/// How far apart (wall clock) one file's end and the next file's start may be for the two
/// to join: the recorder stamps a file when it opens it, a little after the cut packet.
pub const JOIN_TOLERANCE_MS: u64 = 1000;

/// One recording file of the range.
#[derive(Debug, Clone, Copy)]
pub struct RangeFile<'a> {
    /// Wall-clock time of the file's time 0 (its first sample), Unix ms.
    pub start_ms: u64,
    pub plan: &'a VodPlan,
}

/// One segment of the range's playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSegment {
    /// Index of its file in the slice given to [`plan_range`].
    pub file: usize,
    /// Its number in that file's plan.
    pub segment: usize,
    /// What to pass to [`VodTs::mux_segment`](super::VodTs::mux_segment): the segment's
    /// URI must carry it (with the file and the number), since the segment's bytes depend
    /// on it.
    pub timeline_offset_ms: u64,
    pub duration_ms: u64,
    pub discontinuity: bool,
    /// Wall-clock time of the segment's start, on the first segment and after every
    /// discontinuity.
    pub program_date_time_ms: Option<u64>,
    pub independent: bool,
}

impl RangeSegment {
    /// Its playlist entry, under `uri`.
    pub fn entry(&self, uri: String) -> VodEntry {
        VodEntry {
            uri,
            duration_ms: self.duration_ms,
            discontinuity: self.discontinuity,
            program_date_time_ms: self.program_date_time_ms,
            independent: self.independent,
        }
    }
}

/// What the previous file contributed.
struct Previous<'a> {
    plan: &'a VodPlan,
    /// Wall clock where its last listed segment ends.
    wall_end: u64,
    /// Playlist timeline where its last listed segment ends.
    timeline_end: u64,
    /// Its last segment is listed.
    to_its_end: bool,
}

/// The segments that cover `from_ms..to_ms` (wall clock, Unix ms) from `files`, in time
/// order (the files are taken by `start_ms`, whatever their order in the slice).
pub fn plan_range(files: &[RangeFile<'_>], from_ms: u64, to_ms: u64) -> Vec<RangeSegment> {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| files[i].start_ms);
    let mut out = Vec::new();
    let mut covered = from_ms;
    let mut previous: Option<Previous<'_>> = None;
    for i in order {
        let file = files[i];
        if to_ms <= file.start_ms {
            break;
        }
        let window = file
            .plan
            .window(covered.saturating_sub(file.start_ms), to_ms - file.start_ms);
        let (Some(first), Some(last)) = (window.first(), window.last()) else {
            continue;
        };
        let joins = previous.as_ref().is_some_and(|p| {
            p.to_its_end
                && first.number == 0
                && p.plan.same_format(file.plan)
                && file.start_ms.abs_diff(p.wall_end) <= JOIN_TOLERANCE_MS
        });
        let offset = previous
            .as_ref()
            .map_or(0, |p| p.timeline_end.saturating_sub(first.start_ms));
        for (k, segment) in window.iter().enumerate() {
            let discontinuity = k == 0 && previous.is_some() && !joins;
            out.push(RangeSegment {
                file: i,
                segment: segment.number,
                timeline_offset_ms: offset,
                duration_ms: segment.duration_ms(),
                discontinuity,
                program_date_time_ms: (out.is_empty() || discontinuity).then(|| file.start_ms + segment.start_ms),
                independent: segment.keyframe_start,
            });
        }
        let wall_end = file.start_ms + last.end_ms;
        covered = covered.max(wall_end);
        previous = Some(Previous {
            plan: file.plan,
            wall_end,
            timeline_end: offset + last.end_ms,
            to_its_end: last.number + 1 == file.plan.len(),
        });
    }
    out
}

#[cfg(test)]
mod tests;
