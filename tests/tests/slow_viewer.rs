//! Slow viewers can't hurt anyone (issue 2, item 6): one RTMP viewer stops reading while 20
//! HTTP-FLV viewers and the publisher go on. The others see every frame, the publisher keeps
//! real-time pace, the stalled viewer is disconnected with a logged reason, and the server's
//! memory stays bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use estuary_tests::{publish_and_wait_live, Clip, Server, TestCtx, Viewer};
use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult};
use socket2::{Domain, Socket, Type};

const LIMIT: Duration = Duration::from_secs(20);
/// How long the 20 viewers watch while the stalled one is stuck.
const WATCH: Duration = Duration::from_secs(12);
/// Largest RSS the server may reach in this test (debug build, 22 clients, 64-packet ring).
const RSS_BOUND_KB: u64 = 150 * 1024;

/// An RTMP player that plays and then never reads again. Its receive buffer is tiny, so the
/// server's writes to it block within a second or so instead of filling megabytes of kernel
/// buffers first.
fn stalled_rtmp_player(server: &Server, stream: &str) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect(&SocketAddr::from(([127, 0, 0, 1], server.rtmp_port)).into())
        .unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 3073];
    read_exact(&mut s, &mut s0s1s2);
    s.write_all(&s0s1s2[1..1537]).unwrap();

    let (mut session, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
    let mut outbound = vec![session.request_connection("live".into()).unwrap()];
    let mut asked_play = false;
    let deadline = Instant::now() + LIMIT;
    let mut buf = [0u8; 4096];
    loop {
        for r in outbound.drain(..) {
            if let ClientSessionResult::OutboundResponse(p) = r {
                s.write_all(&p.bytes).unwrap();
            }
        }
        assert!(Instant::now() < deadline, "stalled player: no play answer");
        let n = match s.read(&mut buf) {
            Ok(0) => panic!("server closed the stalled player before it played"),
            Ok(n) => n,
            Err(_) => continue,
        };
        for r in session.handle_input(&buf[..n]).unwrap() {
            match r {
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted) if !asked_play => {
                    asked_play = true;
                    outbound.push(session.request_playback(stream.into()).unwrap());
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::PlaybackRequestAccepted) => return s,
                r @ ClientSessionResult::OutboundResponse(_) => outbound.push(r),
                _ => {}
            }
        }
    }
}

fn read_exact(s: &mut TcpStream, out: &mut [u8]) {
    let deadline = Instant::now() + LIMIT;
    let mut got = 0;
    while got < out.len() {
        assert!(Instant::now() < deadline, "handshake: server sent {got} bytes");
        match s.read(&mut out[got..]) {
            Ok(0) => panic!("server closed during the handshake"),
            Ok(n) => got += n,
            Err(_) => {}
        }
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn stalled_viewer_is_cut_off_and_nobody_else_notices() {
    let ctx = TestCtx::new("stalled_viewer_is_cut_off_and_nobody_else_notices");
    // 19 viewers connect at once from one address, after the start-up probes: near the
    // default per-address burst of 20 new connections.
    let config = "[play]\nslow_disconnect_ms = 3000\nmax_lag_ms = 1000\nsend_buffer_bytes = 65536\n[stream]\nqueue_packets = 64\n[limits]\nmax_new_connections_per_ip_per_sec = 100\n";
    let server = Server::start_with_config(&ctx, config);
    let (_publisher, first) = publish_and_wait_live(&ctx, &server, Clip::Main, "live", "crowd");
    let _stalled = stalled_rtmp_player(&server, "crowd");
    let viewers: Vec<Viewer> = (0..19)
        .map(|_| Viewer::http_flv(&server.flv_url("live", "crowd")))
        .chain([first])
        .collect();

    let start = Instant::now();
    let mut peak_rss = 0;
    while start.elapsed() < WATCH {
        peak_rss = peak_rss.max(rss_kb(server.pid()));
        std::thread::sleep(Duration::from_millis(250));
    }

    let logs = server.logs();
    assert!(
        logs.contains("viewer stayed behind the live edge for too long"),
        "the stalled viewer was not disconnected with a reason"
    );
    for v in &viewers {
        let state = v.snapshot();
        assert!(state.ended.is_none(), "{}: disconnected: {:?}", v.label, state.ended);
        let ts: Vec<u32> = state.coded_video().map(|t| t.timestamp).collect();
        // 30 fps: consecutive frames are 33–34 ms apart; a missing frame makes a 66 ms gap.
        let gaps: Vec<(u32, u32)> = ts
            .windows(2)
            .filter(|w| w[1].wrapping_sub(w[0]) > 50)
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(gaps.is_empty(), "{}: frames missing between {gaps:?}", v.label);
        // The publisher kept real-time pace: the viewer got about 30 frames per second.
        let span = ts.last().unwrap_or(&0) - ts.first().unwrap_or(&0);
        assert!(
            span as u128 >= WATCH.as_millis() * 8 / 10,
            "{}: only {span} ms of video in {WATCH:?}",
            v.label
        );
    }
    assert!(
        peak_rss > 0 && peak_rss < RSS_BOUND_KB,
        "server RSS peaked at {peak_rss} kB"
    );
}
