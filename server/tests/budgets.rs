//! End-to-end: the byte budgets (issue 12) against the real binary. A keyframe over the
//! message budget, half-sent messages over the chunk-stream budget and a peer that never
//! connects each close only the offending connection, with the reason logged and counted,
//! while another stream plays on; a publisher whose timestamps freeze cannot make held
//! audio, the open HLS segment or the server's memory grow.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use estuary_protocol::rtmp::client::{ClientConfig, ClientMode, ClientSession};
use support::{get, sample, wait_for, FlvViewer, KeepAlive, Server, LIMIT};

/// OBS 29.0.2's AVC sequence header record (High 3.1, 1280x720).
const AVC_RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1c, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01,
    0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb, 0x01, 0x00,
    0x04, 0x68, 0xef, 0xbc, 0xb0,
];
/// AAC LC, 44.1 kHz, stereo.
const AAC_CONFIG: &[u8] = &[0x12, 0x10];

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// An RTMP peer that sends exactly what the test says: after `connect` and `publish` (through
/// the protocol crate's client session) or right after the handshake.
struct RawPeer {
    socket: TcpStream,
    session: ClientSession,
}

fn rtmp_socket(server: &Server) -> TcpStream {
    let socket = TcpStream::connect(("127.0.0.1", server.rtmp)).expect("connect to rtmp");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    socket
}

impl RawPeer {
    /// Connected and publishing on `path` (`app/stream`).
    fn publishing(server: &Server, path: &str) -> RawPeer {
        let config = ClientConfig::from_url(&server.rtmp_url(path), ClientMode::Publish).expect("rtmp url");
        let mut peer = RawPeer {
            socket: rtmp_socket(server),
            session: ClientSession::new(config).expect("client session"),
        };
        peer.pump_until(|s| s.is_started());
        peer
    }

    /// After the simple handshake (C0+C1 of zeros, C2 = S1) and nothing else: no `connect`.
    fn handshaken(server: &Server) -> RawPeer {
        let config = ClientConfig::from_url(&server.rtmp_url("live/x"), ClientMode::Play).expect("rtmp url");
        let mut peer = RawPeer {
            socket: rtmp_socket(server),
            session: ClientSession::new(config).expect("client session"),
        };
        let mut c0c1 = vec![3u8];
        c0c1.resize(1 + 1536, 0);
        peer.socket.write_all(&c0c1).expect("send C0+C1");
        let mut s = vec![0u8; 1 + 1536 + 1536];
        let (mut got, deadline) = (0, Instant::now() + LIMIT);
        while got < s.len() {
            assert!(Instant::now() < deadline, "no S0+S1+S2");
            match peer.socket.read(&mut s[got..]) {
                Ok(0) => panic!("the server closed during the handshake"),
                Ok(n) => got += n,
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        peer.socket.write_all(&s[1..1537]).expect("send C2");
        peer
    }

    fn pump_until(&mut self, done: impl Fn(&ClientSession) -> bool) {
        let deadline = Instant::now() + LIMIT;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(out) = self.session.take_output() {
                self.socket.write_all(&out).expect("send to the server");
            }
            if done(&self.session) {
                return;
            }
            assert!(Instant::now() < deadline, "the server did not answer in time");
            match self.socket.read(&mut chunk) {
                Ok(0) => panic!("the server closed the connection"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) => continue,
                Err(e) => panic!("read: {e}"),
            }
            while let Some(_event) = self.session.handle_input(&mut buf).expect("client session") {}
        }
    }

    /// Sends one media message; false once the server has closed the connection.
    fn media(&mut self, type_id: u8, timestamp: u32, payload: &[u8]) -> bool {
        let bytes = self.session.media_message(type_id, timestamp, payload);
        self.socket.write_all(&bytes).is_ok()
    }

    fn send(&mut self, bytes: &[u8]) {
        // The server may have closed already; the read in `closed_by_server` decides.
        let _ = self.socket.write_all(bytes);
    }

    /// True once the server closed the connection (within the limit).
    fn closed_by_server(&mut self) -> bool {
        let deadline = Instant::now() + LIMIT;
        let mut buf = [0u8; 16 * 1024];
        while Instant::now() < deadline {
            match self.socket.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// An AVC video tag body: keyframe or not, one NAL unit of `size` bytes.
fn video(keyframe: bool, size: usize) -> Vec<u8> {
    let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    body.extend_from_slice(&(size as u32).to_be_bytes());
    body.push(if keyframe { 0x65 } else { 0x41 });
    body.extend((1..size).map(|i| (i * 31) as u8));
    body
}

fn headers(peer: &mut RawPeer) {
    let mut avc = vec![0x17, 0, 0, 0, 0];
    avc.extend_from_slice(AVC_RECORD);
    assert!(peer.media(9, 0, &avc));
    let mut aac = vec![0xaf, 0];
    aac.extend_from_slice(AAC_CONFIG);
    assert!(peer.media(8, 0, &aac));
}

/// `estuary_budget_exceeded_total{budget}`, 0 when never counted.
fn exceeded(server: &Server, budget: &str) -> f64 {
    sample(
        &server.metrics(),
        "estuary_budget_exceeded_total",
        &[("budget", budget)],
    )
    .unwrap_or(0.0)
}

/// A fmt-0 chunk header on `csid` (64..=319, two-byte basic header) announcing a `len`-byte
/// video message, then `first` bytes of it: a message left half sent.
fn half_message(csid: u32, len: u32, first: usize) -> Vec<u8> {
    let mut wire = vec![0x00, (csid - 64) as u8, 0, 0, 0];
    wire.extend_from_slice(&len.to_be_bytes()[1..]);
    wire.push(9);
    wire.extend_from_slice(&1u32.to_le_bytes());
    wire.resize(wire.len() + first, 0);
    wire
}

/// Each connection budget closes only the connection that reached it, with the reason in the
/// log and `estuary_budget_exceeded_total{budget}` counting it; a healthy stream's HTTP-FLV
/// viewer keeps receiving throughout.
#[test]
fn a_connection_over_its_byte_budget_is_closed_and_nothing_else_is() {
    let server = Server::start(
        "conn-budgets",
        "[limits]\nmax_message_bytes = 1048576\nmax_chunk_streams_bytes = 1048576\nmax_preconnect_bytes = 16384\n",
    );
    let _healthy = server.publish("live/healthy", "ffmpeg-healthy.log");
    server.wait_live("live", "healthy");
    let viewer = FlvViewer::open(server.http, "/live/healthy.flv");
    let keeps_playing = |what: &str| {
        let before = viewer.bytes();
        wait_for(LIMIT, || (viewer.bytes() > before + 20_000).then_some(()))
            .unwrap_or_else(|| panic!("after {what}: the healthy viewer stopped receiving"));
    };
    keeps_playing("start");

    // A publisher's 2 MiB keyframe, over the 1 MiB message budget.
    let mut big = RawPeer::publishing(&server, "live/big");
    headers(&mut big);
    big.media(9, 40, &video(true, 2 * 1024 * 1024));
    assert!(
        big.closed_by_server(),
        "the 2 MiB keyframe's publisher is still connected"
    );
    assert!(server.log().contains("is over the maximum 1048576"));
    assert_eq!(exceeded(&server, "message"), 1.0);
    keeps_playing("the oversized keyframe");

    // A publisher whose chunk streams hold half-sent 300 KB messages: the fourth is over
    // the 1 MiB the connection's chunk streams may hold.
    let mut halves = RawPeer::publishing(&server, "live/halves");
    let chunk = halves.session.out_chunk_size() as usize;
    for csid in 64..72 {
        halves.send(&half_message(csid, 300_000, chunk));
    }
    assert!(
        halves.closed_by_server(),
        "the publisher of half messages is still connected"
    );
    assert!(server.log().contains("over the budget of 1048576"));
    assert_eq!(exceeded(&server, "chunk_streams"), 1.0);
    keeps_playing("the half-sent messages");

    // A peer that never sends `connect` but opens chunk stream after chunk stream, each with
    // the first 128 bytes of a 1000-byte message: cut at the 16 KiB pre-connect budget.
    let mut stranger = RawPeer::handshaken(&server);
    for csid in 64..320 {
        stranger.send(&half_message(csid, 1000, 128));
    }
    assert!(
        stranger.closed_by_server(),
        "the peer that never connected is still connected"
    );
    assert!(server.log().contains("over the pre-connect budget of 16384"));
    assert_eq!(exceeded(&server, "pre_connect"), 1.0);
    keeps_playing("the peer that never connected");
    assert!(!server.log().contains("panicked"));
}

/// A publisher whose timestamps freeze (every packet at the same time) for far longer than
/// any budget: its audio is not held past `hold_max_bytes`, every HLS segment is cut at
/// `max_segment_bytes` (and the playlist stays short), and the server's memory stays flat
/// while 200 MB go through.
#[test]
fn frozen_timestamps_stay_within_the_stream_budgets() {
    let segment_budget = 512 * 1024;
    let server = Server::start(
        "frozen",
        &format!(
            "[stream]\nhold_max_bytes = 65536\ngop_cache_max_bytes = 1048576\nring_max_bytes = 4194304\n\
             [hls]\nmax_segment_bytes = {segment_budget}\n"
        ),
    );
    let mut peer = RawPeer::publishing(&server, "live/frozen");
    headers(&mut peer);
    let frame = video(false, 20_000);
    let keyframe = video(true, 20_000);
    let audio = {
        let mut a = vec![0xaf, 1];
        a.extend((0..400).map(|i| i as u8));
        a
    };
    // Everything at 1000 ms: 20 KB frames with audio between, a keyframe every 50 frames;
    // then runs of audio alone, which waits for a video frame that does not come.
    let send_mb = |peer: &mut RawPeer, mb: usize| {
        let mut sent = 0;
        let mut i = 0usize;
        while sent < mb * 1_000_000 {
            let v = if i.is_multiple_of(50) { &keyframe } else { &frame };
            assert!(peer.media(9, 1000, v), "the server closed the publisher");
            assert!(peer.media(8, 1000, &audio));
            sent += v.len() + audio.len();
            if i.is_multiple_of(100) {
                for _ in 0..500 {
                    assert!(peer.media(8, 1000, &audio));
                    sent += audio.len();
                }
            }
            i += 1;
        }
    };
    // Warm up: everything any stream allocates (segments in the store, the GOP cache, the
    // ring) is there before the measure.
    send_mb(&mut peer, 20);
    let playlist_ready = wait_for(LIMIT, || {
        get(server.http, "/live/frozen.m3u8", "")
            .ok()
            .filter(|r| r.status == 200)
    });
    assert!(playlist_ready.is_some(), "no playlist for the frozen stream");
    let before = server.rss_kb();
    let cuts_before = exceeded(&server, "hls_segment");
    send_mb(&mut peer, 200);
    let after = server.rss_kb();
    eprintln!("VmRSS after 20 MB of frozen timestamps: {before} kB, after 200 MB more: {after} kB");
    assert!(
        after.saturating_sub(before) < 48 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
    assert!(exceeded(&server, "hold") > 0.0, "held audio never reached its budget");
    assert!(
        exceeded(&server, "gop_cache") > 0.0,
        "50-frame GOPs of 1 MB never outgrew the cache"
    );
    // (The packager may fall a ring behind such a flood and skip to a keyframe, so not every
    // byte reaches a segment: the cuts are counted, not predicted.)
    let cuts = exceeded(&server, "hls_segment");
    assert!(
        cuts > cuts_before,
        "no segment was cut at the budget while 200 MB went in ({cuts})"
    );

    // What a player gets: a short playlist of segments each within the budget. While the
    // flood goes on, segments of no duration come and go within milliseconds (faster than a
    // player could fetch one), so the playlist is read once the publisher left and it is
    // still.
    drop(peer);
    let mut http = KeepAlive::connect(server.http).expect("connect");
    let mut last = String::new();
    let playlist = wait_for(LIMIT, || {
        let (status, body) = http.get("/live/frozen.m3u8").expect("playlist");
        assert_eq!(status, 200);
        let now = String::from_utf8_lossy(&body).to_string();
        let still = now == last;
        last = now;
        still.then(|| last.clone())
    })
    .expect("the playlist never settled after the publisher left");
    let uris: Vec<&str> = playlist.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        (1..=20).contains(&uris.len()),
        "{} segments listed:\n{playlist}",
        uris.len()
    );
    for uri in uris {
        let (status, segment) = http.get(&format!("/live/{uri}")).expect("segment");
        assert_eq!(status, 200, "{uri}");
        assert!(
            segment.len() <= segment_budget,
            "{uri} is {} bytes, over hls.max_segment_bytes",
            segment.len()
        );
    }
}
