//! End-to-end: the limits per client and in total against the real binary — per-IP
//! connection caps and rates on both listeners, signed HLS session tokens under a flood of
//! forged ones, viewers per stream on RTMP, HTTP-FLV and HLS, and keys nobody publishes kept
//! out of the listings.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{get, parse_metrics, sample, wait_for, FlvViewer, HookReceiver, KeepAlive, Server, LIMIT};

fn connect(port: u16) -> TcpStream {
    TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect")
}

/// Whether the server closed `s` (EOF or reset) rather than keeping it open and silent.
fn closed_by_server(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 1];
    let closed = match { s }.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).expect("blocking");
    closed
}

/// Whether the server closes `s` (EOF or reset) within `limit`.
fn closed_by_server_within(s: &TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).expect("read timeout");
    let mut buf = [0u8; 1];
    let closed = match { s }.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    };
    s.set_read_timeout(None).expect("read timeout");
    closed
}

/// `/metrics` once the server takes HTTP connections again (after the test let go of its
/// own).
fn rejected_when_reachable(server: &Server, protocol: &str, reason: &str) -> f64 {
    wait_for(LIMIT, || {
        get(server.http, "/healthz", "").ok().filter(|r| r.status == 200)?;
        Some(server.rejected(protocol, reason))
    })
    .expect("the server answers /metrics again")
}

/// `limits.max_connections_per_ip = 4`: four connections to each port stay open, the fifth
/// and sixth are closed at once and counted, and one warning is logged for them all. The
/// metrics are read over a keep-alive connection that is one of the four on the HTTP port,
/// so reading them is never itself refused.
#[test]
fn the_connection_past_the_per_ip_cap_is_closed_at_once() {
    let server = Server::start(
        "per-ip",
        "[limits]\nmax_connections_per_ip = 4\nmax_new_connections_per_ip_per_sec = 0\n",
    );
    let mut metrics = KeepAlive::connect(server.http).expect("connect");
    let mut read = |name: &str, want: &[(&str, &str)]| {
        let (status, body) = metrics.get("/metrics").expect("/metrics");
        assert_eq!(status, 200);
        sample(&parse_metrics(&String::from_utf8_lossy(&body)), name, want).unwrap_or(0.0)
    };
    // The start-up probes' connections are gone: only the metrics connection's task is left.
    wait_for(LIMIT, || (read("estuary_tracked_tasks", &[]) <= 1.0).then_some(()))
        .expect("the start-up probes' connections never ended");
    for (port, protocol, open) in [(server.rtmp, "rtmp", 4), (server.http, "http", 3)] {
        let held: Vec<TcpStream> = (0..open).map(|_| connect(port)).collect();
        let extra: Vec<TcpStream> = (0..2).map(|_| connect(port)).collect();
        for s in &extra {
            assert!(
                closed_by_server_within(s, LIMIT),
                "the connection past the cap is still open (port {port})"
            );
        }
        let want = [("protocol", protocol), ("reason", "per_ip")];
        assert_eq!(read("estuary_connections_rejected_total", &want), 2.0, "{protocol}");
        for s in &held {
            assert!(
                !closed_by_server(s),
                "a connection within the cap was closed (port {port})"
            );
        }
        drop(held);
        // The next port's connections count from zero once these are gone.
        wait_for(LIMIT, || (read("estuary_tracked_tasks", &[]) <= 1.0).then_some(()))
            .expect("the held connections never ended");
    }
    let warnings = server.log().matches("limits.max_connections_per_ip reached").count();
    assert_eq!(warnings, 1, "one warning for the address, not one per connection");
}

/// `limits.max_new_connections_per_ip_per_sec = 5`: of 15 connections opened at once, the
/// burst (5, maybe one more refilled meanwhile) stays open and the rest is closed at once and
/// counted; a second later the address may connect again.
#[test]
fn new_connections_per_second_are_limited_per_ip() {
    let server = Server::start(
        "rate",
        "[limits]\nmax_new_connections_per_ip_per_sec = 5\nmax_connections_per_ip = 0\n",
    );
    // The start-up probes spent tokens of the HTTP bucket; let both refill.
    std::thread::sleep(Duration::from_millis(1200));
    let conns: Vec<TcpStream> = (0..15).map(|_| connect(server.rtmp)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let refused = conns.iter().filter(|s| closed_by_server(s)).count();
    assert!(
        (8..=10).contains(&refused),
        "{refused} of 15 refused, expected 15 - 5 (+1 refill)"
    );
    drop(conns);
    assert_eq!(rejected_when_reachable(&server, "rtmp", "rate"), refused as f64);
    std::thread::sleep(Duration::from_millis(1200));
    let again = connect(server.rtmp);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!closed_by_server(&again), "the bucket refilled");
}

/// Random 48-hex tokens and garbage, for one session each if the server believed them.
fn forged_tokens(n: usize) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| match i % 4 {
            0 => format!("{:016x}{:016x}", next(), next()),
            1 => format!("{:016x}", next()),
            _ => format!("{:016x}{:016x}{:016x}", next(), next(), next()),
        })
        .collect()
}

/// The token on the first segment URI of `playlist`, and that URI.
fn session_of(playlist: &str) -> (String, String) {
    let uri = playlist
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("session="))
        .expect("a segment URI with a session token")
        .to_string();
    let token = uri.split("session=").nth(1).expect("token").to_string();
    (token, uri)
}

/// 2000 playlist and 2000 segment requests with forged `?session=` tokens: every one is a
/// 403, no session is created, the server's RSS does not grow, and the hook receiver's
/// `on_play` hears only of the one real session.
#[test]
fn a_flood_of_forged_session_tokens_creates_nothing_and_reaches_no_hook() {
    let receiver = HookReceiver::new(|_| (200, r#"{"code":0}"#.into()));
    let config = format!(
        "[hooks]\non_play = [\"{}\"]\ntimeout_ms = 3000\n",
        receiver.url("/play")
    );
    let server = Server::start("flood", &config);
    let _publisher = server.publish("live/flood", "ffmpeg-flood.log");
    server.wait_live("live", "flood");
    let plays = || receiver.hits().iter().filter(|h| h.body["action"] == "on_play").count();
    let mut http = KeepAlive::connect(server.http).expect("connect");
    let started = std::time::Instant::now();
    // Warm up what any first request allocates (hyper's buffers, the 403's path).
    for t in forged_tokens(50) {
        http.get(&format!("/live/flood.m3u8?session={t}")).expect("request");
    }
    let before = server.rss_kb();
    for t in forged_tokens(2000) {
        let (status, _) = http.get(&format!("/live/flood.m3u8?session={t}")).expect("request");
        assert_eq!(status, 403, "forged token {t:?} on the playlist");
    }
    assert_eq!(plays(), 0, "a forged token reached on_play");
    assert!(
        server.clients_of("hls-play").is_empty(),
        "a forged token made a session"
    );

    // The one real session: a playlist with no token gets a signed one.
    let (status, body) =
        wait_for(LIMIT, || http.get("/live/flood.m3u8").ok().filter(|(s, _)| *s == 200)).expect("the playlist");
    assert_eq!(status, 200);
    let (token, uri) = session_of(&String::from_utf8_lossy(&body));
    assert_eq!(plays(), 1);
    let segment = uri.split('?').next().expect("segment path").to_string();
    let (status, _) = http.get(&format!("/live/{uri}")).expect("segment");
    assert_eq!(status, 200, "the real session's segment");
    for t in forged_tokens(2000) {
        let (status, _) = http.get(&format!("/live/{segment}?session={t}")).expect("request");
        assert_eq!(status, 403, "forged token {t:?} on a segment");
    }
    // A real token does not open another stream.
    let (status, _) = http.get(&format!("/live/other.m3u8?session={token}")).expect("request");
    assert_eq!(status, 403, "a token for live/flood on live/other");
    let after = server.rss_kb();
    eprintln!("VmRSS before the flood: {before} kB, after 4000 forged tokens: {after} kB");
    assert!(
        after.saturating_sub(before) < 5 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
    assert_eq!(plays(), 1, "on_play heard of more than the real session");
    assert_eq!(server.clients_of("hls-play").len(), 1, "sessions: one");
    let forged = server.rejected("hls", "bad_token");
    assert!(forged >= 4051.0, "bad tokens counted: {forged}");
    let warnings = server.log().matches("hls request refused").count() as u64;
    let allowed = 1 + started.elapsed().as_secs() / 10;
    assert!(
        (1..=allowed).contains(&warnings),
        "{warnings} warnings: one per address every 10 s, not one per request"
    );
}

/// `limits.max_viewers_per_stream = 2`: with two HTTP-FLV viewers, a third gets 429, an RTMP
/// player `NetStream.Play.Failed` (ffmpeg exits with the reason), a new HLS session 429; when
/// a viewer leaves, another gets in.
#[test]
fn the_viewer_past_max_viewers_per_stream_is_refused() {
    let server = Server::start("viewers", "[limits]\nmax_viewers_per_stream = 2\n");
    let _publisher = server.publish("live/v", "ffmpeg-v.log");
    server.wait_live("live", "v");
    let first = FlvViewer::open(server.http, "/live/v.flv");
    let second = FlvViewer::open(server.http, "/live/v.flv");
    assert_eq!((first.status, second.status), (200, 200));
    let third = get(server.http, "/live/v.flv", "").expect("request");
    assert_eq!(third.status, 429, "the third HTTP-FLV viewer");
    let mut player = server.play_rtmp("live/v", "ffmpeg-play-refused.log");
    let status = player.wait(LIMIT).expect("the refused ffmpeg exits");
    assert!(!status.success());
    let said = std::fs::read_to_string(server.dir.join("ffmpeg-play-refused.log")).unwrap_or_default();
    assert!(
        said.contains("max_viewers_per_stream"),
        "ffmpeg did not report the refusal: {said}"
    );
    let hls = get(server.http, "/live/v.m3u8", "").expect("request");
    assert_eq!(hls.status, 429, "a new HLS session past the limit");
    assert!(server.rejected("http_flv", "max_viewers") >= 1.0);
    assert!(server.rejected("rtmp", "max_viewers") >= 1.0);
    assert!(server.rejected("hls", "max_viewers") >= 1.0);
    drop(first);
    let again = wait_for(LIMIT, || {
        let v = FlvViewer::open(server.http, "/live/v.flv");
        (v.status == 200).then_some(v)
    });
    assert!(again.is_some(), "a place freed by a viewer that left");
}

/// An `.flv` request for a key nobody publishes waits for a publisher, but the key is not a
/// stream in `/api/v1/streams` or `/metrics` while it waits; an HLS playlist for it is a 404
/// that makes no session. Once a publisher comes, the waiting viewer plays and the stream is
/// listed.
#[test]
fn a_key_nobody_publishes_is_not_listed_while_a_viewer_waits() {
    let server = Server::start("unlisted", "[play]\nwait_for_publisher_ms = 20000\n");
    let mut waiting = connect(server.http);
    write!(waiting, "GET /live/nobody.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    std::thread::sleep(Duration::from_millis(500));
    let (_, streams) = server.api("/api/v1/streams");
    assert_eq!(streams["streams"].as_array().map(Vec::len), Some(0), "{streams}");
    let (status, _) = server.api("/api/v1/streams/live/nobody");
    assert_eq!(status, 404);
    let m = server.metrics();
    assert_eq!(sample(&m, "estuary_streams", &[]), Some(0.0));
    assert!(
        !m.iter()
            .any(|(_, labels, _)| labels.iter().any(|(k, v)| k == "stream" && v == "nobody")),
        "a series names the unpublished key"
    );
    let hls = get(server.http, "/live/nobody.m3u8", "").expect("request");
    assert_eq!(hls.status, 404);
    assert!(
        server.clients_of("hls-play").is_empty(),
        "a 404 playlist made a session"
    );

    let _publisher = server.publish("live/nobody", "ffmpeg-nobody.log");
    server.wait_live("live", "nobody");
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = [0u8; 12];
    waiting.read_exact(&mut head).expect("the waiting viewer's answer");
    assert_eq!(&head, b"HTTP/1.1 200", "the waiting viewer plays");
    let (_, streams) = server.api("/api/v1/streams");
    assert_eq!(streams["streams"][0]["name"], "nobody");
}
