//! fMP4 HLS and LL-HLS end to end (issue 16, items 2, 3 and 6): the real binary with
//! `hls.variant = "fmp4"`, published to with ffmpeg, read by the playlist checker of
//! `estuary_muxer::check` (LL tags: parts, hints, skip, hold-back), by raw HTTP requests for
//! the blocking-reload semantics, by ffmpeg/ffprobe, and by hls.js in headless Chromium in
//! its low-latency mode.

use std::thread;
use std::time::{Duration, Instant};

use estuary_muxer::check::{PlaylistChecker, PlaylistReport};
use estuary_tests::browser::play_hls_low_latency;
use estuary_tests::hls::{fetch, max_age, resolve, PLAYLIST_TYPE};
use estuary_tests::media::{assert_h264_aac, ffmpeg_decode, ffprobe_streams, publish_ffmpeg, status_text};
use estuary_tests::{Clip, Server, TestCtx, LIMIT};

const APP: &str = "live";
const FMP4: &str = "[hls]\nvariant = \"fmp4\"\n";

/// The master playlist's variant URL and `CODECS`, once the master playlist is served.
fn media_url(master_url: &str) -> (String, String) {
    let deadline = Instant::now() + 2 * LIMIT;
    loop {
        if let Ok((head, body)) = fetch(master_url) {
            if head.status == 200 {
                assert_eq!(head.header("content-type"), Some(PLAYLIST_TYPE));
                let text = String::from_utf8_lossy(&body).to_string();
                let inf = text
                    .lines()
                    .find(|l| l.starts_with("#EXT-X-STREAM-INF:"))
                    .unwrap_or_else(|| panic!("an fMP4 stream's playlist URL serves a master playlist:\n{text}"));
                let codecs = inf
                    .split("CODECS=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("STREAM-INF without CODECS: {inf}"))
                    .to_string();
                let uri = text
                    .lines()
                    .find(|l| !l.is_empty() && !l.starts_with('#'))
                    .expect("a variant URI");
                return (resolve(master_url, uri), codecs);
            }
        }
        assert!(Instant::now() < deadline, "{master_url} never served a master playlist");
        thread::sleep(Duration::from_millis(200));
    }
}

fn with_query(url: &str, query: &str) -> String {
    format!("{url}{}{query}", if url.contains('?') { '&' } else { '?' })
}

/// Fetches the media playlist and checks it with `checker`.
fn checked(checker: &mut PlaylistChecker, url: &str) -> (PlaylistReport, String, Option<String>) {
    let (head, body) = fetch(url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(head.status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body).to_string();
    let report = checker
        .check(&body)
        .unwrap_or_else(|e| panic!("{url} breaks the rules: {e:?}\n{text}"));
    (report, text, head.header("cache-control").map(str::to_string))
}

/// (segment being written, parts of it listed) of a report.
fn open_segment(report: &PlaylistReport) -> (u64, u32) {
    let ll = report.low_latency.as_ref().expect("LL-HLS tags");
    let listed = report.segments.len();
    let open = ll.parts.iter().filter(|p| p.segment == listed).count() as u32;
    (report.media_sequence + ll.skipped_segments + listed as u64, open)
}

/// Every fetch of the media playlist passes the LL-HLS checker (parts at most the part
/// target, INDEPENDENT on keyframe parts, PART-HOLD-BACK three part targets, one preload
/// hint, EXT-X-MAP before the segments); a blocking reload for a part that exists answers
/// with it, one for the next part answers with a playlist that lists it, one more than two
/// segments ahead answers 400, `_HLS_part` without `_HLS_msn` answers 400; the preload hint's
/// part is served; and a blocking answer may be cached for six target durations.
#[test]
fn ll_hls_playlists_follow_the_rules_and_blocking_reloads_answer_when_the_part_exists() {
    let ctx = TestCtx::new("hls_fmp4_blocking");
    let server = Server::start_with_config(&ctx, FMP4);
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url(APP, "ll"));
    let (url, codecs) = media_url(&server.m3u8_url(APP, "ll"));
    assert_eq!(codecs, "avc1.64001e,mp4a.40.2", "CODECS of High 3.0 H.264 and AAC LC");

    let mut checker = PlaylistChecker::new();
    let (report, text, _) = checked(&mut checker, &url);
    let ll = report.low_latency.clone().expect("LL-HLS on by default for fMP4");
    assert_eq!((ll.part_target_ms, ll.part_hold_back_ms), (300, 900), "{text}");
    assert!(ll.can_block_reload);
    assert!(text.contains("#EXT-X-MAP:URI="), "{text}");

    // Already there: answered with the playlist.
    let (msn, parts) = open_segment(&report);
    let (head, _) = fetch(&with_query(&url, &format!("_HLS_msn={}", msn - 1))).unwrap();
    assert_eq!(head.status, 200);
    // The next part: the answer lists it.
    for _ in 0..5 {
        let (report, text, cache) = checked(
            &mut checker,
            &with_query(&url, &format!("_HLS_msn={msn}&_HLS_part={parts}")),
        );
        let (now_msn, now_parts) = open_segment(&report);
        assert!(
            now_msn > msn || now_parts > parts,
            "asked for part {parts} of segment {msn}, got a playlist without it:\n{text}"
        );
        let target = report.target_duration_secs;
        assert_eq!(cache.as_deref().and_then(max_age), Some(6 * target), "{cache:?}");
        if now_msn > msn {
            break;
        }
    }
    // Too far ahead, and a part without its segment: 400 at once.
    let (report, _, _) = checked(&mut checker, &url);
    let (msn, _) = open_segment(&report);
    let (head, _) = fetch(&with_query(&url, &format!("_HLS_msn={}", msn + 3))).unwrap();
    assert_eq!(head.status, 400);
    let (head, _) = fetch(&with_query(&url, "_HLS_part=1")).unwrap();
    assert_eq!(head.status, 400);

    // The preload hint's part is served once it exists, and listed after.
    let (report, text, _) = checked(&mut checker, &url);
    let hint = report
        .low_latency
        .and_then(|ll| ll.preload_hint)
        .expect("a preload hint");
    let (head, body) = fetch(&resolve(&url, &hint)).unwrap();
    assert_eq!(head.status, 200, "{hint}\n{text}");
    assert!(body.len() > 8 && &body[4..8] == b"moof", "a part is a moof + mdat");
    assert_eq!(head.header("cache-control"), Some("public, max-age=86400, immutable"));
    let (_, text, _) = checked(&mut checker, &url);
    let hinted = hint.split('?').next().unwrap();
    assert!(text.contains(hinted), "the hinted part {hinted} is listed now:\n{text}");
}

/// ffprobe sees H.264 and AAC through the master playlist, `ffmpeg -v error` decodes 10 s
/// of it printing nothing, and an init section plus a segment fetched by hand are a file
/// ffprobe reads.
#[test]
fn ffmpeg_decodes_fmp4_hls_silently() {
    let ctx = TestCtx::new("hls_fmp4_ffmpeg");
    let server = Server::start_with_config(&ctx, FMP4);
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url(APP, "f"));
    let master = server.m3u8_url(APP, "f");
    let (url, _) = media_url(&master);
    let streams = ffprobe_streams(&master, 2 * LIMIT).unwrap_or_else(|e| panic!("{e}"));
    assert_h264_aac("ffprobe of the fMP4 master playlist", &streams, 640, 360, 30.0);

    let out = ffmpeg_decode(&master, 10, Duration::from_secs(120));
    assert!(
        out.success(),
        "ffmpeg decoding {master}: {}\n{}",
        status_text(&out),
        out.stderr
    );
    assert!(
        out.stderr.trim().is_empty(),
        "ffmpeg -v error printed something while decoding {master}:\n{}",
        out.stderr
    );

    let (_, body) = fetch(&url).unwrap();
    let text = String::from_utf8_lossy(&body).to_string();
    let init = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .expect("EXT-X-MAP");
    let segment = text
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a segment");
    let (head, mut file) = fetch(&resolve(&url, init)).unwrap();
    assert_eq!(head.header("content-type"), Some("video/mp4"));
    let (head, data) = fetch(&resolve(&url, segment)).unwrap();
    assert_eq!(head.header("content-type"), Some("video/iso.segment"));
    file.extend_from_slice(&data);
    let path = ctx.dir.join("init-and-segment.mp4");
    std::fs::write(&path, &file).unwrap();
    let streams = ffprobe_streams(path.to_str().unwrap(), LIMIT).unwrap_or_else(|e| panic!("{e}"));
    assert_h264_aac("ffprobe of init + one segment", &streams, 640, 360, 30.0);
}

/// hls.js in headless Chromium, in its low-latency mode, joins the LL-HLS stream once it
/// lists three segments and plays 30 s of it with no stall, loading parts (not only whole
/// segments).
#[test]
fn hls_js_in_low_latency_mode_plays_30s_without_a_stall() {
    let ctx = TestCtx::new("hls_fmp4_hlsjs_ll");
    let server = Server::start_with_config(&ctx, FMP4);
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url(APP, "js"));
    let master = server.m3u8_url(APP, "js");
    let (url, _) = media_url(&master);
    // A viewer joining a stream that runs (as the MPEG-TS hls.js test does): three segments.
    let mut checker = PlaylistChecker::new();
    let deadline = Instant::now() + 2 * LIMIT;
    while checked(&mut checker, &url).0.segments.len() < 3 {
        assert!(Instant::now() < deadline, "three segments never listed");
        thread::sleep(Duration::from_millis(300));
    }
    let playback = play_hls_low_latency(&master, 35).unwrap_or_else(|e| panic!("{e}"));
    playback.assert_played("hls.js low-latency on fMP4", 25.0);
    let raw = &playback.raw;
    assert_eq!(raw["stalls"].as_u64(), Some(0), "hls.js stalled: {raw}");
    assert!(
        raw["events"]["partLoaded"].as_u64().unwrap_or(0) > 0,
        "no part loaded: {raw}"
    );
    let codecs = raw["levels"][0]["codecs"].as_str().unwrap_or_default();
    assert!(codecs.contains("avc1") && codecs.contains("mp4a"), "{raw}");
}

/// An H.265 publish (legacy codec id 12) under the default `hls.variant = "auto"` is
/// packaged as fMP4 with an `hvc1` sample entry and an `hvc1.` CODECS string in the master
/// playlist, and `ffmpeg -v error` decodes it printing nothing.
#[test]
fn hevc_gets_fmp4_under_auto_and_ffmpeg_decodes_it_silently() {
    let ctx = TestCtx::new("hls_fmp4_hevc");
    let server = Server::start(&ctx);
    let tags = estuary_tests::hevc::hevc_clip_tags(&ctx.dir, 40);
    let _publisher = estuary_tests::publisher::ClipPublisher::start(
        &server.rtmp_url(APP, "hevc"),
        tags,
        estuary_tests::publisher::Stamping::default(),
    );
    let master = server.m3u8_url(APP, "hevc");
    let (url, codecs) = media_url(&master);
    assert!(codecs.starts_with("hvc1.1.6.L"), "Main profile HEVC: {codecs}");

    let (_, body) = fetch(&url).unwrap();
    let text = String::from_utf8_lossy(&body).to_string();
    PlaylistChecker::new()
        .check(&body)
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let init = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .expect("EXT-X-MAP");
    let (_, init) = fetch(&resolve(&url, init)).unwrap();
    assert!(
        init.windows(4).any(|w| w == b"hvc1"),
        "the sample entry is hvc1 (Apple 1.5)"
    );

    let out = ffmpeg_decode(&master, 8, Duration::from_secs(120));
    assert!(
        out.success(),
        "ffmpeg decoding {master}: {}\n{}",
        status_text(&out),
        out.stderr
    );
    assert!(
        out.stderr.trim().is_empty(),
        "ffmpeg -v error printed something while decoding HEVC fMP4 {master}:\n{}",
        out.stderr
    );
}

/// A publisher that comes back with another resolution (640x360 → 320x180) gets a new init
/// section: the first segment after it carries `EXT-X-DISCONTINUITY` and a new `EXT-X-MAP`,
/// the master playlist names the new size, and every fetch on the way passes the checker.
#[test]
fn a_new_codec_configuration_brings_a_new_init_section_after_a_discontinuity() {
    let ctx = TestCtx::new("hls_fmp4_new_init");
    let server = Server::start_with_config(&ctx, FMP4);
    let mut publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url(APP, "re"));
    let master = server.m3u8_url(APP, "re");
    let (url, _) = media_url(&master);
    let mut checker = PlaylistChecker::new();
    let deadline = Instant::now() + 2 * LIMIT;
    while checked(&mut checker, &url).0.segments.len() < 2 {
        assert!(Instant::now() < deadline, "two segments never listed");
        thread::sleep(Duration::from_millis(300));
    }
    publisher.kill();
    thread::sleep(Duration::from_millis(300));
    let _publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, "re"));
    let deadline = Instant::now() + 2 * LIMIT;
    let text = loop {
        let (_, text, _) = checked(&mut checker, &url);
        let maps: Vec<&str> = text.lines().filter(|l| l.starts_with("#EXT-X-MAP:")).collect();
        if maps.len() == 2 && text.matches("#EXTINF").count() >= 4 {
            break text;
        }
        assert!(Instant::now() < deadline, "no second init section listed:\n{text}");
        thread::sleep(Duration::from_millis(300));
    };
    let lines: Vec<&str> = text.lines().collect();
    let second_map = lines
        .iter()
        .rposition(|l| l.starts_with("#EXT-X-MAP:"))
        .expect("a second EXT-X-MAP");
    assert_eq!(
        lines[second_map - 1],
        "#EXT-X-DISCONTINUITY",
        "the new init section comes after a discontinuity:\n{text}"
    );
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    let (_, body) = fetch(&master).unwrap();
    assert!(
        String::from_utf8_lossy(&body).contains("RESOLUTION=320x180"),
        "the master playlist follows the new init section: {}",
        String::from_utf8_lossy(&body)
    );
}
