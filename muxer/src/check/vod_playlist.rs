//! VOD media playlist verifier (RFC 8216 §4.3.3, §6.2.1; Apple HLS authoring spec §8):
//! `EXT-X-PLAYLIST-TYPE:VOD` and `EXT-X-ENDLIST` (the playlist is complete and will never
//! change), `EXT-X-TARGETDURATION` present and not exceeded by any `EXTINF` rounded to the
//! nearest second (§4.3.3.1), at least one segment, each with a URI and a positive
//! duration, and `EXT-X-VERSION` 3 or more for decimal `EXTINF`.
//!
//! Live rules (discontinuity sequence, program date-times, independent segments) are not
//! required here: they are [`PlaylistChecker`](super::PlaylistChecker)'s.

use super::playlist::{report_of, PlaylistReport};
use crate::hls::playlist::rounded_secs;

/// Checks one VOD playlist.
pub fn check_vod_playlist(text: &[u8]) -> Result<PlaylistReport, Vec<String>> {
    let playlist = match m3u8_rs::parse_media_playlist_res(text) {
        Ok(playlist) => playlist,
        Err(e) => return Err(vec![format!("playlist does not parse as a media playlist: {e:?}")]),
    };
    let mut errors = Vec::new();
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    if lines.first() != Some(&"#EXTM3U") {
        errors.push("playlist does not start with #EXTM3U".to_owned());
    }
    if !lines.iter().any(|l| l.starts_with("#EXT-X-TARGETDURATION:")) {
        errors.push("playlist has no EXT-X-TARGETDURATION".to_owned());
    }
    if !lines.contains(&"#EXT-X-PLAYLIST-TYPE:VOD") {
        errors.push("playlist has no EXT-X-PLAYLIST-TYPE:VOD".to_owned());
    }
    if !playlist.end_list {
        errors.push("vod playlist has no EXT-X-ENDLIST".to_owned());
    }
    let fractional = playlist.segments.iter().any(|s| s.duration.fract() != 0.0);
    if fractional && playlist.version.unwrap_or(1) < 3 {
        errors.push(format!(
            "decimal EXTINF needs EXT-X-VERSION 3, playlist has {:?}",
            playlist.version
        ));
    }
    let report = report_of(&playlist);
    if report.segments.is_empty() {
        errors.push("vod playlist lists no segment".to_owned());
    }
    for segment in &report.segments {
        let ms = (f64::from(segment.duration_secs) * 1000.0).round().max(0.0) as u64;
        if rounded_secs(ms) > report.target_duration_secs {
            errors.push(format!(
                "segment {} lasts {} s, above the target duration {} s",
                segment.sequence, segment.duration_secs, report.target_duration_secs
            ));
        }
        if segment.duration_secs <= 0.0 {
            errors.push(format!(
                "segment {} lasts {} s",
                segment.sequence, segment.duration_secs
            ));
        }
        if segment.uri.trim().is_empty() {
            errors.push(format!("segment {} has no uri", segment.sequence));
        }
    }
    if errors.is_empty() {
        Ok(report)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n\
                        #EXTINF:6.006,\n0.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.5,\n1.ts\n#EXT-X-ENDLIST\n";

    #[test]
    fn accepts_a_vod_playlist() {
        let report = check_vod_playlist(GOOD.as_bytes()).unwrap();
        assert!(report.ended);
        assert_eq!(report.segments.len(), 2);
        assert!(report.segments[1].discontinuity);
    }

    #[test]
    fn names_what_is_wrong() {
        for (from, to, expected) in [
            ("#EXT-X-ENDLIST\n", "", "no EXT-X-ENDLIST"),
            (
                "#EXT-X-PLAYLIST-TYPE:VOD\n",
                "#EXT-X-PLAYLIST-TYPE:EVENT\n",
                "no EXT-X-PLAYLIST-TYPE:VOD",
            ),
            ("#EXTINF:6.006", "#EXTINF:6.5", "above the target duration"),
            ("#EXT-X-VERSION:3", "#EXT-X-VERSION:2", "needs EXT-X-VERSION 3"),
        ] {
            let text = GOOD.replace(from, to);
            let errors = check_vod_playlist(text.as_bytes()).unwrap_err();
            assert!(errors.iter().any(|e| e.contains(expected)), "{expected}: {errors:?}");
        }
    }
}
