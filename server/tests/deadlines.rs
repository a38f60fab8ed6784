//! End-to-end: every socket write has a deadline and every connection an idle deadline for
//! its role (issue 12, item 1). A peer that stops reading is cut with a logged reason, frees
//! its connection slot, and its `on_unpublish`/`on_close` still reach the backend; a
//! publisher that sends no media is ended and its viewers told; a kicked publisher's key is
//! free again; shutdown delivers the hooks of connections it cuts.

#[path = "deadlines/peer.rs"]
mod peer;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use peer::{Ended, Peer};
use support::{sample, wait_for, FlvViewer, Hit, HookReceiver, Server, LIMIT};

/// Another host, as the server sees it.
const OTHER_HOST: [u8; 4] = [127, 0, 0, 2];

fn receiver() -> HookReceiver {
    HookReceiver::new(|_| (200, r#"{"code":0}"#.into()))
}

/// `[hooks]` sending each of `hooks` to the receiver at `/{hook}`.
fn hooks(receiver: &HookReceiver, hooks: &[&str]) -> String {
    let mut c = String::from("[hooks]\ntimeout_ms = 5000\nretry_min_ms = 100\nretry_max_ms = 400\n");
    for hook in hooks {
        c += &format!("{hook} = [\"{}\"]\n", receiver.url(&format!("/{hook}")));
    }
    c
}

/// The hits of `action` (the body's `action`, e.g. `on_unpublish`).
fn hits_of(receiver: &HookReceiver, action: &str) -> Vec<Hit> {
    receiver
        .hits()
        .into_iter()
        .filter(|h| h.body["action"] == action)
        .collect()
}

fn client_id(hit: &Hit) -> String {
    hit.body["client_id"].as_str().unwrap_or_default().to_string()
}

/// Waits until the receiver got `action` for client `id`.
fn wait_hook(server: &Server, receiver: &HookReceiver, action: &str, id: &str) {
    let got = wait_for(LIMIT, || {
        hits_of(receiver, action)
            .iter()
            .any(|h| client_id(h) == id)
            .then_some(())
    });
    assert!(
        got.is_some(),
        "no {action} for client {id}; hooks: {:?}; log:\n{}",
        receiver.actions(),
        server.log()
    );
}

/// The client id of the publisher of `stream`, from its `on_publish`.
fn publisher_id(server: &Server, receiver: &HookReceiver, stream: &str) -> String {
    let hit = wait_for(LIMIT, || {
        hits_of(receiver, "on_publish")
            .into_iter()
            .find(|h| h.body["stream"] == stream)
    });
    let hit = hit.unwrap_or_else(|| panic!("no on_publish for {stream}; log:\n{}", server.log()));
    client_id(&hit)
}

/// `estuary_connections_timed_out_total{protocol, deadline}`, 0 when never counted.
fn timed_out(server: &Server, protocol: &str, deadline: &str) -> f64 {
    let want = [("protocol", protocol), ("deadline", deadline)];
    sample(&server.metrics(), "estuary_connections_timed_out_total", &want).unwrap_or(0.0)
}

fn wait_log(server: &Server, needle: &str) {
    let found = wait_for(LIMIT, || server.log().contains(needle).then_some(()));
    assert!(found.is_some(), "log never said {needle:?}; log:\n{}", server.log());
}

/// A publisher that keeps sending pings (so it is not silent) but stops reading: the
/// server's answers fill the socket, its write times out, the connection is cut with the
/// reason logged, the backend hears `on_unpublish` then `on_close`, and the address's one
/// connection slot and the key are free for the next publisher.
#[test]
fn a_publisher_that_stops_reading_is_cut_and_its_hooks_go_out() {
    let receiver = receiver();
    let mut config = hooks(&receiver, &["on_publish", "on_unpublish", "on_close"]);
    config += "[rtmp]\nwrite_timeout_ms = 1000\n";
    config += "[play]\nsend_buffer_bytes = 4096\n";
    config += "[limits]\nmax_connections_per_ip = 1\nper_ip_exempt = [\"127.0.0.1\"]\n";
    let server = Server::start("stalled-publisher", &config);

    let mut stalled = Peer::connect(server.rtmp, OTHER_HOST, Some(4096), "live");
    stalled.publish("stall").expect("publish accepted");
    let id = publisher_id(&server, &receiver, "stall");
    stalled.flood_pings_until_blocked();

    wait_log(&server, "stopped reading");
    wait_hook(&server, &receiver, "on_unpublish", &id);
    wait_hook(&server, &receiver, "on_close", &id);
    let actions: Vec<String> = receiver
        .hits()
        .iter()
        .filter(|h| client_id(h) == id)
        .map(|h| h.body["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        actions,
        ["on_publish", "on_unpublish", "on_close"],
        "the stalled publisher's hooks, in order"
    );
    assert_eq!(timed_out(&server, "rtmp", "write"), 1.0, "counted in /metrics");
    assert!(
        server.clients_of("publisher").is_empty(),
        "the stalled publisher is still listed"
    );
    // Its socket is closed: what it never read is followed by EOF.
    assert_eq!(
        stalled.drain_to_eof(LIMIT),
        Ended::Closed,
        "the stalled publisher's socket stays open"
    );

    // Same address (one connection allowed), same key: both were given back.
    let mut next = Peer::connect(server.rtmp, OTHER_HOST, None, "live");
    next.publish("stall").expect("the key is published again");
}

/// A publisher that connects and publishes, sends a little audio while its viewers join, then
/// only pings (answering the server's pings, reading everything): after
/// `stream.no_media_timeout_ms` it is cut and its stream ended. The RTMP viewer gets
/// `NetStream.Play.UnpublishNotify` and its connection ends, the HTTP-FLV viewer's response
/// ends, the backend hears `on_unpublish`.
#[test]
fn a_publisher_that_sends_no_media_is_ended_and_its_viewers_told() {
    let receiver = receiver();
    let mut config = hooks(&receiver, &["on_publish", "on_unpublish"]);
    config += "[stream]\nno_media_timeout_ms = 1500\n";
    config += "[play]\nwait_for_publisher_ms = 1000\n";
    let server = Server::start("no-media", &config);

    let mut publisher = Peer::connect(server.rtmp, [127, 0, 0, 1], None, "live");
    publisher.publish("quiet").expect("publish accepted");
    let id = publisher_id(&server, &receiver, "quiet");
    let mut rtmp_viewer = Peer::connect(server.rtmp, [127, 0, 0, 1], None, "live");
    rtmp_viewer.play("quiet").expect("play accepted");
    let flv_viewer = FlvViewer::open(server.http, "/live/quiet.flv");
    assert_eq!(flv_viewer.status, 200);
    // Media until both viewers are in (so the timer cannot end the stream before they join).
    let joined = wait_for(LIMIT, || {
        publisher.send_audio();
        let both = server.clients_of("rtmp-play").len() == 1 && server.clients_of("flv-play").len() == 1;
        both.then_some(())
    });
    assert!(joined.is_some(), "the viewers did not join; log:\n{}", server.log());

    // Only pings from now on; the publisher reads and answers everything.
    let ended = wait_for(LIMIT, || {
        publisher.send_ping();
        publisher.pump(Duration::from_millis(200)).err()
    });
    assert!(
        ended.is_some(),
        "the publisher without media was not cut; log:\n{}",
        server.log()
    );
    wait_log(&server, "no audio or video");
    assert_eq!(timed_out(&server, "rtmp", "no_media"), 1.0, "counted in /metrics");
    wait_hook(&server, &receiver, "on_unpublish", &id);
    assert_eq!(
        rtmp_viewer.wait_closed(LIMIT),
        Ended::Closed,
        "the RTMP viewer stays connected"
    );
    assert!(
        rtmp_viewer
            .status_codes
            .iter()
            .any(|c| c == "NetStream.Play.UnpublishNotify"),
        "the RTMP viewer was not told: {:?}",
        rtmp_viewer.status_codes
    );
    let flv_ended = wait_for(LIMIT, || flv_viewer.has_ended().then_some(()));
    assert!(flv_ended.is_some(), "the HTTP-FLV response did not end");

    // The key is free again.
    let mut next = Peer::connect(server.rtmp, [127, 0, 0, 1], None, "live");
    next.publish("quiet").expect("the key is published again");
}

/// A client that connects but never publishes or plays, though it keeps pinging, is closed
/// after `rtmp.handshake_timeout_ms` with the reason logged.
#[test]
fn a_client_that_never_publishes_or_plays_is_closed() {
    let server = Server::start("pre-connect", "[rtmp]\nhandshake_timeout_ms = 1500\n");
    let mut idle = Peer::connect(server.rtmp, [127, 0, 0, 1], None, "live");
    let closed = wait_for(LIMIT, || {
        idle.send_ping();
        idle.pump(Duration::from_millis(200)).err()
    });
    assert!(
        closed.is_some(),
        "the idle client stays connected; log:\n{}",
        server.log()
    );
    wait_log(&server, "did not start publishing or playing");
    assert_eq!(timed_out(&server, "rtmp", "not_started"), 1.0, "counted in /metrics");
}

/// `DELETE /api/v1/clients/{id}` on a publisher: its socket closes, `on_unpublish` and
/// `on_close` go out, and the key can be published again.
#[test]
fn a_kicked_publisher_is_closed_and_its_key_is_free() {
    let receiver = receiver();
    let config = hooks(&receiver, &["on_publish", "on_unpublish", "on_close"]);
    let server = Server::start("kick-publisher", &config);
    let mut publisher = Peer::connect(server.rtmp, [127, 0, 0, 1], None, "live");
    publisher.publish("kicked").expect("publish accepted");
    publisher.send_audio();
    let id = publisher_id(&server, &receiver, "kicked");
    let listed = wait_for(LIMIT, || {
        server
            .clients_of("publisher")
            .iter()
            .any(|c| c["id"].as_str() == Some(id.as_str()))
            .then_some(())
    });
    assert!(
        listed.is_some(),
        "publisher {id} not listed: {:?}",
        server.clients_of("publisher")
    );
    let (status, body) = server.delete(&format!("/api/v1/clients/{id}"));
    assert_eq!(status, 200, "kick answered {body}");
    assert_eq!(
        publisher.wait_closed(LIMIT),
        Ended::Closed,
        "the kicked publisher's socket stays open"
    );
    wait_hook(&server, &receiver, "on_unpublish", &id);
    wait_hook(&server, &receiver, "on_close", &id);
    let mut next = Peer::connect(server.rtmp, [127, 0, 0, 1], None, "live");
    next.publish("kicked").expect("the key is published again");
}

/// A stalled HTTP-FLV viewer: a connection that asks for the stream and never reads. `first`
/// is sent (and its answer read) before, on the same connection: a request for something
/// else puts the viewer on hyper's path, none on the raw-socket one.
fn stalled_flv_viewer(port: u16, path: &str, first: Option<&str>) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .expect("connect");
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    if let Some(first) = first {
        write!(s, "GET {first} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("first request");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let mut length = 0usize;
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            assert!(std::time::Instant::now() < deadline, "no answer to {first}");
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => panic!("closed after {first}"),
                Ok(_) => {}
                Err(_) => continue,
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().expect("content-length");
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).expect("first body");
        assert!(r.buffer().is_empty(), "nothing past the first answer");
    }
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("flv request");
    s
}

/// Reads what the server sent until EOF: true if the server closed the connection.
fn closed_by_server(mut s: TcpStream) -> bool {
    let deadline = std::time::Instant::now() + LIMIT;
    let mut buf = vec![0u8; 64 * 1024];
    while std::time::Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Two HTTP-FLV viewers that never read, one on each of the server's FLV paths (the raw
/// socket, and hyper after a first request): both are cut after `play.slow_disconnect_ms`
/// with the reason logged, their `on_stop` goes out, and a viewer that reads is not
/// disturbed.
#[test]
fn stalled_http_flv_viewers_are_cut_on_both_paths() {
    let receiver = receiver();
    let mut config = hooks(&receiver, &["on_play", "on_stop"]);
    config += "[play]\nslow_disconnect_ms = 1500\nsend_buffer_bytes = 4096\n";
    let server = Server::start("stalled-flv", &config);
    let _publisher = server.publish("live/cam", "publisher.log");
    server.wait_live("live", "cam");
    let reading = FlvViewer::open(server.http, "/live/cam.flv");
    assert_eq!(reading.status, 200);

    let raw = stalled_flv_viewer(server.http, "/live/cam.flv", None);
    let through_hyper = stalled_flv_viewer(server.http, "/live/cam.flv", Some("/healthz"));
    let plays = wait_for(LIMIT, || (hits_of(&receiver, "on_play").len() == 3).then_some(()));
    assert!(plays.is_some(), "three on_play: {:?}", receiver.actions());

    let stops = wait_for(LIMIT, || (hits_of(&receiver, "on_stop").len() == 2).then_some(()));
    assert!(
        stops.is_some(),
        "the stalled viewers were not cut: {:?}; log:\n{}",
        receiver.actions(),
        server.log()
    );
    wait_log(&server, "http-flv viewer too slow");
    wait_log(&server, "stopped reading");
    assert_eq!(
        timed_out(&server, "http", "write"),
        1.0,
        "the hyper viewer, counted in /metrics"
    );
    assert!(closed_by_server(raw), "the raw-socket viewer's connection stays open");
    assert!(
        closed_by_server(through_hyper),
        "the hyper viewer's connection stays open"
    );
    assert!(!reading.has_ended(), "the viewer that reads was cut too");
    let before = reading.bytes();
    let more = wait_for(LIMIT, || (reading.bytes() > before).then_some(()));
    assert!(more.is_some(), "the viewer that reads gets nothing any more");
}

/// SIGTERM with a publisher that stopped reading (its write stuck far longer than any
/// shutdown grace) and a well-behaved one: both are cut, and the backend hears `on_unpublish`
/// and `on_close` of each before the process exits.
#[test]
fn shutdown_delivers_the_hooks_of_every_publisher() {
    let receiver = receiver();
    let mut config = hooks(&receiver, &["on_publish", "on_unpublish", "on_close"]);
    config += "[rtmp]\nwrite_timeout_ms = 600000\n";
    config += "[play]\nsend_buffer_bytes = 4096\n";
    let mut server = Server::start("shutdown-hooks", &config);
    let _good = server.publish("live/good", "good.log");
    server.wait_live("live", "good");
    let good = publisher_id(&server, &receiver, "good");
    let mut stalled = Peer::connect(server.rtmp, [127, 0, 0, 1], Some(4096), "live");
    stalled.publish("stalled").expect("publish accepted");
    let stalled_id = publisher_id(&server, &receiver, "stalled");
    stalled.flood_pings_until_blocked();

    server.stop();
    for id in [&good, &stalled_id] {
        for action in ["on_unpublish", "on_close"] {
            assert!(
                hits_of(&receiver, action).iter().any(|h| client_id(h) == *id),
                "no {action} for {id} at shutdown: {:?}; log:\n{}",
                receiver.actions(),
                server.log()
            );
        }
    }
}
