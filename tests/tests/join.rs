//! What a viewer gets when it joins: metadata, sequence headers and the current GOP for a live
//! stream; a wait for a stream that has no publisher yet; FLV header flags that match the tracks.

use std::time::Duration;

use estuary_tests::media::publish_ffmpeg;
use estuary_tests::viewer::describe;
use estuary_tests::{publish_and_wait_live, Clip, Server, TestCtx, Viewer, ViewerState, LIMIT};

/// The clips' keyframe interval.
const GOP_MS: u32 = 2000;

/// A viewer joining mid-GOP gets onMetaData, then the sequence headers, then the GOP from its
/// keyframe: its first video frame is a keyframe at or before the live edge of the moment it
/// joined (not the next keyframe, which would mean it waited instead of getting the GOP cache).
/// Checked for HTTP-FLV and RTMP.
#[test]
fn late_joiner_starts_with_metadata_headers_and_gop() {
    let ctx = TestCtx::new("late_joiner_starts_with_metadata_headers_and_gop");
    let server = Server::start(&ctx);
    let (_publisher, first) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "late");

    // Wait until the live edge is 0.3–1.0 s past a keyframe, at least one GOP in.
    let first_key = first
        .with(|s| s.first_coded_video().map(|t| t.timestamp))
        .expect("keyframe");
    let edge = first
        .wait_for(LIMIT, |s| {
            let ts = s.last_video_ts()?;
            let phase = ts.wrapping_sub(first_key) % GOP_MS;
            (ts >= first_key + GOP_MS && (300..=1000).contains(&phase)).then_some(ts)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let late = [
        Viewer::http_flv(&server.flv_url("live", "late")),
        Viewer::rtmp(&server.rtmp_url("live", "late")),
    ];
    for v in &late {
        // Two seconds of media is more than a GOP: the startup sequence is complete by then.
        v.wait_for(LIMIT, |s| (s.coded_video().count() >= 60).then_some(()))
            .unwrap_or_else(|e| panic!("{e}"));
        let st = v.snapshot();
        if let Err(e) = st.check_startup(true, true) {
            panic!("{}: {e}", v.label);
        }
        let key = st.first_coded_video().expect("checked").timestamp;
        assert!(
            key <= edge,
            "{}: first keyframe at {key} ms is after the live edge ({edge} ms) when it joined: \
             no GOP cache? first tags: {}",
            v.label,
            describe(&st.tags[..st.tags.len().min(8)])
        );
    }
}

/// A viewer that arrives before the publisher waits (its connection stays open), and starts
/// with a proper startup sequence once the publisher comes. HTTP-FLV and RTMP.
#[test]
fn viewer_waits_for_publisher() {
    let ctx = TestCtx::new("viewer_waits_for_publisher");
    let server = Server::start_with_config(&ctx, "[play]\nwait_for_publisher_ms = 30000\n");
    let viewers = [
        Viewer::http_flv(&server.flv_url("live", "early")),
        Viewer::rtmp(&server.rtmp_url("live", "early")),
    ];
    std::thread::sleep(Duration::from_millis(1500));
    for v in &viewers {
        assert_eq!(v.ended(), None, "{}: closed while waiting for the publisher", v.label);
        assert!(
            v.with(|s| s.coded_video().count()) == 0,
            "{}: media before any publisher",
            v.label
        );
    }
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url("live", "early"));
    for v in &viewers {
        v.wait_for(LIMIT, |s| (s.coded_video().count() >= 30).then_some(()))
            .unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = v.snapshot().check_startup(true, true) {
            panic!("{}: {e}", v.label);
        }
    }
    assert_eq!(viewers[0].snapshot().flv_flags, Some(0x05));
}

/// The HTTP-FLV header's flags byte (byte 4) says which tracks exist: 0x05 for audio and
/// video, 0x04 for audio only, 0x01 for video only; and a missing track sends no tags.
#[test]
fn flv_header_flags_match_tracks() {
    let ctx = TestCtx::new("flv_header_flags_match_tracks");
    let server = Server::start(&ctx);
    let cases = [
        (Clip::Main, "both", 0x05u8, true, true),
        (Clip::AudioOnly, "audio", 0x04, true, false),
        (Clip::VideoOnly, "video", 0x01, false, true),
    ];
    let publishers: Vec<_> = cases
        .iter()
        .map(|(clip, key, ..)| publish_ffmpeg(&ctx, *clip, &server.rtmp_url("live", key)))
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    for (_, key, flags, audio, video) in cases {
        let v = Viewer::http_flv(&server.flv_url("live", key));
        let enough = |s: &ViewerState| {
            let frames = if video {
                s.coded_video().count()
            } else {
                s.coded_audio().count()
            };
            (frames >= 30).then_some(())
        };
        v.wait_for(LIMIT, enough).unwrap_or_else(|e| panic!("{e}"));
        let st = v.snapshot();
        assert_eq!(
            st.flv_flags,
            Some(flags),
            "stream {key}: FLV header flags {:?}, expected {flags:#04x}",
            st.flv_flags
        );
        if let Err(e) = st.check_startup(audio, video) {
            panic!("stream {key}: {e}");
        }
    }
    drop(publishers);
}
