//! Who may publish on a stream key: a second publisher on a live key is refused, a silent one
//! is taken over, and a publisher that reconnects keeps its viewers on a monotonic timeline.

use std::time::{Duration, Instant};

use estuary_tests::media::{ffprobe_packets, ffprobe_streams, publish_ffmpeg, publish_ffmpeg_once, status_text};
use estuary_tests::viewer::describe;
use estuary_tests::{publish_and_wait_live, wait_live, Clip, Server, TagKind, TestCtx, Viewer, ViewerState, LIMIT};

/// Sequence headers a viewer received, in order, deduplicated by content.
fn distinct_video_seq_headers(st: &ViewerState) -> Vec<bytes::Bytes> {
    let mut out: Vec<bytes::Bytes> = Vec::new();
    for t in st.tags.iter().filter(|t| t.kind == TagKind::Video && t.is_seq_header()) {
        if !out.contains(&t.data) {
            out.push(t.data.clone());
        }
    }
    out
}

/// Each track's timestamps never go backwards.
fn assert_monotonic(label: &str, st: &ViewerState) {
    for kind in [TagKind::Video, TagKind::Audio] {
        let frames: Vec<_> = st
            .tags
            .iter()
            .filter(|t| t.kind == kind && t.is_coded_frame())
            .collect();
        for w in frames.windows(2) {
            assert!(
                w[1].timestamp >= w[0].timestamp,
                "{label}: {kind:?} timestamp goes back from {} to {}: {}",
                w[0].timestamp,
                w[1].timestamp,
                describe(&[w[0].clone(), w[1].clone()])
            );
        }
    }
}

/// While a publisher streams, a second ffmpeg publishing to the same key fails (the server
/// refuses it), and the first keeps streaming to its viewer, which never sees the second
/// one's media.
#[test]
fn second_publisher_is_refused_and_first_keeps_streaming() {
    let ctx = TestCtx::new("second_publisher_is_refused_and_first_keeps_streaming");
    let server = Server::start(&ctx);
    let (mut first, viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "dup");

    let second = publish_ffmpeg_once(Clip::Small, &server.rtmp_url("live", "dup"), LIMIT);
    assert!(
        !second.timed_out(),
        "second publisher on a live key was not refused: it streamed for {LIMIT:?}"
    );
    assert!(
        !second.success(),
        "second publisher exited successfully: {}\n{}",
        status_text(&second),
        second.stderr
    );
    assert!(
        first.try_status().is_none(),
        "the first publisher stopped: {}",
        first.stderr_text()
    );
    let before = viewer.with(|s| s.coded_video().count());
    viewer
        .wait_for(LIMIT, |s| (s.coded_video().count() >= before + 60).then_some(()))
        .unwrap_or_else(|e| panic!("first publisher's stream stopped: {e}"));
    let st = viewer.snapshot();
    assert_eq!(
        distinct_video_seq_headers(&st).len(),
        1,
        "the viewer received a second video sequence header (the refused publisher's?)"
    );
    assert_monotonic("viewer", &st);
}

/// A publisher that has gone silent (SIGSTOP: the socket stays open) for longer than
/// `publisher_idle_timeout_ms` is taken over by a newcomer on the same key, whose stream new
/// viewers then get.
#[test]
fn silent_publisher_is_taken_over() {
    let ctx = TestCtx::new("silent_publisher_is_taken_over");
    let server = Server::start_with_config(&ctx, "[rtmp]\npublisher_idle_timeout_ms = 1000\n");
    let (first, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "idle");
    first.signal("STOP");
    // Silent for well over the idle timeout.
    std::thread::sleep(Duration::from_millis(3000));

    let mut second = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url("live", "idle"));
    let viewer = wait_live(&server, "live", "idle");
    assert!(
        second.try_status().is_none(),
        "the newcomer's publish failed: {}",
        second.stderr_text()
    );
    let streams = ffprobe_streams(&server.flv_url("live", "idle"), LIMIT).unwrap_or_else(|e| panic!("{e}"));
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!(
        (video.width, video.height),
        (320, 180),
        "a new viewer does not get the newcomer's stream: {streams:?}"
    );
    viewer
        .wait_for(LIMIT, |s| (s.coded_video().count() >= 60).then_some(()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        second.try_status().is_none(),
        "the newcomer stopped publishing: {}",
        second.stderr_text()
    );
}

/// The publisher is killed and started again on the same key (as an encoder reconnects): an
/// HTTP-FLV viewer and an RTMP viewer stay connected, receive the new publisher's frames, and
/// the timestamps they see never go backwards; ffprobe reading HTTP-FLV across the reconnect
/// sees monotonic DTS.
#[test]
fn publisher_reconnect_keeps_viewers_and_timestamps_monotonic() {
    let ctx = TestCtx::new("publisher_reconnect_keeps_viewers_and_timestamps_monotonic");
    let server = Server::start(&ctx);
    let (mut first, flv_viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "re");
    let rtmp_viewer = Viewer::rtmp(&server.rtmp_url("live", "re"));
    rtmp_viewer.wait_keyframe(LIMIT).unwrap_or_else(|e| panic!("{e}"));

    // ffprobe reads 12 s of stream time from here, across the reconnect.
    let flv_url = server.flv_url("live", "re");
    let probe = std::thread::spawn(move || ffprobe_packets(&flv_url, 12, Duration::from_secs(60)));

    // Let ~3 s pass, then the encoder dies and comes back a second later.
    flv_viewer
        .wait_for(LIMIT, |s| (s.coded_video().count() >= 90).then_some(()))
        .unwrap_or_else(|e| panic!("{e}"));
    first.kill();
    std::thread::sleep(Duration::from_millis(1000));
    let _second = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url("live", "re"));
    let restarted = Instant::now();

    // Frames that arrive well after the restart come from the new publisher.
    let after = restarted + Duration::from_millis(500);
    for v in [&flv_viewer, &rtmp_viewer] {
        v.wait_for(LIMIT, |s| {
            (s.coded_video().filter(|t| t.arrived > after).count() >= 90).then_some(())
        })
        .unwrap_or_else(|e| panic!("viewer did not continue after the reconnect: {e}"));
        assert_eq!(v.ended(), None, "{}: disconnected", v.label);
        assert_monotonic(&v.label, &v.snapshot());
    }

    let packets = probe.join().expect("ffprobe thread").unwrap_or_else(|e| panic!("{e}"));
    for kind in ["video", "audio"] {
        let dts: Vec<f64> = packets.iter().filter(|p| p.codec_type == kind).map(|p| p.dts).collect();
        assert!(dts.len() > 10, "ffprobe saw {} {kind} packets", dts.len());
        for w in dts.windows(2) {
            assert!(w[1] >= w[0], "ffprobe: {kind} DTS goes back from {} to {}", w[0], w[1]);
        }
        let span = dts[dts.len() - 1] - dts[0];
        assert!(
            span >= 10.0,
            "ffprobe's {kind} packets span only {span:.1} s of the 12 s it reads: the viewer \
             was cut off at the reconnect"
        );
    }
}
