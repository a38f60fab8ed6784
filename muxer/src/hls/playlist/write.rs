//! The text of a media playlist, MPEG-TS or fMP4, classic or LL-HLS (RFC 8216bis §4.4).
//!
//! With LL-HLS on ([`super::LivePlaylistConfig::part_target_ms`]), after the header tags:
//! `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=<6 × target>,PART-HOLD-BACK=<3 ×
//! part target>` (Apple 14.3: at least three part targets; the RFC's minimum is two) and
//! `EXT-X-PART-INF:PART-TARGET`; each of the last segments gets its `EXT-X-PART` lines
//! before its `EXTINF`; the parts of the segment being written follow the last segment, and
//! one `EXT-X-PRELOAD-HINT:TYPE=PART` names the part after them. A delta update replaces the
//! oldest segments (those at least `CAN-SKIP-UNTIL` before the end) with `EXT-X-SKIP`.

use std::fmt::Write as _;

use std::collections::VecDeque;

use bytes::Bytes;

use crate::hls::date::rfc3339_millis;

/// What the playlist remembers of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaylistEntry {
    pub sequence: u64,
    pub duration_ms: u64,
    pub discontinuity: bool,
    /// Starts with an IDR: decodes without the segment before it.
    pub independent: bool,
    pub program_date_time_ms: u64,
    /// The target duration the segmenter cut it for ([`crate::hls::Segment::target_duration_secs`]).
    pub target_duration_secs: u64,
    /// The fMP4 init section (`EXT-X-MAP`) its fragments are read with; `None` for MPEG-TS.
    pub init: Option<u64>,
}

/// One LL-HLS part as the playlist lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEntry {
    pub duration_ms: u64,
    /// Starts with a keyframe: `INDEPENDENT=YES`.
    pub independent: bool,
}

/// Names of the files a playlist lists, as its URIs.
pub trait PlaylistUris {
    fn segment(&self, sequence: u64) -> String;
    /// Part `index` of segment `sequence`.
    fn part(&self, sequence: u64, index: u32) -> String;
    /// The init section `id`.
    fn init(&self, id: u64) -> String;
}

/// What the writer needs of a live playlist.
pub(crate) struct View<'a> {
    pub(crate) target_duration_secs: u64,
    pub(crate) part_target_ms: Option<u64>,
    pub(crate) skip_until_ms: u64,
    pub(crate) media_sequence: u64,
    pub(crate) discontinuity_sequence: u64,
    pub(crate) ended: bool,
    pub(crate) entries: &'a VecDeque<PlaylistEntry>,
    /// Parts of the last listed segments, by sequence.
    pub(crate) segment_parts: &'a VecDeque<(u64, Vec<PartEntry>)>,
    /// The segment being written (or the next one) and its parts so far.
    pub(crate) open: Option<(u64, &'a [PartEntry])>,
}

/// Hold-back in part targets (Apple HLS authoring spec 14.3).
pub(crate) const PART_HOLD_BACK_PARTS: u64 = 3;

/// `ms` as decimal seconds, exactly: `2`, `2.002`, `0.3`.
pub(crate) fn secs(ms: u64) -> String {
    let (whole, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:03}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

pub(super) fn write(p: &View<'_>, uris: &impl PlaylistUris, delta: bool) -> Bytes {
    let target = p.target_duration_secs;
    let ll = p.part_target_ms;
    let has_map = p.entries.iter().any(|e| e.init.is_some());
    let version = if ll.is_some() {
        9
    } else if has_map {
        6
    } else {
        3
    };
    let mut out = String::with_capacity(256 + 160 * p.entries.len());
    let _ = writeln!(out, "#EXTM3U\n#EXT-X-VERSION:{version}");
    if p.entries.iter().all(|e| e.independent) {
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    if let Some(part_ms) = ll {
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={},PART-HOLD-BACK={}",
            secs(p.skip_until_ms),
            secs(PART_HOLD_BACK_PARTS * part_ms)
        );
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", secs(part_ms));
    }
    let _ = writeln!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}",
        p.media_sequence, p.discontinuity_sequence
    );
    let skipped = if delta && ll.is_some() { skippable(p) } else { 0 };
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let mut init = None;
    for entry in p.entries.iter().skip(skipped) {
        write_segment(&mut out, p, entry, &mut init, uris);
    }
    if ll.is_some() && !p.ended {
        if let Some((sequence, open)) = p.open {
            write_parts(&mut out, sequence, open, uris);
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
                uris.part(sequence, open.len() as u32)
            );
        }
    }
    if p.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    Bytes::from(out)
}

/// Segments at the front whose start lies at least `CAN-SKIP-UNTIL` before the end.
fn skippable(p: &View<'_>) -> usize {
    let until = p.skip_until_ms;
    let mut after: u64 = p.entries.iter().map(|e| e.duration_ms).sum();
    let mut n = 0;
    for entry in p.entries {
        if after < until {
            break;
        }
        after -= entry.duration_ms;
        n += 1;
    }
    // Never all of them: the delta update must still list a segment.
    n.min(p.entries.len().saturating_sub(1))
}

fn write_segment(
    out: &mut String,
    p: &View<'_>,
    entry: &PlaylistEntry,
    init: &mut Option<u64>,
    uris: &impl PlaylistUris,
) {
    if entry.discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    if entry.init.is_some() && entry.init != *init {
        if let Some(id) = entry.init {
            let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", uris.init(id));
        }
        *init = entry.init;
    }
    let _ = writeln!(
        out,
        "#EXT-X-PROGRAM-DATE-TIME:{}",
        rfc3339_millis(entry.program_date_time_ms)
    );
    if let Some((_, parts)) = p.segment_parts.iter().find(|(s, _)| *s == entry.sequence) {
        write_parts(out, entry.sequence, parts, uris);
    }
    let _ = writeln!(
        out,
        "#EXTINF:{},\n{}",
        secs(entry.duration_ms),
        uris.segment(entry.sequence)
    );
}

fn write_parts(out: &mut String, sequence: u64, parts: &[PartEntry], uris: &impl PlaylistUris) {
    for (index, part) in parts.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={},URI=\"{}\"",
            secs(part.duration_ms),
            uris.part(sequence, index as u32)
        );
        out.push_str(if part.independent { ",INDEPENDENT=YES\n" } else { "\n" });
    }
}
