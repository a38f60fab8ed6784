//! Long-lived streams (issue 12, item 5): what a stream live for 49.7 days goes through, in
//! seconds. RTMP and FLV carry 32-bit millisecond timestamps: a publisher's clock wraps at
//! 2^32 ms, and so do the outputs' once the stream has been live that long. Here the
//! publisher (`rml_rtmp`, with its header compression) starts 6 s before its clock wraps,
//! and the server's timeline starts 4 s before 2^32 (`stream.timeline_start_ms`), so both
//! wraps happen within one 12-s clip. RTMP and HTTP-FLV viewers (the test's own and ffprobe)
//! must see every frame with its exact spacing across the wrap; HLS and the recording, whose
//! clocks are wider, must carry on as if nothing happened.

use std::thread;
use std::time::{Duration, Instant};

use estuary_tests::hls::{HlsWalker, Polled, WalkRules};
use estuary_tests::media::{ffprobe_packets, ProbedPacket};
use estuary_tests::publisher::{clip_tags, ClipPublisher, Stamping};
use estuary_tests::{Clip, Server, Tag, TagKind, TestCtx, Viewer, LIMIT};

const WRAP: u64 = 1 << 32;
/// Where the server's timeline starts: 4 s before its outputs' 32-bit clocks wrap.
const TIMELINE_START: u64 = WRAP - 4000;
/// The publisher's clock at the clip's start: it wraps 6 s in.
const PUBLISHER_FIRST: u64 = WRAP - 6000;

/// Polls `cond` every 200 ms until it holds, failing with `what` after `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

/// Checks that a viewer's coded frames of `kind` are exactly the clip's, each at the
/// timeline's start plus its time in the clip, modulo 2^32, and that they cross the wrap.
fn assert_exact_across_the_wrap(label: &str, kind: TagKind, clip: &[Tag], got: &[&Tag]) {
    let sent: Vec<&Tag> = clip.iter().filter(|t| t.kind == kind && t.is_coded_frame()).collect();
    let want: Vec<u32> = sent
        .iter()
        .map(|t| ((TIMELINE_START + u64::from(t.timestamp)) % WRAP) as u32)
        .collect();
    let seen: Vec<u32> = got.iter().map(|t| t.timestamp).collect();
    assert_eq!(seen.len(), want.len(), "{label}: {kind:?} frames received vs published");
    if let Some(i) = (0..want.len()).find(|&i| seen[i] != want[i]) {
        panic!(
            "{label}: {kind:?} frame {i} has timestamp {} where {} was due (around it: {:?})",
            seen[i],
            want[i],
            &seen[i.saturating_sub(3)..(i + 3).min(seen.len())]
        );
    }
    assert!(
        seen.windows(2).any(|w| w[1] < w[0]),
        "{label}: {kind:?} timestamps cross 2^32"
    );
    for (t, s) in got.iter().zip(&sent) {
        assert_eq!(t.data, s.data, "{label}: {kind:?} payload at {}", t.timestamp);
    }
}

/// ffprobe's packets of one type decode in order, with no step over a second, across the
/// wrap (which is `wrap_at` seconds after the first).
fn assert_probe_monotonic(label: &str, packets: &[ProbedPacket], codec_type: &str, wrap_after_secs: f64) {
    let dts: Vec<f64> = packets
        .iter()
        .filter(|p| p.codec_type == codec_type)
        .map(|p| p.dts)
        .collect();
    assert!(dts.len() > 30, "{label}: {} {codec_type} packets", dts.len());
    for w in dts.windows(2) {
        assert!(
            w[1] >= w[0] && w[1] - w[0] < 1.0,
            "{label}: {codec_type} dts steps from {} to {}",
            w[0],
            w[1]
        );
    }
    let span = dts[dts.len() - 1] - dts[0];
    assert!(
        span > wrap_after_secs + 1.0,
        "{label}: {codec_type} read {span} s, not past the wrap {wrap_after_secs} s in"
    );
}

#[test]
fn every_output_carries_on_across_the_32_bit_timestamp_wrap() {
    let ctx = TestCtx::new("timestamp_wrap");
    let config = format!(
        "[stream]\ntimeline_start_ms = {TIMELINE_START}\n\
         [record]\nenabled = true\nposter = false\n"
    );
    let server = Server::start_with_config(&ctx, &config);
    let (app, stream) = ("live", "wrap");
    let (rtmp_url, flv_url) = (server.rtmp_url(app, stream), server.flv_url(app, stream));

    // The publisher sends the first second and holds: every viewer joins meanwhile and gets
    // the stream from its first frame out of the GOP cache, whenever its process got going.
    let clip = clip_tags(Clip::Main);
    let publisher = ClipPublisher::start_held(
        &rtmp_url,
        clip.clone(),
        Stamping {
            first_ms: PUBLISHER_FIRST as u32,
            audio_ahead_ms: 0,
        },
        1000,
    );
    wait_until("the publisher sent its first second", LIMIT, || publisher.is_holding());
    let rtmp_viewer = Viewer::rtmp(&rtmp_url);
    let flv_viewer = Viewer::http_flv(&flv_url);
    let probes: Vec<_> = [rtmp_url.clone(), flv_url.clone()]
        .into_iter()
        .map(|url| thread::spawn(move || (ffprobe_packets(&url, 9, Duration::from_secs(90)), url)))
        .collect();
    wait_until("2 RTMP and 2 HTTP-FLV viewers playing", LIMIT, || {
        server.clients_of_kind("rtmp-play") >= 2 && server.clients_of_kind("flv-play") >= 2
    });
    publisher.release();

    let rules = WalkRules {
        fragment_ms: 2000,
        window_segments: 6,
        expect_video: true,
        expect_audio: true,
        forced_cuts: false,
    };
    let mut walker = HlsWalker::new(&server.m3u8_url(app, stream), rules);
    let deadline = Instant::now() + 4 * LIMIT;
    while walker.segments.len() < 4 {
        match walker.poll() {
            Ok(Polled::Playlist(_) | Polled::NotFound) => {}
            Err(e) => panic!("HLS: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "HLS listed {} segments",
            walker.segments.len()
        );
        thread::sleep(Duration::from_millis(500));
    }
    let sent = publisher
        .join()
        .unwrap_or_else(|e| panic!("publisher: {e}\n{}", server.logs()));
    assert_eq!(sent, clip.len());

    // RTMP and HTTP-FLV: every frame, at exactly its time, across the wrap.
    let frames = |kind| clip.iter().filter(|t| t.kind == kind && t.is_coded_frame()).count();
    let (video_frames, audio_frames) = (frames(TagKind::Video), frames(TagKind::Audio));
    for viewer in [&rtmp_viewer, &flv_viewer] {
        viewer
            .wait_for(LIMIT, |s| {
                (s.coded_video().count() >= video_frames && s.coded_audio().count() >= audio_frames).then_some(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let state = viewer.snapshot();
        let video: Vec<&Tag> = state.coded_video().collect();
        let audio: Vec<&Tag> = state.coded_audio().collect();
        assert_exact_across_the_wrap(&viewer.label, TagKind::Video, &clip, &video);
        assert_exact_across_the_wrap(&viewer.label, TagKind::Audio, &clip, &audio);
    }

    // ffprobe (FFmpeg's RTMP and FLV readers) decodes straight through the wrap.
    for probe in probes {
        let (packets, url) = probe.join().expect("ffprobe thread");
        let packets = packets.unwrap_or_else(|e| panic!("{e}"));
        for codec_type in ["video", "audio"] {
            assert_probe_monotonic(&url, &packets, codec_type, 4.0);
        }
    }

    // HLS (33-bit 90 kHz clock, which wraps at the same instant): every segment and playlist
    // follows the rules, with no discontinuity.
    assert!(walker.errors.is_empty(), "HLS: {}", walker.errors.join("\n"));
    assert!(
        walker.segments.iter().all(|s| !s.discontinuity),
        "HLS: no discontinuity: {:?}",
        walker.segments
    );

    // The recording (64-bit MP4 clock) holds the whole clip, in order.
    let recording = server.completed_recording(0);
    let duration = recording["duration"].as_f64().unwrap_or(0.0);
    assert!((11.0..13.0).contains(&duration), "recorded {duration} s of a 12-s clip");
    let id = recording["id"].as_i64().expect("id");
    let mp4 = format!("http://127.0.0.1:{}/vod/{id}.mp4", server.http_port);
    let packets = ffprobe_packets(&mp4, 60, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    for codec_type in ["video", "audio"] {
        assert_probe_monotonic(&mp4, &packets, codec_type, 4.0);
    }
}
