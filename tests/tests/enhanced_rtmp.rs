//! Enhanced RTMP ingest end to end (issue 16, items 1 and 6): a modern ffmpeg (9, from PyPI's
//! imageio-ffmpeg; see `estuary_tests::modern_ffmpeg`) publishes HEVC, AV1, VP9 and Opus, and
//! a two-video-track Multitrack stream; the same ffmpeg decodes each back over RTMP and
//! HTTP-FLV with no error output, and the multitrack stream plays as its track 0 over RTMP,
//! HTTP-FLV and HLS while the API and metrics count both tracks.

use std::time::{Duration, Instant};

use estuary_tests::modern_ffmpeg::{decode_modern, publish_modern, Decoded, Encoding};
use estuary_tests::{Server, TestCtx, LIMIT};
use serde_json::Value;

const APP: &str = "live";
/// Seconds each viewer decodes.
const DECODE_SECS: u32 = 3;
/// At 15 fps and 3 s, a viewer that played cleanly has decoded well over this many pictures.
const MIN_PICTURES: usize = 20;

/// The stream's entry in `/api/v1/streams`, once it is live with a video codec.
fn wait_stream(server: &Server, stream: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let url = format!("http://127.0.0.1:{}/api/v1/streams", server.http_port);
    let deadline = Instant::now() + LIMIT;
    loop {
        let listed = estuary_tests::http::get(&url, LIMIT)
            .ok()
            .and_then(|(_, body)| serde_json::from_slice::<Value>(&body).ok())
            .and_then(|v| v["streams"].as_array()?.iter().find(|s| s["name"] == stream).cloned());
        if let Some(entry) = listed.filter(|e| ready(e)) {
            return entry;
        }
        assert!(
            Instant::now() < deadline,
            "{APP}/{stream} not listed as expected within {LIMIT:?}\n{}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Asserts a decode ended well, printed nothing at `-v error`, and decoded pictures (and
/// audio when `audio`), one video stream of 160x90.
fn assert_clean(what: &str, d: &Decoded, audio: bool, server: &Server) {
    assert!(
        d.run.success() && d.run.stderr.trim().is_empty(),
        "{what}: ffmpeg 9 decode ended {:?} with error output:\n{}\nserver log:\n{}",
        d.run.status,
        d.run.stderr,
        server.logs()
    );
    let videos = d.media_types.iter().filter(|t| *t == "video").count();
    assert_eq!(videos, 1, "{what}: decoded streams {:?}", d.media_types);
    assert_eq!(d.dimensions, ["160x90"], "{what}: picture size");
    assert!(
        d.frames_of("video") >= MIN_PICTURES,
        "{what}: {} pictures decoded in {DECODE_SECS} s: {d:?}",
        d.frames_of("video")
    );
    if audio {
        assert!(d.frames_of("audio") > 0, "{what}: no audio decoded: {d:?}");
    }
}

/// Publishes `encoding` and checks the codecs the API reports, then decodes over RTMP and
/// HTTP-FLV.
fn round_trip(name: &str, encoding: Encoding, video_codec: &str, audio_codec: &str) {
    let ctx = TestCtx::new(name);
    let server = Server::start(&ctx);
    let _publisher = publish_modern(&ctx, encoding, &server.rtmp_url(APP, name));
    let entry = wait_stream(&server, name, |s| {
        s["video"]["codec"].is_string() && s["audio"]["codec"].is_string()
    });
    assert_eq!(entry["video"]["codec"], video_codec, "{entry}");
    assert_eq!(entry["audio"]["codec"], audio_codec, "{entry}");
    for url in [server.rtmp_url(APP, name), server.flv_url(APP, name)] {
        let decoded = decode_modern(&url, DECODE_SECS, LIMIT);
        assert_clean(&url, &decoded, true, &server);
    }
}

#[test]
fn hevc_with_aac_plays_back_over_rtmp_and_http_flv() {
    round_trip("ertmp-hevc", Encoding::HevcAac, "H265", "AAC");
}

#[test]
fn av1_with_opus_plays_back_over_rtmp_and_http_flv() {
    round_trip("ertmp-av1", Encoding::Av1Opus, "AV1", "Opus");
}

#[test]
fn vp9_with_opus_plays_back_over_rtmp_and_http_flv() {
    round_trip("ertmp-vp9", Encoding::Vp9Opus, "VP9", "Opus");
}

#[test]
fn h264_with_opus_plays_back_over_rtmp_and_http_flv() {
    round_trip("ertmp-h264-opus", Encoding::H264Opus, "H264", "Opus");
}

/// ffmpeg 9 with `-map 0:v -map 0:v` sends track 1 as Multitrack packets; the server used to
/// drop the publisher (`unknown video FourCC "\0avc"`). Now track 0 plays as a plain H.264
/// stream on every protocol, and track 1 is counted, never mixed in.
#[test]
fn two_video_tracks_play_back_as_track_0_and_are_counted() {
    let name = "ertmp-multitrack";
    let ctx = TestCtx::new(name);
    let server = Server::start(&ctx);
    let mut publisher = publish_modern(&ctx, Encoding::TwoH264Tracks, &server.rtmp_url(APP, name));
    let entry = wait_stream(&server, name, |s| {
        s["tracks"]["video"] == 2 && s["tracks"]["extra"][0]["frames"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(entry["video"]["codec"], "H264", "{entry}");
    assert_eq!(
        (entry["video"]["width"].as_u64(), entry["video"]["height"].as_u64()),
        (Some(160), Some(90))
    );
    let extra = &entry["tracks"]["extra"];
    assert_eq!(extra.as_array().map(Vec::len), Some(1), "{entry}");
    assert_eq!(
        (&extra[0]["type"], &extra[0]["id"], &extra[0]["codec"]),
        (&"video".into(), &1.into(), &"H264".into())
    );
    let series = format!("estuary_stream_tracks{{app=\"{APP}\",stream=\"{name}\",kind=\"video\"}}");
    assert_eq!(server.metric(&series), 2.0, "{series}");
    assert!(server.metric("estuary_extra_track_packets_total{kind=\"video\"}") > 0.0);

    for url in [server.rtmp_url(APP, name), server.flv_url(APP, name)] {
        let decoded = decode_modern(&url, DECODE_SECS, LIMIT);
        assert_clean(&url, &decoded, false, &server);
    }
    // HLS: once the playlist lists a segment (2 s each by default), it decodes as well.
    let m3u8 = server.m3u8_url(APP, name);
    let deadline = Instant::now() + LIMIT;
    while !estuary_tests::hls::fetch(&m3u8)
        .is_ok_and(|(head, body)| head.status == 200 && body.windows(4).any(|w| w == b".ts\n" || w == b".ts?"))
    {
        assert!(Instant::now() < deadline, "{m3u8} lists no segment\n{}", server.logs());
        std::thread::sleep(Duration::from_millis(300));
    }
    let decoded = decode_modern(&m3u8, 2, LIMIT);
    assert_clean(&m3u8, &decoded, false, &server);
    assert!(
        publisher.try_status().is_none(),
        "the publisher was disconnected:\n{}",
        publisher.stderr_text()
    );
}
