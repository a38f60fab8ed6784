//! The server side of an RTMP connection after the handshake, sans-IO.
//!
//! Bytes from the peer go in through [`ServerSession::handle_input`]; what the application
//! must decide (connect, publish, play) and the media that arrives come out as
//! [`SessionEvent`]s; the application answers with `accept_*`/`reject_*`, and the bytes to
//! send accumulate until [`ServerSession::take_outbound`]. Chunk reassembly is ours
//! ([`ChunkReader`]); message types, AMF0 and the serialisation of control messages come
//! from `rml_rtmp`. Media for players is not sent through here: players write the shared
//! pre-chunked bytes of each packet (see [`crate::rtmp::chunker`]).
//!
//! Command flow handled (RTMP 1.0 §7.2; what OBS, FFmpeg, GStreamer and librtmp send):
//! `connect`, `releaseStream`, `FCPublish`, `createStream`, `publish`, `@setDataFrame`,
//! `FCUnpublish`, `deleteStream`/`closeStream`, `play` and what players send before it
//! (`FCSubscribe`, `getStreamLength`, `_checkbw`, `checkBandwidth`), plus the control messages
//! (Set Chunk Size, Abort, Window Acknowledgement Size, Acknowledgement, User Control ping).
//!
//! Until `connect` is accepted, a peer is nobody: what is held for it (its chunk streams and
//! its unread bytes) must fit [`ChunkLimits::max_preconnect_bytes`]; afterwards its chunk
//! streams get [`ChunkLimits::max_buffered_bytes`].

use bytes::{Bytes, BytesMut};
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::messages::{MessagePayload, PeerBandwidthLimitType, RtmpMessage, UserControlEventType};
use rml_rtmp::rml_amf0::{self, Amf0Value};
use rml_rtmp::time::RtmpTimestamp;

use super::amf_guard;
use super::chunk::{ChunkError, ChunkLimits, ChunkReader, RawMessage};
use crate::media_kind::MediaKind;

/// Deepest AMF0 nesting accepted from a peer.
pub const MAX_AMF_DEPTH: usize = 32;
/// Window acknowledgement size we announce to peers.
const WINDOW_ACK_SIZE: u32 = 2_500_000;

/// Settings of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub limits: ChunkLimits,
    /// Chunk size for everything we send.
    pub out_chunk_size: u32,
}

/// Why a session cannot go on; the connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("{kind} message on chunk stream {csid} does not parse: {reason}")]
    BadMessage {
        kind: &'static str,
        csid: u32,
        reason: String,
    },
    #[error("AMF0 nesting deeper than {MAX_AMF_DEPTH} in a {kind} message")]
    AmfTooDeep { kind: &'static str },
    #[error("could not serialise a reply: {0}")]
    Serialize(String),
    #[error("{held} bytes held for a peer that has not connected yet, over the pre-connect budget of {max}")]
    PreConnectBudget { held: usize, max: usize },
}

impl SessionError {
    /// The byte budget this error enforced, if it is one: `message` (one message over
    /// `max_message_bytes`), `chunk_streams` (partial messages and chunk stream state over
    /// `max_buffered_bytes`) or `pre_connect` (before `connect` was accepted).
    pub fn budget(&self) -> Option<&'static str> {
        match self {
            SessionError::Chunk(ChunkError::MessageTooLarge { .. }) => Some("message"),
            SessionError::Chunk(ChunkError::TooMuchBuffered { .. }) => Some("chunk_streams"),
            SessionError::PreConnectBudget { .. } => Some("pre_connect"),
            _ => None,
        }
    }
}

/// Who the peer said it is in `connect`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectInfo {
    /// The application name without any query string.
    pub app: String,
    /// The query string sent with the app name (`live?token=1`), without the `?`.
    pub app_query: String,
    pub tc_url: String,
    pub page_url: String,
    pub swf_url: String,
    pub flash_ver: String,
}

/// A stream name as sent in `publish` or `play`, split at the first `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamName {
    pub name: String,
    pub query: String,
}

impl StreamName {
    fn parse(raw: &str) -> Self {
        match raw.split_once('?') {
            Some((name, query)) => StreamName {
                name: name.to_string(),
                query: query.to_string(),
            },
            None => StreamName {
                name: raw.to_string(),
                query: String::new(),
            },
        }
    }
}

/// How a publisher came to `publish`, as SRS tells its clients apart
/// (`SrsRtmpServer::identify_client`, `srs_protocol_rtmp_stack.cpp`): the API's client `type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PublishStyle {
    /// `releaseStream`/`FCPublish` before `createStream`: FMLE, OBS, ffmpeg, most encoders.
    #[default]
    Fmle,
    /// `createStream` then `publish`, nothing else: Flash's NetStream.
    Flash,
    /// `createStream` then `FCPublish`: Haivision encoders.
    Haivision,
}

impl PublishStyle {
    /// SRS's name (`srs_client_type_string`).
    pub fn srs_type(self) -> &'static str {
        match self {
            PublishStyle::Fmle => "fmle-publish",
            PublishStyle::Flash => "flash-publish",
            PublishStyle::Haivision => "haivision-publish",
        }
    }
}

/// What the application must know or decide.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Answer with [`ServerSession::accept_connect`] or [`ServerSession::reject_connect`].
    Connect(ConnectInfo),
    /// Answer with [`ServerSession::accept_publish`] or [`ServerSession::reject_publish`].
    Publish { stream_id: u32, stream: StreamName },
    /// Answer with [`ServerSession::accept_play`] or [`ServerSession::reject_play`].
    Play { stream_id: u32, stream: StreamName },
    /// An audio or video message from a publisher.
    Media {
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    },
    /// Stream metadata (`@setDataFrame onMetaData …`), re-encoded as `onMetaData, <object>`.
    Metadata { timestamp: u32, payload: Bytes },
    /// The peer ended publishing or playing on a stream (`FCUnpublish`, `deleteStream`,
    /// `closeStream`).
    StreamClosed { stream_id: u32 },
}

/// One RTMP server session.
pub struct ServerSession {
    config: SessionConfig,
    reader: ChunkReader,
    serializer: ChunkSerializer,
    outbound: BytesMut,
    connect_tx: f64,
    /// The id the next `createStream` gets (see [`ServerSession::allocate_stream_id`]).
    next_stream_id: u32,
    /// The message stream this connection publishes or plays on, once accepted.
    active_stream: Option<u32>,
    bytes_received: u64,
    last_ack: u64,
    peer_window: u32,
    /// `connect` was accepted: the reader has the full limits instead of the pre-connect
    /// budget.
    connected: bool,
    /// The first of `releaseStream`/`FCPublish` (true) or `createStream` (false) the peer
    /// sent, and whether `releaseStream`/`FCPublish` followed `createStream`: the
    /// publisher's [`PublishStyle`].
    first_was_fmle_start: Option<bool>,
    fmle_start_after_create: bool,
}

/// The message stream id after `id`, wrapping past `u32::MAX` to 1 and skipping `in_use`.
fn next_stream_id_after(id: u32, in_use: Option<u32>) -> u32 {
    let step = |id: u32| id.checked_add(1).unwrap_or(1);
    let next = step(id);
    if Some(next) == in_use {
        step(next)
    } else {
        next
    }
}

fn amf_object(props: &[(&str, Amf0Value)]) -> Amf0Value {
    Amf0Value::Object(props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
}

fn status(level: &str, code: &str, description: &str) -> Amf0Value {
    amf_object(&[
        ("level", Amf0Value::Utf8String(level.into())),
        ("code", Amf0Value::Utf8String(code.into())),
        ("description", Amf0Value::Utf8String(description.into())),
    ])
}

fn string_prop(obj: &Amf0Value, key: &str) -> String {
    match obj {
        Amf0Value::Object(map) => match map.get(key) {
            Some(Amf0Value::Utf8String(s)) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

impl ServerSession {
    pub fn new(config: SessionConfig) -> Self {
        ServerSession {
            config,
            reader: ChunkReader::new(Self::preconnect_limits(config.limits)),
            serializer: ChunkSerializer::new(),
            outbound: BytesMut::new(),
            connect_tx: 1.0,
            next_stream_id: 1,
            active_stream: None,
            bytes_received: 0,
            last_ack: 0,
            peer_window: 0,
            connected: false,
            first_was_fmle_start: None,
            fmle_start_after_create: false,
        }
    }

    /// The reader's limits until `connect` is accepted: its chunk streams hold at most the
    /// pre-connect budget, so an unknown peer cannot make us allocate more than that.
    fn preconnect_limits(limits: ChunkLimits) -> ChunkLimits {
        ChunkLimits {
            max_buffered_bytes: limits.max_buffered_bytes.min(limits.max_preconnect_bytes),
            ..limits
        }
    }

    /// A reader error; before `connect` is accepted, running out of chunk stream budget is
    /// running out of the pre-connect budget.
    fn chunk_error(&self, e: ChunkError) -> SessionError {
        match e {
            ChunkError::TooMuchBuffered { held, .. } if !self.connected => SessionError::PreConnectBudget {
                held,
                max: self.config.limits.max_preconnect_bytes,
            },
            e => SessionError::Chunk(e),
        }
    }

    /// Before `connect` is accepted, everything held for the peer (its chunk streams and the
    /// unread bytes in `buf`) must fit [`ChunkLimits::max_preconnect_bytes`].
    fn check_preconnect(&self, buf: &BytesMut) -> Result<(), SessionError> {
        let (held, max) = (
            self.reader.buffered_bytes() + buf.len(),
            self.config.limits.max_preconnect_bytes,
        );
        if !self.connected && held > max {
            return Err(SessionError::PreConnectBudget { held, max });
        }
        Ok(())
    }

    /// Bytes waiting to be sent to the peer.
    pub fn take_outbound(&mut self) -> Option<Bytes> {
        (!self.outbound.is_empty()).then(|| self.outbound.split().freeze())
    }

    pub fn out_chunk_size(&self) -> u32 {
        self.config.out_chunk_size
    }

    /// Total bytes received after the handshake.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Feeds bytes read from the socket (appended to `buf`) and returns the events they
    /// complete. Whole messages are consumed from `buf`; a partial one stays for next time.
    pub fn handle_input(&mut self, buf: &mut BytesMut, newly_read: usize) -> Result<Vec<SessionEvent>, SessionError> {
        self.bytes_received += newly_read as u64;
        let mut events = Vec::new();
        loop {
            match self.reader.read(buf) {
                Ok(Some(msg)) => self.handle_message(msg, &mut events)?,
                Ok(None) => break,
                Err(e) => return Err(self.chunk_error(e)),
            }
        }
        self.check_preconnect(buf)?;
        if self.peer_window > 0 && self.bytes_received - self.last_ack >= u64::from(self.peer_window) {
            self.last_ack = self.bytes_received;
            self.send(
                RtmpMessage::Acknowledgement {
                    sequence_number: self.bytes_received as u32,
                },
                0,
            )?;
        }
        Ok(events)
    }

    fn handle_message(&mut self, msg: RawMessage, events: &mut Vec<SessionEvent>) -> Result<(), SessionError> {
        match msg.type_id {
            8 | 9 => {
                let kind = if msg.type_id == 8 {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                events.push(SessionEvent::Media {
                    kind,
                    timestamp: msg.timestamp,
                    payload: msg.payload,
                });
            }
            18 => self.handle_data(msg, events)?,
            20 => self.handle_command(msg, events)?,
            // AMF3 command: one format byte, then AMF0 (what every AMF3-capable client sends).
            17 if !msg.payload.is_empty() => {
                let csid = msg.csid;
                let payload = msg.payload.slice(1..);
                self.handle_command(
                    RawMessage {
                        payload,
                        type_id: 20,
                        csid,
                        ..msg
                    },
                    events,
                )?;
            }
            1 | 3 | 6 => {} // chunk size is applied by the reader; acks and bandwidth: nothing to do
            2 if msg.payload.len() >= 4 => {
                let p = &msg.payload;
                self.reader.abort(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
            }
            4 | 5 => self.handle_control(&msg)?,
            _ => {} // AMF3 data, shared objects, aggregate messages: not used by live encoders
        }
        Ok(())
    }

    /// Decodes the AMF0 values of a command or data message. `rml_rtmp`'s own command
    /// decoder panics on commands with fewer than three values, so commands are assembled
    /// here from the raw values.
    fn amf_values(&self, msg: &RawMessage, kind: &'static str) -> Result<Vec<Amf0Value>, SessionError> {
        if amf_guard::max_depth(&msg.payload, MAX_AMF_DEPTH) > MAX_AMF_DEPTH {
            return Err(SessionError::AmfTooDeep { kind });
        }
        rml_amf0::deserialize(&mut &msg.payload[..]).map_err(|e| SessionError::BadMessage {
            kind,
            csid: msg.csid,
            reason: e.to_string(),
        })
    }

    fn handle_control(&mut self, msg: &RawMessage) -> Result<(), SessionError> {
        let p = &msg.payload;
        let bad = |reason: &str| SessionError::BadMessage {
            kind: "control",
            csid: msg.csid,
            reason: reason.into(),
        };
        match msg.type_id {
            5 => {
                let b: [u8; 4] = p
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("short window ack size"))?;
                self.peer_window = u32::from_be_bytes(b);
            }
            // User Control: event type 6 is a ping request carrying a timestamp.
            4 if p.len() >= 6 && p[..2] == [0, 6] => {
                let ts = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                let reply = RtmpMessage::UserControl {
                    event_type: UserControlEventType::PingResponse,
                    stream_id: None,
                    buffer_length: None,
                    timestamp: Some(RtmpTimestamp::new(ts)),
                };
                self.send(reply, 0)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_data(&mut self, msg: RawMessage, events: &mut Vec<SessionEvent>) -> Result<(), SessionError> {
        let mut values = self.amf_values(&msg, "data")?;
        if matches!(values.first(), Some(Amf0Value::Utf8String(s)) if s == "@setDataFrame") {
            values.remove(0);
        }
        let is_metadata = matches!(values.first(), Some(Amf0Value::Utf8String(s)) if s == "onMetaData");
        if is_metadata && values.len() >= 2 {
            let bytes = rml_amf0::serialize(&values).map_err(|e| SessionError::Serialize(e.to_string()))?;
            events.push(SessionEvent::Metadata {
                timestamp: msg.timestamp,
                payload: Bytes::from(bytes),
            });
        }
        Ok(())
    }

    fn handle_command(&mut self, msg: RawMessage, events: &mut Vec<SessionEvent>) -> Result<(), SessionError> {
        let mut values = self.amf_values(&msg, "command")?.into_iter();
        let (Some(Amf0Value::Utf8String(command_name)), Some(Amf0Value::Number(transaction_id))) =
            (values.next(), values.next())
        else {
            return Err(SessionError::BadMessage {
                kind: "command",
                csid: msg.csid,
                reason: "no command name and transaction id".into(),
            });
        };
        let command_object = values.next().unwrap_or(Amf0Value::Null);
        let additional_arguments: Vec<Amf0Value> = values.collect();
        let arg_str = |i: usize| match additional_arguments.get(i) {
            Some(Amf0Value::Utf8String(s)) => Some(s.clone()),
            _ => None,
        };
        let arg_num = |i: usize| match additional_arguments.get(i) {
            Some(Amf0Value::Number(n)) => Some(*n),
            _ => None,
        };
        match command_name.as_str() {
            "connect" => {
                self.connect_tx = transaction_id;
                let raw_app = string_prop(&command_object, "app");
                let (app, app_query) = match raw_app.split_once('?') {
                    Some((a, q)) => (a.to_string(), q.to_string()),
                    None => (raw_app, String::new()),
                };
                events.push(SessionEvent::Connect(ConnectInfo {
                    app: app.trim_end_matches('/').to_string(),
                    app_query,
                    tc_url: string_prop(&command_object, "tcUrl"),
                    page_url: string_prop(&command_object, "pageUrl"),
                    swf_url: string_prop(&command_object, "swfUrl"),
                    flash_ver: string_prop(&command_object, "flashVer"),
                }));
            }
            "createStream" => {
                self.first_was_fmle_start.get_or_insert(false);
                let id = self.allocate_stream_id();
                self.send_command(
                    "_result",
                    transaction_id,
                    Amf0Value::Null,
                    vec![Amf0Value::Number(f64::from(id))],
                    0,
                )?;
            }
            // An empty `_result` when the caller wants one. Publishers: `releaseStream`,
            // `FCPublish`. Players, before `play`: `FCSubscribe` (ffmpeg with `-rtmp_live live`
            // or `-rtmp_subscribe`, librtmp with `live=1`), `_checkbw` (ffmpeg and librtmp
            // send it on our `onBWDone`; Haivision encoders send it anyway) and
            // `checkBandwidth` (Flash players written for FMS); no client reads a value from
            // these results. Reference servers: nginx-rtmp has no handler for any of the three
            // and sends nothing; SRS answers a call it has no packet type for with `_result,
            // null, null` before `createStream` and during play (transaction id not 0), and
            // drops it in between. Neither sends FMS's `onFCSubscribe`, which no client waits
            // for (librtmp ignores it, ffmpeg does not look), so we do not either.
            "releaseStream" | "FCPublish" | "FCSubscribe" | "_checkbw" | "checkBandwidth" => {
                if command_name == "releaseStream" || command_name == "FCPublish" {
                    match self.first_was_fmle_start {
                        None => self.first_was_fmle_start = Some(true),
                        Some(false) => self.fmle_start_after_create = true,
                        Some(true) => {}
                    }
                }
                self.acknowledge(transaction_id)?;
                if command_name == "FCPublish" {
                    let name = arg_str(0).unwrap_or_default();
                    let info = status("status", "NetStream.Publish.Start", &name);
                    self.send_command("onFCPublish", 0.0, Amf0Value::Null, vec![info], 0)?;
                }
            }
            // ffmpeg (and mpv through it) sends `getStreamLength` between `createStream` and
            // `play` unless told the stream is live, and reads the `_result`'s fourth value as
            // an AMF0 number, the length in seconds; anything else makes it log "Unexpected
            // reply on getStreamLength()". nginx-rtmp never answers, SRS ignores it at that
            // point (and would answer `null` during play), so neither trips the warning. We
            // answer the number ffmpeg asks for: 0, "no known length", which is what a live
            // stream has (ffmpeg then adds no duration to the stream).
            "getStreamLength" if transaction_id != 0.0 => {
                let length = Amf0Value::Number(0.0);
                self.send_command("_result", transaction_id, Amf0Value::Null, vec![length], 0)?;
            }
            "publish" => {
                let stream = StreamName::parse(&arg_str(0).unwrap_or_default());
                events.push(SessionEvent::Publish {
                    stream_id: msg.stream_id,
                    stream,
                });
            }
            "play" => {
                let stream = StreamName::parse(&arg_str(0).unwrap_or_default());
                events.push(SessionEvent::Play {
                    stream_id: msg.stream_id,
                    stream,
                });
            }
            "FCUnpublish" => {
                self.acknowledge(transaction_id)?;
                // OBS sends FCUnpublish on stream 0 before deleteStream; stream 1 is the one.
                events.push(self.stream_closed(msg.stream_id.max(1)));
            }
            "deleteStream" => {
                let id = arg_num(0).map_or(msg.stream_id, |n| n as u32);
                events.push(self.stream_closed(id));
            }
            "closeStream" => events.push(self.stream_closed(msg.stream_id)),
            _ => {} // pause, receiveAudio/Video, custom calls: not needed for live
        }
        Ok(())
    }

    /// Admits the peer: window ack size, peer bandwidth, our chunk size, `_result`, and
    /// `onBWDone` (which some librtmp-based players wait for).
    pub fn accept_connect(&mut self) -> Result<(), SessionError> {
        self.connected = true;
        self.reader.set_limits(self.config.limits);
        self.send(RtmpMessage::WindowAcknowledgement { size: WINDOW_ACK_SIZE }, 0)?;
        self.send(
            RtmpMessage::SetPeerBandwidth {
                size: WINDOW_ACK_SIZE,
                limit_type: PeerBandwidthLimitType::Dynamic,
            },
            0,
        )?;
        let packet = self
            .serializer
            .set_max_chunk_size(self.config.out_chunk_size, RtmpTimestamp::new(0))
            .map_err(|e| SessionError::Serialize(e.to_string()))?;
        self.outbound.extend_from_slice(&packet.bytes);
        let props = amf_object(&[
            ("fmsVer", Amf0Value::Utf8String("FMS/3,5,7,7009".into())),
            ("capabilities", Amf0Value::Number(31.0)),
            ("mode", Amf0Value::Number(1.0)),
        ]);
        let mut info = status("status", "NetConnection.Connect.Success", "Connection succeeded.");
        if let Amf0Value::Object(map) = &mut info {
            map.insert("objectEncoding".into(), Amf0Value::Number(0.0));
        }
        self.send_command("_result", self.connect_tx, props, vec![info], 0)?;
        self.send_command("onBWDone", 0.0, Amf0Value::Null, vec![Amf0Value::Number(8192.0)], 0)
    }

    /// Refuses the peer with `NetConnection.Connect.Rejected`.
    pub fn reject_connect(&mut self, description: &str) -> Result<(), SessionError> {
        let info = status("error", "NetConnection.Connect.Rejected", description);
        self.send_command("_error", self.connect_tx, Amf0Value::Null, vec![info], 0)
    }

    /// A fresh message stream id for `createStream`: 1, 2, 3, … Message stream ids are 32
    /// bits and a peer may call `createStream` as often as it likes, so after `u32::MAX` the
    /// count wraps to 1 (0 is the control stream), skipping the one id that is in use: a
    /// connection publishes or plays on at most one stream (the server refuses a second),
    /// and an id that was created but never published or played on carries nothing, so
    /// handing it out again confuses no one.
    fn allocate_stream_id(&mut self) -> u32 {
        let mut id = self.next_stream_id;
        if Some(id) == self.active_stream {
            id = next_stream_id_after(id, self.active_stream);
        }
        self.next_stream_id = next_stream_id_after(id, self.active_stream);
        id
    }

    /// The peer closed `stream_id`: its id may be handed out again.
    fn stream_closed(&mut self, stream_id: u32) -> SessionEvent {
        if self.active_stream == Some(stream_id) {
            self.active_stream = None;
        }
        SessionEvent::StreamClosed { stream_id }
    }

    /// How the publisher came to `publish` (see [`PublishStyle`]); FMLE until it has sent
    /// `releaseStream`, `FCPublish` or `createStream`.
    pub fn publish_style(&self) -> PublishStyle {
        match (self.first_was_fmle_start, self.fmle_start_after_create) {
            (Some(true) | None, _) => PublishStyle::Fmle,
            (Some(false), true) => PublishStyle::Haivision,
            (Some(false), false) => PublishStyle::Flash,
        }
    }

    /// Starts publishing on `stream_id`: `NetStream.Publish.Start`.
    pub fn accept_publish(&mut self, stream_id: u32, name: &str) -> Result<(), SessionError> {
        self.active_stream = Some(stream_id);
        self.send_stream_begin(stream_id)?;
        let info = status(
            "status",
            "NetStream.Publish.Start",
            &format!("{name} is now published."),
        );
        self.send_command("onStatus", 0.0, Amf0Value::Null, vec![info], stream_id)
    }

    /// Refuses a publish, e.g. with `NetStream.Publish.BadName` when the stream is taken.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) -> Result<(), SessionError> {
        let info = status("error", code, description);
        self.send_command("onStatus", 0.0, Amf0Value::Null, vec![info], stream_id)
    }

    /// Starts playback on `stream_id`: Stream Begin, `NetStream.Play.Reset`,
    /// `NetStream.Play.Start` and `|RtmpSampleAccess`. The caller then writes media chunked
    /// for this stream id.
    pub fn accept_play(&mut self, stream_id: u32, name: &str) -> Result<(), SessionError> {
        self.active_stream = Some(stream_id);
        self.send_stream_begin(stream_id)?;
        let reset = status(
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {name}."),
        );
        self.send_command("onStatus", 0.0, Amf0Value::Null, vec![reset], stream_id)?;
        let start = status("status", "NetStream.Play.Start", &format!("Started playing {name}."));
        self.send_command("onStatus", 0.0, Amf0Value::Null, vec![start], stream_id)?;
        let access = vec![
            Amf0Value::Utf8String("|RtmpSampleAccess".into()),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(true),
        ];
        self.send_data(access, stream_id)
    }

    /// Refuses a play request (`NetStream.Play.StreamNotFound`, `NetStream.Play.Failed`).
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) -> Result<(), SessionError> {
        let info = status("error", code, description);
        self.send_command("onStatus", 0.0, Amf0Value::Null, vec![info], stream_id)
    }

    /// Tells a player the stream ended (`NetStream.Play.UnpublishNotify`, then Stream EOF).
    pub fn send_play_end(&mut self, stream_id: u32, name: &str) -> Result<(), SessionError> {
        let info = status(
            "status",
            "NetStream.Play.UnpublishNotify",
            &format!("{name} is now unpublished."),
        );
        self.send_command("onStatus", 0.0, Amf0Value::Null, vec![info], stream_id)?;
        let eof = RtmpMessage::UserControl {
            event_type: UserControlEventType::StreamEof,
            stream_id: Some(stream_id),
            buffer_length: None,
            timestamp: None,
        };
        self.send(eof, 0)
    }

    fn send_stream_begin(&mut self, stream_id: u32) -> Result<(), SessionError> {
        let begin = RtmpMessage::UserControl {
            event_type: UserControlEventType::StreamBegin,
            stream_id: Some(stream_id),
            buffer_length: None,
            timestamp: None,
        };
        self.send(begin, 0)
    }

    /// Answers a command that needs no result but asked for one (a non-zero transaction
    /// id) with an empty `_result`.
    fn acknowledge(&mut self, transaction_id: f64) -> Result<(), SessionError> {
        if transaction_id == 0.0 {
            return Ok(());
        }
        self.send_command(
            "_result",
            transaction_id,
            Amf0Value::Null,
            vec![Amf0Value::Undefined],
            0,
        )
    }

    fn send_command(
        &mut self,
        name: &str,
        tx: f64,
        object: Amf0Value,
        args: Vec<Amf0Value>,
        stream_id: u32,
    ) -> Result<(), SessionError> {
        let msg = RtmpMessage::Amf0Command {
            command_name: name.to_string(),
            transaction_id: tx,
            command_object: object,
            additional_arguments: args,
        };
        self.send(msg, stream_id)
    }

    fn send_data(&mut self, values: Vec<Amf0Value>, stream_id: u32) -> Result<(), SessionError> {
        self.send(RtmpMessage::Amf0Data { values }, stream_id)
    }

    fn send(&mut self, msg: RtmpMessage, stream_id: u32) -> Result<(), SessionError> {
        let payload = MessagePayload::from_rtmp_message(msg, RtmpTimestamp::new(0), stream_id)
            .map_err(|e| SessionError::Serialize(e.to_string()))?;
        let packet = self
            .serializer
            .serialize(&payload, false, false)
            .map_err(|e| SessionError::Serialize(e.to_string()))?;
        self.outbound.extend_from_slice(&packet.bytes);
        Ok(())
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
