//! An RTMP publisher that sends a generated clip with timestamps of the test's choosing,
//! through `rml_rtmp`'s client session, so the chunk headers are what an encoder built on a
//! library writes (fmt-1/2 timestamp deltas, extended timestamps): a 32-bit clock that
//! starts near its wrap, as an encoder's does 49.7 days in, or audio stamped ahead of video.
//!
//! The clip's tags are sent in order, paced by their timestamps, on their own thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;

use crate::flv::{parse_file, Tag, TagKind};
use crate::http::is_timeout;
use crate::media::Clip;
use crate::viewer::{rtmp_client_handshake, split_rtmp_url};

/// How the publisher stamps the clip's tags.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stamping {
    /// The RTMP timestamp of the clip's time 0; later tags count on from it, wrapping at
    /// 2^32 as RTMP timestamps do.
    pub first_ms: u32,
    /// Added to every audio timestamp: audio stamped this far ahead of the video it goes
    /// with (negative: behind).
    pub audio_ahead_ms: i32,
}

impl Stamping {
    /// The RTMP timestamp of a clip tag.
    pub fn stamp(&self, tag: &Tag) -> u32 {
        let ts = self.first_ms.wrapping_add(tag.timestamp);
        match tag.kind {
            TagKind::Audio => ts.wrapping_add_signed(self.audio_ahead_ms),
            _ => ts,
        }
    }
}

/// The audio and video tags of `clip` (script data left out), in file order.
pub fn clip_tags(clip: Clip) -> Vec<Tag> {
    let path = clip.path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (_, tags) = parse_file(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    tags.into_iter().filter(|t| t.kind != TagKind::Script).collect()
}

/// A publisher running on its own thread; dropping it closes the connection.
pub struct ClipPublisher {
    flags: Arc<Flags>,
    thread: Option<JoinHandle<Result<usize, String>>>,
}

/// What the test and the publisher thread share.
#[derive(Default)]
struct Flags {
    stop: AtomicBool,
    /// Set by [`ClipPublisher::release`].
    released: AtomicBool,
    /// Set by the thread when it reached the hold.
    holding: AtomicBool,
    /// Clip time of the last tag sent, ms.
    sent_ms: AtomicU32,
}

impl ClipPublisher {
    /// Connects to `url` (`rtmp://127.0.0.1:PORT/APP/STREAM`), publishes, and sends `tags`
    /// stamped by `stamping`, in real time.
    pub fn start(url: &str, tags: Vec<Tag>, stamping: Stamping) -> ClipPublisher {
        Self::spawn(url, tags, stamping, None)
    }

    /// Like [`start`](Self::start), but holds before the first tag at or after `hold_at_ms`
    /// of clip time until [`release`](Self::release): viewers that join meanwhile get the
    /// stream from its start out of the GOP cache, whenever they got going.
    pub fn start_held(url: &str, tags: Vec<Tag>, stamping: Stamping, hold_at_ms: u32) -> ClipPublisher {
        Self::spawn(url, tags, stamping, Some(hold_at_ms))
    }

    fn spawn(url: &str, tags: Vec<Tag>, stamping: Stamping, hold_at_ms: Option<u32>) -> ClipPublisher {
        let flags = Arc::new(Flags::default());
        let f = Arc::clone(&flags);
        let url = url.to_string();
        let thread = std::thread::spawn(move || publish(&url, &tags, stamping, hold_at_ms, &f));
        ClipPublisher {
            flags,
            thread: Some(thread),
        }
    }

    /// Whether the publisher reached its hold (everything before it was sent).
    pub fn is_holding(&self) -> bool {
        self.flags.holding.load(Ordering::Relaxed)
    }

    /// How far into the clip the publisher is: the clip time of the last tag sent, ms.
    pub fn sent_ms(&self) -> u32 {
        self.flags.sent_ms.load(Ordering::Relaxed)
    }

    /// Lets a held publisher go on.
    pub fn release(&self) {
        self.flags.released.store(true, Ordering::Relaxed);
    }

    /// Waits until every tag was sent: how many, or why the publisher failed.
    pub fn join(mut self) -> Result<usize, String> {
        self.thread.take().map_or(Err("joined twice".into()), |t| {
            t.join().unwrap_or_else(|_| Err("publisher thread panicked".into()))
        })
    }
}

impl Drop for ClipPublisher {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A connected, handshaken socket with its `rml_rtmp` session.
struct Conn {
    sock: TcpStream,
    session: ClientSession,
}

impl Conn {
    /// Writes what the session wants sent; returns the events it raised.
    fn apply(&mut self, results: Vec<ClientSessionResult>) -> Result<Vec<ClientSessionEvent>, String> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => {
                    self.sock.write_all(&p.bytes).map_err(|e| format!("write: {e}"))?
                }
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(events)
    }

    /// Reads and handles what the server sent, for at most one read timeout.
    fn pump(&mut self) -> Result<Vec<ClientSessionEvent>, String> {
        let mut buf = [0u8; 16 * 1024];
        match self.sock.read(&mut buf) {
            Ok(0) => Err("server closed the connection".into()),
            Ok(n) => {
                let results = self
                    .session
                    .handle_input(&buf[..n])
                    .map_err(|e| format!("rtmp input: {e:?}"))?;
                self.apply(results)
            }
            Err(e) if is_timeout(&e) => Ok(Vec::new()),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Pumps until an event `done` accepts, an error, or 15 s.
    fn wait_for(
        &mut self,
        what: &str,
        stop: &AtomicBool,
        done: impl Fn(&ClientSessionEvent) -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            for e in self.pump()? {
                if done(&e) {
                    return Ok(());
                }
                if let ClientSessionEvent::ConnectionRequestRejected { description } = &e {
                    return Err(format!("{what}: rejected ({description})"));
                }
            }
        }
        Err(format!("{what}: no answer within 15 s"))
    }
}

fn publish(
    url: &str,
    tags: &[Tag],
    stamping: Stamping,
    hold_at_ms: Option<u32>,
    flags: &Flags,
) -> Result<usize, String> {
    let stop = &flags.stop;
    let (host, app, stream) = split_rtmp_url(url);
    let mut sock = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
    sock.set_nodelay(true).ok();
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let remaining = rtmp_client_handshake(&mut sock, stop)?;
    let mut config = ClientSessionConfig::new();
    config.tc_url = Some(format!("rtmp://{host}/{app}"));
    let (session, initial) = ClientSession::new(config).map_err(|e| format!("client session: {e:?}"))?;
    let mut conn = Conn { sock, session };
    conn.apply(initial)?;
    let early = conn
        .session
        .handle_input(&remaining)
        .map_err(|e| format!("rtmp input: {e:?}"))?;
    conn.apply(early)?;
    let connect = conn
        .session
        .request_connection(app)
        .map_err(|e| format!("connect request: {e:?}"))?;
    conn.apply(vec![connect])?;
    conn.wait_for("connect", stop, |e| {
        matches!(e, ClientSessionEvent::ConnectionRequestAccepted)
    })?;
    let publish = conn
        .session
        .request_publishing(stream, PublishRequestType::Live)
        .map_err(|e| format!("publish request: {e:?}"))?;
    conn.apply(vec![publish])?;
    conn.wait_for("publish", stop, |e| {
        matches!(e, ClientSessionEvent::PublishRequestAccepted)
    })?;

    let mut start = Instant::now();
    let first = tags.first().map_or(0, |t| t.timestamp);
    let mut hold = hold_at_ms;
    for (sent, tag) in tags.iter().enumerate() {
        let clip_ms = tag.timestamp.saturating_sub(first);
        if hold.is_some_and(|at| clip_ms >= at) {
            hold = None;
            let held = Instant::now();
            flags.holding.store(true, Ordering::Relaxed);
            while !flags.released.load(Ordering::Relaxed) {
                if stop.load(Ordering::Relaxed) {
                    return Err(format!("stopped while held, after {sent} of {} tags", tags.len()));
                }
                conn.pump()?;
            }
            // Pacing resumes where it stopped.
            start += held.elapsed();
        }
        let due = start + Duration::from_millis(u64::from(clip_ms));
        // Serve the server's control messages (acks) while waiting.
        while Instant::now() < due {
            if stop.load(Ordering::Relaxed) {
                return Err(format!("stopped after {sent} of {} tags", tags.len()));
            }
            conn.pump()?;
        }
        let ts = RtmpTimestamp::new(stamping.stamp(tag));
        let result = match tag.kind {
            TagKind::Video => conn.session.publish_video_data(tag.data.clone(), ts, false),
            _ => conn.session.publish_audio_data(tag.data.clone(), ts, false),
        }
        .map_err(|e| format!("publish tag {sent}: {e:?}"))?;
        conn.apply(vec![result])?;
        flags.sent_ms.store(clip_ms, Ordering::Relaxed);
    }
    Ok(tags.len())
}
