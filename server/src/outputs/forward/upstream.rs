//! One upstream of one stream: a task that publishes to it with our RTMP client
//! (`estuary_protocol::rtmp::client`), fed by its queue, and retries with backoff when the
//! upstream refuses, stalls or drops.
//!
//! Every socket operation has a deadline: reaching the upstream (TCP connect, handshake,
//! `connect`, `publish`) `forward.connect_timeout_ms`, each write `forward.write_timeout_ms`.
//! Logs name the upstream by its id and `host:port` only: its stream name or query may be
//! the CDN's publish key.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use estuary_protocol::rtmp::chunker::chunk_media;
use estuary_protocol::rtmp::client::{ClientConfig, ClientError, ClientEvent, ClientMode, ClientSession};
use estuary_protocol::Packet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::queue::{Pushed, Queue};
use crate::config::ForwardConfig;

/// A publish that lasted this long was a success: the next failure retries after
/// `forward.retry_initial_ms` again, not after the grown backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How often the bitrate shown in the API is recomputed.
const KBPS_EVERY: Duration = Duration::from_secs(2);

/// What every upstream task of this server uses.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `rtmp.out_chunk_size`: the players' chunk size, so forwarded packets reuse their chunks.
    pub chunk_size: u32,
    /// `forward.send_buffer_bytes` (0: the kernel's).
    pub send_buffer_bytes: usize,
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// Where a forward comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `[forward] urls` or `[apps.NAME.forward] urls`.
    Config,
    /// `POST /api/v1/forwards`.
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }
}

/// What an upstream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Connected,
    Retrying,
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Retrying => "retrying",
            Phase::Stopped => "stopped",
        }
    }
}

/// Why a publish to an upstream ended, for the log, the API and the metrics.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("{addr} did not accept the publish within {ms} ms")]
    StartTimeout { addr: String, ms: u64 },
    #[error("{addr} accepted no bytes for {ms} ms")]
    Stalled { addr: String, ms: u64 },
    #[error("{addr} closed the connection")]
    Closed { addr: String },
    #[error("{addr}: {source}")]
    Io { addr: String, source: std::io::Error },
    #[error("{addr}: {source}")]
    Protocol { addr: String, source: ClientError },
}

impl UpstreamError {
    /// The `reason` label of `estuary_forward_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::StartTimeout { .. } => "start_timeout",
            UpstreamError::Stalled { .. } => "stalled",
            UpstreamError::Closed { .. } | UpstreamError::Io { .. } => "closed",
            UpstreamError::Protocol {
                source: ClientError::Rejected { .. },
                ..
            } => "refused",
            UpstreamError::Protocol { .. } => "protocol",
        }
    }
}

/// What the API shows of an upstream.
#[derive(Debug, Clone)]
pub struct Status {
    pub phase: Phase,
    /// Unix ms of the last phase change.
    pub since_ms: u64,
    pub last_error: Option<String>,
    /// Publishes that ended in an error (each one retried).
    pub failures: u64,
    pub kbps: u64,
}

/// One upstream: its address, its queue and what the API shows; its task runs
/// [`Upstream::run`].
pub struct Upstream {
    pub id: u64,
    pub origin: Origin,
    /// The full URL, with its key: used to connect, never shown.
    url: String,
    /// `host:port`, for logs and metric labels.
    pub addr: String,
    queue: Mutex<Queue>,
    queued: Notify,
    status: Mutex<Status>,
    pub bytes_sent: AtomicU64,
    /// `estuary_forward_bytes_total`, looked up once.
    bytes_metric: metrics::Counter,
    pub frames_dropped: AtomicU64,
    /// Cancelled when the forward is removed or its output ends.
    pub stop: CancellationToken,
}

/// `host:port` of an upstream URL (its redacted self if it does not parse).
pub fn addr_of(url: &str) -> String {
    ClientConfig::from_url(url, ClientMode::Publish).map_or_else(|_| ForwardConfig::redact(url), |c| c.addr)
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Upstream {
    /// `url` must have passed `config::forward::url_problem` (the address is taken from it
    /// here; a URL that does not parse is shown as its redacted self).
    pub fn new(id: u64, origin: Origin, url: String, max_queue_bytes: u64, stop: CancellationToken) -> Upstream {
        let addr = addr_of(&url);
        Upstream {
            id,
            origin,
            url,
            addr,
            queue: Mutex::new(Queue::new(max_queue_bytes)),
            queued: Notify::new(),
            status: Mutex::new(Status {
                phase: Phase::Connecting,
                since_ms: unix_ms(),
                last_error: None,
                failures: 0,
                kbps: 0,
            }),
            bytes_sent: AtomicU64::new(0),
            bytes_metric: crate::metrics::forward_bytes(),
            frames_dropped: AtomicU64::new(0),
            stop,
        }
    }

    /// The URL as listings show it: stream name and query hidden.
    pub fn shown_url(&self) -> String {
        ForwardConfig::redact(&self.url)
    }

    pub fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status_lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn status(&self) -> Status {
        self.status_lock().clone()
    }

    fn set_phase(&self, phase: Phase) {
        let mut status = self.status_lock();
        if status.phase != phase {
            status.phase = phase;
            status.since_ms = unix_ms();
        }
        if phase != Phase::Connected {
            status.kbps = 0;
        }
    }

    /// Tells the task that packets are queued.
    pub fn wake(&self) {
        self.queued.notify_one();
    }

    /// Queues one packet of the stream (called by the output, under the feed's lock).
    pub fn push(&self, packet: &Arc<Packet>, has_video: bool) {
        let pushed = self.queue().push(packet, has_video);
        match pushed {
            Pushed::Queued => self.queued.notify_one(),
            Pushed::Closed => {}
            Pushed::Dropped { emptied } => {
                let frames = emptied + u64::from(!packet.seq_header);
                self.frames_dropped.fetch_add(frames, Ordering::Relaxed);
                crate::metrics::forward_frames_dropped(frames);
                if emptied > 0 {
                    warn!(
                        forward = self.id,
                        upstream = %self.addr,
                        dropped_frames = emptied,
                        "upstream too slow: its queue reached forward.max_queue_bytes; skipping to the next keyframe"
                    );
                }
            }
        }
    }

    /// Publishes to the upstream until stopped, retrying with backoff. `prime` opens the
    /// queue with the stream's headers and GOP once a publish is accepted.
    pub async fn run(self: Arc<Self>, settings: Settings, prime: impl Fn(&Upstream)) {
        let mut backoff = settings.retry_initial;
        loop {
            self.set_phase(Phase::Connecting);
            let started = Instant::now();
            let result = tokio::select! {
                _ = self.stop.cancelled() => break,
                result = self.publish(&settings, &prime) => result,
            };
            self.queue().close();
            let err = match result {
                Ok(()) => break,
                Err(e) => e,
            };
            crate::metrics::forward_failed(err.reason());
            let published_long = started.elapsed() >= STABLE_AFTER && self.status().phase == Phase::Connected;
            if published_long {
                backoff = settings.retry_initial;
            }
            {
                let mut status = self.status_lock();
                status.failures += 1;
                status.last_error = Some(err.to_string());
            }
            self.set_phase(Phase::Retrying);
            warn!(
                cause = %err,
                retry_in_ms = backoff.as_millis() as u64,
                "forward to upstream failed; retrying"
            );
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(settings.retry_max);
        }
        self.queue().close();
        self.set_phase(Phase::Stopped);
        info!("forward stopped: its stream ended or it was removed");
    }

    /// One publish: connect, start, then send what is queued until an error.
    async fn publish(&self, settings: &Settings, prime: &impl Fn(&Upstream)) -> Result<(), UpstreamError> {
        let mut config =
            ClientConfig::from_url(&self.url, ClientMode::Publish).map_err(|source| UpstreamError::Protocol {
                addr: self.addr.clone(),
                source,
            })?;
        config.out_chunk_size = settings.chunk_size;
        let (socket, session, inbuf) = tokio::time::timeout(settings.connect_timeout, self.start(config, settings))
            .await
            .map_err(|_| UpstreamError::StartTimeout {
                addr: self.addr.clone(),
                ms: settings.connect_timeout.as_millis() as u64,
            })??;
        info!("forward publishing to upstream");
        {
            let mut status = self.status_lock();
            status.last_error = None;
        }
        self.set_phase(Phase::Connected);
        prime(self);
        self.send(socket, session, inbuf, settings).await
    }

    /// TCP connect and the RTMP exchange up to `NetStream.Publish.Start`.
    async fn start(
        &self,
        config: ClientConfig,
        settings: &Settings,
    ) -> Result<(TcpStream, ClientSession, BytesMut), UpstreamError> {
        let addr = self.addr.clone();
        let mut socket = TcpStream::connect(&config.addr)
            .await
            .map_err(|source| UpstreamError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = socket.set_nodelay(true);
        if settings.send_buffer_bytes > 0 {
            if let Err(e) = socket2::SockRef::from(&socket).set_send_buffer_size(settings.send_buffer_bytes) {
                debug!(cause = %e, "cannot set SO_SNDBUF");
            }
        }
        let protocol = |source| UpstreamError::Protocol {
            addr: addr.clone(),
            source,
        };
        let mut session = ClientSession::new(config).map_err(protocol)?;
        let mut inbuf = BytesMut::with_capacity(16 * 1024);
        loop {
            if let Some(out) = session.take_output() {
                socket.write_all(&out).await.map_err(|source| UpstreamError::Io {
                    addr: addr.clone(),
                    source,
                })?;
            }
            if session.is_started() {
                return Ok((socket, session, inbuf));
            }
            let read = socket.read_buf(&mut inbuf).await.map_err(|source| UpstreamError::Io {
                addr: addr.clone(),
                source,
            })?;
            if read == 0 {
                return Err(UpstreamError::Closed { addr });
            }
            while let Some(event) = session.handle_input(&mut inbuf).map_err(protocol)? {
                if let ClientEvent::Started { .. } = event {
                    break;
                }
            }
        }
    }

    /// Sends what is queued, answers the upstream's control messages, until an error or
    /// the stop token.
    async fn send(
        &self,
        socket: TcpStream,
        mut session: ClientSession,
        mut inbuf: BytesMut,
        settings: &Settings,
    ) -> Result<(), UpstreamError> {
        let (mut rd, mut wr) = socket.into_split();
        let mut batch = VecDeque::new();
        let mut tick = tokio::time::interval(KBPS_EVERY);
        let mut last_bytes = self.bytes_sent.load(Ordering::Relaxed);
        let stream_id = session.stream_id();
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return Ok(()),
                _ = self.queued.notified() => {
                    self.queue().take(&mut batch);
                    for packet in batch.drain(..) {
                        let bytes = chunks(&packet, stream_id, settings.chunk_size);
                        self.write(&mut wr, &bytes, settings.write_timeout).await?;
                    }
                }
                read = rd.read_buf(&mut inbuf) => {
                    let read = read.map_err(|source| UpstreamError::Io { addr: self.addr.clone(), source })?;
                    if read == 0 {
                        return Err(UpstreamError::Closed { addr: self.addr.clone() });
                    }
                    while let Some(event) = session.handle_input(&mut inbuf).map_err(|source| UpstreamError::Protocol {
                        addr: self.addr.clone(),
                        source,
                    })? {
                        if let ClientEvent::Status { code, .. } = event {
                            debug!(%code, "upstream status");
                        }
                    }
                    if let Some(out) = session.take_output() {
                        self.write(&mut wr, &out, settings.write_timeout).await?;
                    }
                }
                _ = tick.tick() => {
                    let now = self.bytes_sent.load(Ordering::Relaxed);
                    let kbps = (now - last_bytes) * 8 / KBPS_EVERY.as_millis() as u64;
                    last_bytes = now;
                    self.status_lock().kbps = kbps;
                }
            }
        }
    }

    async fn write(
        &self,
        wr: &mut tokio::net::tcp::OwnedWriteHalf,
        bytes: &Bytes,
        deadline: Duration,
    ) -> Result<(), UpstreamError> {
        match tokio::time::timeout(deadline, wr.write_all(bytes)).await {
            Ok(Ok(())) => {
                self.bytes_sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                self.bytes_metric.increment(bytes.len() as u64);
                Ok(())
            }
            Ok(Err(source)) => Err(UpstreamError::Io {
                addr: self.addr.clone(),
                source,
            }),
            Err(_) => Err(UpstreamError::Stalled {
                addr: self.addr.clone(),
                ms: deadline.as_millis() as u64,
            }),
        }
    }
}

/// A packet's chunks for the upstream's message stream: the chunks every RTMP player of the
/// stream shares when the upstream gave us stream 1 (nginx-rtmp, SRS and Estuary do) and
/// we send at the players' chunk size, else chunks of our own.
fn chunks(packet: &Packet, stream_id: u32, chunk_size: u32) -> Bytes {
    if stream_id == 1 {
        packet.rtmp_chunks(chunk_size)
    } else {
        chunk_media(packet, stream_id, chunk_size)
    }
}
