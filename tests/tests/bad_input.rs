//! Bad input (issue 2, item 8): each kind of malformed RTMP closes only the offending
//! connection, with a logged reason, while another stream's publisher and viewer carry on
//! and the server keeps running.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use estuary_protocol::rtmp::chunker::chunk_message;
use estuary_tests::{publish_and_wait_live, Clip, Server, TestCtx, Viewer};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};

const LIMIT: Duration = Duration::from_secs(15);

/// A raw RTMP client for sending what no real client would.
struct RawClient {
    socket: TcpStream,
}

impl RawClient {
    fn connect(server: &Server) -> RawClient {
        let socket = TcpStream::connect(("127.0.0.1", server.rtmp_port)).expect("connect to rtmp port");
        socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        RawClient { socket }
    }

    /// The simple (original spec) handshake: C0+C1, read S0+S1+S2, send C2 = S1.
    fn handshake(server: &Server) -> RawClient {
        let mut c = RawClient::connect(server);
        let mut c0c1 = vec![3u8];
        c0c1.extend(std::iter::repeat_n(0u8, 1536));
        c.socket.write_all(&c0c1).unwrap();
        let s = c.read_exact_bytes(1 + 1536 + 1536);
        c.socket.write_all(&s[1..1537]).unwrap();
        c
    }

    fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + LIMIT;
        let mut out = vec![0u8; n];
        let mut got = 0;
        while got < n {
            assert!(Instant::now() < deadline, "server sent {got} of {n} expected bytes");
            match self.socket.read(&mut out[got..]) {
                Ok(0) => panic!("server closed after {got} of {n} bytes"),
                Ok(k) => got += k,
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        out
    }

    /// Drives an rml client session through connect (and publish, if `publish` is given).
    fn connected(server: &Server, publish: Option<&str>) -> RawClient {
        let mut c = RawClient::handshake(server);
        let (mut session, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
        let r = session.request_connection("live".into()).unwrap();
        c.send_results(vec![r]);
        c.pump(&mut session, |e| {
            matches!(e, ClientSessionEvent::ConnectionRequestAccepted)
        });
        if let Some(name) = publish {
            let r = session
                .request_publishing(name.into(), PublishRequestType::Live)
                .unwrap();
            c.send_results(vec![r]);
            c.pump(&mut session, |e| {
                matches!(e, ClientSessionEvent::PublishRequestAccepted)
            });
        }
        c
    }

    fn send_results(&mut self, results: Vec<ClientSessionResult>) {
        for r in results {
            if let ClientSessionResult::OutboundResponse(p) = r {
                self.socket.write_all(&p.bytes).unwrap();
            }
        }
    }

    fn pump(&mut self, session: &mut ClientSession, done: impl Fn(&ClientSessionEvent) -> bool) {
        let deadline = Instant::now() + LIMIT;
        let mut buf = [0u8; 8192];
        loop {
            assert!(Instant::now() < deadline, "no answer from the server");
            let n = match self.socket.read(&mut buf) {
                Ok(0) => panic!("server closed the connection"),
                Ok(n) => n,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => panic!("read: {e}"),
            };
            let results = session.handle_input(&buf[..n]).expect("client session");
            let finished = results
                .iter()
                .any(|r| matches!(r, ClientSessionResult::RaisedEvent(e) if done(e)));
            let replies = results
                .into_iter()
                .filter(|r| matches!(r, ClientSessionResult::OutboundResponse(_)))
                .collect();
            self.send_results(replies);
            if finished {
                return;
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        // The server may already have closed; a failed write is fine, the read below decides.
        let _ = self.socket.write_all(bytes);
    }

    /// True once the server closed the connection (within the limit).
    fn closed_by_server(&mut self) -> bool {
        let deadline = Instant::now() + LIMIT;
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            match self.socket.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return true, // reset
            }
        }
        false
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// A fmt-0 chunk header on `csid` announcing a message of `len` bytes.
fn fmt0_header(csid: u8, type_id: u8, len: u32, stream_id: u32) -> Vec<u8> {
    let mut v = vec![csid, 0, 0, 0];
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(type_id);
    v.extend_from_slice(&stream_id.to_le_bytes());
    v
}

fn set_chunk_size(size: u32) -> Vec<u8> {
    chunk_message(2, 1, 0, 0, &size.to_be_bytes(), 128).to_vec()
}

/// Runs every bad-input case against one server while a healthy stream plays, asserting
/// after each that the offender was closed with a logged reason and the healthy viewer
/// still receives new video.
#[test]
fn malformed_input_closes_only_the_offender() {
    let ctx = TestCtx::new("malformed_input_closes_only_the_offender");
    let server = Server::start_with_config(&ctx, "[limits]\nmax_message_bytes = 1048576\n");
    let (_publisher, viewer) = publish_and_wait_live(&ctx, &server, Clip::Small, "live", "healthy");
    let rtmp_viewer = Viewer::rtmp(&server.rtmp_url("live", "healthy"));
    rtmp_viewer.wait_keyframe(LIMIT).unwrap_or_else(|e| panic!("{e}"));

    type Case = (&'static str, &'static str, fn(&Server) -> RawClient);
    let cases: Vec<Case> = vec![
        ("garbage instead of a handshake", "handshake failed", |s| {
            let mut c = RawClient::connect(s);
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            c.send(&[0u8; 4000]);
            c
        }),
        ("chunk size 0", "peer set chunk size 0", |s| {
            let mut c = RawClient::handshake(s);
            c.send(&set_chunk_size(0));
            c
        }),
        ("chunk size over the maximum", "over the maximum 65536", |s| {
            let mut c = RawClient::handshake(s);
            c.send(&set_chunk_size(0x7fff_ffff));
            c
        }),
        (
            "message longer than max_message_bytes",
            "message of 16777215 bytes is over the maximum 1048576",
            |s| {
                let mut c = RawClient::handshake(s);
                c.send(&fmt0_header(4, 9, 0xff_ffff, 1));
                c.send(&[0u8; 128]);
                c
            },
        ),
        (
            "AMF that does not parse",
            "command message on chunk stream 3 does not parse",
            |s| {
                let mut c = RawClient::handshake(s);
                c.send(&chunk_message(3, 20, 0, 0, &[0x02, 0x00, 0x07, b'c', 0x42, 0x42], 128));
                c
            },
        ),
        ("AMF nested too deep", "AMF0 nesting deeper than", |s| {
            let mut c = RawClient::handshake(s);
            let deep: Vec<u8> = (0..2000).flat_map(|_| [0x03u8, 0, 1, b'a']).collect();
            c.send(&set_chunk_size(65536));
            c.send(&chunk_message(3, 20, 0, 0, &deep, 65536));
            c
        }),
        (
            "video tag too short for its header",
            "too short for its 5-byte header",
            |s| {
                let mut c = RawClient::connected(s, Some("short"));
                c.send(&chunk_message(10, 9, 0, 1, &[0x17, 0x01], 128));
                c
            },
        ),
        ("unknown video codec id", "unknown video codec id 3", |s| {
            let mut c = RawClient::connected(s, Some("screen"));
            c.send(&chunk_message(10, 9, 0, 1, &[0x13, 0, 0, 0, 0], 128));
            c
        }),
        ("unknown audio sound format", "unknown audio sound format 15", |s| {
            let mut c = RawClient::connected(s, Some("noise"));
            c.send(&chunk_message(10, 8, 0, 1, &[0xf0, 1, 2], 128));
            c
        }),
    ];

    for (what, reason, make) in cases {
        let before = viewer.with(|s| s.coded_video().count());
        let rtmp_before = rtmp_viewer.with(|s| s.coded_video().count());
        let mut offender = make(&server);
        assert!(
            offender.closed_by_server(),
            "{what}: the server did not close the connection"
        );
        let logs = server.logs();
        assert!(logs.contains(reason), "{what}: no log line with {reason:?}");
        assert!(!logs.contains("panicked"), "{what}: the server panicked");
        for v in [&viewer, &rtmp_viewer] {
            let start = if std::ptr::eq(v, &viewer) { before } else { rtmp_before };
            v.wait_for(LIMIT, |s| (s.coded_video().count() > start + 10).then_some(()))
                .unwrap_or_else(|e| panic!("{what}: the healthy {} stopped receiving video: {e}", v.label));
        }
    }
}

/// A second publisher on a stream that is live is refused, and its failure does not disturb
/// the first publisher's viewers (a refusal is not bad input, but it shares the path).
#[test]
fn refused_publisher_does_not_disturb_the_stream() {
    let ctx = TestCtx::new("refused_publisher_does_not_disturb_the_stream");
    let server = Server::start(&ctx);
    let (_publisher, viewer) = publish_and_wait_live(&ctx, &server, Clip::Small, "live", "taken");
    let mut c = RawClient::handshake(&server);
    let (mut session, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
    let r = session.request_connection("live".into()).unwrap();
    c.send_results(vec![r]);
    c.pump(&mut session, |e| {
        matches!(e, ClientSessionEvent::ConnectionRequestAccepted)
    });
    let r = session
        .request_publishing("taken".into(), PublishRequestType::Live)
        .unwrap();
    c.send_results(vec![r]);
    c.pump(
        &mut session,
        |e| matches!(e, ClientSessionEvent::UnhandleableOnStatusCode { code } if code == "NetStream.Publish.BadName"),
    );
    assert!(c.closed_by_server());
    let before = viewer.with(|s| s.coded_video().count());
    viewer
        .wait_for(LIMIT, |s| (s.coded_video().count() > before + 10).then_some(()))
        .unwrap_or_else(|e| panic!("the first publisher's viewer stopped: {e}"));
}
