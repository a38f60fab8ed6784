//! The calls players make before `play` (`getStreamLength`, `FCSubscribe`, `_checkbw` after
//! `onBWDone`) get answers that ffmpeg (and mpv, which plays RTMP through it) accept
//! without a warning, and playback goes on.

use std::process::Command;
use std::time::Duration;

use estuary_tests::media::status_text;
use estuary_tests::proc::{run_with_timeout, RunOutput};
use estuary_tests::{publish_and_wait_live, Clip, Server, TestCtx};

/// `ffmpeg -v verbose [extra] -i URL -t 2 -f null -` with progress on stdout.
fn ffmpeg_play_verbose(url: &str, extra: &[&str]) -> RunOutput {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "verbose", "-progress", "pipe:1"])
        .args(["-rw_timeout", "15000000"])
        .args(extra)
        .args(["-i", url, "-t", "2", "-f", "null", "-"]);
    run_with_timeout(&mut cmd, Duration::from_secs(60))
}

/// The last `frame=N` of ffmpeg's `-progress` output: how many frames it decoded.
fn frames_decoded(progress: &str) -> u64 {
    progress
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("frame="))
        .find_map(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Asserts that ffmpeg played: exit 0, no complaint about a reply from the server, and
/// about 2 s of 30 fps video decoded.
fn assert_played_without_warnings(what: &str, out: &RunOutput) {
    assert!(out.success(), "{what}: {}; stderr:\n{}", status_text(out), out.stderr);
    let complaints: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("Unexpected reply") || l.contains("Server error"))
        .collect();
    assert!(
        complaints.is_empty(),
        "{what}: ffmpeg complained about the server's replies: {complaints:?}; stderr:\n{}",
        out.stderr
    );
    let frames = frames_decoded(&out.stdout);
    assert!(
        frames >= 30,
        "{what}: only {frames} frames decoded in 2 s of a 30 fps stream; progress:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
}

/// ffmpeg's default play sequence sends `getStreamLength` between `createStream` and `play`
/// and reads a number from the `_result` ("Unexpected reply on getStreamLength()" otherwise).
#[test]
fn ffmpeg_gets_a_stream_length_before_play() {
    let ctx = TestCtx::new("ffmpeg_gets_a_stream_length_before_play");
    let server = Server::start(&ctx);
    let (_publisher, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "length");

    let url = server.rtmp_url("live", "length");
    let out = ffmpeg_play_verbose(&url, &[]);
    assert_played_without_warnings(&url, &out);
}

/// With `-rtmp_subscribe`, ffmpeg also sends `FCSubscribe` right after `connect` (and still
/// `getStreamLength`); with `-rtmp_live live` it sends `FCSubscribe` and no
/// `getStreamLength`. Both play the live stream without a warning.
#[test]
fn ffmpeg_subscribes_before_play() {
    let ctx = TestCtx::new("ffmpeg_subscribes_before_play");
    let server = Server::start(&ctx);
    let (_publisher, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "sub");

    let url = server.rtmp_url("live", "sub");
    for extra in [&["-rtmp_subscribe", "sub"][..], &["-rtmp_live", "live"][..]] {
        let out = ffmpeg_play_verbose(&url, extra);
        assert_played_without_warnings(&format!("{url} with {extra:?}"), &out);
    }
}
