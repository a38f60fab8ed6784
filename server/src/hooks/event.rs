//! Hook events and their SRS-compatible JSON bodies.

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The vhost every hook reports; Estuary has no virtual hosts.
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// The eight hooks, named as in SRS's `http_hooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    Connect,
    Close,
    Publish,
    Unpublish,
    Play,
    Stop,
    Hls,
    Dvr,
}

impl HookKind {
    pub const COUNT: usize = 8;
    pub const ALL: [HookKind; Self::COUNT] = [
        Self::Connect,
        Self::Close,
        Self::Publish,
        Self::Unpublish,
        Self::Play,
        Self::Stop,
        Self::Hls,
        Self::Dvr,
    ];

    /// The config key, the `action` field and the `hook` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "on_connect",
            Self::Close => "on_close",
            Self::Publish => "on_publish",
            Self::Unpublish => "on_unpublish",
            Self::Play => "on_play",
            Self::Stop => "on_stop",
            Self::Hls => "on_hls",
            Self::Dvr => "on_dvr",
        }
    }
}

/// Who the event is about: the RTMP (or HTTP) client and what it said when it connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The server's connection id (`client_id`).
    pub client_id: String,
    /// Peer IP address without the port (`ip`).
    pub ip: String,
    /// Always [`DEFAULT_VHOST`] unless the server learns vhosts one day (`vhost`).
    pub vhost: String,
    /// Application name, which also selects the `[apps.NAME.hooks]` override (`app`).
    pub app: String,
    /// The `tcUrl` of the RTMP connect command, e.g. `rtmp://host/live` (`tcUrl`).
    pub tc_url: String,
    /// The `pageUrl` of the RTMP connect command, often empty (`pageUrl`).
    pub page_url: String,
}

impl ClientInfo {
    /// A client of the default vhost with empty `tcUrl` and `pageUrl`.
    pub fn new(client_id: impl Into<String>, ip: impl Into<String>, app: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            ip: ip.into(),
            vhost: DEFAULT_VHOST.to_owned(),
            app: app.into(),
            tc_url: String::new(),
            page_url: String::new(),
        }
    }
}

/// The stream an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Stream name without the query string (`stream`).
    pub stream: String,
    /// The query string as the client sent it, with its `?`, or empty (`param`).
    pub param: String,
    /// The server's id of the stream (`stream_id`): its path's id, which `/api/v1/streams`
    /// lists as the stream's `id`. Empty when there is none (a recording recovered after a
    /// crash): the field is left out, as SRS leaves it out.
    pub stream_id: String,
}

/// Who and what a hook event is about: the client as the hooks describe it, and the stream
/// as it asked for it (name and query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSubject {
    pub client: ClientInfo,
    pub stream: StreamInfo,
}

/// A finished HLS segment (`on_hls`).
#[derive(Debug, Clone, PartialEq)]
pub struct HlsSegmentInfo {
    /// Segment duration in seconds (`duration`).
    pub duration: f64,
    /// Working directory the paths are relative to (`cwd`).
    pub cwd: String,
    /// Segment file path (`file`).
    pub file: String,
    /// Segment URL relative to the playlist (`url`).
    pub url: String,
    /// Playlist file path (`m3u8`).
    pub m3u8: String,
    /// Playlist URL path (`m3u8_url`).
    pub m3u8_url: String,
    /// Media sequence number of the segment (`seq_no`).
    pub seq_no: u64,
}

/// Events whose answer lets a client in or keeps it out.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionEvent {
    /// RTMP connect; `stream` and `param` are whatever is known at connect time.
    Connect {
        client: ClientInfo,
        stream: String,
        param: String,
    },
    Publish {
        client: ClientInfo,
        stream: StreamInfo,
    },
    Play {
        client: ClientInfo,
        stream: StreamInfo,
    },
}

/// Events the backend is told about after the fact; delivered in order, with retries.
#[derive(Debug, Clone, PartialEq)]
pub enum NotifyEvent {
    Close {
        client: ClientInfo,
        send_bytes: u64,
        recv_bytes: u64,
    },
    Unpublish {
        client: ClientInfo,
        stream: StreamInfo,
    },
    Stop {
        client: ClientInfo,
        stream: StreamInfo,
    },
    Dvr {
        client: ClientInfo,
        stream: StreamInfo,
        cwd: String,
        file: String,
        /// Estuary's recording id (`recording_id`), beside SRS's fields.
        recording_id: Option<i64>,
        /// Why the recording failed or was refused (`error`), when it did.
        error: Option<String>,
    },
    Hls {
        client: ClientInfo,
        stream: StreamInfo,
        segment: HlsSegmentInfo,
    },
}

impl DecisionEvent {
    pub fn kind(&self) -> HookKind {
        match self {
            Self::Connect { .. } => HookKind::Connect,
            Self::Publish { .. } => HookKind::Publish,
            Self::Play { .. } => HookKind::Play,
        }
    }

    pub fn client(&self) -> &ClientInfo {
        match self {
            Self::Connect { client, .. } | Self::Publish { client, .. } => client,
            Self::Play { client, .. } => client,
        }
    }

    /// The JSON body SRS would send for this event.
    pub fn to_json(&self, server: &ServerIdentity) -> Value {
        let mut m = common(self.kind(), self.client(), server);
        match self {
            Self::Connect { client, stream, param } => {
                m.insert("stream".into(), json!(stream));
                m.insert("param".into(), json!(param));
                m.insert("tcUrl".into(), json!(client.tc_url));
                m.insert("pageUrl".into(), json!(client.page_url));
            }
            Self::Publish { client, stream } => stream_fields(&mut m, client, stream),
            Self::Play { client, stream } => {
                stream_fields(&mut m, client, stream);
                m.insert("pageUrl".into(), json!(client.page_url));
            }
        }
        Value::Object(m)
    }
}

impl NotifyEvent {
    pub fn kind(&self) -> HookKind {
        match self {
            Self::Close { .. } => HookKind::Close,
            Self::Unpublish { .. } => HookKind::Unpublish,
            Self::Stop { .. } => HookKind::Stop,
            Self::Dvr { .. } => HookKind::Dvr,
            Self::Hls { .. } => HookKind::Hls,
        }
    }

    pub fn client(&self) -> &ClientInfo {
        match self {
            Self::Close { client, .. }
            | Self::Unpublish { client, .. }
            | Self::Stop { client, .. }
            | Self::Dvr { client, .. }
            | Self::Hls { client, .. } => client,
        }
    }

    /// The JSON body SRS would send for this event.
    pub fn to_json(&self, server: &ServerIdentity) -> Value {
        let mut m = common(self.kind(), self.client(), server);
        match self {
            Self::Close {
                send_bytes, recv_bytes, ..
            } => {
                m.insert("send_bytes".into(), json!(send_bytes));
                m.insert("recv_bytes".into(), json!(recv_bytes));
            }
            Self::Unpublish { client, stream } | Self::Stop { client, stream } => {
                stream_fields(&mut m, client, stream);
            }
            Self::Dvr {
                client,
                stream,
                cwd,
                file,
                recording_id,
                error,
            } => {
                stream_fields(&mut m, client, stream);
                m.insert("cwd".into(), json!(cwd));
                m.insert("file".into(), json!(file));
                if let Some(id) = recording_id {
                    m.insert("recording_id".into(), json!(id));
                }
                if let Some(error) = error {
                    m.insert("error".into(), json!(error));
                }
            }
            Self::Hls {
                client,
                stream,
                segment: s,
            } => {
                stream_fields(&mut m, client, stream);
                m.insert("duration".into(), json!(s.duration));
                m.insert("cwd".into(), json!(s.cwd));
                m.insert("file".into(), json!(s.file));
                m.insert("url".into(), json!(s.url));
                m.insert("m3u8".into(), json!(s.m3u8));
                m.insert("m3u8_url".into(), json!(s.m3u8_url));
                m.insert("seq_no".into(), json!(s.seq_no));
            }
        }
        Value::Object(m)
    }
}

/// `server_id` and `service_id` of every body. SRS keeps `server_id` across restarts and
/// makes a new `service_id` per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    pub server_id: String,
    pub service_id: String,
}

impl ServerIdentity {
    /// The given `server_id` with a fresh per-process `service_id`.
    pub fn new(server_id: impl Into<String>) -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let n = h.finish();
        Self {
            server_id: server_id.into(),
            service_id: format!("{:08x}", n & 0xffff_ffff),
        }
    }
}

fn common(kind: HookKind, c: &ClientInfo, server: &ServerIdentity) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("server_id".into(), json!(server.server_id));
    m.insert("service_id".into(), json!(server.service_id));
    m.insert("action".into(), json!(kind.as_str()));
    m.insert("client_id".into(), json!(c.client_id));
    m.insert("ip".into(), json!(c.ip));
    m.insert("vhost".into(), json!(c.vhost));
    m.insert("app".into(), json!(c.app));
    m
}

fn stream_fields(m: &mut Map<String, Value>, c: &ClientInfo, s: &StreamInfo) {
    m.insert("tcUrl".into(), json!(c.tc_url));
    m.insert("stream".into(), json!(s.stream));
    m.insert("param".into(), json!(s.param));
    m.insert("stream_url".into(), json!(format!("/{}/{}", c.app, s.stream)));
    // SRS leaves it out when the stream is not known to its statistics.
    if !s.stream_id.is_empty() {
        m.insert("stream_id".into(), json!(s.stream_id));
    }
}

/// Serialises a body once; retries reuse the bytes.
pub(crate) fn body_bytes(v: &Value) -> Bytes {
    Bytes::from(v.to_string())
}
