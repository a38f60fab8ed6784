//! HLS end to end (issue 3, item 5): the real binary, published to with ffmpeg, read by
//! ffmpeg, ffprobe, a test-side checker of every segment and playlist
//! (`estuary_muxer::check` plus `estuary_tests::hls`), and hls.js in headless Chromium —
//! across a publisher reconnect, and until an ended playlist is removed.

use std::thread;
use std::time::{Duration, Instant};

use estuary_muxer::check::PlaylistReport;
use estuary_tests::browser::play_hls;
use estuary_tests::hls::{
    fetch, head, max_age, resolve, segment_name_parts, HlsWalker, Polled, RecordingProxy, WalkRules, PLAYLIST_TYPE,
    SEGMENT_TYPE,
};
use estuary_tests::media::{assert_h264_aac, ffmpeg_decode, ffprobe_streams, publish_ffmpeg, status_text};
use estuary_tests::{ChildGuard, Clip, Server, TestCtx, LIMIT};

const APP: &str = "live";
/// The server's defaults (conf/estuary.toml `[hls]`).
const FRAGMENT_MS: u64 = 2000;
const WINDOW: usize = 6;
const TAIL: u64 = 3;
/// How often the checker polls the playlist.
const POLL: Duration = Duration::from_millis(500);

fn rules(clip: Clip) -> WalkRules {
    WalkRules {
        fragment_ms: FRAGMENT_MS,
        window_segments: WINDOW,
        expect_video: matches!(clip, Clip::Main | Clip::Small | Clip::VideoOnly),
        expect_audio: matches!(clip, Clip::Main | Clip::Small | Clip::AudioOnly),
        forced_cuts: false,
    }
}

fn assert_no_errors(what: &str, walker: &HlsWalker) {
    assert!(
        walker.errors.is_empty(),
        "{what}: {} violation(s):\n{}",
        walker.errors.len(),
        walker.errors.join("\n")
    );
}

/// Polls `walker` until its playlist lists at least `n` segments (within 2 × LIMIT).
fn walk_until_listed(walker: &mut HlsWalker, n: usize) -> PlaylistReport {
    let deadline = Instant::now() + 2 * LIMIT;
    loop {
        if let Polled::Playlist(Some(report)) = walker.poll().unwrap_or_else(|e| panic!("{e}")) {
            if report.segments.len() >= n {
                return report;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} did not list {n} segments within {:?}; errors: {:?}",
            walker.url,
            2 * LIMIT,
            walker.errors
        );
        thread::sleep(POLL);
    }
}

/// Kills `publisher` and starts a new one of `clip` on the same key at once: a reconnect.
fn reconnect(ctx: &TestCtx, server: &Server, publisher: &mut ChildGuard, clip: Clip, stream: &str) -> ChildGuard {
    publisher.kill();
    thread::sleep(Duration::from_millis(300));
    publish_ffmpeg(ctx, clip, &server.rtmp_url(APP, stream))
}

/// `ffprobe` sees H.264 640x360 @30 and AAC 44.1 kHz stereo in the playlist, and
/// `ffmpeg -v error -i URL.m3u8 -t 20 -f null -` decodes 20 s of it printing nothing.
#[test]
fn ffmpeg_decodes_20s_silently_and_ffprobe_reports_codecs() {
    let ctx = TestCtx::new("hls_ffmpeg_decodes");
    let server = Server::start(&ctx);
    let _publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url(APP, "s"));
    let url = server.m3u8_url(APP, "s");
    let mut walker = HlsWalker::new(&url, rules(Clip::Main));
    walk_until_listed(&mut walker, 3);

    let streams = ffprobe_streams(&url, 2 * LIMIT).unwrap_or_else(|e| panic!("{e}"));
    assert_h264_aac("ffprobe of the HLS playlist", &streams, 640, 360, 30.0);

    let out = ffmpeg_decode(&url, 20, Duration::from_secs(120));
    assert!(
        out.success(),
        "ffmpeg decoding {url}: {}\n{}",
        status_text(&out),
        out.stderr
    );
    assert!(
        out.stderr.trim().is_empty() && out.stdout.trim().is_empty(),
        "ffmpeg -v error printed something while decoding 20 s of {url}:\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
}

/// The checker walks every segment and every fetch of the playlist for ~30 s across one
/// publisher reconnect (640x360 → 320x180, so the side of the reconnect a segment is on can
/// be told from its SPS): TS rules (PAT/PMT first, continuity counters, PCR on the video PID,
/// AUD, SPS/PPS before every IDR, ADTS, keyframe first, cut at the first keyframe at or
/// after 2 s) and playlist rules (target duration, media sequence, window of 6,
/// independent segments, program date time, discontinuity sequence). The reconnect puts
/// exactly one EXT-X-DISCONTINUITY, on the first segment of the new publisher, the
/// playlist never ends, and EXT-X-DISCONTINUITY-SEQUENCE counts it once it leaves.
#[test]
fn every_segment_and_playlist_follows_the_rules_across_a_reconnect() {
    let ctx = TestCtx::new("hls_rules_across_reconnect");
    let server = Server::start(&ctx);
    let stream = "rules";
    let mut publisher = publish_ffmpeg(&ctx, Clip::Main, &server.rtmp_url(APP, stream));
    let mut walker = HlsWalker::new(&server.m3u8_url(APP, stream), rules(Clip::Main));
    walk_until_listed(&mut walker, 1);

    // ~10 s of the first publisher, then a reconnect with the other clip.
    while walker.segments.len() < 5 {
        thread::sleep(POLL);
        walker.poll().unwrap_or_else(|e| panic!("{e}"));
        assert_no_errors("before the reconnect", &walker);
    }
    let _publisher = reconnect(&ctx, &server, &mut publisher, Clip::Small, stream);

    // Until the discontinuity has left the window (about 6 segments after it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        thread::sleep(POLL);
        walker.poll().unwrap_or_else(|e| panic!("{e}"));
        let last = walker.reports.last().expect("a playlist was checked");
        if last.discontinuity_sequence >= 1 && walker.segments.len() >= 12 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the discontinuity never left the playlist within 60 s; last playlist: {last:?}\n\
             errors: {:?}",
            walker.errors
        );
    }
    assert_no_errors("walking the live playlist", &walker);

    let segments = &walker.segments;
    let sizes: Vec<_> = segments
        .iter()
        .map(|s| (s.sequence, s.video_size, s.discontinuity))
        .collect();
    let flagged: Vec<_> = segments.iter().filter(|s| s.discontinuity).collect();
    assert_eq!(
        flagged.len(),
        1,
        "expected exactly one EXT-X-DISCONTINUITY (at the reconnect): (seq, size, disc) {sizes:?}"
    );
    let first_new = segments
        .iter()
        .position(|s| s.video_size == Some((320, 180)))
        .unwrap_or_else(|| panic!("no segment of the second publisher: {sizes:?}"));
    assert!(
        segments[first_new].discontinuity,
        "the first segment of the new publisher has no EXT-X-DISCONTINUITY: {sizes:?}"
    );
    assert!(
        segments[..first_new].iter().all(|s| s.video_size == Some((640, 360)))
            && segments[first_new..].iter().all(|s| s.video_size == Some((320, 180))),
        "segments mix the two publishers: {sizes:?}"
    );
    // 2-s GOPs cut at 2 s: one keyframe per segment, on both sides of the reconnect.
    for s in segments {
        assert_eq!(
            s.keyframes, 1,
            "segment {} holds {} keyframes (2-s GOPs, 2-s fragments)",
            s.sequence, s.keyframes
        );
    }

    // EXT-X-DISCONTINUITY-SEQUENCE: the number of discontinuities that left the window, in
    // every fetch.
    let disc_seq = segments[first_new].sequence;
    assert_eq!(walker.reports[0].media_sequence, 0, "a new stream's first playlist");
    for r in &walker.reports {
        let expected = u64::from(r.media_sequence > disc_seq);
        assert_eq!(
            r.discontinuity_sequence, expected,
            "EXT-X-DISCONTINUITY-SEQUENCE with media sequence {} (discontinuity at {disc_seq}): {r:?}",
            r.media_sequence
        );
        assert!(!r.ended, "the playlist ended across a quick reconnect: {r:?}");
    }
}

/// The publisher stops and does not return within reconnect_window_ms (1.5 s here): the
/// playlist gets EXT-X-ENDLIST and no longer changes, then after dispose_ms (3 s here) it
/// and its segments answer 404.
#[test]
fn stopped_stream_ends_then_is_removed() {
    let ctx = TestCtx::new("hls_stopped_stream_ends");
    let server = Server::start_with_config(&ctx, "[hls]\nreconnect_window_ms = 1500\ndispose_ms = 3000\n");
    let stream = "ends";
    let mut publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, stream));
    let url = server.m3u8_url(APP, stream);
    let mut walker = HlsWalker::new(&url, rules(Clip::Small));
    walk_until_listed(&mut walker, 2);
    assert!(walker.ended_body.is_none(), "ended while publishing");
    publisher.kill();

    let deadline = Instant::now() + 2 * LIMIT;
    loop {
        thread::sleep(Duration::from_millis(250));
        if let Polled::NotFound = walker.poll().unwrap_or_else(|e| panic!("{e}")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the playlist was still served {:?} after the publisher stopped (ended: {})",
            2 * LIMIT,
            walker.ended_body.is_some()
        );
    }
    assert_no_errors("walking a playlist to its end", &walker);
    let ended = walker
        .reports
        .iter()
        .rev()
        .find(|r| r.ended)
        .unwrap_or_else(|| {
            panic!(
                "the playlist disappeared without EXT-X-ENDLIST: {:?}",
                walker.reports.last()
            )
        })
        .clone();
    assert!(!ended.segments.is_empty(), "ended playlist lists no segment");
    for s in &ended.segments {
        let seg_url = resolve(&url, &s.uri);
        let (h, _) = fetch(&seg_url).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.status, 404, "{seg_url} after the playlist was removed");
    }
}

/// A publisher that comes back after the reconnect window ran out, while the ended playlist
/// is still served, gets HLS again: a new playlist, under a new packaging-run name, that
/// plays. (The packager's end and a new publisher's start once raced: the newcomer found the
/// old packager "running" a moment before it ended, and went without HLS.)
#[test]
fn a_publisher_back_after_the_playlist_ended_gets_hls_again() {
    let ctx = TestCtx::new("hls_back_after_end");
    let server = Server::start_with_config(&ctx, "[hls]\nreconnect_window_ms = 1000\ndispose_ms = 30000\n");
    let stream = "back";
    let url = server.m3u8_url(APP, stream);
    let mut publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, stream));
    let mut first = HlsWalker::new(&url, rules(Clip::Small));
    let before = walk_until_listed(&mut first, 2);
    publisher.kill();
    let deadline = Instant::now() + 2 * LIMIT;
    while first.ended_body.is_none() {
        assert!(
            Instant::now() < deadline,
            "the playlist did not end after the reconnect window"
        );
        thread::sleep(Duration::from_millis(250));
        first.poll().unwrap_or_else(|e| panic!("{e}"));
    }
    assert_no_errors("the first run", &first);
    let old_instance = segment_name_parts(&before.segments[0].uri).expect("segment name").1;

    let _publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, stream));
    // The ended playlist is served until the new run has its first segment; the new run is
    // walked from there, as a player that comes now would.
    let deadline = Instant::now() + 2 * LIMIT;
    loop {
        let (head, body) = fetch(&url).unwrap_or_else(|e| panic!("{e}"));
        if head.status == 200 && !String::from_utf8_lossy(&body).contains("#EXT-X-ENDLIST") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live playlist for the publisher that came back"
        );
        thread::sleep(Duration::from_millis(250));
    }
    let mut second = HlsWalker::new(&url, rules(Clip::Small));
    let report = walk_until_listed(&mut second, 2);
    assert!(!report.ended, "{report:?}");
    assert_no_errors("the second run", &second);
    let new_instance = segment_name_parts(&report.segments[0].uri).expect("segment name").1;
    assert_ne!(
        new_instance, old_instance,
        "a new packaging run reuses the old segment names"
    );
    let decoded = ffmpeg_decode(&url, 4, LIMIT);
    assert!(
        decoded.success() && decoded.stderr.trim().is_empty(),
        "ffmpeg decoding {url}: {}\n{}",
        status_text(&decoded),
        decoded.stderr
    );
}

/// Serving: content types, HEAD, CORS, caching, the tail of segments that left the window,
/// and 404 for what is not there.
#[test]
fn serving_headers_head_cors_and_404s() {
    let ctx = TestCtx::new("hls_serving");
    let server = Server::start(&ctx);
    let stream = "srv";
    let _publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, stream));
    let url = server.m3u8_url(APP, stream);
    let mut walker = HlsWalker::new(&url, rules(Clip::Small));
    let report = walk_until_listed(&mut walker, 1);
    let first = report.segments[0].clone();
    let first_url = resolve(&url, &first.uri);
    let cors_ok = |h: &estuary_tests::http::ResponseHead| {
        matches!(
            h.header("access-control-allow-origin"),
            Some("*" | "http://example.test")
        )
    };

    // Playlist: GET and HEAD.
    let (h, body) = fetch(&url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-type"), Some(PLAYLIST_TYPE), "{h:?}");
    assert!(cors_ok(&h), "playlist CORS: {h:?}");
    let cache = h.header("cache-control").unwrap_or_default().to_string();
    let target = report.target_duration_secs;
    assert!(
        max_age(&cache).is_some_and(|a| a <= target / 2) && !cache.contains("immutable"),
        "playlist Cache-Control {cache:?}: at most half the target duration ({target} s)"
    );
    assert!(
        cache.contains("private"),
        "playlist Cache-Control {cache:?}: its URIs carry one viewer's session, no shared cache may keep it"
    );
    assert!(!body.is_empty());
    let (hh, extra) = head(&url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hh.status, 200, "HEAD playlist: {hh:?}");
    assert_eq!(hh.header("content-type"), Some(PLAYLIST_TYPE), "{hh:?}");
    assert!(cors_ok(&hh), "HEAD playlist CORS: {hh:?}");
    assert!(
        hh.header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > 0),
        "HEAD playlist content-length: {hh:?}"
    );
    assert_eq!(extra, 0, "HEAD playlist sent a body");

    // Segment: GET and HEAD.
    let (h, body) = fetch(&first_url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(h.status, 200, "{first_url}");
    assert_eq!(h.header("content-type"), Some(SEGMENT_TYPE), "{h:?}");
    assert!(cors_ok(&h), "segment CORS: {h:?}");
    let cache = h.header("cache-control").unwrap_or_default().to_string();
    assert!(
        cache.contains("immutable") && max_age(&cache).is_some_and(|a| a >= 3600),
        "segment Cache-Control {cache:?}: immutable, long max-age"
    );
    assert!(
        !body.is_empty() && body.len() % 188 == 0,
        "segment of {} bytes",
        body.len()
    );
    let (hh, extra) = head(&first_url).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(hh.status, 200, "HEAD segment: {hh:?}");
    assert_eq!(hh.header("content-type"), Some(SEGMENT_TYPE), "{hh:?}");
    assert!(cors_ok(&hh), "HEAD segment CORS: {hh:?}");
    assert_eq!(
        hh.header("content-length"),
        Some(body.len().to_string().as_str()),
        "HEAD segment content-length vs GET body"
    );
    assert_eq!(extra, 0, "HEAD segment sent a body");

    // Unknown things.
    let base = format!("http://127.0.0.1:{}", server.http_port);
    let (_, instance, _) = segment_name_parts(&first.uri).unwrap_or_else(|| panic!("segment name {}", first.uri));
    for path in [
        format!("/{APP}/nosuch.m3u8"),
        format!("/other/{stream}.m3u8"),
        format!("/{APP}/nosuch-{instance}-{}.ts", first.sequence),
        format!("/{APP}/{stream}-0-{}.ts", first.sequence),
        format!("/{APP}/{stream}-{instance}-{}.ts", first.sequence + 1000),
    ] {
        let u = format!("{base}{path}");
        let (h, _) = fetch(&u).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.status, 404, "GET {path}");
        let (h, _) = head(&u).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.status, 404, "HEAD {path}");
    }

    // The first segment leaves the window but stays served for TAIL more segments, then 404.
    let mut served_in_tail = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        thread::sleep(POLL);
        let Polled::Playlist(Some(r)) = walker.poll().unwrap_or_else(|e| panic!("{e}")) else {
            panic!("playlist gone: {:?}", walker.errors);
        };
        let (h, _) = fetch(&first_url).unwrap_or_else(|e| panic!("{e}"));
        let behind = r.media_sequence.saturating_sub(first.sequence);
        if behind == 0 {
            assert_eq!(h.status, 200, "{first_url} while listed");
        } else if behind <= TAIL {
            assert_eq!(
                h.status, 200,
                "{first_url} left the window {behind} segment(s) ago, within the tail of {TAIL}"
            );
            served_in_tail = true;
        } else {
            assert_eq!(
                h.status, 404,
                "{first_url} left the window and the tail (media sequence {})",
                r.media_sequence
            );
            break;
        }
        assert!(Instant::now() < deadline, "the window did not slide within 90 s");
    }
    assert!(served_in_tail, "never saw the first segment in the tail");
    assert_no_errors("serving", &walker);
}

/// With the smallest window (3) and no tail, the playlist still lists as many segments as it
/// needs for three target durations (RFC 8216 §6.2.2) — and every segment it lists must be
/// served.
#[test]
fn every_listed_segment_is_served_with_a_small_window() {
    let ctx = TestCtx::new("hls_small_window");
    let server = Server::start_with_config(&ctx, "[hls]\nwindow_segments = 3\ntail_segments = 0\n");
    let stream = "small";
    let _publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, stream));
    let url = server.m3u8_url(APP, stream);
    let mut walker = HlsWalker::new(
        &url,
        WalkRules {
            window_segments: 3,
            ..rules(Clip::Small)
        },
    );
    walk_until_listed(&mut walker, 1);
    // Until segments have been removed from the front a few times.
    let deadline = Instant::now() + Duration::from_secs(90);
    while walker.reports.last().map_or(0, |r| r.media_sequence) < 3 {
        thread::sleep(POLL);
        walker.poll().unwrap_or_else(|e| panic!("{e}"));
        assert!(Instant::now() < deadline, "the window did not slide within 90 s");
    }
    // A client that joins now reads the whole playlist.
    let (_, body) = fetch(&url).unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&body).into_owned();
    for uri in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (h, _) = fetch(&resolve(&url, uri)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.status, 200, "{uri} is listed but not served:\n{text}");
    }
    assert_no_errors("a small window", &walker);
}

/// hls.js in headless Chromium (behind a recording proxy, which shows what it fetched)
/// starts before a publisher reconnect, plays across it with no fatal error, and its
/// currentTime advances more than 10 s from where it started, well past the reconnect.
#[test]
fn hls_js_plays_across_a_publisher_reconnect() {
    let ctx = TestCtx::new("hls_js_across_reconnect");
    let server = Server::start(&ctx);
    let stream = "web";
    let mut publisher = publish_ffmpeg(&ctx, Clip::Small, &server.rtmp_url(APP, stream));
    let mut walker = HlsWalker::new(&server.m3u8_url(APP, stream), rules(Clip::Small));
    walk_until_listed(&mut walker, 3);

    let proxy = RecordingProxy::start(&format!("127.0.0.1:{}", server.http_port));
    let page_url = proxy.url(&format!("/{APP}/{stream}.m3u8"));
    let player = thread::spawn(move || play_hls(&page_url, 36));

    // Reconnect once the player is fetching segments.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !proxy.requests().iter().any(|r| segment_name_parts(&r.path).is_some()) {
        assert!(
            Instant::now() < deadline && !player.is_finished(),
            "hls.js fetched no segment: {:?}",
            proxy.requests()
        );
        thread::sleep(POLL);
        walker.poll().unwrap_or_else(|e| panic!("{e}"));
    }
    for _ in 0..4 {
        thread::sleep(POLL);
        walker.poll().unwrap_or_else(|e| panic!("{e}"));
    }
    let _publisher = reconnect(&ctx, &server, &mut publisher, Clip::Small, stream);
    while !player.is_finished() {
        thread::sleep(POLL);
        walker.poll().unwrap_or_else(|e| panic!("{e}"));
    }
    let played = player.join().expect("player thread").unwrap_or_else(|e| panic!("{e}"));
    let requests = proxy.requests();
    assert!(
        played.fatal_errors.is_empty(),
        "hls.js fatal errors: {:?}\n{}",
        played.fatal_errors,
        played.raw
    );
    assert_no_errors("the stream the browser played", &walker);

    // Where things are on the player's timeline: hls.js places segments by the EXTINF of
    // the first playlist it loaded, from its first segment (media sequence m0).
    let first_playlist = requests
        .iter()
        .find_map(|r| r.playlist.clone())
        .expect("hls.js loaded a playlist");
    let m0: u64 = first_playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no media sequence in {first_playlist}"));
    let position = |seq: u64| -> f64 {
        (m0..seq)
            .map(|s| {
                walker
                    .segments
                    .iter()
                    .find(|w| w.sequence == s)
                    .map_or_else(|| panic!("segment {s} was not walked"), |w| f64::from(w.duration_secs))
            })
            .sum()
    };
    let disc = walker
        .segments
        .iter()
        .find(|s| s.discontinuity)
        .unwrap_or_else(|| panic!("no discontinuity after the reconnect: {:?}", walker.segments))
        .sequence;
    let fetched: Vec<u64> = requests
        .iter()
        .filter(|r| r.status == 200)
        .filter_map(|r| segment_name_parts(&r.path).map(|(_, _, seq)| seq))
        .collect();
    let first_fetched = *fetched.first().expect("hls.js fetched segments");
    assert!(
        first_fetched < disc,
        "hls.js started at segment {first_fetched}, after the reconnect at {disc}: {fetched:?}"
    );
    assert!(
        fetched.iter().any(|&s| s > disc),
        "hls.js fetched nothing after the reconnect at segment {disc}: {fetched:?}"
    );
    // hls.js starts inside the first segment it fetched.
    let start_bound = position(first_fetched + 1);
    let disc_at = position(disc);
    eprintln!(
        "hls.js: currentTime {} s; first playlist at media sequence {m0}; first segment \
         fetched {first_fetched} (ends at {start_bound} s); reconnect at segment {disc} \
         ({disc_at} s); fetched {fetched:?}",
        played.current_time
    );
    assert!(
        played.current_time > start_bound + 10.0,
        "currentTime {} did not advance 10 s from its start (at most {start_bound} s)\n{}",
        played.current_time,
        played.raw
    );
    assert!(
        played.current_time > disc_at + 4.0,
        "currentTime {} is not well past the reconnect at {disc_at} s\n{}",
        played.current_time,
        played.raw
    );
    assert_eq!(played.raw["videoWidth"], 320, "{}", played.raw);
}
