//! One RTMP connection: handshake, then the session as a publisher or a player.
//!
//! A single task reads the peer's chunks and feeds the session. When playing, a
//! [`LivePlayer`] writes the stream's shared pre-chunked packets, and at the live edge lends
//! the socket to the stream, which writes to it directly; the task takes it back before it
//! writes anything of its own, so a message is never split between writers.
//!
//! Deadlines (DESIGN.md rule 2): every write waits at most `rtmp.write_timeout_ms` (the
//! player's media: `play.slow_disconnect_ms`) for a socket that accepts nothing, and gives up
//! at once on a kick or shutdown; every read waits at most until the deadline of the
//! connection's role: `rtmp.handshake_timeout_ms` to start publishing or playing,
//! `stream.no_media_timeout_ms` between a publisher's audio/video packets,
//! `rtmp.publisher_timeout_ms` for any byte from a publisher. However the connection ends,
//! its source or viewer hold is ended and its hooks are queued before the task returns.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use estuary_protocol::flv::TagError;
use estuary_protocol::rtmp::chunk::ChunkLimits;
use estuary_protocol::rtmp::session::{
    ConnectInfo, ServerSession, SessionConfig, SessionError, SessionEvent, StreamName,
};
use estuary_protocol::{MediaKind, Packet};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tracing::{debug, info, warn};

use super::super::io::{Deadline, WriteError};
use super::super::player::{Framing, LivePlayer, PlayError};
use crate::admission::{Refusal, Request};
use crate::clients::{self, ClientGuard, ClientKind};
use crate::cluster::ClaimRefused;
use crate::context::Context;
use crate::hooks::HookSubject;
use crate::hooks::{ClientInfo, NotifyEvent, Receipt, StreamInfo};
use crate::path::source::Source;
use crate::path::viewer::Viewer;
use crate::stream::{SinkFormat, StreamKey, SubscriberEnd};

/// Read buffer of a publisher: big reads, few syscalls.
const PUBLISHER_READ_BUFFER: usize = 64 * 1024;
/// Read buffer of every other connection.
const PLAYER_READ_BUFFER: usize = 4 * 1024;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("stream {stream}: {source}")]
    BadMedia { stream: String, source: TagError },
    #[error("{0}")]
    Timeout(&'static str),
    #[error("did not start publishing or playing within {0} ms of connecting (rtmp.handshake_timeout_ms)")]
    NotStarted(u64),
    #[error("publisher sent no audio or video for {0} ms (stream.no_media_timeout_ms); stream ended")]
    NoMedia(u64),
    #[error("{0} (rtmp.write_timeout_ms)")]
    Stalled(WriteError),
    /// Told to stop (kick or shutdown) while waiting for the peer; which one is sorted out
    /// when the connection ends.
    #[error("stopped")]
    Stopped,
    #[error("refused: {0}")]
    Refused(String),
    #[error("replaced by another publisher")]
    Replaced,
    #[error("disconnected by the server (kicked)")]
    Kicked,
    #[error("server shutting down")]
    Shutdown,
    #[error("{0}")]
    Subscriber(#[from] SubscriberEnd),
}

impl From<PlayError> for ConnectionError {
    fn from(e: PlayError) -> Self {
        match e {
            PlayError::Io(e) => ConnectionError::Io(e),
            PlayError::Subscriber(e) => ConnectionError::Subscriber(e),
            PlayError::Stopped => ConnectionError::Stopped,
        }
    }
}

impl From<WriteError> for ConnectionError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Io(e) => ConnectionError::Io(e),
            stalled @ WriteError::Stalled(_) => ConnectionError::Stalled(stalled),
            WriteError::Stopped => ConnectionError::Stopped,
        }
    }
}

impl ConnectionError {
    /// Whether the socket is still worth writing a last message to.
    fn socket_usable(&self) -> bool {
        !matches!(self, ConnectionError::Io(_) | ConnectionError::Stalled(_))
    }
}

/// What the connection is doing.
enum Role {
    Idle,
    Publishing {
        source: Source,
    },
    Playing {
        player: Box<LivePlayer>,
        viewer: Box<Viewer>,
        stream: StreamName,
        stream_id: u32,
    },
}

/// Which read deadline passed.
#[derive(Debug, Clone, Copy)]
enum ReadDeadline {
    /// `rtmp.publisher_timeout_ms`: no byte at all.
    Silent,
    /// `rtmp.handshake_timeout_ms`: not publishing or playing yet.
    NotStarted,
    /// `stream.no_media_timeout_ms`: a publisher without audio or video.
    NoMedia,
}

/// What woke the connection's loop.
enum Wake {
    Read(std::io::Result<usize>),
    Deadline(ReadDeadline),
    /// The player has something to write.
    Media(Result<(), SubscriberEnd>),
    Shutdown,
    Kicked,
}

struct Connection {
    ctx: Arc<Context>,
    id: u64,
    peer: SocketAddr,
    session: ServerSession,
    writer: Arc<OwnedWriteHalf>,
    connect: Option<ConnectInfo>,
    role: Role,
    kick: CancellationToken,
    /// Completes when `kick` (or shutdown) is cancelled; kept across loop turns.
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
    /// This connection in the client registry (API, kick), with its byte counters.
    client: ClientGuard,
    bytes_in: metrics::Counter,
    bytes_out: metrics::Counter,
    batches_written: u64,
    /// Receipts of the `on_unpublish`/`on_stop` this connection caused; its `on_close` waits
    /// for them.
    ended: Vec<Receipt>,
    /// While not publishing or playing: when the connection is closed unless it starts to.
    start_by: Instant,
    /// While publishing: when the last audio or video packet came (or publishing began).
    last_media: Instant,
}

pub async fn run(ctx: Arc<Context>, socket: TcpStream, peer: SocketAddr, id: u64) {
    let kick = ctx.shutdown.child_token();
    let (mut reader, mut writer) = socket.into_split();
    // Players only ever send acks: a small buffer keeps a thousand of them cheap. Publishers
    // get a large one once they publish (see `next_wake`).
    let mut buf = BytesMut::with_capacity(PLAYER_READ_BUFFER);
    let handshake_timeout = Duration::from_millis(ctx.config.rtmp.handshake_timeout_ms);
    let start_by = Instant::now() + handshake_timeout;
    let shaken = tokio::select! {
        shaken = tokio::time::timeout_at(start_by, handshake(&mut reader, &mut writer, &mut buf)) => shaken,
        () = kick.cancelled() => return debug!("connection closed during the handshake: server shutting down"),
    };
    match shaken {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return warn!(cause = %e, "connection closed"),
        Err(_) => return warn!("connection closed: handshake timed out"),
    }
    let client = ctx.clients.register(
        id,
        peer.ip().to_string(),
        clients::Role::new(ClientKind::RtmpIdle, None, String::new()),
        kick.clone(),
    );
    let (bytes_in, bytes_out) = (
        crate::metrics::bytes_received("rtmp"),
        crate::metrics::bytes_sent("rtmp"),
    );
    // C0+C1+C2 in, S0+S1+S2 out; bytes read past C2 are counted with the session's.
    client.add_received(HANDSHAKE_BYTES);
    client.add_sent(HANDSHAKE_BYTES);
    bytes_in.increment(HANDSHAKE_BYTES);
    bytes_out.increment(HANDSHAKE_BYTES);
    let session = ServerSession::new(SessionConfig {
        limits: ChunkLimits {
            max_chunk_size: ctx.config.limits.max_chunk_size,
            max_message_bytes: ctx.config.limits.max_message_bytes,
            max_buffered_bytes: ctx.config.limits.max_chunk_streams_bytes,
            max_preconnect_bytes: ctx.config.limits.max_preconnect_bytes,
        },
        out_chunk_size: ctx.config.rtmp.out_chunk_size,
    });
    let mut conn = Connection {
        ctx,
        id,
        peer,
        session,
        writer: Arc::new(writer),
        connect: None,
        role: Role::Idle,
        stopped: Box::pin(kick.clone().cancelled_owned()),
        kick,
        client,
        bytes_in,
        bytes_out,
        batches_written: 0,
        ended: Vec::new(),
        start_by,
        last_media: start_by,
    };
    let result = match conn.serve(&mut reader, buf).await {
        Err(ConnectionError::Stopped) if conn.ctx.shutdown.is_cancelled() => Err(ConnectionError::Shutdown),
        Err(ConnectionError::Stopped) => Err(ConnectionError::Kicked),
        result => result,
    };
    // What the session queued last (a refusal, the end of play) goes out, within the write
    // deadline, unless the socket failed or stopped taking bytes; a kick or shutdown leaves
    // it only if the socket has room.
    if result.as_ref().err().is_none_or(ConnectionError::socket_usable) {
        let _ = conn.flush().await;
    }
    conn.finish_role();
    match &result {
        Err(ConnectionError::Subscriber(SubscriberEnd::TooSlow)) => crate::metrics::viewer_too_slow(),
        Err(ConnectionError::Stalled(_)) => crate::metrics::timed_out("rtmp", "write"),
        Err(ConnectionError::NotStarted(_)) => crate::metrics::timed_out("rtmp", "not_started"),
        Err(ConnectionError::NoMedia(_)) => crate::metrics::timed_out("rtmp", "no_media"),
        Err(ConnectionError::Timeout(_)) => crate::metrics::timed_out("rtmp", "silent"),
        _ => {}
    }
    if let Err(ConnectionError::Session(e)) = &result {
        if let Some(budget) = e.budget() {
            crate::metrics::budget_exceeded(budget);
        }
    }
    match result {
        Ok(()) => info!("connection closed"),
        Err(e @ ConnectionError::Shutdown) => info!(cause = %e, "connection closed"),
        Err(e) => warn!(cause = %e, "connection closed"),
    }
    if let Some(client) = conn.client_info() {
        let recv_bytes = conn.session.bytes_received();
        let close = NotifyEvent::Close {
            client,
            send_bytes: conn.client.sent(),
            recv_bytes,
        };
        // SRS sends on_close after the client's on_unpublish/on_stop; so do we, across URLs.
        conn.ctx.hooks.notify_after(close, std::mem::take(&mut conn.ended));
    }
}

/// Bytes of C0+C1+C2 (and of S0+S1+S2).
const HANDSHAKE_BYTES: u64 = 1 + 1536 + 1536;

/// RTMP handshake (simple or digest, via `rml_rtmp`). Leftover bytes stay in `buf`.
async fn handshake(
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    buf: &mut BytesMut,
) -> Result<(), ConnectionError> {
    let mut handshake = Handshake::new(PeerType::Server);
    // Reads go into `buf` (on the heap), not a stack array: a buffer held across an await
    // would sit in every connection's future for its whole life.
    let mut first_byte = None;
    loop {
        buf.reserve(4096);
        let n = reader.read_buf(buf).await?;
        if n == 0 {
            return Err(ConnectionError::Handshake("peer closed during the handshake".into()));
        }
        first_byte = first_byte.or(buf.first().copied());
        let input = buf.split();
        match handshake.process_bytes(&input) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => writer.write_all(&response_bytes).await?,
            Ok(HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            }) => {
                writer.write_all(&response_bytes).await?;
                buf.extend_from_slice(&remaining_bytes);
                return Ok(());
            }
            Err(e) => {
                return Err(ConnectionError::Handshake(format!(
                    "{e:?} (first byte 0x{:02x})",
                    first_byte.unwrap_or(0)
                )))
            }
        }
    }
}

impl Connection {
    async fn serve(&mut self, reader: &mut OwnedReadHalf, mut buf: BytesMut) -> Result<(), ConnectionError> {
        let mut leftover = buf.len();
        loop {
            let wake = if leftover > 0 {
                Wake::Read(Ok(std::mem::take(&mut leftover)))
            } else {
                self.next_wake(reader, &mut buf).await
            };
            match wake {
                Wake::Shutdown => return Err(ConnectionError::Shutdown),
                Wake::Kicked => return Err(ConnectionError::Kicked),
                Wake::Deadline(ReadDeadline::Silent) => {
                    return Err(ConnectionError::Timeout(
                        "peer sent nothing for too long (rtmp.publisher_timeout_ms)",
                    ))
                }
                Wake::Deadline(ReadDeadline::NotStarted) => {
                    return Err(ConnectionError::NotStarted(self.ctx.config.rtmp.handshake_timeout_ms))
                }
                Wake::Deadline(ReadDeadline::NoMedia) => {
                    return Err(ConnectionError::NoMedia(self.ctx.config.stream.no_media_timeout_ms))
                }
                Wake::Read(Err(e)) => return Err(e.into()),
                Wake::Read(Ok(0)) => return Ok(()), // peer closed
                Wake::Read(Ok(n)) => {
                    self.client.add_received(n as u64);
                    self.bytes_in.increment(n as u64);
                    let events = self.session.handle_input(&mut buf, n)?;
                    for event in events {
                        if !self.handle_event(event).await? {
                            return Ok(());
                        }
                    }
                    self.flush().await?;
                }
                Wake::Media(Ok(())) => self.play_batch().await?,
                Wake::Media(Err(SubscriberEnd::NoPublisher)) => {
                    if let Role::Playing { stream, stream_id, .. } = &self.role {
                        let (name, id) = (stream.name.clone(), *stream_id);
                        self.session.send_play_end(id, &name)?;
                    }
                    return Err(SubscriberEnd::NoPublisher.into());
                }
                Wake::Media(Err(e)) => return Err(e.into()),
            }
        }
    }

    async fn next_wake(&mut self, reader: &mut OwnedReadHalf, buf: &mut BytesMut) -> Wake {
        // Players may legitimately send nothing for hours (their deadlines are the stream's:
        // `play.wait_for_publisher_ms`, and the write deadline); everyone else must keep
        // talking. (No timer for players: one per wake-up would cost more than the write.)
        let read_deadline = match self.role {
            Role::Playing { .. } => None,
            Role::Idle => Some(self.read_deadline(self.start_by, ReadDeadline::NotStarted)),
            Role::Publishing { .. } => {
                let no_media = Duration::from_millis(self.ctx.config.stream.no_media_timeout_ms);
                Some(self.read_deadline(self.last_media + no_media, ReadDeadline::NoMedia))
            }
        };
        let want = if matches!(self.role, Role::Publishing { .. }) {
            PUBLISHER_READ_BUFFER
        } else {
            PLAYER_READ_BUFFER
        };
        if buf.capacity() - buf.len() < want / 4 {
            buf.reserve(want);
        }
        let read = async {
            match read_deadline {
                Some((at, which)) => tokio::time::timeout_at(at, reader.read_buf(buf))
                    .await
                    .map_err(|_| which),
                None => Ok(reader.read_buf(buf).await),
            }
        };
        let player = match &mut self.role {
            Role::Playing { player, .. } => Some(player),
            _ => None,
        };
        tokio::select! {
            // Media first: most wake-ups are for media, and a branch that is ready ends the
            // select before the others are polled (the cancellation check takes a lock).
            // `play_batch` checks for a kick itself, so a busy player still sees one.
            biased;
            media = async { player.expect("guarded by the branch condition").ready().await }, if player.is_some() => Wake::Media(media),
            read = read => match read {
                Ok(r) => Wake::Read(r),
                Err(which) => Wake::Deadline(which),
            },
            // `kick` is a child of the shutdown token: one future, registered once.
            _ = self.stopped.as_mut() => if self.ctx.shutdown.is_cancelled() { Wake::Shutdown } else { Wake::Kicked },
        }
    }

    /// The earlier of `role_deadline` (tagged `which`) and `rtmp.publisher_timeout_ms` from
    /// now.
    fn read_deadline(&self, role_deadline: Instant, which: ReadDeadline) -> (Instant, ReadDeadline) {
        let silent = Instant::now() + Duration::from_millis(self.ctx.config.rtmp.publisher_timeout_ms);
        if role_deadline <= silent {
            (role_deadline, which)
        } else {
            (silent, ReadDeadline::Silent)
        }
    }

    /// Handles one session event; false ends the connection.
    async fn handle_event(&mut self, event: SessionEvent) -> Result<bool, ConnectionError> {
        match event {
            SessionEvent::Connect(info) => self.on_connect(info).await?,
            SessionEvent::Publish { stream_id, stream } => self.on_publish(stream_id, stream).await?,
            SessionEvent::Play { stream_id, stream } => self.on_play(stream_id, stream).await?,
            SessionEvent::Media {
                kind,
                timestamp,
                payload,
            } => self.on_media(kind, timestamp, payload).await?,
            SessionEvent::Metadata { timestamp, payload } => {
                self.on_media(MediaKind::Script, timestamp, payload).await?
            }
            SessionEvent::StreamClosed { stream_id } => match &self.role {
                Role::Publishing { .. } => {
                    debug!(stream_id, "publisher closed its stream");
                    self.finish_role(); // the connection may publish again, within the time
                    self.start_by = Instant::now() + Duration::from_millis(self.ctx.config.rtmp.handshake_timeout_ms);
                }
                Role::Playing { stream_id: id, .. } if *id == stream_id => {
                    debug!(stream_id, "player closed its stream");
                    return Ok(false);
                }
                _ => {}
            },
        }
        Ok(true)
    }

    fn client_info(&self) -> Option<ClientInfo> {
        let connect = self.connect.as_ref()?;
        let mut client = ClientInfo::new(self.id.to_string(), self.peer.ip().to_string(), connect.app.clone());
        client.tc_url = connect.tc_url.clone();
        client.page_url = connect.page_url.clone();
        Some(client)
    }

    fn stream_info(&self, stream: &StreamName) -> StreamInfo {
        let param = if stream.query.is_empty() {
            String::new()
        } else {
            format!("?{}", stream.query)
        };
        StreamInfo {
            stream: stream.name.clone(),
            param,
            // Set by the admission: the path's id, the API's stream id.
            stream_id: String::new(),
        }
    }

    async fn on_connect(&mut self, info: ConnectInfo) -> Result<(), ConnectionError> {
        // The client's words reach the log only checked: the app name if valid, the tcUrl
        // escaped (`?`) and its query, where tokens travel, hidden.
        let admission = &self.ctx.admission;
        let tc_url = format!(
            "{}{}",
            without_query(&info.tc_url),
            admission.shown_query(&info.app, &info.app_query)
        );
        debug!(app = admission.shown_app(&info.app), ?tc_url, "connect");
        self.connect = Some(info.clone());
        let client = self.client_info().expect("connect info was just set");
        let param = if info.app_query.is_empty() {
            String::new()
        } else {
            format!("?{}", info.app_query)
        };
        // Boxed, as the other admissions: the hook call's future is large and lives only during
        // admission, so it stays out of the connection's future (allocated per connection).
        let admitted = stoppable(&self.kick, Box::pin(self.ctx.admission.connect(client, param))).await?;
        if let Err(refusal) = admitted {
            let reason = refusal.to_string();
            self.session.reject_connect(&reason)?;
            return self.refuse(reason).await;
        }
        self.session.accept_connect()?;
        // The API lists the tcUrl as the log shows it: the query's secrets hidden.
        self.client.introduce(clients::Introduction {
            tc_url,
            page_url: info.page_url,
            swf_url: info.swf_url,
            ..clients::Introduction::default()
        });
        Ok(())
    }

    /// What the admission needs to know of a publish or play of `stream`.
    fn request(&self, stream: &StreamName) -> Request {
        let app = self.connect.as_ref().map_or("", |c| c.app.as_str());
        // A token travels in the stream name's query, or (some encoders) in the server URL's.
        let credentials = if stream.query.is_empty() {
            self.connect.as_ref().map_or(String::new(), |c| c.app_query.clone())
        } else {
            stream.query.clone()
        };
        Request {
            key: StreamKey::new(app, stream.name.clone()),
            subject: HookSubject {
                client: self
                    .client_info()
                    .unwrap_or_else(|| ClientInfo::new(self.id.to_string(), "", app)),
                stream: self.stream_info(stream),
            },
            protocol: "rtmp",
            peer: self.peer.ip(),
            credentials,
            http: None,
        }
    }

    async fn on_publish(&mut self, stream_id: u32, stream: StreamName) -> Result<(), ConnectionError> {
        if !matches!(self.role, Role::Idle) {
            self.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadConnection",
                "already publishing or playing",
            )?;
            return Ok(());
        }
        let request = self.request(&stream);
        let key = request.key.clone();
        let admitted = Box::pin(self.ctx.admission.publish(request, self.id, self.kick.clone()));
        match stoppable(&self.kick, admitted).await? {
            Ok(source) => {
                // Only an admitted key reaches the log: its names were checked.
                tracing::Span::current().record("stream", tracing::field::display(&key));
                self.session.accept_publish(stream_id, &stream.name)?;
                info!(stream = %key, "publish started");
                self.client.set_publish_style(self.session.publish_style());
                self.client
                    .set_role(ClientKind::Publisher, Some(key), self.stream_url(&stream));
                self.role = Role::Publishing { source };
                self.last_media = Instant::now();
                Ok(())
            }
            Err(refusal) => {
                // SRS and nginx-rtmp answer a busy or bad name with BadName; a backend's "no"
                // with Rejected.
                let code = match refusal {
                    // Another node's stream is busy here too: the encoder retries, as for a
                    // busy key, and lands once the owner is gone.
                    Refusal::BadName(_) | Refusal::Busy(_) | Refusal::Cluster(ClaimRefused::Owned(_)) => {
                        "NetStream.Publish.BadName"
                    }
                    Refusal::Cluster(ClaimRefused::Unreachable(_)) => "NetStream.Publish.Failed",
                    Refusal::Hook(_)
                    | Refusal::PreviousNotSettled(_)
                    | Refusal::MaxStreams(_)
                    | Refusal::MaxViewers(_) => "NetStream.Publish.Rejected",
                    Refusal::Acl(_) | Refusal::Sign(_) => "NetStream.Publish.BadAuth",
                };
                let reason = refusal.to_string();
                self.session.reject_publish(stream_id, code, &reason)?;
                self.refuse(reason).await
            }
        }
    }

    async fn on_play(&mut self, stream_id: u32, stream: StreamName) -> Result<(), ConnectionError> {
        if !matches!(self.role, Role::Idle) {
            self.session
                .reject_play(stream_id, "NetStream.Play.Failed", "already publishing or playing")?;
            return Ok(());
        }
        let request = self.request(&stream);
        let key = request.key.clone();
        let viewer = match stoppable(&self.kick, Box::pin(self.ctx.admission.play(request))).await? {
            Ok(viewer) => viewer,
            Err(refusal) => {
                let code = match refusal {
                    Refusal::BadName(_) => "NetStream.Play.StreamNotFound",
                    _ => "NetStream.Play.Failed",
                };
                let reason = refusal.to_string();
                self.session.reject_play(stream_id, code, &reason)?;
                return self.refuse(reason).await;
            }
        };
        tracing::Span::current().record("stream", tracing::field::display(&key));
        // Accept at once; a viewer that came before the publisher waits (bounded) for media.
        self.session.accept_play(stream_id, &stream.name)?;
        info!(stream = %key, "play started");
        self.client
            .set_role(ClientKind::RtmpPlay, Some(key), self.stream_url(&stream));
        let subscriber = viewer.subscribe(&self.ctx.config.play);
        let chunk_size = self.session.out_chunk_size();
        // Shared chunks are built for message stream 1, which is what every player we know
        // gets from createStream; any other id costs per-player chunking.
        let framing = if stream_id == 1 {
            Framing::Shared(SinkFormat::Rtmp { chunk_size })
        } else {
            Framing::RtmpStream { stream_id, chunk_size }
        };
        let on_sent = super::super::player::sent_counter(&self.client, "rtmp");
        let slow = Duration::from_millis(self.ctx.config.play.slow_disconnect_ms);
        let player = LivePlayer::new(
            subscriber,
            Arc::clone(&self.writer),
            framing,
            on_sent,
            slow,
            self.kick.clone(),
        );
        self.role = Role::Playing {
            player: Box::new(player),
            viewer: Box::new(viewer),
            stream,
            stream_id,
        };
        Ok(())
    }

    async fn on_media(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) -> Result<(), ConnectionError> {
        let Role::Publishing { source } = &self.role else {
            debug!(?kind, "media from a connection that is not publishing; ignored");
            return Ok(());
        };
        // One packet, or one per track of an Enhanced RTMP ManyTracks message.
        let packets =
            Packet::from_flv_message(kind, timestamp, payload).map_err(|source_error| ConnectionError::BadMedia {
                stream: source.path().key.to_string(),
                source: source_error,
            })?;
        for packet in packets {
            if !source.publish_yielding(packet).await {
                return Err(ConnectionError::Replaced);
            }
        }
        if kind != MediaKind::Script {
            self.last_media = Instant::now();
        }
        Ok(())
    }

    /// Writes what the player has ready (after any control messages the session queued).
    async fn play_batch(&mut self) -> Result<(), ConnectionError> {
        self.batches_written += 1;
        if self.batches_written.is_multiple_of(32) && self.kick.is_cancelled() {
            return Err(if self.ctx.shutdown.is_cancelled() {
                ConnectionError::Shutdown
            } else {
                ConnectionError::Kicked
            });
        }
        let control = self.session.take_outbound();
        if let Role::Playing { player, .. } = &mut self.role {
            player.write(control).await?;
        }
        Ok(())
    }

    /// Sends the refusal the session just prepared (the admission counted it) and ends the
    /// connection.
    async fn refuse(&mut self, why: String) -> Result<(), ConnectionError> {
        self.flush().await?;
        Err(ConnectionError::Refused(why))
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        let Some(bytes) = self.session.take_outbound() else {
            return Ok(());
        };
        match &mut self.role {
            // The player owns the write side (its socket may be lent to the stream).
            Role::Playing { player, .. } => player.write(Some(bytes)).await?,
            _ => {
                self.client.add_sent(bytes.len() as u64);
                self.bytes_out.increment(bytes.len() as u64);
                let deadline = Deadline {
                    stall: Duration::from_millis(self.ctx.config.rtmp.write_timeout_ms),
                    stop: &self.kick,
                };
                super::super::io::write_all(&self.writer, bytes, deadline).await?;
            }
        }
        Ok(())
    }

    /// `rtmp://host/app/stream?query` (the client's tcUrl and the stream name, and the
    /// stream's query, or else the tcUrl's, with its secrets hidden) for listings.
    fn stream_url(&self, stream: &StreamName) -> String {
        let tc_url = self.connect.as_ref().map_or("", |c| without_query(&c.tc_url));
        let query = match (stream.query.as_str(), &self.connect) {
            ("", Some(connect)) => connect.app_query.as_str(),
            (query, _) => query,
        };
        let app = self.connect.as_ref().map_or("", |c| c.app.as_str());
        let shown = self.ctx.admission.shown_query(app, query);
        format!("{}/{}{shown}", tc_url.trim_end_matches('/'), stream.name)
    }

    /// Ends publishing or playing; the path tells the hooks, and `on_close` will wait for it.
    fn finish_role(&mut self) {
        if !matches!(self.role, Role::Idle) {
            self.client.set_role(ClientKind::RtmpIdle, None, String::new());
        }
        match std::mem::replace(&mut self.role, Role::Idle) {
            Role::Publishing { source } => {
                info!(stream = %source.path().key, "publish stopped");
                self.ended.push(source.finish());
            }
            Role::Playing { player, viewer, .. } => {
                let subscriber = player.subscriber();
                info!(stream = %subscriber.stream().key, dropped = subscriber.dropped, "play stopped");
                // The socket comes back from the stream before the viewer's hold goes.
                drop(player);
                self.ended.push(viewer.finish());
            }
            Role::Idle => {}
        }
    }
}

/// Runs `admission` (hook calls, waits for a predecessor's `on_unpublish`) unless the
/// connection is told to stop first: a kick or shutdown does not wait for a backend. Dropping
/// an admission part-way changes nothing: a source or viewer exists only once it returns.
async fn stoppable<T>(
    stop: &CancellationToken,
    admission: impl std::future::Future<Output = T>,
) -> Result<T, ConnectionError> {
    tokio::select! {
        biased;
        decided = admission => Ok(decided),
        () = stop.cancelled() => Err(ConnectionError::Stopped),
    }
}

/// `url` without its query (which may carry a token; listings and logs show it hidden).
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(before, _)| before)
}
