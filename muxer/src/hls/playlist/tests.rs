use proptest::prelude::*;

use super::*;
use crate::check::PlaylistChecker;

fn entry(sequence: u64, duration_ms: u64, discontinuity: bool) -> PlaylistEntry {
    PlaylistEntry {
        sequence,
        duration_ms,
        discontinuity,
        independent: true,
        program_date_time_ms: 1_714_566_896_789 + sequence * 2000,
        target_duration_secs: 3,
        init: None,
    }
}

fn uri(sequence: u64) -> String {
    format!("s-{sequence}.ts?sid=abc")
}

fn text(playlist: &LivePlaylist) -> String {
    String::from_utf8(playlist.render(uri).to_vec()).unwrap()
}

#[test]
fn renders_every_required_tag_including_zero_sequences() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    playlist.push_entry(entry(0, 2002, false)).unwrap();
    playlist.push_entry(entry(1, 1999, false)).unwrap();
    assert_eq!(
        text(&playlist),
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:3\n\
         #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:34:56.789Z\n#EXTINF:2.002,\ns-0.ts?sid=abc\n\
         #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:34:58.789Z\n#EXTINF:1.999,\ns-1.ts?sid=abc\n"
    );
    assert!(PlaylistChecker::new().check(&playlist.render(uri)).is_ok());
}

#[test]
fn window_slides_and_counts_sequences() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    for sequence in 0..10 {
        let added = playlist.push_entry(entry(sequence, 2000, sequence == 3)).unwrap();
        if sequence == 6 {
            assert_eq!(added.removed, 0..1);
        }
    }
    assert_eq!(playlist.entries().len(), 6);
    assert_eq!(playlist.media_sequence(), 4);
    // Segment 3 carried a discontinuity and has left the window.
    assert_eq!(playlist.discontinuity_sequence(), 1);
    let text = text(&playlist);
    assert!(
        text.contains("#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
        "{text}"
    );
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"));
    assert!(playlist.contains(9) && !playlist.contains(3));
}

#[test]
fn discontinuity_tag_is_written_before_its_segment() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    playlist.push_entry(entry(0, 2000, false)).unwrap();
    playlist.push_entry(entry(1, 2000, true)).unwrap();
    let text = text(&playlist);
    assert!(
        text.contains("s-0.ts?sid=abc\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:"),
        "{text}"
    );
}

#[test]
fn keeps_three_target_durations_even_with_a_small_window() {
    let config = LivePlaylistConfig {
        fragment_ms: 2000,
        window_segments: 2,
        part_target_ms: None,
    };
    let mut playlist = LivePlaylist::new(config);
    for sequence in 0..20 {
        playlist.push_entry(entry(sequence, 2000, false)).unwrap();
    }
    // Target 3 s: 9 s needed, so five 2-s segments stay.
    assert_eq!(playlist.entries().len(), 5);
    assert_eq!(playlist.media_sequence(), 15);
}

#[test]
fn zero_length_segments_do_not_grow_the_playlist_without_bound() {
    // Frozen timestamps: every segment after the first lasts 0 s. Three target durations
    // (9 s) are never covered; the playlist stops at what 1-s segments would need for them.
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    playlist.push_entry(entry(0, 2000, false)).unwrap();
    for sequence in 1..1000 {
        playlist.push_entry(entry(sequence, 0, false)).unwrap();
    }
    assert_eq!(playlist.entries().len(), 9);
    assert_eq!(playlist.media_sequence(), 991);
}

#[test]
fn the_first_segment_fixes_the_target_and_no_listed_segment_exceeds_it() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    assert_eq!(playlist.target_duration_secs(), 3, "provisional: 1.5 fragments");
    let long_gop = |sequence, duration_ms| PlaylistEntry {
        target_duration_secs: 9,
        ..entry(sequence, duration_ms, false)
    };
    playlist.push_entry(long_gop(0, 8333)).unwrap();
    assert_eq!(playlist.target_duration_secs(), 9);
    // RFC 8216 §4.3.3.1: 9.6 s rounds to 10 > 9, so it is refused, not listed.
    assert_eq!(
        playlist.push_entry(long_gop(1, 9600)),
        Err(PlaylistError::LongerThanTarget {
            sequence: 1,
            duration_ms: 9600,
            target_secs: 9
        })
    );
    assert_eq!(playlist.oversize_segments(), 1);
    assert_eq!(playlist.entries().len(), 1);
    playlist.push_entry(long_gop(1, 9499)).unwrap();
    // A later segment cannot move the target (§6.2.1).
    playlist
        .push_entry(PlaylistEntry {
            target_duration_secs: 20,
            ..entry(2, 9000, false)
        })
        .unwrap();
    assert_eq!(playlist.target_duration_secs(), 9);
    let report = PlaylistChecker::new().check(&playlist.render(uri)).unwrap();
    assert_eq!(report.target_duration_secs, 9);
}

#[test]
fn independent_segments_only_while_every_listed_segment_starts_with_an_idr() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    let mut checker = PlaylistChecker::new();
    for sequence in 0..14 {
        // Segment 3 follows a forced cut: it does not start with a keyframe.
        let independent = sequence != 3;
        playlist
            .push_entry(PlaylistEntry {
                independent,
                ..entry(sequence, 2000, false)
            })
            .unwrap();
        let listed = playlist.contains(3);
        let text = text(&playlist);
        assert_eq!(!text.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"), listed, "{text}");
        let report = checker.check(text.as_bytes()).unwrap();
        assert_eq!(report.independent_segments, !listed);
    }
    assert!(!playlist.contains(3));
}

#[test]
fn endlist_once_ended() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    playlist.push_entry(entry(7, 2000, false)).unwrap();
    assert!(!text(&playlist).contains("ENDLIST"));
    playlist.end();
    assert!(text(&playlist).ends_with("s-7.ts?sid=abc\n#EXT-X-ENDLIST\n"));
    assert!(text(&playlist).contains("#EXT-X-MEDIA-SEQUENCE:7\n"));
}

#[test]
fn rejects_sequence_gaps() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    playlist.push_entry(entry(0, 2000, false)).unwrap();
    assert_eq!(
        playlist.push_entry(entry(2, 2000, false)),
        Err(PlaylistError::SequenceGap { last: 0, got: 2 })
    );
}

#[test]
fn checker_catches_broken_playlists() {
    let good = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:3\n\
                #EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
                #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:34:56.789Z\n#EXTINF:2.0,\na.ts\n\
                #EXT-X-DISCONTINUITY\n#EXTINF:2.0,\nb.ts\n#EXTINF:3.6,\nc.ts\n";
    let errors = PlaylistChecker::new().check(good.as_bytes()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("segment 6 has no EXT-X-PROGRAM-DATE-TIME")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("segment 7 lasts 3.6 s")), "{errors:?}");

    let mut checker = PlaylistChecker::new();
    let first = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:3\n\
                 #EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
                 #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:34:56.789Z\n#EXTINF:2.0,\na.ts\n\
                 #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:35:56.789Z\n#EXTINF:2.0,\nb.ts\n";
    checker.check(first.as_bytes()).unwrap();
    let second = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:4\n\
                  #EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
                  #EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:35:58.789Z\n#EXTINF:2.0,\nc.ts\n";
    let errors = checker.check(second.as_bytes()).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("target duration changed from 3 to 4")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("discontinuity sequence is 0, expected 1")),
        "{errors:?}"
    );
    let missing = "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:2.5,\na.ts\n";
    let errors = PlaylistChecker::new().check(missing.as_bytes()).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("no #EXT-X-DISCONTINUITY-SEQUENCE")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("EXT-X-VERSION 3")), "{errors:?}");
}

proptest! {
    #[test]
    fn successive_renders_pass_the_checker(
        segments in proptest::collection::vec((1000u64..3400, proptest::bool::weighted(0.2)), 1..60),
        window in 1usize..10,
    ) {
        let mut playlist = LivePlaylist::new(LivePlaylistConfig { fragment_ms: 2000, window_segments: window, part_target_ms: None });
        let mut checker = PlaylistChecker::new();
        for (sequence, (duration_ms, discontinuity)) in segments.iter().enumerate() {
            playlist.push_entry(entry(sequence as u64, *duration_ms, *discontinuity)).unwrap();
            let total: u64 = playlist.entries().map(|e| e.duration_ms).sum();
            let first = playlist.entries().next().unwrap().duration_ms;
            prop_assert!(playlist.entries().len() <= window.max(1) || total - first < playlist.target_duration_secs() * 3000);
            let result = checker.check(&playlist.render(uri));
            prop_assert!(result.is_ok(), "{:?}\n{}", result, text(&playlist));
            let report = result.unwrap();
            prop_assert_eq!(report.media_sequence, playlist.media_sequence());
            prop_assert_eq!(report.segments.last().map(|s| s.sequence), Some(sequence as u64));
        }
        playlist.end();
        prop_assert!(checker.check(&playlist.render(uri)).unwrap().ended);
    }
}

#[test]
fn blocking_positions_follow_parts_and_refuse_requests_far_ahead() {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig {
        part_target_ms: Some(300),
        ..LivePlaylistConfig::default()
    });
    playlist.push_entry(entry(0, 2000, false)).unwrap();
    let part = PartEntry {
        duration_ms: 300,
        independent: true,
    };
    playlist.push_part(1, part);
    let progress = playlist.progress();
    assert_eq!(progress.position(0, None), Position::Ready);
    assert_eq!(progress.position(1, Some(0)), Position::Ready);
    assert_eq!(progress.position(1, Some(1)), Position::Wait);
    assert_eq!(progress.position(1, None), Position::Wait);
    assert_eq!(progress.position(2, None), Position::Wait);
    assert_eq!(progress.position(3, Some(0)), Position::TooFar);
    assert_eq!(playlist.last_part(), Some((1, 0)));
}
