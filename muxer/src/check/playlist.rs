//! Live media playlist verifier, across successive fetches of one playlist: target duration
//! constant (RFC 8216 §6.2.1) and not exceeded by any rounded `EXTINF` (§4.3.3.1), media
//! sequence never decreasing and naming the same segments (§6.2.2), discontinuity sequence
//! advancing exactly with removed `EXT-X-DISCONTINUITY` segments (§6.2.2; Apple 8.17: always
//! present), `EXT-X-PROGRAM-DATE-TIME` on the first segment and after every discontinuity
//! (Apple 8.4). Whether it claims `EXT-X-INDEPENDENT-SEGMENTS` (Apple 9.11) is reported:
//! only the segments can tell whether the claim holds.

use m3u8_rs::MediaPlaylist;

use super::low_latency::{self, LowLatencyReport};

use crate::hls::playlist::rounded_secs;

/// One segment as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistSegment {
    pub sequence: u64,
    pub uri: String,
    pub duration_secs: f32,
    pub discontinuity: bool,
    pub program_date_time_ms: Option<i64>,
}

/// What a playlist said.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaylistReport {
    pub target_duration_secs: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub ended: bool,
    /// `EXT-X-INDEPENDENT-SEGMENTS`: every listed segment must start with an IDR.
    pub independent_segments: bool,
    pub segments: Vec<PlaylistSegment>,
    /// Its LL-HLS tags, when it has any (see [`super::low_latency`]).
    pub low_latency: Option<LowLatencyReport>,
}

/// Checks successive fetches of one media playlist.
#[derive(Debug, Default)]
pub struct PlaylistChecker {
    previous: Option<PlaylistReport>,
}

impl PlaylistChecker {
    pub fn new() -> Self {
        PlaylistChecker::default()
    }

    /// Checks the next fetch of the playlist against the rules and against the previous
    /// fetch. A fetch that fails is not remembered.
    pub fn check(&mut self, text: &[u8]) -> Result<PlaylistReport, Vec<String>> {
        let playlist = match m3u8_rs::parse_media_playlist_res(text) {
            Ok(playlist) => playlist,
            Err(e) => return Err(vec![format!("playlist does not parse as a media playlist: {e:?}")]),
        };
        let mut errors = Vec::new();
        check_tags(text, &playlist, &mut errors);
        let mut report = report_of(&playlist);
        report.low_latency = low_latency::check(
            &String::from_utf8_lossy(text),
            report.target_duration_secs,
            report.ended,
            &mut errors,
        );
        // A delta update's first listed segment comes after the skipped ones.
        let skipped = report.low_latency.as_ref().map_or(0, |ll| ll.skipped_segments);
        for segment in &mut report.segments {
            segment.sequence += skipped;
        }
        check_segments(&report, &mut errors);
        if let Some(previous) = &self.previous {
            check_against_previous(previous, &report, &mut errors);
        }
        if errors.is_empty() {
            self.previous = Some(report.clone());
            Ok(report)
        } else {
            Err(errors)
        }
    }
}

pub(super) fn report_of(playlist: &MediaPlaylist) -> PlaylistReport {
    PlaylistReport {
        target_duration_secs: playlist.target_duration,
        media_sequence: playlist.media_sequence,
        discontinuity_sequence: playlist.discontinuity_sequence,
        ended: playlist.end_list,
        independent_segments: playlist.independent_segments,
        segments: playlist
            .segments
            .iter()
            .zip(playlist.media_sequence..)
            .map(|(segment, sequence)| PlaylistSegment {
                sequence,
                uri: segment.uri.clone(),
                duration_secs: segment.duration,
                discontinuity: segment.discontinuity,
                program_date_time_ms: segment.program_date_time.map(|date| date.timestamp_millis()),
            })
            .collect(),
        low_latency: None,
    }
}

fn check_tags(text: &[u8], playlist: &MediaPlaylist, errors: &mut Vec<String>) {
    let text = String::from_utf8_lossy(text);
    let has_tag = |tag: &str| text.lines().any(|line| line.starts_with(tag));
    for tag in [
        "#EXT-X-TARGETDURATION:",
        "#EXT-X-MEDIA-SEQUENCE:",
        "#EXT-X-DISCONTINUITY-SEQUENCE:",
    ] {
        if !has_tag(tag) {
            errors.push(format!("playlist has no {}", tag.trim_end_matches(':')));
        }
    }
    let fractional = playlist.segments.iter().any(|s| s.duration.fract() != 0.0);
    if fractional && playlist.version.unwrap_or(1) < 3 {
        errors.push(format!(
            "decimal EXTINF needs EXT-X-VERSION 3, playlist has {:?}",
            playlist.version
        ));
    }
}

fn check_segments(report: &PlaylistReport, errors: &mut Vec<String>) {
    if report.segments.is_empty() && !report.ended {
        errors.push("live playlist lists no segment".to_owned());
    }
    for (index, segment) in report.segments.iter().enumerate() {
        let ms = (f64::from(segment.duration_secs) * 1000.0).round().max(0.0) as u64;
        if rounded_secs(ms) > report.target_duration_secs {
            errors.push(format!(
                "segment {} lasts {} s, above the target duration {} s",
                segment.sequence, segment.duration_secs, report.target_duration_secs
            ));
        }
        if (index == 0 || segment.discontinuity) && segment.program_date_time_ms.is_none() {
            errors.push(format!("segment {} has no EXT-X-PROGRAM-DATE-TIME", segment.sequence));
        }
    }
}

fn check_against_previous(previous: &PlaylistReport, report: &PlaylistReport, errors: &mut Vec<String>) {
    if report.target_duration_secs != previous.target_duration_secs {
        errors.push(format!(
            "target duration changed from {} to {}",
            previous.target_duration_secs, report.target_duration_secs
        ));
    }
    if report.media_sequence < previous.media_sequence {
        errors.push(format!(
            "media sequence went back from {} to {}",
            previous.media_sequence, report.media_sequence
        ));
        return;
    }
    for segment in &report.segments {
        let Some(old) = previous.segments.iter().find(|old| old.sequence == segment.sequence) else {
            continue;
        };
        if old.uri != segment.uri
            || old.discontinuity != segment.discontinuity
            || old.duration_secs != segment.duration_secs
        {
            errors.push(format!(
                "segment {} changed between fetches: {old:?} then {segment:?}",
                segment.sequence
            ));
        }
    }
    let previous_end = previous.media_sequence + previous.segments.len() as u64;
    if report.media_sequence <= previous_end {
        let removed_discontinuities = previous
            .segments
            .iter()
            .filter(|old| old.sequence < report.media_sequence && old.discontinuity)
            .count() as u64;
        let expected = previous.discontinuity_sequence + removed_discontinuities;
        if report.discontinuity_sequence != expected {
            errors.push(format!(
                "discontinuity sequence is {}, expected {expected} ({} plus {removed_discontinuities} removed discontinuities)",
                report.discontinuity_sequence, previous.discontinuity_sequence
            ));
        }
    } else if report.discontinuity_sequence < previous.discontinuity_sequence {
        errors.push(format!(
            "discontinuity sequence went back from {} to {}",
            previous.discontinuity_sequence, report.discontinuity_sequence
        ));
    }
}
