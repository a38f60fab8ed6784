//! Replays the RTMP bytes OBS 29.0.2 sent (see `/work/shared/fixtures/README.md`) through
//! the chunk reader, FLV tag parsing, the HLS segmenter and the playlist, and walks the
//! result with the checkers: real SPS/PPS inside keyframes, x264 SEI, CBR filler NAL units,
//! B-frames and OBS's 5-byte AAC config.
//!
//! The capture lives in `shared/fixtures` beside the repository.
//! `ESTUARY_FIXTURES_DIR` points elsewhere; `ESTUARY_DUMP_SEGMENTS_DIR` writes the segments
//! out for ffprobe.

mod common;

use std::path::PathBuf;

use common::obs_packets;
use estuary_muxer::check::{PlaylistChecker, TsChecker};
use estuary_muxer::{HlsSegmenter, HlsSegmenterConfig, LivePlaylist, LivePlaylistConfig, Segment};

#[test]
fn obs_capture_makes_valid_segments_and_playlists() {
    let Some(packets) = obs_packets() else { return };
    assert!(packets.len() > 500, "{} media messages", packets.len());
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    let mut playlist_checker = PlaylistChecker::new();
    let mut segments: Vec<Segment> = Vec::new();
    let mut take = |segmenter: &mut HlsSegmenter, segments: &mut Vec<Segment>| {
        while let Some(segment) = segmenter.poll_segment() {
            playlist.push_segment(&segment).expect("consecutive");
            let text = playlist.render(|seq| format!("s-{seq}.ts"));
            if let Err(errors) = playlist_checker.check(&text) {
                panic!("{errors:#?}\n{}", String::from_utf8_lossy(&text));
            }
            segments.push(segment);
        }
    };
    for packet in &packets {
        segmenter.push(packet).expect("obs packets are accepted");
        take(&mut segmenter, &mut segments);
    }
    segmenter.finish();
    take(&mut segmenter, &mut segments);

    let sps = segmenter.video_config().unwrap().sps_info().unwrap();
    assert_eq!((sps.width, sps.height, sps.profile_name()), (1280, 720, "High"));
    assert_eq!(segmenter.audio_config().unwrap().sampling_frequency, 44100);
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let mut checker = TsChecker::new();
    for (i, segment) in segments.iter().enumerate() {
        match checker.check_segment(&segment.data, i == 0) {
            Ok(report) => assert!(report.has_video && report.has_audio && report.audio_frames > 0),
            Err(errors) => panic!("segment {}: {errors:#?}", segment.sequence),
        }
        assert!(
            segment.duration_ms + 17 >= 2000 || i + 1 == segments.len(),
            "{}",
            segment.duration_ms
        );
    }
    if let Some(dir) = std::env::var_os("ESTUARY_DUMP_SEGMENTS_DIR") {
        for segment in &segments {
            let path = PathBuf::from(&dir).join(format!("s-{}.ts", segment.sequence));
            std::fs::write(path, &segment.data).expect("dump segment");
        }
        std::fs::write(
            PathBuf::from(&dir).join("index.m3u8"),
            playlist.render(|seq| format!("s-{seq}.ts")),
        )
        .expect("dump playlist");
    }
}
