//! The churning clients of the soak scenario, each an endless loop on the scenario's
//! `LocalSet` (stopped by aborting its task, which drops its socket: the client leaves):
//!
//! - publishers that reconnect after a random session length (the bench's paced RTMP
//!   publisher, dropped without a goodbye, as an encoder whose network went away);
//! - viewers (RTMP and HTTP-FLV) that play for a random while, leave, and come back;
//! - HLS pollers (playlist, then each new segment, like a player), a new playback session
//!   each time they come back;
//! - stalled viewers that start playing and then never read: the server must cut them;
//! - the hook receiver's outages.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use estuary_protocol::rtmp::client::{ClientConfig, ClientError, ClientEvent, ClientMode, ClientSession};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::receiver::{Outages, Receiver};
use super::rng::Rng;
use crate::clip::Clip;
use crate::http::{parse_head, HttpUrl};
use crate::stats::{ViewerKind, ViewerStats};
use crate::table::SendTable;

/// How long a stalled viewer's drain may take before we conclude the server never cut it.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Receive buffer of a stalled viewer: small, so the server's writes back up at once.
const STALLED_RCVBUF: u32 = 16 * 1024;
/// Longest a failure reason is kept as a tally key.
const REASON_CHARS: usize = 80;

/// What one kind of client did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct KindTally {
    /// Sessions attempted (a connect each).
    pub sessions: u64,
    /// Sessions that got media: a keyframe (RTMP, HTTP-FLV), a segment (HLS), a started
    /// publish (publishers), a started play (stalled viewers).
    pub ok: u64,
    /// Why sessions ended before their time (refusals while the hook receiver was down,
    /// a stream between two publishers, ...), with counts.
    pub reasons: BTreeMap<String, u64>,
}

/// What the stalled viewers saw.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StalledTally {
    pub sessions: u64,
    /// Play started, then we stopped reading.
    pub started: u64,
    /// Of those, cut by the server (end of stream or reset once drained).
    pub cut: u64,
    /// Of those, still being served after the hold: the server never cut them.
    pub not_cut: u64,
    pub refused: BTreeMap<String, u64>,
}

/// Everything the clients did, shared by the actors of one run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ClientTally {
    pub publishers: KindTally,
    pub viewers: BTreeMap<String, KindTally>,
    pub stalled: StalledTally,
    pub outages: Outages,
}

pub type Shared = Rc<RefCell<ClientTally>>;

fn reason(s: &str) -> String {
    // Long numbers (ports, byte counts, ids) would make every reason unique; short ones
    // (an HTTP status) say what happened.
    let mut out = String::new();
    let mut digits = String::new();
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if digits.len() > 3 { "#" } else { &digits });
        digits.clear();
        out.push(c);
    }
    out.trim_end().chars().take(REASON_CHARS).collect()
}

/// A publisher of `url` reconnecting after `session` (random within), until `end`.
pub async fn publisher(
    index: usize,
    url: String,
    clip: Arc<Clip>,
    mut rng: Rng,
    session: (Duration, Duration),
    end: Instant,
    tally: Shared,
) {
    // Latency is not measured here: the table records nothing.
    let table = Arc::new(SendTable::new(0));
    while Instant::now() < end {
        let stop = (Instant::now() + rng.between(session.0, session.1)).min(end);
        let stats = crate::publisher::run(index, url.clone(), clip.clone(), table.clone(), stop).await;
        let gap = {
            let mut t = tally.borrow_mut();
            t.publishers.sessions += 1;
            if stats.started {
                t.publishers.ok += 1;
            }
            if let Some(e) = &stats.error {
                *t.publishers.reasons.entry(reason(e)).or_default() += 1;
            }
            if stats.started && stats.error.is_none() {
                Duration::from_millis(200)
            } else {
                // Refused (the hook receiver is down, or the old session's on_unpublish is
                // not delivered yet): an encoder retries after a moment.
                rng.between(Duration::from_millis(500), Duration::from_millis(2000))
            }
        };
        tokio::time::sleep(gap).await;
    }
}

/// A viewer of one stream that plays for `life`, leaves, and comes back after `gap`, until
/// `end`. `url(n)` is the URL of its n-th session.
#[allow(clippy::too_many_arguments)]
pub async fn viewer(
    kind: ViewerKind,
    stream_index: usize,
    url: impl Fn(u64) -> String,
    mut rng: Rng,
    life: (Duration, Duration),
    gap: (Duration, Duration),
    hls_poll: Duration,
    end: Instant,
    tally: Shared,
) {
    let table = Arc::new(SendTable::new(0));
    for n in 0u64.. {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let stats = Rc::new(RefCell::new(ViewerStats::new(kind, stream_index)));
        let url = url(n);
        let play = async {
            match kind {
                ViewerKind::Rtmp => crate::viewers::rtmp(url, table.clone(), stats.clone()).await,
                ViewerKind::HttpFlv => crate::viewers::http_flv(url, table.clone(), stats.clone()).await,
                ViewerKind::Hls => crate::viewers::hls(url, hls_poll, table.clone(), stats.clone()).await,
            }
        };
        let _ = tokio::time::timeout(rng.between(life.0, life.1).min(left), play).await;
        {
            let s = stats.borrow();
            let mut t = tally.borrow_mut();
            let k = t.viewers.entry(kind.label().to_string()).or_default();
            k.sessions += 1;
            if s.first_key_ns.is_some() || s.segments > 0 {
                k.ok += 1;
            }
            if let Some(e) = &s.error {
                *k.reasons.entry(reason(e)).or_default() += 1;
            }
        }
        tokio::time::sleep(rng.between(gap.0, gap.1)).await;
    }
}

/// How one stalled session ended.
enum Stall {
    Refused(String),
    Cut,
    NotCut,
}

/// A viewer that starts playing, then never reads; after `hold` it drains what the kernel
/// holds to see whether the server closed the connection. Forever.
pub async fn stalled(kind: ViewerKind, url: String, mut rng: Rng, hold: Duration, tally: Shared) {
    loop {
        let outcome = stall_once(kind, &url, hold).await;
        {
            let mut t = tally.borrow_mut();
            let s = &mut t.stalled;
            s.sessions += 1;
            match outcome {
                Stall::Refused(why) => *s.refused.entry(reason(&why)).or_default() += 1,
                Stall::Cut => {
                    s.started += 1;
                    s.cut += 1;
                }
                Stall::NotCut => {
                    s.started += 1;
                    s.not_cut += 1;
                }
            }
        }
        tokio::time::sleep(rng.between(Duration::from_millis(200), Duration::from_millis(1000))).await;
    }
}

async fn connect_small(addr: &str) -> Result<TcpStream, String> {
    let addr: std::net::SocketAddr = addr.parse().map_err(|e| format!("address {addr}: {e}"))?;
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    let _ = socket.set_recv_buffer_size(STALLED_RCVBUF);
    tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))
}

async fn stall_once(kind: ViewerKind, url: &str, hold: Duration) -> Stall {
    let start = tokio::time::timeout(Duration::from_secs(15), async {
        match kind {
            ViewerKind::HttpFlv => start_flv(url).await,
            _ => start_rtmp(url).await,
        }
    })
    .await;
    let mut stream = match start {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Stall::Refused(e),
        Err(_) => return Stall::Refused("play did not start within 15 s".into()),
    };
    tokio::time::sleep(hold).await;
    // Drain: a connection the server closed ends after what the kernel buffers (well under
    // a megabyte); one it still serves keeps flowing at the stream's rate.
    let mut buf = vec![0u8; 64 * 1024];
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    match drained {
        Ok(()) => Stall::Cut,
        Err(_) => Stall::NotCut,
    }
}

/// Handshake, connect, createStream, play, until `NetStream.Play.Start`.
async fn start_rtmp(url: &str) -> Result<TcpStream, String> {
    let config = ClientConfig::from_url(url, ClientMode::Play).map_err(|e| e.to_string())?;
    let mut stream = connect_small(&config.addr).await?;
    let mut session = ClientSession::new(config).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if let Some(out) = session.take_output() {
            stream.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Err("closed by server before play started".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        while let Some(event) = session.handle_input(&mut buf).map_err(|e| format!("rtmp: {e}"))? {
            if let ClientEvent::Started { .. } = event {
                if let Some(out) = session.take_output() {
                    stream.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
                }
                return Ok(stream);
            }
        }
    }
}

/// One GET, until a 200 response head.
async fn start_flv(url: &str) -> Result<TcpStream, String> {
    let url = HttpUrl::parse(url).map_err(|e| e.to_string())?;
    let mut stream = connect_small(&url.addr).await?;
    stream
        .write_all(url.request().as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) => return Err("closed by server before the response".into()),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
        if let Some(h) = parse_head(&head).map_err(|e| e.to_string())? {
            if h.status != 200 {
                return Err(format!("HTTP {}", h.status));
            }
            return Ok(stream);
        }
    }
}

/// A client that only connects: RTMP handshake and `connect` (so `on_connect`, then
/// `on_close`), then leaves at once, like a load balancer's health check or a scanner.
/// Connections are where per-client leaks hide; these make many of them, cheaply.
pub async fn prober(url: String, mut rng: Rng, gap: (Duration, Duration), tally: Shared) {
    loop {
        let result = tokio::time::timeout(Duration::from_secs(10), probe(&url)).await;
        {
            let mut t = tally.borrow_mut();
            let k = t.viewers.entry("probe".to_string()).or_default();
            k.sessions += 1;
            match result {
                Ok(Ok(())) => k.ok += 1,
                Ok(Err(e)) => *k.reasons.entry(reason(&e)).or_default() += 1,
                Err(_) => *k.reasons.entry("timed out".into()).or_default() += 1,
            }
        }
        tokio::time::sleep(rng.between(gap.0, gap.1)).await;
    }
}

/// Until `connect` is answered (accepted: ok; refused: the receiver is down, also ok).
async fn probe(url: &str) -> Result<(), String> {
    let config = ClientConfig::from_url(url, ClientMode::Play).map_err(|e| e.to_string())?;
    let mut stream = TcpStream::connect(&config.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut session = ClientSession::new(config).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        if let Some(out) = session.take_output() {
            stream.write_all(&out).await.map_err(|e| format!("write: {e}"))?;
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) => return Err("closed by server before connect was answered".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
        loop {
            match session.handle_input(&mut buf) {
                Ok(Some(ClientEvent::Connected)) => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => break,
                // A refused connect is an answer too.
                Err(ClientError::Rejected { .. }) => return Ok(()),
                Err(e) => return Err(format!("rtmp: {e}")),
            }
        }
    }
}

/// Takes the hook receiver down for `down` (random within) every `every` (random within).
pub async fn outages(
    receiver: Receiver,
    mut rng: Rng,
    every: (Duration, Duration),
    down: (Duration, Duration),
    tally: Shared,
) {
    loop {
        tokio::time::sleep(rng.between(every.0, every.1)).await;
        let d = rng.between(down.0, down.1);
        receiver.set_up(false);
        tally.borrow_mut().outages.count += 1;
        tokio::time::sleep(d).await;
        receiver.set_up(true);
        tally.borrow_mut().outages.down_secs += d.as_secs_f64();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_keep_statuses_and_drop_ports() {
        assert_eq!(reason("HTTP 403"), "HTTP 403");
        assert_eq!(
            reason("connect to 127.0.0.1:43817: refused"),
            "connect to 127.0.0.1:#: refused"
        );
    }
}
