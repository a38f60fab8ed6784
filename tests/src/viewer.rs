//! In-process viewers: an HTTP-FLV reader and an RTMP player (rml_rtmp's `ClientSession`), each
//! on its own thread, recording every tag it receives with its arrival time.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult};

use crate::flv::{FlvParser, Tag, TagKind};
use crate::http::{is_timeout, open_get, ChunkedDecoder, ResponseHead};

/// How often a viewer thread checks whether it was asked to stop.
const POLL: Duration = Duration::from_millis(200);
/// A viewer that gets no byte for this long gives up (the test then fails on missing data).
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// What a viewer has received so far.
#[derive(Clone, Debug, Default)]
pub struct ViewerState {
    /// HTTP-FLV: the response head.
    pub head: Option<ResponseHead>,
    /// HTTP-FLV: byte 4 of the FLV header.
    pub flv_flags: Option<u8>,
    /// RTMP: the server accepted `play`.
    pub play_accepted: bool,
    /// RTMP: onStatus codes the client library did not handle itself.
    pub status_codes: Vec<String>,
    pub tags: Vec<Tag>,
    /// Why the connection ended, once it has (`"stopped"` when the test stopped it).
    pub ended: Option<String>,
}

impl ViewerState {
    pub fn media(&self) -> impl Iterator<Item = &Tag> {
        self.tags.iter().filter(|t| t.kind != TagKind::Script)
    }

    pub fn coded_video(&self) -> impl Iterator<Item = &Tag> {
        self.tags
            .iter()
            .filter(|t| t.kind == TagKind::Video && t.is_coded_frame())
    }

    pub fn coded_audio(&self) -> impl Iterator<Item = &Tag> {
        self.tags
            .iter()
            .filter(|t| t.kind == TagKind::Audio && t.is_coded_frame())
    }

    /// The first coded video frame (not a sequence header).
    pub fn first_coded_video(&self) -> Option<&Tag> {
        self.coded_video().next()
    }

    /// The timestamp of the newest coded video frame.
    pub fn last_video_ts(&self) -> Option<u32> {
        self.coded_video().last().map(|t| t.timestamp)
    }

    /// Checks what a player needs before its first frames: metadata first, each track's
    /// sequence header before its first coded frame, and a keyframe as the first video frame.
    pub fn check_startup(&self, expect_audio: bool, expect_video: bool) -> Result<(), String> {
        let first_media = self
            .tags
            .iter()
            .position(|t| t.kind != TagKind::Script)
            .ok_or("no media tag received")?;
        if !self.tags[..first_media].iter().any(|t| t.is_metadata()) {
            return Err(format!(
                "no onMetaData before the first media tag (first tags: {})",
                describe(&self.tags[..self.tags.len().min(6)])
            ));
        }
        for (kind, expected) in [(TagKind::Video, expect_video), (TagKind::Audio, expect_audio)] {
            let first_frame = self.tags.iter().position(|t| t.kind == kind && t.is_coded_frame());
            let first_seq = self.tags.iter().position(|t| t.kind == kind && t.is_seq_header());
            match (expected, first_seq, first_frame) {
                (false, None, None) => {}
                (false, _, _) => return Err(format!("{kind:?} tags in a stream without {kind:?}")),
                (true, _, None) => return Err(format!("no coded {kind:?} frame received")),
                (true, None, Some(_)) => return Err(format!("no {kind:?} sequence header")),
                (true, Some(s), Some(f)) if s > f => {
                    return Err(format!(
                        "{kind:?} sequence header (tag {s}) after the first coded frame (tag {f})"
                    ))
                }
                (true, Some(_), Some(_)) => {}
            }
        }
        if expect_video {
            let first = self.first_coded_video().expect("checked above");
            if !first.is_video_keyframe() {
                return Err(format!(
                    "first coded video frame (ts {}) is not a keyframe: {}",
                    first.timestamp,
                    describe(&self.tags[..self.tags.len().min(12)])
                ));
            }
        }
        Ok(())
    }
}

/// One line per tag, for failure messages.
pub fn describe(tags: &[Tag]) -> String {
    tags.iter()
        .map(|t| {
            let what = if t.is_metadata() {
                "meta"
            } else if t.is_seq_header() {
                "seq"
            } else if t.is_coded_keyframe() {
                "key"
            } else {
                "frame"
            };
            format!("{:?}@{}:{what}({}B)", t.kind, t.timestamp, t.data.len())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

struct Shared {
    stop: AtomicBool,
    /// Not reading from the socket (a viewer whose player stalled), see [`Viewer::pause`].
    paused: AtomicBool,
    state: Mutex<ViewerState>,
}

impl Shared {
    /// While paused, waits instead of reading; true if it waited.
    fn wait_while_paused(&self) -> bool {
        if !self.paused.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
        true
    }
}

/// A viewer running on its own thread; dropping it closes the connection.
pub struct Viewer {
    pub label: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Viewer {
    /// Plays `http://…/{app}/{stream}.flv`.
    pub fn http_flv(url: &str) -> Viewer {
        let url = url.to_string();
        Self::spawn(format!("http-flv {url}"), move |shared| run_http_flv(&url, shared))
    }

    /// Plays `rtmp://127.0.0.1:PORT/{app}/{stream}`.
    pub fn rtmp(url: &str) -> Viewer {
        let url = url.to_string();
        Self::spawn(format!("rtmp {url}"), move |shared| run_rtmp(&url, shared))
    }

    fn spawn(label: String, body: impl FnOnce(&Shared) -> Result<(), String> + Send + 'static) -> Viewer {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            state: Mutex::new(ViewerState::default()),
        });
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let reason = match body(&s) {
                Ok(()) => "closed by the server".to_string(),
                Err(e) => e,
            };
            let mut st = lock(&s.state);
            st.ended.get_or_insert(reason);
        });
        Viewer {
            label,
            shared,
            thread: Some(thread),
        }
    }

    /// A copy of what was received so far.
    pub fn snapshot(&self) -> ViewerState {
        lock(&self.shared.state).clone()
    }

    /// Runs `f` on the state without copying it.
    pub fn with<T>(&self, f: impl FnOnce(&ViewerState) -> T) -> T {
        f(&lock(&self.shared.state))
    }

    /// Polls until `cond` returns `Some`, the connection ends, or `limit` passes.
    pub fn wait_for<T>(&self, limit: Duration, mut cond: impl FnMut(&ViewerState) -> Option<T>) -> Result<T, String> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let st = lock(&self.shared.state);
                if let Some(v) = cond(&st) {
                    return Ok(v);
                }
                if let Some(reason) = &st.ended {
                    return Err(format!(
                        "{}: connection ended ({reason}) after {} tags",
                        self.label,
                        st.tags.len()
                    ));
                }
            }
            if Instant::now() >= deadline {
                let st = lock(&self.shared.state);
                return Err(format!(
                    "{}: condition not met within {limit:?}; {} tags, last: {}",
                    self.label,
                    st.tags.len(),
                    describe(&st.tags[st.tags.len().saturating_sub(4)..])
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a coded video keyframe has arrived.
    pub fn wait_keyframe(&self, limit: Duration) -> Result<(), String> {
        self.wait_for(limit, |s| s.coded_video().any(|t| t.is_video_keyframe()).then_some(()))
    }

    /// Stops reading from the socket (the connection stays open), as a player that stalls
    /// does: the server's writes back up until it treats the viewer as slow.
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Relaxed);
    }

    /// Reads again after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Relaxed);
    }

    /// Why the connection ended, if it has.
    pub fn ended(&self) -> Option<String> {
        lock(&self.shared.state).ended.clone()
    }

    /// Closes the connection and joins the thread.
    pub fn stop(mut self) -> ViewerState {
        self.shutdown();
        self.snapshot()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        lock(&self.shared.state).ended.get_or_insert("stopped".into());
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock(m: &Mutex<ViewerState>) -> MutexGuard<'_, ViewerState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn run_http_flv(url: &str, shared: &Shared) -> Result<(), String> {
    let (head, mut stream, first) = open_get(url, Duration::from_secs(30), POLL)?;
    let chunked = head.is_chunked();
    let status = head.status;
    lock(&shared.state).head = Some(head);
    if status != 200 {
        return Err(format!("HTTP status {status}"));
    }
    let mut decoder = ChunkedDecoder::default();
    let mut parser = FlvParser::new();
    let mut body = Vec::new();
    let mut feed = |bytes: &[u8]| -> Result<(), String> {
        body.clear();
        if chunked {
            decoder.push(bytes, &mut body)?;
        } else {
            body.extend_from_slice(bytes);
        }
        let tags = parser.push(&body)?;
        let mut st = lock(&shared.state);
        st.flv_flags = parser.header_flags;
        st.tags.extend(tags);
        Ok(())
    };
    feed(&first)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_data = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        if shared.wait_while_paused() {
            last_data = Instant::now();
            continue;
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                last_data = Instant::now();
                feed(&buf[..n])?;
            }
            Err(e) if is_timeout(&e) => {
                if last_data.elapsed() > STALL_LIMIT {
                    return Err(format!("no data for {STALL_LIMIT:?}"));
                }
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(())
}

/// `rtmp://HOST:PORT/APP/STREAM` → ("HOST:PORT", "APP", "STREAM").
pub fn split_rtmp_url(url: &str) -> (String, String, String) {
    let rest = url
        .strip_prefix("rtmp://")
        .unwrap_or_else(|| panic!("not an rtmp:// URL: {url}"));
    let mut parts = rest.splitn(3, '/');
    let host = parts.next().unwrap_or_default().to_string();
    let app = parts.next().unwrap_or_default().to_string();
    let stream = parts.next().unwrap_or_default().to_string();
    (host, app, stream)
}

fn run_rtmp(url: &str, shared: &Shared) -> Result<(), String> {
    let (host, app, stream_key) = split_rtmp_url(url);
    let mut sock = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
    sock.set_nodelay(true).ok();
    sock.set_read_timeout(Some(POLL))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let remaining = rtmp_client_handshake(&mut sock, &shared.stop)?;

    let mut config = ClientSessionConfig::new();
    config.tc_url = Some(format!("rtmp://{host}/{app}"));
    let (mut session, initial) = ClientSession::new(config).map_err(|e| format!("client session: {e:?}"))?;
    let mut pending: Vec<ClientSessionResult> = initial;
    pending.push(
        session
            .request_connection(app.clone())
            .map_err(|e| format!("connect request: {e:?}"))?,
    );
    pending.extend(
        session
            .handle_input(&remaining)
            .map_err(|e| format!("rtmp input: {e:?}"))?,
    );
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_data = Instant::now();
    loop {
        while !pending.is_empty() {
            let results: Vec<ClientSessionResult> = std::mem::take(&mut pending);
            for r in results {
                match r {
                    ClientSessionResult::OutboundResponse(packet) => {
                        sock.write_all(&packet.bytes).map_err(|e| format!("write: {e}"))?
                    }
                    ClientSessionResult::RaisedEvent(ev) => {
                        if let Some(more) = handle_event(ev, &mut session, &stream_key, shared)? {
                            pending.push(more);
                        }
                    }
                    ClientSessionResult::UnhandleableMessageReceived(_) => {}
                }
            }
        }
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if shared.wait_while_paused() {
            last_data = Instant::now();
            continue;
        }
        match sock.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                last_data = Instant::now();
                pending = session
                    .handle_input(&buf[..n])
                    .map_err(|e| format!("rtmp input: {e:?}"))?;
            }
            Err(e) if is_timeout(&e) => {
                if last_data.elapsed() > STALL_LIMIT {
                    return Err(format!("no data for {STALL_LIMIT:?}"));
                }
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

fn handle_event(
    ev: ClientSessionEvent,
    session: &mut ClientSession,
    stream_key: &str,
    shared: &Shared,
) -> Result<Option<ClientSessionResult>, String> {
    let now = Instant::now();
    let mut st = lock(&shared.state);
    match ev {
        ClientSessionEvent::ConnectionRequestAccepted => {
            drop(st);
            let r = session
                .request_playback(stream_key.to_string())
                .map_err(|e| format!("play request: {e:?}"))?;
            return Ok(Some(r));
        }
        ClientSessionEvent::ConnectionRequestRejected { description } => {
            return Err(format!("connect rejected: {description}"));
        }
        ClientSessionEvent::PlaybackRequestAccepted => st.play_accepted = true,
        ClientSessionEvent::StreamMetadataReceived { .. } => st.tags.push(Tag {
            kind: TagKind::Script,
            timestamp: 0,
            data: Bytes::new(),
            arrived: now,
        }),
        ClientSessionEvent::VideoDataReceived { timestamp, data } => st.tags.push(Tag {
            kind: TagKind::Video,
            timestamp: timestamp.value,
            data,
            arrived: now,
        }),
        ClientSessionEvent::AudioDataReceived { timestamp, data } => st.tags.push(Tag {
            kind: TagKind::Audio,
            timestamp: timestamp.value,
            data,
            arrived: now,
        }),
        ClientSessionEvent::UnhandleableOnStatusCode { code } => st.status_codes.push(code),
        _ => {}
    }
    Ok(None)
}

/// Client side of the RTMP handshake (given up when `stop` is set); returns bytes that
/// followed it.
pub(crate) fn rtmp_client_handshake(sock: &mut TcpStream, stop: &AtomicBool) -> Result<Vec<u8>, String> {
    let mut hs = Handshake::new(PeerType::Client);
    let c0c1 = hs
        .generate_outbound_p0_and_p1()
        .map_err(|e| format!("handshake: {e:?}"))?;
    sock.write_all(&c0c1).map_err(|e| format!("write C0C1: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 8192];
    loop {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            return Err("handshake not completed".into());
        }
        let n = match sock.read(&mut buf) {
            Ok(0) => return Err("connection closed during the handshake".into()),
            Ok(n) => n,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(format!("read during handshake: {e}")),
        };
        match hs.process_bytes(&buf[..n]).map_err(|e| format!("handshake: {e:?}"))? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                sock.write_all(&response_bytes)
                    .map_err(|e| format!("write handshake: {e}"))?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                sock.write_all(&response_bytes)
                    .map_err(|e| format!("write handshake: {e}"))?;
                return Ok(remaining_bytes);
            }
        }
    }
}
