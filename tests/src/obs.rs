//! Replays a captured publisher (OBS) byte stream into the server.
//!
//! The capture starts with the simple handshake: C0 (1 byte) + C1 (1536 bytes), then C2
//! (1536 bytes, OBS's echo of the capture's S1), then the RTMP chunk stream. The replay sends
//! C0+C1, reads S0+S1+S2, sends the real S1 as C2, and streams the rest paced over the
//! capture's duration divided by `speed`, while a thread drains what the server answers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// C0 + C1.
pub const C0C1_LEN: usize = 1 + 1536;
/// C2 (or S2), and S1.
pub const HANDSHAKE_PART: usize = 1536;

/// The parts of a captured client-to-server stream.
pub struct Capture {
    pub c0c1: Vec<u8>,
    pub c2: Vec<u8>,
    pub rtmp: Vec<u8>,
}

impl Capture {
    pub fn load(path: &Path) -> Capture {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read capture {}: {e}", path.display()));
        assert!(
            bytes.len() > C0C1_LEN + HANDSHAKE_PART,
            "capture {} is too short",
            path.display()
        );
        assert_eq!(bytes[0], 3, "capture does not start with C0 = 3");
        Capture {
            c0c1: bytes[..C0C1_LEN].to_vec(),
            c2: bytes[C0C1_LEN..C0C1_LEN + HANDSHAKE_PART].to_vec(),
            rtmp: bytes[C0C1_LEN + HANDSHAKE_PART..].to_vec(),
        }
    }
}

/// A replay running on its own thread.
pub struct Replay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64, String>>>,
}

impl Replay {
    /// Connects to `addr` ("127.0.0.1:PORT") and replays `capture`, taking about
    /// `capture_secs / speed` seconds for the chunk stream.
    pub fn start(addr: &str, capture: Capture, capture_secs: f64, speed: f64) -> Replay {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let addr = addr.to_string();
        let thread = std::thread::spawn(move || replay(&addr, &capture, capture_secs / speed, &s));
        Replay {
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for the replay to finish; the number of bytes sent after the handshake, or why it
    /// failed.
    pub fn join(mut self) -> Result<u64, String> {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .unwrap_or_else(|_| Err("replay thread panicked".into()))
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn replay(addr: &str, cap: &Capture, secs: f64, stop: &AtomicBool) -> Result<u64, String> {
    let mut sock = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    sock.write_all(&cap.c0c1).map_err(|e| format!("write C0+C1: {e}"))?;
    let mut s0s1s2 = vec![0u8; 1 + 2 * HANDSHAKE_PART];
    sock.read_exact(&mut s0s1s2)
        .map_err(|e| format!("read S0+S1+S2: {e}"))?;
    if s0s1s2[0] != 3 {
        return Err(format!("S0 is {}, expected 3", s0s1s2[0]));
    }
    // OBS echoes S1 as C2: substitute the live S1 for the captured one.
    sock.write_all(&s0s1s2[1..1 + HANDSHAKE_PART])
        .map_err(|e| format!("write C2: {e}"))?;
    debug_assert_eq!(cap.c2.len(), HANDSHAKE_PART);

    // Drain the server's answers so its writes never block.
    let mut reader = sock.try_clone().map_err(|e| format!("clone socket: {e}"))?;
    reader.set_read_timeout(Some(Duration::from_millis(200))).ok();
    let drain_stop = Arc::new(AtomicBool::new(false));
    let ds = drain_stop.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while !ds.load(Ordering::Relaxed) {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if crate::http::is_timeout(&e) => {}
                Err(_) => break,
            }
        }
    });

    let start = Instant::now();
    let total = cap.rtmp.len();
    let rate = total as f64 / secs.max(0.001);
    let mut sent = 0usize;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Err("stopped before the end of the capture".to_string());
        }
        if sent >= total {
            break Ok(sent as u64);
        }
        let due = ((start.elapsed().as_secs_f64() * rate) as usize).clamp(sent.min(total), total);
        if due <= sent {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let end = due.min(sent + 16 * 1024);
        if let Err(e) = sock.write_all(&cap.rtmp[sent..end]) {
            break Err(format!("write at byte {sent} of {total}: {e}"));
        }
        sent = end;
    };
    // Like OBS: close after the last byte without reading the reply.
    let _ = sock.shutdown(Shutdown::Both);
    drain_stop.store(true, Ordering::Relaxed);
    let _ = drain.join();
    result
}
