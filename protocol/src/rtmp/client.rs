//! A sans-IO RTMP client session: handshake, `connect`, `createStream`, then `play` or
//! `publish`, for the load generator and for relays.
//!
//! The caller owns the socket. It writes what [`ClientSession::take_output`] returns, appends
//! what it reads to a `BytesMut` and calls [`ClientSession::handle_input`] until it returns
//! `Ok(None)`. Incoming chunks go through our [`ChunkReader`] (per chunk stream reassembly);
//! the handshake and AMF0 come from `rml_rtmp`. The session acknowledges received bytes as
//! the server's window asks and answers pings, so a server that enforces the window keeps
//! sending. Outgoing media is chunked with [`chunk_message`] (format 0 + format 3), which
//! every server accepts.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{MessagePayload, RtmpMessage, UserControlEventType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;

use super::chunk::{ChunkError, ChunkLimits, ChunkReader, RawMessage};
use super::chunker::chunk_message;

/// Chunk stream id for connection-level commands and control messages.
const COMMAND_CSID: u8 = 3;
/// Chunk stream id for stream-level commands (`play`, `publish`).
const STREAM_COMMAND_CSID: u8 = 4;
/// Chunk stream id for protocol control messages (RTMP 1.0 §5.4 requires csid 2).
const CONTROL_CSID: u8 = 2;
/// Chunk stream ids for published media.
const AUDIO_CSID: u8 = 6;
const VIDEO_CSID: u8 = 7;
const DATA_CSID: u8 = 5;

const TXN_CONNECT: f64 = 1.0;
const TXN_CREATE_STREAM: f64 = 2.0;

/// Size of C0 + C1 + C2 / S0 + S1 + S2, counted towards acknowledgements.
const HANDSHAKE_BYTES: u64 = 1 + 1536 + 1536;

/// What the session does once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    Play,
    Publish,
}

/// Where to connect and what to ask for.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` to open a TCP connection to.
    pub addr: String,
    pub app: String,
    pub tc_url: String,
    /// Stream name including any query string (`cam1?token=...`).
    pub stream: String,
    pub mode: ClientMode,
    /// Chunk size we send with (announced with Set Chunk Size first thing).
    pub out_chunk_size: u32,
    /// Window acknowledgement size we ask the server to use for our acks of its bytes.
    pub window_ack_size: u32,
    /// Buffer length (ms) announced to the server for `play`.
    pub buffer_ms: u32,
    pub limits: ChunkLimits,
}

impl ClientConfig {
    /// Parses `rtmp://host[:port]/app[/inst]/stream[?query]`: the last path segment is the
    /// stream name, everything before it the application.
    pub fn from_url(url: &str, mode: ClientMode) -> Result<ClientConfig, ClientError> {
        let bad = |why: &str| ClientError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = url
            .strip_prefix("rtmp://")
            .ok_or_else(|| bad("scheme must be rtmp://"))?;
        let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no application/stream path"))?;
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        let addr = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:1935")
        };
        // Split the stream name off before any query string, which may itself contain '/'.
        let (path_part, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let (app, stream) = path_part
            .rsplit_once('/')
            .ok_or_else(|| bad("need both application and stream"))?;
        if app.is_empty() || stream.is_empty() {
            return Err(bad("need both application and stream"));
        }
        let stream = match query {
            Some(q) => format!("{stream}?{q}"),
            None => stream.to_string(),
        };
        Ok(ClientConfig {
            addr,
            app: app.to_string(),
            tc_url: format!("rtmp://{authority}/{app}"),
            stream,
            mode,
            out_chunk_size: 4096,
            window_ack_size: 2_500_000,
            buffer_ms: 1000,
            limits: ChunkLimits::default(),
        })
    }
}

/// What happened on the session.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connect` was accepted.
    Connected,
    /// `play` or `publish` started (`NetStream.Play.Start` / `NetStream.Publish.Start`).
    Started { stream_id: u32 },
    /// Any other `onStatus` the server sent on the stream.
    Status {
        level: String,
        code: String,
        description: String,
    },
    /// An audio (8), video (9) or data (18) message, untouched.
    Media(RawMessage),
}

/// Why the session cannot go on. The connection should be closed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad RTMP url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("cannot encode {what}: {why}")]
    Encode { what: &'static str, why: String },
    #[error("undecodable {what} message from the server: {why}")]
    Decode { what: &'static str, why: String },
    #[error("server refused {command}: {code} {description}")]
    Rejected {
        command: String,
        code: String,
        description: String,
    },
    #[error("server answered createStream without a stream id")]
    NoStreamId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Connecting,
    CreatingStream,
    Starting,
    Started,
}

/// One client connection's protocol state.
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    handshake: Handshake,
    reader: ChunkReader,
    output: BytesMut,
    stream_id: u32,
    /// Bytes received so far, for acknowledgements (wraps at 2^32 on the wire).
    received: u64,
    last_ack: u64,
    /// Window the server asked us to acknowledge at (0: none yet).
    peer_window: u32,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("tc_url", &self.config.tc_url)
            .field("stream", &self.config.stream)
            .field("state", &self.state)
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session whose first output is C0 + C1.
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let mut handshake = Handshake::new(PeerType::Client);
        let c0c1 = handshake
            .generate_outbound_p0_and_p1()
            .map_err(|e| ClientError::Handshake(format!("{e:?}")))?;
        let reader = ChunkReader::new(config.limits);
        let mut session = ClientSession {
            config,
            state: State::Handshaking,
            handshake,
            reader,
            output: BytesMut::with_capacity(4096),
            stream_id: 0,
            received: 0,
            last_ack: 0,
            peer_window: 0,
        };
        session.output.extend_from_slice(&c0c1);
        Ok(session)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Bytes to write to the socket, if any.
    pub fn take_output(&mut self) -> Option<Bytes> {
        if self.output.is_empty() {
            None
        } else {
            Some(self.output.split().freeze())
        }
    }

    /// Whether `play`/`publish` has started.
    pub fn is_started(&self) -> bool {
        self.state == State::Started
    }

    /// The message stream id the server gave us (0 before `createStream` is answered).
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// The chunk size we send with.
    pub fn out_chunk_size(&self) -> u32 {
        self.config.out_chunk_size
    }

    /// Consumes bytes read from the socket. Returns the next event, or `Ok(None)` when `buf`
    /// holds nothing more to act on (read more, write [`ClientSession::take_output`], and call
    /// again).
    pub fn handle_input(&mut self, buf: &mut BytesMut) -> Result<Option<ClientEvent>, ClientError> {
        if self.state == State::Handshaking {
            if buf.is_empty() {
                return Ok(None);
            }
            let result = self
                .handshake
                .process_bytes(buf)
                .map_err(|e| ClientError::Handshake(format!("{e:?}")))?;
            buf.clear();
            match result {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.output.extend_from_slice(&response_bytes);
                    return Ok(None);
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.output.extend_from_slice(&response_bytes);
                    buf.extend_from_slice(&remaining_bytes);
                    self.received = HANDSHAKE_BYTES;
                    self.last_ack = HANDSHAKE_BYTES;
                    self.state = State::Connecting;
                    self.send_connect()?;
                }
            }
        }
        loop {
            let before = buf.len();
            let msg = self.reader.read(buf)?;
            self.received += (before - buf.len()) as u64;
            self.maybe_ack()?;
            let Some(msg) = msg else { return Ok(None) };
            if let Some(event) = self.handle_message(msg)? {
                return Ok(Some(event));
            }
        }
    }

    /// Chunks one media message (`type_id` 8, 9 or 18) for the publishing stream. The caller
    /// writes the returned bytes after anything [`ClientSession::take_output`] holds.
    pub fn media_message(&self, type_id: u8, timestamp: u32, payload: &[u8]) -> Bytes {
        let csid = match type_id {
            8 => AUDIO_CSID,
            9 => VIDEO_CSID,
            _ => DATA_CSID,
        };
        chunk_message(
            csid,
            type_id,
            timestamp,
            self.stream_id,
            payload,
            self.config.out_chunk_size,
        )
    }

    fn maybe_ack(&mut self) -> Result<(), ClientError> {
        if self.peer_window > 0 && self.received - self.last_ack >= u64::from(self.peer_window) {
            self.last_ack = self.received;
            self.queue(
                CONTROL_CSID,
                0,
                RtmpMessage::Acknowledgement {
                    sequence_number: self.received as u32,
                },
            )?;
        }
        Ok(())
    }

    fn handle_message(&mut self, msg: RawMessage) -> Result<Option<ClientEvent>, ClientError> {
        match msg.type_id {
            8 | 9 => return Ok(Some(ClientEvent::Media(msg))),
            // Set Chunk Size: already applied by the reader.
            1 => {}
            2 if msg.payload.len() == 4 => {
                self.reader.abort(u32::from_be_bytes([
                    msg.payload[0],
                    msg.payload[1],
                    msg.payload[2],
                    msg.payload[3],
                ]));
            }
            5 if msg.payload.len() >= 4 => {
                self.peer_window = u32::from_be_bytes([msg.payload[0], msg.payload[1], msg.payload[2], msg.payload[3]]);
            }
            4 => self.handle_user_control(&msg)?,
            15 | 18 if self.state == State::Started || msg.stream_id != 0 => {
                return Ok(Some(ClientEvent::Media(msg)));
            }
            17 | 20 => return self.handle_command(&msg),
            // Acknowledgement, Set Peer Bandwidth, aggregate and unknown messages.
            _ => {}
        }
        Ok(None)
    }

    fn handle_user_control(&mut self, msg: &RawMessage) -> Result<(), ClientError> {
        let decoded = decode(msg, "user control")?;
        if let RtmpMessage::UserControl {
            event_type: UserControlEventType::PingRequest,
            timestamp,
            ..
        } = decoded
        {
            self.queue(
                CONTROL_CSID,
                0,
                RtmpMessage::UserControl {
                    event_type: UserControlEventType::PingResponse,
                    stream_id: None,
                    buffer_length: None,
                    timestamp,
                },
            )?;
        }
        Ok(())
    }

    fn handle_command(&mut self, msg: &RawMessage) -> Result<Option<ClientEvent>, ClientError> {
        let RtmpMessage::Amf0Command {
            command_name,
            transaction_id,
            additional_arguments,
            ..
        } = decode(msg, "command")?
        else {
            return Ok(None);
        };
        match command_name.as_str() {
            "_result" if transaction_id == TXN_CONNECT && self.state == State::Connecting => {
                self.queue(
                    COMMAND_CSID,
                    0,
                    RtmpMessage::WindowAcknowledgement {
                        size: self.config.window_ack_size,
                    },
                )?;
                self.state = State::CreatingStream;
                if self.config.mode == ClientMode::Publish {
                    let name = Amf0Value::Utf8String(self.config.stream.clone());
                    self.command(COMMAND_CSID, 0, "releaseStream", 0.0, vec![name.clone()])?;
                    self.command(COMMAND_CSID, 0, "FCPublish", 0.0, vec![name])?;
                }
                self.command(COMMAND_CSID, 0, "createStream", TXN_CREATE_STREAM, vec![])?;
                Ok(Some(ClientEvent::Connected))
            }
            "_result" if transaction_id == TXN_CREATE_STREAM && self.state == State::CreatingStream => {
                let id = additional_arguments.iter().find_map(|v| match v {
                    Amf0Value::Number(n) => Some(*n),
                    _ => None,
                });
                let Some(id) = id else {
                    return Err(ClientError::NoStreamId);
                };
                self.stream_id = id as u32;
                self.state = State::Starting;
                self.start_stream()?;
                Ok(None)
            }
            "_error" => {
                let command = match transaction_id {
                    t if t == TXN_CONNECT => "connect",
                    t if t == TXN_CREATE_STREAM => "createStream",
                    _ => "command",
                };
                let (_, code, description) = status_fields(&additional_arguments);
                Err(ClientError::Rejected {
                    command: command.to_string(),
                    code,
                    description,
                })
            }
            "onStatus" => {
                let (level, code, description) = status_fields(&additional_arguments);
                if self.state == State::Starting
                    && (code == "NetStream.Play.Start" || code == "NetStream.Publish.Start")
                {
                    self.state = State::Started;
                    return Ok(Some(ClientEvent::Started {
                        stream_id: self.stream_id,
                    }));
                }
                if level == "error" || code.ends_with(".BadName") || code.ends_with(".StreamNotFound") {
                    let command = match self.config.mode {
                        ClientMode::Play => "play",
                        ClientMode::Publish => "publish",
                    };
                    return Err(ClientError::Rejected {
                        command: command.to_string(),
                        code,
                        description,
                    });
                }
                Ok(Some(ClientEvent::Status {
                    level,
                    code,
                    description,
                }))
            }
            _ => Ok(None),
        }
    }

    fn send_connect(&mut self) -> Result<(), ClientError> {
        self.queue(
            CONTROL_CSID,
            0,
            RtmpMessage::SetChunkSize {
                size: self.config.out_chunk_size,
            },
        )?;
        let flash_ver = match self.config.mode {
            ClientMode::Play => "LNX 9,0,124,2",
            ClientMode::Publish => "FMLE/3.0 (compatible; estuary)",
        };
        let mut obj = HashMap::new();
        obj.insert("app".to_string(), Amf0Value::Utf8String(self.config.app.clone()));
        obj.insert("type".to_string(), Amf0Value::Utf8String("nonprivate".to_string()));
        obj.insert("flashVer".to_string(), Amf0Value::Utf8String(flash_ver.to_string()));
        obj.insert("tcUrl".to_string(), Amf0Value::Utf8String(self.config.tc_url.clone()));
        if self.config.mode == ClientMode::Play {
            obj.insert("fpad".to_string(), Amf0Value::Boolean(false));
            obj.insert("capabilities".to_string(), Amf0Value::Number(15.0));
            obj.insert("audioCodecs".to_string(), Amf0Value::Number(3191.0));
            obj.insert("videoCodecs".to_string(), Amf0Value::Number(252.0));
            obj.insert("videoFunction".to_string(), Amf0Value::Number(1.0));
        }
        let message = RtmpMessage::Amf0Command {
            command_name: "connect".to_string(),
            transaction_id: TXN_CONNECT,
            command_object: Amf0Value::Object(obj),
            additional_arguments: vec![],
        };
        self.queue(COMMAND_CSID, 0, message)
    }

    fn start_stream(&mut self) -> Result<(), ClientError> {
        let name = Amf0Value::Utf8String(self.config.stream.clone());
        let stream_id = self.stream_id;
        match self.config.mode {
            ClientMode::Play => {
                self.queue(
                    CONTROL_CSID,
                    0,
                    RtmpMessage::UserControl {
                        event_type: UserControlEventType::SetBufferLength,
                        stream_id: Some(stream_id),
                        buffer_length: Some(self.config.buffer_ms),
                        timestamp: None,
                    },
                )?;
                self.command(
                    STREAM_COMMAND_CSID,
                    stream_id,
                    "play",
                    0.0,
                    vec![name, Amf0Value::Number(-2000.0)],
                )
            }
            ClientMode::Publish => self.command(
                STREAM_COMMAND_CSID,
                stream_id,
                "publish",
                0.0,
                vec![name, Amf0Value::Utf8String("live".to_string())],
            ),
        }
    }

    fn command(
        &mut self,
        csid: u8,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        args: Vec<Amf0Value>,
    ) -> Result<(), ClientError> {
        let message = RtmpMessage::Amf0Command {
            command_name: name.to_string(),
            transaction_id,
            command_object: Amf0Value::Null,
            additional_arguments: args,
        };
        self.queue(csid, stream_id, message)
    }

    fn queue(&mut self, csid: u8, stream_id: u32, message: RtmpMessage) -> Result<(), ClientError> {
        let what = message_name(&message);
        let payload = MessagePayload::from_rtmp_message(message, RtmpTimestamp::new(0), stream_id).map_err(|e| {
            ClientError::Encode {
                what,
                why: format!("{e:?}"),
            }
        })?;
        // Set Chunk Size goes out at the default size; everything after it at ours.
        let chunk_size = if payload.type_id == 1 {
            super::chunk::DEFAULT_CHUNK_SIZE
        } else {
            self.config.out_chunk_size
        };
        let bytes = chunk_message(csid, payload.type_id, 0, stream_id, &payload.data, chunk_size);
        self.output.extend_from_slice(&bytes);
        Ok(())
    }
}

fn message_name(message: &RtmpMessage) -> &'static str {
    match message {
        RtmpMessage::Amf0Command { .. } => "command",
        RtmpMessage::Acknowledgement { .. } => "acknowledgement",
        RtmpMessage::SetChunkSize { .. } => "set chunk size",
        RtmpMessage::UserControl { .. } => "user control",
        RtmpMessage::WindowAcknowledgement { .. } => "window acknowledgement size",
        _ => "message",
    }
}

fn decode(msg: &RawMessage, what: &'static str) -> Result<RtmpMessage, ClientError> {
    // rml strips the leading format byte of AMF3-flagged commands (type 17) itself.
    let payload = MessagePayload {
        timestamp: RtmpTimestamp::new(msg.timestamp),
        type_id: msg.type_id,
        message_stream_id: msg.stream_id,
        data: msg.payload.clone(),
    };
    payload.to_rtmp_message().map_err(|e| ClientError::Decode {
        what,
        why: format!("{e:?}"),
    })
}

/// `(level, code, description)` of the info object of an `onStatus` or `_error`.
fn status_fields(args: &[Amf0Value]) -> (String, String, String) {
    let get = |obj: &HashMap<String, Amf0Value>, key: &str| match obj.get(key) {
        Some(Amf0Value::Utf8String(s)) => s.clone(),
        _ => String::new(),
    };
    for arg in args {
        if let Amf0Value::Object(obj) = arg {
            return (get(obj, "level"), get(obj, "code"), get(obj, "description"));
        }
    }
    (String::new(), String::new(), String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let c = ClientConfig::from_url("rtmp://127.0.0.1:1936/live/cam1?token=a/b", ClientMode::Play).unwrap();
        assert_eq!(c.addr, "127.0.0.1:1936");
        assert_eq!(c.app, "live");
        assert_eq!(c.stream, "cam1?token=a/b");
        assert_eq!(c.tc_url, "rtmp://127.0.0.1:1936/live");
        let c = ClientConfig::from_url("rtmp://example/app/inst/s", ClientMode::Publish).unwrap();
        assert_eq!(c.addr, "example:1935");
        assert_eq!(c.app, "app/inst");
        assert_eq!(c.stream, "s");
        assert!(ClientConfig::from_url("http://x/live/s", ClientMode::Play).is_err());
        assert!(ClientConfig::from_url("rtmp://x/live", ClientMode::Play).is_err());
    }

    #[test]
    fn starts_with_c0_c1() {
        let c = ClientConfig::from_url("rtmp://h/live/s", ClientMode::Play).unwrap();
        let mut s = ClientSession::new(c).unwrap();
        let out = s.take_output().unwrap();
        assert_eq!(out.len(), 1537);
        assert_eq!(out[0], 3);
        assert!(s.take_output().is_none());
    }
}
