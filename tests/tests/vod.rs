//! Playback of recordings (issue 10, item 7): two recordings of one stream, played as HLS VOD
//! packaged on the fly from their MP4s in ffmpeg and in hls.js (headless Chromium), the MP4
//! itself with `Range`, and a time range across both files as one playlist with a
//! discontinuity where they do not join.

use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use estuary_tests::browser::play_hls;
use estuary_tests::hls::fetch;
use estuary_tests::media::{ffmpeg_decode, publish_ffmpeg, status_text};
use estuary_tests::{Clip, Server, TestCtx};
use serde_json::Value;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Publishes for about `secs` seconds, then waits until that recording is `completed`.
fn record(ctx: &TestCtx, server: &Server, stream: &str, secs: u64) -> Value {
    let before = server.recordings().len();
    let mut publisher = publish_ffmpeg(ctx, Clip::Small, &server.rtmp_url("live", stream));
    thread::sleep(Duration::from_secs(secs));
    publisher.kill();
    server.completed_recording(before)
}

/// `ffmpeg -v error` decodes `url` whole and says nothing.
fn decodes_silently(url: &str) {
    let out = ffmpeg_decode(url, 60, Duration::from_secs(120));
    assert!(
        out.success() && out.stderr.trim().is_empty(),
        "ffmpeg decoding {url}: {}\n{}",
        status_text(&out),
        out.stderr
    );
}

#[test]
fn recordings_play_as_hls_vod_in_ffmpeg_and_hls_js_and_as_one_time_range() {
    let ctx = TestCtx::new("vod");
    let server = Server::start_with_config(&ctx, "[record]\nenabled = true\nposter = false\n");
    let base = format!("http://127.0.0.1:{}", server.http_port);
    let from = now_ms();
    let first = record(&ctx, &server, "vod", 8);
    // A gap between the two recordings: the range playlist must say the files do not join.
    thread::sleep(Duration::from_secs(2));
    let second = record(&ctx, &server, "vod", 8);
    let to = now_ms();

    for recording in [&first, &second] {
        let id = recording["id"].as_i64().expect("id");
        let playlist_url = format!("{base}/vod/{id}.m3u8");
        let (head, body) = fetch(&playlist_url).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.status, 200);
        let playlist = String::from_utf8_lossy(&body).to_string();
        assert!(
            playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-ENDLIST"),
            "{playlist}"
        );
        decodes_silently(&playlist_url);

        // The MP4 itself: a stable URL with Range for seeking.
        let mp4 = format!("{base}/vod/{id}.mp4");
        let whole = fetch(&mp4).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(whole.0.status, 200);
        assert_eq!(whole.0.header("accept-ranges"), Some("bytes"));
        let size = recording["size"].as_u64().expect("size");
        assert_eq!(whole.1.len() as u64, size, "the file the API lists");
        decodes_silently(&mp4);
    }

    // hls.js in Chromium plays a recording's VOD playlist.
    let id = first["id"].as_i64().expect("id");
    let played = play_hls(&format!("{base}/vod/{id}.m3u8"), 6).unwrap_or_else(|e| panic!("{e}"));
    played.assert_played("the recording's VOD playlist, 6 s", 2.0);

    // Both recordings as one time range.
    let range_url = format!("{base}/vod/live/vod.m3u8?start={from}&end={to}");
    let (head, body) = fetch(&range_url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&body));
    let playlist = String::from_utf8_lossy(&body).to_string();
    let first_id = format!("/vod/{}/", first["id"]);
    let second_id = format!("/vod/{}/", second["id"]);
    assert!(
        playlist.contains(&first_id) && playlist.contains(&second_id),
        "both recordings are in the range: {playlist}"
    );
    assert_eq!(
        playlist.matches("#EXT-X-DISCONTINUITY\n").count(),
        1,
        "one discontinuity, where the files do not join: {playlist}"
    );
    decodes_silently(&range_url);
    let listed: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|d| d.trim_end_matches(',').parse::<f64>().ok())
        .sum();
    let recorded = first["duration"].as_f64().unwrap_or(0.0) + second["duration"].as_f64().unwrap_or(0.0);
    assert!(
        (listed - recorded).abs() < 1.0,
        "the range lists {listed} s of the {recorded} s recorded: {playlist}"
    );

    // Nothing recorded in a range: 404.
    let empty = fetch(&format!("{base}/vod/live/vod.m3u8?start=1000&end=2000")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(empty.0.status, 404);
}
