//! Lag is measured on each track's own clock (issue 12, item 5): a publisher whose audio is
//! stamped 3 s ahead of its video (more than `play.max_lag_ms`) is watched by viewers that
//! keep up, and by one that stalls for a moment; the first must get every frame, the other
//! must skip to a keyframe and then keep playing to the end, not skip video for good as if
//! video were always 3 s late.

use std::time::{Duration, Instant};

use estuary_tests::publisher::{clip_tags, ClipPublisher, Stamping};
use estuary_tests::{Clip, Server, TagKind, TestCtx, Viewer, LIMIT};

/// How far ahead of its video the publisher stamps audio.
const AHEAD_MS: i32 = 3000;

/// Polls `cond` every 200 ms until it holds, failing with `what` after `LIMIT`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn audio_stamped_ahead_of_video_does_not_make_viewers_skip_video() {
    let ctx = TestCtx::new("audio_ahead");
    let server = Server::start_with_config(&ctx, "[play]\nmax_lag_ms = 500\nsend_buffer_bytes = 16384\n");
    let (app, stream) = ("live", "ahead");
    let rtmp_url = server.rtmp_url(app, stream);
    // The publisher sends its first second and holds while the viewers join, so each gets
    // the stream from its first frame out of the GOP cache, whenever it got going.
    let clip = clip_tags(Clip::Main);
    let publisher = ClipPublisher::start_held(
        &rtmp_url,
        clip.clone(),
        Stamping {
            first_ms: 0,
            audio_ahead_ms: AHEAD_MS,
        },
        1000,
    );
    wait_until("the publisher sent its first second", || publisher.is_holding());
    let viewers = [Viewer::rtmp(&rtmp_url), Viewer::http_flv(&server.flv_url(app, stream))];
    wait_until("an RTMP and an HTTP-FLV viewer playing", || {
        server.clients_of_kind("rtmp-play") >= 1 && server.clients_of_kind("flv-play") >= 1
    });
    publisher.release();

    // A third viewer stalls while the publisher sends 6 s of the clip, more than the
    // socket buffers (16 kB on the server's side, the kernel's default on the viewer's) and
    // `max_lag_ms` together hold, then reads again: the server must skip it to a keyframe.
    let stalled = Viewer::rtmp(&rtmp_url);
    stalled.wait_keyframe(LIMIT).unwrap_or_else(|e| panic!("{e}"));
    stalled.pause();
    let paused_at = publisher.sent_ms();
    wait_until("the publisher sent 6 s more", || {
        publisher.sent_ms() >= paused_at + 6000
    });
    stalled.resume();
    wait_until("the server skipped frames for the stalled viewer", || {
        server.metric("estuary_frames_dropped_total{reason=\"lag\"}") > 0.0
    });

    let sent = publisher
        .join()
        .unwrap_or_else(|e| panic!("publisher: {e}\n{}", server.logs()));
    assert_eq!(sent, clip.len());

    let frames = |kind| clip.iter().filter(|t| t.kind == kind && t.is_coded_frame()).count();
    let (video_frames, audio_frames) = (frames(TagKind::Video), frames(TagKind::Audio));
    for viewer in &viewers {
        let got = viewer.wait_for(LIMIT, |s| {
            (s.coded_video().count() >= video_frames && s.coded_audio().count() >= audio_frames).then_some(())
        });
        let state = viewer.snapshot();
        assert!(
            got.is_ok(),
            "{}: {} of {video_frames} video and {} of {audio_frames} audio frames ({:?})\n{}",
            viewer.label,
            state.coded_video().count(),
            state.coded_audio().count(),
            got.err(),
            server.logs()
        );
        // Each track keeps its own clock: audio 3 s ahead of the video it goes with.
        let first = |kind| {
            clip.iter()
                .find(|t| t.kind == kind && t.is_coded_frame())
                .map(|t| t.timestamp)
        };
        let sent_gap = first(TagKind::Audio)
            .zip(first(TagKind::Video))
            .map(|(a, v)| a + AHEAD_MS as u32 - v);
        let first_video = state.coded_video().next().map(|t| t.timestamp);
        let first_audio = state.coded_audio().next().map(|t| t.timestamp);
        let seen_gap = first_audio.zip(first_video).map(|(a, v)| a.wrapping_sub(v));
        assert_eq!(seen_gap, sent_gap, "{}", viewer.label);
    }

    // The stalled viewer skipped to a keyframe, then played on to the clip's last frame.
    let last_video = clip
        .iter()
        .filter(|t| t.kind == TagKind::Video && t.is_coded_frame())
        .map(|t| t.timestamp)
        .max();
    stalled
        .wait_for(LIMIT, |s| (s.last_video_ts() == last_video).then_some(()))
        .unwrap_or_else(|e| panic!("the stalled viewer did not play to the end: {e}\n{}", server.logs()));
}
