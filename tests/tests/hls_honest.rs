//! HLS and TS that never lie (issue 12, item 4), end to end with the real binary and ffmpeg
//! publishers: a GOP longer than `hls.max_segment_ms` is cut without a keyframe yet no
//! segment outlasts `EXT-X-TARGETDURATION`, and `EXT-X-INDEPENDENT-SEGMENTS` is left out
//! while such a segment is listed; the PCR comes at least every 100 ms at 5 fps and for
//! 16-kHz audio alone; stream names with marks get percent-encoded segment URIs that play.
//!
//! The walker (`estuary_tests::hls`) checks every playlist fetch with `PlaylistChecker`
//! (rounded `EXTINF` ≤ target, target constant), every segment with `TsChecker` (PCR at most
//! 100 ms apart, continuity, PES, ADTS, SPS/PPS before IDRs) and that the playlist claims
//! independent segments exactly while every listed segment starts with an IDR.

use std::thread;
use std::time::{Duration, Instant};

use estuary_tests::hls::{fetch, resolve, HlsWalker, SegmentMedia, WalkRules};
use estuary_tests::media::{ffmpeg_decode, publish_ffmpeg, status_text};
use estuary_tests::{Clip, Server, TestCtx};

const APP: &str = "live";
/// How often the walker polls the playlist.
const POLL: Duration = Duration::from_millis(500);

fn rules(expect_video: bool, expect_audio: bool, forced_cuts: bool) -> WalkRules {
    WalkRules {
        fragment_ms: 2000,
        window_segments: 6,
        expect_video,
        expect_audio,
        forced_cuts,
    }
}

/// Polls `walker` until it has walked `n` segments, failing on the first violation.
fn walk(walker: &mut HlsWalker, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while walker.segments.len() < n {
        walker.poll().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            walker.errors.is_empty(),
            "{} violation(s):\n{}",
            walker.errors.len(),
            walker.errors.join("\n")
        );
        assert!(
            Instant::now() < deadline,
            "{} walked {} of {n} segments within {within:?}",
            walker.url,
            walker.segments.len()
        );
        thread::sleep(POLL);
    }
}

/// A 5-fps stream with a keyframe every 10 s, packaged with `max_segment_ms = 4000`: the
/// first segment (4 s) fixes the target at 4 s; every GOP is then cut at 4 s and 8 s without
/// a keyframe, and at 10 s on its keyframe. Every `EXTINF` rounds to at most 4, the playlist
/// drops `EXT-X-INDEPENDENT-SEGMENTS` while a forced cut is listed, the PCR keeps 100 ms at
/// 5 fps, and the segments, played in order from one that starts with an IDR, decode with
/// ffmpeg without a single error.
#[test]
fn forced_cuts_stay_within_the_target_and_drop_independent_segments() {
    let ctx = TestCtx::new("hls_forced_cuts");
    let server = Server::start_with_config(&ctx, "[hls]\nmax_segment_ms = 4000\n");
    let stream = "longgop";
    let _publisher = publish_ffmpeg(&ctx, Clip::LongGopLowFps, &server.rtmp_url(APP, stream));
    let url = server.m3u8_url(APP, stream);
    let mut walker = HlsWalker::new(&url, rules(true, true, true));
    walk(&mut walker, 8, Duration::from_secs(120));

    for report in &walker.reports {
        assert_eq!(report.target_duration_secs, 4, "{report:?}");
        for s in &report.segments {
            assert!(
                (f64::from(s.duration_secs)).round() as u64 <= report.target_duration_secs,
                "segment {} lasts {} s, target {}",
                s.sequence,
                s.duration_secs,
                report.target_duration_secs
            );
        }
    }
    let forced: Vec<u64> = walker
        .segments
        .iter()
        .filter(|s| !s.starts_with_idr)
        .map(|s| s.sequence)
        .collect();
    assert!(forced.len() >= 3, "forced cuts: {forced:?}");
    // The walker checked each fetch: the claim exactly while no forced cut is listed. Both
    // happened: the first playlists list only the first segment (cut on a keyframe).
    let starts_with_idr = |sequence: u64| {
        walker
            .segments
            .iter()
            .any(|w| w.sequence == sequence && w.starts_with_idr)
    };
    for report in &walker.reports {
        let all_idr = report.segments.iter().all(|s| starts_with_idr(s.sequence));
        assert_eq!(report.independent_segments, all_idr, "{report:?}");
    }
    assert!(walker.reports.iter().any(|r| r.independent_segments));
    assert!(walker.reports.iter().any(|r| !r.independent_segments));

    // Every listed segment, in order from the first that starts with an IDR, as one file.
    let (head, body) = fetch(&url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head.status, 200);
    let playlist = String::from_utf8_lossy(&body).into_owned();
    let mut joined = Vec::new();
    for uri in playlist.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (head, data) = fetch(&resolve(&url, uri)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.status, 200, "{uri}");
        let media = SegmentMedia::read(&data).unwrap_or_else(|e| panic!("{uri}: {e}"));
        if joined.is_empty() && !media.starts_with_idr() {
            continue;
        }
        joined.extend_from_slice(&data);
    }
    assert!(!joined.is_empty(), "no listed segment starts with an IDR:\n{playlist}");
    let file = ctx.dir.join("from-idr.ts");
    std::fs::write(&file, &joined).expect("write joined segments");
    let out = ffmpeg_decode(&file.to_string_lossy(), 60, Duration::from_secs(60));
    assert!(
        out.success() && out.stderr.trim().is_empty(),
        "ffmpeg -v error decoding the segments ({}):\n{}",
        status_text(&out),
        out.stderr
    );
}

/// AAC at 16 kHz alone: four 64-ms frames to a PES put PES headers 256 ms apart; the PCR
/// still comes every 100 ms or less on the audio PID (the PMT's PCR_PID), in every segment.
#[test]
fn audio_only_at_16_khz_has_a_pcr_every_100_ms() {
    let ctx = TestCtx::new("hls_audio_16k_pcr");
    let server = Server::start(&ctx);
    let stream = "radio";
    let _publisher = publish_ffmpeg(&ctx, Clip::AudioOnly16k, &server.rtmp_url(APP, stream));
    let mut walker = HlsWalker::new(&server.m3u8_url(APP, stream), rules(false, true, false));
    walk(&mut walker, 4, Duration::from_secs(60));
    assert!(walker.reports.iter().all(|r| r.independent_segments));
}

/// With `stream.name_extra_chars` allowing `~`, `@` and `+`, a stream named `cam~1@x+y` is
/// listed with segment URIs `cam~1%40x%2By-…ts` (percent-encoded, RFC 3986), every one of
/// them is served, and the playlist answers at its encoded URL too (what a browser sends).
#[test]
fn stream_names_with_marks_get_percent_encoded_segment_uris() {
    let ctx = TestCtx::new("hls_encoded_names");
    let server = Server::start_with_config(&ctx, "[stream]\nname_extra_chars = \"-_.~@+\"\n");
    let stream = "cam~1@x+y";
    let _publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, stream));
    let url = server.m3u8_url(APP, stream);
    let mut walker = HlsWalker::new(&url, rules(true, true, false));
    walk(&mut walker, 2, Duration::from_secs(60));
    for s in &walker.segments {
        assert!(s.uri.starts_with("cam~1%40x%2By-"), "segment uri {}", s.uri);
    }
    let encoded = server.m3u8_url(APP, "cam~1%40x%2By");
    let (head, body) = fetch(&encoded).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(head.status, 200, "{encoded}: {text}");
    assert!(text.contains("cam~1%40x%2By-"), "{text}");
}
