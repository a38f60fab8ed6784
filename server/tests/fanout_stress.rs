//! Parking, handing back and kicking under load (issue 12): HTTP-FLV viewers that read in
//! bursts and then not at all (so the stream's direct writes fill their sockets and hand
//! them back, and they park again once they catch up) watch an ffmpeg publish while the API
//! kicks one of them every half second and a new one joins. Every viewer gets a run of the
//! stream with no gap and no repeat, in order (the same tags as a viewer that always reads);
//! the kicked ones are cut off; the server does not panic; and once everyone has left, the
//! API lists no viewer.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use socket2::{Domain, Socket, Type};
use support::{wait_for, Server, LIMIT};

/// Viewers watching at any time, besides the reference.
const VIEWERS: usize = 12;
/// Kicks through the API, half a second apart (a new viewer joins after each).
const KICKS: usize = 16;

/// A media tag: type, timestamp, digest of its body.
type TagId = (u8, u32, u64);

fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Turns the chunked FLV body into media tags as bytes arrive (sequence headers and
/// metadata left out: every joiner gets them first).
#[derive(Default)]
struct FlvReader {
    raw: Vec<u8>,
    body: Vec<u8>,
    header_done: bool,
}

impl FlvReader {
    fn push(&mut self, bytes: &[u8], out: &mut Vec<TagId>) {
        self.raw.extend_from_slice(bytes);
        // Whole HTTP chunks only.
        let mut used = 0;
        while let Some(eol) = self.raw[used..].windows(2).position(|w| w == b"\r\n") {
            let line = std::str::from_utf8(&self.raw[used..used + eol]).expect("chunk size line");
            let size = usize::from_str_radix(line, 16).expect("hex chunk size");
            let data = used + eol + 2;
            if self.raw.len() < data + size + 2 {
                break;
            }
            assert_eq!(&self.raw[data + size..data + size + 2], b"\r\n", "chunk trailer");
            self.body.extend_from_slice(&self.raw[data..data + size]);
            used = data + size + 2;
        }
        self.raw.drain(..used);
        if !self.header_done {
            if self.body.len() < 13 {
                return;
            }
            assert_eq!(&self.body[..3], b"FLV", "FLV header");
            self.body.drain(..13);
            self.header_done = true;
        }
        let mut at = 0;
        while self.body.len() >= at + 11 {
            let b = &self.body[at..];
            let size = u32::from_be_bytes([0, b[1], b[2], b[3]]) as usize;
            if b.len() < 15 + size {
                break;
            }
            let ts = u32::from_be_bytes([b[7], b[4], b[5], b[6]]);
            let data = &b[11..11 + size];
            let prev = u32::from_be_bytes([b[11 + size], b[12 + size], b[13 + size], b[14 + size]]) as usize;
            assert_eq!(prev, 11 + size, "PreviousTagSize of the tag at {ts} ms");
            let header = match b[0] {
                9 => data.get(1) == Some(&0),
                8 => data.first().map(|f| f >> 4) == Some(10) && data.get(1) == Some(&0),
                _ => true,
            };
            if !header {
                out.push((b[0], ts, digest(data)));
            }
            at += 15 + size;
        }
        self.body.drain(..at);
    }
}

/// An HTTP-FLV viewer on a thread with a small receive buffer that reads in bursts (or all
/// the time, with `steady`).
struct Viewer {
    tags: Arc<Mutex<Vec<TagId>>>,
    /// The server closed the connection.
    cut_off: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Viewer {
    fn open(port: u16, path: &str, seed: u64, steady: bool) -> Viewer {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket
            .connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
            .expect("connect");
        let mut s: TcpStream = socket.into();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").expect("request");
        s.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
        let tags = Arc::new(Mutex::new(Vec::new()));
        let cut_off = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (tags, cut_off, stop) = (Arc::clone(&tags), Arc::clone(&cut_off), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut next = move |n: u64| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng % n
                };
                let mut head = Vec::new();
                let mut flv = FlvReader::default();
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let burst = Instant::now() + Duration::from_millis(20 + next(200));
                    while Instant::now() < burst && !stop.load(Ordering::Relaxed) {
                        let n = match s.read(&mut buf) {
                            Ok(0) => {
                                cut_off.store(true, Ordering::Relaxed);
                                return;
                            }
                            Ok(n) => n,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) =>
                            {
                                continue
                            }
                            Err(_) => {
                                cut_off.store(true, Ordering::Relaxed);
                                return;
                            }
                        };
                        let mut bytes = &buf[..n];
                        if head.len() < 4 || !head.ends_with(b"\r\n\r\n") {
                            let end = (1..=n).find(|&i| {
                                head.push(bytes[i - 1]);
                                head.ends_with(b"\r\n\r\n")
                            });
                            let Some(end) = end else { continue };
                            assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
                            bytes = &bytes[end..];
                        }
                        flv.push(bytes, &mut got);
                        tags.lock().expect("tags").append(&mut got);
                    }
                    if !steady {
                        std::thread::sleep(Duration::from_millis(next(400)));
                    }
                }
            })
        };
        Viewer {
            tags,
            cut_off,
            stop,
            thread: Some(thread),
        }
    }

    /// Whether the server has cut the connection off (so far).
    fn is_cut_off(&self) -> bool {
        self.cut_off.load(Ordering::Relaxed)
    }

    /// Closes the connection; returns the tags received and whether the server had cut it off.
    fn close(mut self) -> (Vec<TagId>, bool) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("viewer thread");
        }
        let tags = std::mem::take(&mut *self.tags.lock().expect("tags"));
        (tags, self.cut_off.load(Ordering::Relaxed))
    }
}

fn flv_clients(server: &Server) -> Vec<Value> {
    server.clients_of("flv-play")
}

#[test]
fn viewers_parking_unparking_and_kicked_under_load_get_every_tag_once_in_order() {
    let server = Server::start(
        "fanout_stress",
        "[api]\ntoken = \"t0k3n\"\n\
         [play]\nmax_lag_ms = 60000\nslow_disconnect_ms = 60000\nsend_buffer_bytes = 4096\n\
         [stream]\nqueue_packets = 4096\n\
         [limits]\nper_ip_exempt = [\"127.0.0.0/8\"]\n",
    );
    let _publisher = server.publish("live/s", "ffmpeg.log");
    server.wait_live("live", "s");
    let reference = Viewer::open(server.http, "/live/s.flv", 0, true);
    assert!(
        wait_for(LIMIT, || (flv_clients(&server).len() == 1).then_some(())).is_some(),
        "the reference viewer is not listed"
    );
    let reference_id = flv_clients(&server)[0]["id"].as_str().expect("id").to_string();
    let mut viewers: Vec<Viewer> = (0..VIEWERS)
        .map(|i| Viewer::open(server.http, "/live/s.flv", i as u64 + 1, false))
        .collect();
    assert!(
        wait_for(LIMIT, || (flv_clients(&server).len() == VIEWERS + 1).then_some(())).is_some(),
        "viewers not listed: {:?}",
        flv_clients(&server)
    );

    let mut kicked: Vec<String> = Vec::new();
    for k in 0..KICKS {
        std::thread::sleep(Duration::from_millis(500));
        let others: Vec<String> = flv_clients(&server)
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .filter(|id| *id != reference_id && !kicked.contains(id))
            .collect();
        let victim = others[k * 5 % others.len()].clone();
        let (status, _) = server.delete(&format!("/api/v1/clients/{victim}"));
        assert_eq!(status, 200, "kick {victim}");
        kicked.push(victim);
        viewers.push(Viewer::open(
            server.http,
            "/live/s.flv",
            (VIEWERS + k) as u64 + 1,
            false,
        ));
    }
    // Every kick has reached its viewer (not a fixed wait: a loaded machine takes longer).
    let landed = wait_for(LIMIT, || {
        (viewers.iter().filter(|v| v.is_cut_off()).count() >= KICKS).then_some(())
    });
    assert!(landed.is_some(), "not every kicked viewer saw its connection end");

    // The reference last: it has everything the others got.
    let closed: Vec<(Vec<TagId>, bool)> = viewers.into_iter().map(Viewer::close).collect();
    let (all, reference_cut) = reference.close();
    assert!(!reference_cut, "the reference viewer was cut off");
    assert!(all.len() > 300, "the reference got only {} tags", all.len());
    let mut cut_off = 0;
    for (i, (got, cut)) in closed.into_iter().enumerate() {
        cut_off += usize::from(cut);
        let Some(first) = got.first() else { continue };
        let start = all
            .iter()
            .position(|t| t == first)
            .unwrap_or_else(|| panic!("viewer {i}: its first tag {first:?} never reached the reference"));
        let expected = &all[start..(start + got.len()).min(all.len())];
        if let Some(at) = (0..got.len()).find(|&k| expected.get(k) != Some(&got[k])) {
            panic!(
                "viewer {i} (cut off: {cut}): tag {at} of {} is {:?}, the reference had {:?} (a gap or a repeat)",
                got.len(),
                got[at],
                expected.get(at)
            );
        }
    }
    assert_eq!(cut_off, KICKS, "every kicked viewer, and only those, was cut off");

    let gone = wait_for(LIMIT, || {
        let (_, s) = server.api("/api/v1/streams/live/s");
        (flv_clients(&server).is_empty() && s["stream"]["viewers"]["total"] == 0).then_some(())
    });
    assert!(gone.is_some(), "viewers left listed: {:?}", flv_clients(&server));
    assert!(!server.log().contains("panicked"), "the server panicked");
}
