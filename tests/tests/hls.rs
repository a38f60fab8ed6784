//! HLS in a browser: hls.js in headless Chromium (tests/browser/play-hls.mjs).

use std::process::Command;
use std::time::Duration;

use estuary_tests::browser::play_hls;
use estuary_tests::proc::run_with_timeout;
use estuary_tests::static_http::StaticServer;
use estuary_tests::{publish_and_wait_live, Clip, Server, TestCtx};

/// The browser harness itself, without the server: ffmpeg writes a VOD HLS rendition of the
/// test clip, a local static server serves it, and hls.js in Chromium plays it with no error.
#[test]
fn browser_harness_plays_local_hls() {
    let ctx = TestCtx::new("browser_harness_plays_local_hls");
    let hls_dir = ctx.dir.join("hls");
    std::fs::create_dir_all(&hls_dir).expect("create hls dir");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(Clip::Main.path())
        .args(["-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0"])
        .args(["-hls_playlist_type", "vod"])
        .arg(hls_dir.join("index.m3u8"));
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    assert!(out.success(), "ffmpeg -f hls: {}", out.stderr);

    let files = StaticServer::start(&hls_dir);
    let url = format!("http://127.0.0.1:{}/index.m3u8", files.port);
    let played = play_hls(&url, 6).unwrap_or_else(|e| panic!("{e}"));
    played.assert_played("a local HLS in 6 s", 2.0);
    assert_eq!(played.raw["videoWidth"], 640, "{}", played.raw);
}

/// hls.js in Chromium plays the server's HLS directly (no proxy in between, so the server's
/// keep-alive handling with a real browser is exercised too).
#[test]
fn hls_plays_in_browser() {
    let ctx = TestCtx::new("hls_plays_in_browser");
    let server = Server::start(&ctx);
    let (_publisher, _viewer) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "hls");
    let played = play_hls(&server.m3u8_url("live", "hls"), 12).unwrap_or_else(|e| panic!("{e}"));
    played.assert_played("the live stream in 12 s", 4.0);
}
