//! fMP4 HLS of the Enhanced RTMP codecs end to end (issue 16, items 2 and 6): a modern
//! ffmpeg (9, see `estuary_tests::modern_ffmpeg`) publishes AV1 + Opus, VP9 + Opus and
//! HEVC + AAC over Enhanced RTMP; under the default `hls.variant = "auto"` each is packaged
//! as fMP4 with the right `CODECS`; hls.js in headless Chromium plays AV1 + Opus, and the
//! same ffmpeg decodes HEVC and VP9 + Opus from the master playlist with no error output.
//! (hls.js playing H.264 in fMP4 is `hls_fmp4::hls_js_in_low_latency_mode_plays_30s_without_a_stall`.)

use std::thread;
use std::time::{Duration, Instant};

use estuary_muxer::check::PlaylistChecker;
use estuary_tests::browser::play_hls;
use estuary_tests::hls::{fetch, resolve};
use estuary_tests::modern_ffmpeg::{decode_modern, publish_modern, Encoding};
use estuary_tests::{Server, TestCtx, LIMIT};

const APP: &str = "live";
/// Seconds each ffmpeg viewer decodes.
const DECODE_SECS: u32 = 4;
/// At 15 fps and 4 s, a viewer that decoded cleanly has well over this many pictures.
const MIN_PICTURES: usize = 30;

/// Waits until the stream's master playlist lists a variant and its media playlist lists
/// `segments` segments; returns the variant's `CODECS` and the media playlist.
fn wait_segments(server: &Server, stream: &str, segments: usize) -> (String, String) {
    let master = server.m3u8_url(APP, stream);
    let deadline = Instant::now() + 3 * LIMIT;
    loop {
        if let Some(found) = listed(&master, segments) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{master} never listed {segments} fMP4 segments\n{}",
            server.logs()
        );
        thread::sleep(Duration::from_millis(300));
    }
}

fn listed(master: &str, segments: usize) -> Option<(String, String)> {
    let (head, body) = fetch(master).ok()?;
    if head.status != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let codecs = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-STREAM-INF:"))?
        .split("CODECS=\"")
        .nth(1)?
        .split('"')
        .next()?
        .to_string();
    let uri = text.lines().find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let (_, body) = fetch(&resolve(master, uri)).ok()?;
    PlaylistChecker::new()
        .check(&body)
        .unwrap_or_else(|e| panic!("the media playlist breaks the rules: {e:?}"));
    let media = String::from_utf8_lossy(&body).to_string();
    (media.matches("#EXTINF").count() >= segments).then_some((codecs, media))
}

/// The init section of a media playlist.
fn init_section(master: &str, media: &str) -> Vec<u8> {
    let (head, body) = fetch(master).unwrap();
    assert_eq!(head.status, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    let uri = text.lines().find(|l| !l.is_empty() && !l.starts_with('#')).unwrap();
    let media_url = resolve(master, uri);
    let map = media
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .expect("EXT-X-MAP");
    let (head, init) = fetch(&resolve(&media_url, map)).unwrap();
    assert_eq!(head.status, 200);
    init
}

/// `ffmpeg -v error` (the modern one) decodes `DECODE_SECS` of the master playlist with no
/// error output: 160x90 pictures, and audio.
fn assert_ffmpeg_decodes(server: &Server, stream: &str) {
    let master = server.m3u8_url(APP, stream);
    let d = decode_modern(&master, DECODE_SECS, Duration::from_secs(120));
    assert!(
        d.run.success() && d.run.stderr.trim().is_empty(),
        "{master}: ffmpeg 9 decode ended {:?} with error output:\n{}\nserver log:\n{}",
        d.run.status,
        d.run.stderr,
        server.logs()
    );
    assert_eq!(d.dimensions, ["160x90"], "{master}: {d:?}");
    assert!(
        d.frames_of("video") >= MIN_PICTURES,
        "{master}: {} pictures decoded: {d:?}",
        d.frames_of("video")
    );
    assert!(d.frames_of("audio") > 0, "{master}: no audio decoded: {d:?}");
}

/// AV1 + Opus: fMP4 under `auto` with an `av01` entry and `av01.…,Opus`; hls.js in headless
/// Chromium (dav1d) plays it, pictures of 160x90, with no error at all.
#[test]
fn hls_js_plays_av1_and_opus_in_fmp4() {
    let ctx = TestCtx::new("hls_codecs_av1");
    let server = Server::start(&ctx);
    let _publisher = publish_modern(&ctx, Encoding::Av1Opus, &server.rtmp_url(APP, "av1"));
    let (codecs, media) = wait_segments(&server, "av1", 3);
    assert!(
        codecs.starts_with("av01.0.") && codecs.ends_with(".08,Opus"),
        "CODECS of 8-bit AV1 Main and Opus: {codecs}"
    );
    let init = init_section(&server.m3u8_url(APP, "av1"), &media);
    for entry in [&b"av01"[..], b"av1C", b"Opus", b"dOps"] {
        assert!(
            init.windows(4).any(|w| w == entry),
            "init section without {}",
            String::from_utf8_lossy(entry)
        );
    }
    let playback = play_hls(&server.m3u8_url(APP, "av1"), 15).unwrap_or_else(|e| panic!("{e}"));
    playback.assert_played("hls.js on AV1 + Opus fMP4", 8.0);
    assert!(
        playback.errors.is_empty(),
        "hls.js or the page reported errors: {}",
        playback.raw
    );
    let raw = &playback.raw;
    assert_eq!(
        (raw["videoWidth"].as_u64(), raw["videoHeight"].as_u64()),
        (Some(160), Some(90)),
        "AV1 pictures decoded: {raw}"
    );
}

/// VP9 + Opus: fMP4 under `auto` with a `vp09` entry and the full `vp09.…` string; ffmpeg 9
/// decodes video and Opus audio from the master playlist with no error output.
#[test]
fn ffmpeg_decodes_vp9_and_opus_fmp4_hls_silently() {
    let ctx = TestCtx::new("hls_codecs_vp9");
    let server = Server::start(&ctx);
    let _publisher = publish_modern(&ctx, Encoding::Vp9Opus, &server.rtmp_url(APP, "vp9"));
    let (codecs, media) = wait_segments(&server, "vp9", 3);
    assert_eq!(codecs, "vp09.00.10.08.01.02.02.02.00,Opus");
    let init = init_section(&server.m3u8_url(APP, "vp9"), &media);
    assert!(init.windows(4).any(|w| w == b"vpcC"), "init section without vpcC");
    assert_ffmpeg_decodes(&server, "vp9");
}

/// HEVC (Enhanced RTMP `hvc1`) + AAC: fMP4 under `auto` with an `hvc1` entry; ffmpeg 9
/// decodes it from the master playlist with no error output.
#[test]
fn ffmpeg_decodes_enhanced_rtmp_hevc_fmp4_hls_silently() {
    let ctx = TestCtx::new("hls_codecs_hevc");
    let server = Server::start(&ctx);
    let _publisher = publish_modern(&ctx, Encoding::HevcAac, &server.rtmp_url(APP, "hevc"));
    let (codecs, media) = wait_segments(&server, "hevc", 3);
    assert!(
        codecs.starts_with("hvc1.") && codecs.ends_with(",mp4a.40.2"),
        "{codecs}"
    );
    let init = init_section(&server.m3u8_url(APP, "hevc"), &media);
    assert!(init.windows(4).any(|w| w == b"hvc1"), "the sample entry is hvc1");
    assert_ffmpeg_decodes(&server, "hevc");
}
