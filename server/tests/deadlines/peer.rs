//! A hand-driven RTMP peer (rml_rtmp's client session on a plain socket) for the deadline
//! tests: it can publish or play, send pings and media when told, and stop reading, which no
//! real client does on purpose. Every wait is bounded.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use socket2::{Domain, Socket, Type};

const LIMIT: Duration = Duration::from_secs(20);

/// How the peer's socket ended, seen from its side.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Still open when the wait ran out.
    No,
    /// EOF or reset: the server closed it.
    Closed,
}

pub struct Peer {
    sock: TcpStream,
    session: ClientSession,
    /// onStatus codes rml_rtmp leaves to the caller (UnpublishNotify, ...).
    pub status_codes: Vec<String>,
    media_ts: u32,
}

impl Peer {
    /// Connects from `source` (another loopback address is another host to the server),
    /// with a receive buffer of `rcvbuf` bytes if given, handshakes and sends `connect` for
    /// `app`, and waits for its acceptance.
    pub fn connect(port: u16, source: [u8; 4], rcvbuf: Option<usize>, app: &str) -> Peer {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        socket.bind(&SocketAddr::from((source, 0)).into()).expect("bind");
        socket
            .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
            .expect("connect");
        let mut sock: TcpStream = socket.into();
        sock.set_nodelay(true).expect("nodelay");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut c0c1 = vec![3u8];
        c0c1.extend(std::iter::repeat_n(0u8, 1536));
        sock.write_all(&c0c1).expect("C0C1");
        let mut s0s1s2 = vec![0u8; 3073];
        let mut got = 0;
        let deadline = Instant::now() + LIMIT;
        while got < s0s1s2.len() {
            assert!(Instant::now() < deadline, "handshake: the server sent {got} bytes");
            match sock.read(&mut s0s1s2[got..]) {
                Ok(0) => panic!("the server closed during the handshake"),
                Ok(n) => got += n,
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("handshake: {e}"),
            }
        }
        sock.write_all(&s0s1s2[1..1537]).expect("C2");
        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(format!("rtmp://127.0.0.1:{port}/{app}"));
        let (session, initial) = ClientSession::new(config).expect("client session");
        let mut peer = Peer {
            sock,
            session,
            status_codes: Vec::new(),
            media_ts: 0,
        };
        peer.send(initial);
        let request = peer.session.request_connection(app.into()).expect("connect request");
        peer.send(vec![request]);
        peer.until(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted))
            .expect("connect accepted");
        peer
    }

    /// Publishes `stream` live and waits for `NetStream.Publish.Start`.
    pub fn publish(&mut self, stream: &str) -> Result<(), String> {
        let request = self
            .session
            .request_publishing(stream.into(), PublishRequestType::Live)
            .expect("publish request");
        self.send(vec![request]);
        self.until(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted))
    }

    /// Plays `stream` and waits for `NetStream.Play.Start`.
    pub fn play(&mut self, stream: &str) -> Result<(), String> {
        let request = self.session.request_playback(stream.into()).expect("play request");
        self.send(vec![request]);
        self.until(|e| matches!(e, ClientSessionEvent::PlaybackRequestAccepted))
    }

    /// Sends an AAC sequence header (first call) or a small AAC frame, 23 ms after the last.
    pub fn send_audio(&mut self) {
        let data: &'static [u8] = if self.media_ts == 0 {
            &[0xaf, 0x00, 0x12, 0x10]
        } else {
            &[0xaf, 0x01, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]
        };
        let packet = self
            .session
            .publish_audio_data(Bytes::from_static(data), RtmpTimestamp::new(self.media_ts), false)
            .expect("audio");
        self.media_ts += 23;
        self.send(vec![packet]);
    }

    /// Sends one ping request (the server answers it).
    pub fn send_ping(&mut self) {
        let (packet, _) = self.session.send_ping_request().expect("ping");
        self.sock.write_all(&packet.bytes).expect("ping write");
    }

    /// Sends ping requests without reading until the socket takes no more: the server's
    /// answers have filled its send buffer and this peer's receive buffer, so the server
    /// waits to write, and stops reading in turn (or it has cut the connection already).
    /// Returns how many were sent.
    pub fn flood_pings_until_blocked(&mut self) -> usize {
        self.sock
            .set_write_timeout(Some(Duration::from_millis(500)))
            .expect("write timeout");
        let deadline = Instant::now() + LIMIT;
        let mut sent = 0;
        loop {
            assert!(Instant::now() < deadline, "the socket still takes pings after {sent}");
            let (packet, _) = self.session.send_ping_request().expect("ping");
            let mut rest: &[u8] = &packet.bytes;
            while !rest.is_empty() {
                match self.sock.write(rest) {
                    Ok(n) => rest = &rest[n..],
                    // Blocked: part of this ping may be out; nothing more is sent. Or the
                    // server already cut the connection (its write deadline passed while
                    // this peer was still filling the server's receive buffer).
                    Err(_) => return sent,
                }
            }
            sent += 1;
        }
    }

    /// Reads (handling what comes) until the server closes the connection, at most `limit`.
    pub fn wait_closed(&mut self, limit: Duration) -> Ended {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.read_some() {
                Ok(true) => {}
                Ok(false) => return Ended::Closed,
                Err(e) => panic!("{e}"),
            }
        }
        Ended::No
    }

    /// Reads and handles what the server sent for about `for_` (pings answered, acks).
    pub fn pump(&mut self, for_: Duration) -> Result<(), String> {
        let deadline = Instant::now() + for_;
        while Instant::now() < deadline {
            if !self.read_some()? {
                return Err("closed by the server".into());
            }
        }
        Ok(())
    }

    /// Whether the server closed the connection; reads what is buffered (at most `limit`).
    pub fn drain_to_eof(&mut self, limit: Duration) -> Ended {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 64 * 1024];
        while Instant::now() < deadline {
            match self.sock.read(&mut buf) {
                Ok(0) => return Ended::Closed,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return Ended::Closed,
            }
        }
        Ended::No
    }

    /// Waits for an event matching `want`; `Err` if the server closes first.
    fn until(&mut self, want: impl Fn(&ClientSessionEvent) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + LIMIT;
        loop {
            if Instant::now() > deadline {
                return Err("no answer in time".into());
            }
            let mut buf = vec![0u8; 64 * 1024];
            let n = match self.sock.read(&mut buf) {
                Ok(0) => return Err(format!("closed by the server (status codes {:?})", self.status_codes)),
                Ok(n) => n,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(format!("read: {e}")),
            };
            let results = self.session.handle_input(&buf[..n]).map_err(|e| format!("{e:?}"))?;
            let mut found = false;
            for r in results {
                match r {
                    ClientSessionResult::OutboundResponse(p) => {
                        self.sock.write_all(&p.bytes).map_err(|e| format!("write: {e}"))?
                    }
                    ClientSessionResult::RaisedEvent(e) => {
                        if let ClientSessionEvent::UnhandleableOnStatusCode { code } = &e {
                            self.status_codes.push(code.clone());
                        }
                        if let ClientSessionEvent::ConnectionRequestRejected { description } = &e {
                            return Err(format!("connect rejected: {description}"));
                        }
                        found |= want(&e);
                    }
                    ClientSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
            if found {
                return Ok(());
            }
        }
    }

    /// One read: false once the server closed the connection.
    fn read_some(&mut self) -> Result<bool, String> {
        let mut buf = vec![0u8; 64 * 1024];
        let n = match self.sock.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => return Ok(true),
            Err(_) => return Ok(false),
        };
        let results = match self.session.handle_input(&buf[..n]) {
            Ok(r) => r,
            Err(e) => return Err(format!("{e:?}")),
        };
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) if self.sock.write_all(&p.bytes).is_err() => {
                    return Ok(false);
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::UnhandleableOnStatusCode { code }) => {
                    self.status_codes.push(code)
                }
                _ => {}
            }
        }
        Ok(true)
    }

    fn send(&mut self, results: Vec<ClientSessionResult>) {
        for r in results {
            if let ClientSessionResult::OutboundResponse(p) = r {
                self.sock.write_all(&p.bytes).expect("write");
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
