//! The VOD media playlist (RFC 8216 §4.3.3, §6.2.1; Apple HLS authoring spec §8), written
//! with `m3u8-rs`: `EXT-X-VERSION:3` (decimal `EXTINF`), `EXT-X-PLAYLIST-TYPE:VOD`,
//! `EXT-X-TARGETDURATION` (the longest `EXTINF` rounded to the nearest second, §4.3.3.1),
//! `EXT-X-MEDIA-SEQUENCE:0`, `EXT-X-INDEPENDENT-SEGMENTS` when every segment starts with a
//! keyframe, then per segment `EXT-X-DISCONTINUITY` and `EXT-X-PROGRAM-DATE-TIME` when
//! asked for and `EXTINF`, and `EXT-X-ENDLIST`.

use bytes::Bytes;
use m3u8_rs::{ExtTag, MediaPlaylist, MediaPlaylistType, MediaSegment};

use crate::hls::date::rfc3339_millis;
use crate::hls::playlist::rounded_secs;

/// One segment of a VOD playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VodEntry {
    pub uri: String,
    pub duration_ms: u64,
    /// `EXT-X-DISCONTINUITY` before it: its timestamps or encoding do not continue the
    /// segment before (another file that does not join the previous one).
    pub discontinuity: bool,
    /// `EXT-X-PROGRAM-DATE-TIME`: the wall-clock time of its first sample, Unix ms.
    pub program_date_time_ms: Option<u64>,
    /// It starts with a keyframe and decodes on its own.
    pub independent: bool,
}

/// Writes the playlist of `entries`. An empty list makes a playlist with no segment, which
/// players refuse: answer 404 instead.
pub fn render_vod_playlist(entries: &[VodEntry]) -> Bytes {
    let target = entries
        .iter()
        .map(|e| rounded_secs(e.duration_ms))
        .max()
        .unwrap_or(0)
        .max(1);
    let playlist = MediaPlaylist {
        version: Some(3),
        target_duration: target,
        // Written below: m3u8-rs drops the tag when it is 0.
        media_sequence: 0,
        playlist_type: Some(MediaPlaylistType::Vod),
        end_list: true,
        independent_segments: !entries.is_empty() && entries.iter().all(|e| e.independent),
        segments: entries.iter().map(media_segment).collect(),
        ..Default::default()
    };
    let mut text = Vec::with_capacity(160 + 80 * entries.len());
    playlist
        .write_to(&mut text)
        .expect("writing a playlist into a Vec cannot fail");
    let target_line = format!("#EXT-X-TARGETDURATION:{target}\n");
    let at = find(&text, target_line.as_bytes()).map_or(text.len(), |pos| pos + target_line.len());
    text.splice(at..at, b"#EXT-X-MEDIA-SEQUENCE:0\n".iter().copied());
    Bytes::from(text)
}

fn media_segment(entry: &VodEntry) -> MediaSegment {
    MediaSegment {
        uri: entry.uri.clone(),
        duration: entry.duration_ms as f32 / 1000.0,
        discontinuity: entry.discontinuity,
        unknown_tags: entry
            .program_date_time_ms
            .map(|ms| ExtTag {
                tag: "X-PROGRAM-DATE-TIME".to_owned(),
                rest: Some(rfc3339_millis(ms)),
            })
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_vod_playlist;

    fn entry(uri: &str, duration_ms: u64) -> VodEntry {
        VodEntry {
            uri: uri.to_owned(),
            duration_ms,
            discontinuity: false,
            program_date_time_ms: None,
            independent: true,
        }
    }

    #[test]
    fn writes_the_vod_tags_in_order() {
        let mut second = entry("1.ts", 6499);
        second.discontinuity = true;
        second.program_date_time_ms = Some(1_714_566_896_789);
        let text = render_vod_playlist(&[entry("0.ts", 6006), second, entry("2.ts", 1234)]);
        let text = String::from_utf8(text.to_vec()).unwrap();
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:6\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6.006,\n0.ts\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:34:56.789Z\n#EXTINF:6.499,\n1.ts\n\
             #EXTINF:1.234,\n2.ts\n#EXT-X-ENDLIST\n"
        );
        let report = check_vod_playlist(text.as_bytes()).unwrap();
        assert_eq!(report.segments.len(), 3);
        assert!(report.segments[1].discontinuity);
        assert_eq!(report.segments[1].program_date_time_ms, Some(1_714_566_896_789));
    }

    #[test]
    fn target_duration_is_the_longest_rounded_segment() {
        for (durations, target) in [
            (&[6000u64, 6499][..], 6),
            (&[6500, 100], 7),
            (&[200], 1),
            (&[12_345, 4000], 12),
        ] {
            let entries: Vec<VodEntry> = durations
                .iter()
                .enumerate()
                .map(|(i, &d)| entry(&format!("{i}.ts"), d))
                .collect();
            let text = render_vod_playlist(&entries);
            let report = check_vod_playlist(&text).unwrap();
            assert_eq!(report.target_duration_secs, target, "{durations:?}");
        }
    }

    #[test]
    fn independent_segments_only_when_every_segment_is() {
        let mut entries = vec![entry("0.ts", 2000), entry("1.ts", 2000)];
        assert!(String::from_utf8_lossy(&render_vod_playlist(&entries)).contains("#EXT-X-INDEPENDENT-SEGMENTS\n"));
        entries[1].independent = false;
        let text = render_vod_playlist(&entries);
        assert!(!String::from_utf8_lossy(&text).contains("INDEPENDENT"));
        check_vod_playlist(&text).unwrap();
    }
}
