//! One registered client: an RTMP connection, an HTTP-FLV viewer or an HLS playback session.
//!
//! Byte counters are atomics that connections add to once per write batch (or per read), so
//! the media path takes no lock.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use estuary_protocol::rtmp::session::PublishStyle;

use super::kbps::{Kbps, Samples};
use crate::stream::StreamKey;

/// What a client is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// An RTMP connection that has not published or played (yet).
    RtmpIdle,
    Publisher,
    RtmpPlay,
    FlvPlay,
    HlsPlay,
}

impl ClientKind {
    pub const ALL: [ClientKind; 5] = [
        ClientKind::RtmpIdle,
        ClientKind::Publisher,
        ClientKind::RtmpPlay,
        ClientKind::FlvPlay,
        ClientKind::HlsPlay,
    ];

    /// The API's `type` and the metrics' `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::RtmpIdle => "rtmp-idle",
            ClientKind::Publisher => "publisher",
            ClientKind::RtmpPlay => "rtmp-play",
            ClientKind::FlvPlay => "flv-play",
            ClientKind::HlsPlay => "hls-play",
        }
    }

    /// SRS's client `type` (`srs_client_type_string`) for this kind; a publisher's depends on
    /// how it published. An RTMP connection that neither publishes nor plays has none: SRS
    /// lists a connection only once it does.
    pub fn srs_type(self, style: PublishStyle) -> Option<&'static str> {
        match self {
            ClientKind::RtmpIdle => None,
            ClientKind::Publisher => Some(style.srs_type()),
            ClientKind::RtmpPlay => Some("rtmp-play"),
            ClientKind::FlvPlay => Some("flv-play"),
            ClientKind::HlsPlay => Some("hls-play"),
        }
    }

    /// Publishes or plays: what SRS lists as a client (see [`ClientKind::srs_type`]).
    pub fn publishes_or_plays(self) -> bool {
        self != ClientKind::RtmpIdle
    }

    pub fn is_viewer(self) -> bool {
        matches!(self, ClientKind::RtmpPlay | ClientKind::FlvPlay | ClientKind::HlsPlay)
    }
}

/// What a client plays or publishes, set when it starts doing so.
#[derive(Debug, Clone)]
pub struct Role {
    pub kind: ClientKind,
    /// `rtmp://host/app/stream`, `http://host/app/stream.flv`, ….
    pub url: String,
    pub key: Option<StreamKey>,
    /// When the client took this role, Unix ms.
    pub since_unix_ms: u64,
}

impl Role {
    pub fn new(kind: ClientKind, key: Option<StreamKey>, url: String) -> Role {
        Role {
            kind,
            url,
            key,
            since_unix_ms: unix_ms(),
        }
    }
}

/// What a client said about itself, listed as SRS lists it (`tcUrl`, `pageUrl`, `swfUrl`),
/// and, for an RTMP publisher, how it published. Set once the client has said it (RTMP
/// `connect`, an HTTP request's `Host` and `Referer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Introduction {
    /// `rtmp://host/app` (with the connect query, its secrets hidden); for HTTP viewers the
    /// form SRS gives them, `rtmp://HOST/app` with the request's host.
    pub tc_url: String,
    /// RTMP `connect`'s `pageUrl`; an HTTP viewer's `Referer`.
    pub page_url: String,
    /// RTMP `connect`'s `swfUrl`; empty over HTTP.
    pub swf_url: String,
    /// How an RTMP publisher came to `publish`.
    pub publish_style: PublishStyle,
}

impl Introduction {
    /// An HTTP viewer's: SRS's `rtmp://HOST/app` (`SrsHttpMessage::to_request`, the `Host`
    /// header without its port) and its `Referer`.
    pub fn http(host: &str, app: &str, referer: Option<&str>) -> Introduction {
        let host = host_without_port(host);
        Introduction {
            tc_url: format!("rtmp://{host}/{app}"),
            page_url: referer.unwrap_or_default().to_string(),
            ..Introduction::default()
        }
    }
}

/// `example.com:8080` → `example.com`, `[::1]:8080` → `[::1]`.
fn host_without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    }
}

/// What an HLS playback session keeps in its client entry.
pub(super) struct HlsSession {
    /// The session id its tokens carry.
    pub session: u64,
    /// The token its playlist's URLs carry now, and when it was issued (re-issued, same
    /// session, when it ages).
    pub token: Mutex<(String, u32)>,
    /// What the session holds while it lives (its viewer's hold on the stream's path),
    /// dropped when it expires or is kicked.
    pub attachment: Mutex<Option<Box<dyn Any + Send + Sync>>>,
}

impl std::fmt::Debug for HlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsSession").field("session", &self.session).finish()
    }
}

/// One registered client.
#[derive(Debug)]
pub struct Client {
    pub id: u64,
    pub ip: String,
    pub started: Instant,
    pub started_unix_ms: u64,
    /// Cancelled to disconnect the client (`DELETE /api/v1/clients/{id}`).
    pub kick: CancellationToken,
    sent: AtomicU64,
    received: AtomicU64,
    role: Mutex<Role>,
    introduction: Mutex<Introduction>,
    samples: Samples,
    pub(super) hls: Option<HlsSession>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Client {
    pub(super) fn new(id: u64, ip: String, role: Role, kick: CancellationToken, hls: Option<HlsSession>) -> Client {
        Client {
            id,
            ip,
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            kick,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            role: Mutex::new(role),
            introduction: Mutex::new(Introduction::default()),
            samples: Samples::default(),
            hls,
        }
    }

    /// Adds bytes written to the client (call once per write batch).
    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds bytes read from the client (call once per read).
    pub fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub fn role(&self) -> Role {
        lock(&self.role).clone()
    }

    pub fn kind(&self) -> ClientKind {
        lock(&self.role).kind
    }

    /// Records that the client now publishes or plays `key` at `url` (or is idle again).
    pub fn set_role(&self, kind: ClientKind, key: Option<StreamKey>, url: String) {
        *lock(&self.role) = Role::new(kind, key, url);
    }

    /// What the client said about itself (see [`Introduction`]).
    pub fn introduction(&self) -> Introduction {
        lock(&self.introduction).clone()
    }

    pub fn introduce(&self, introduction: Introduction) {
        *lock(&self.introduction) = introduction;
    }

    /// Records how an RTMP publisher published (when it starts publishing).
    pub fn set_publish_style(&self, style: PublishStyle) {
        lock(&self.introduction).publish_style = style;
    }

    /// The HLS session token to put in the playlist's URLs; `None` for other clients.
    pub fn hls_token(&self) -> Option<String> {
        self.hls.as_ref().map(|h| lock(&h.token).0.clone())
    }

    /// The HLS session's token and when it was issued.
    pub fn hls_token_issued(&self) -> Option<(String, u32)> {
        self.hls.as_ref().map(|h| lock(&h.token).clone())
    }

    /// Replaces the HLS session's token (a new one for the same session).
    pub fn set_hls_token(&self, token: String, issued: u32) {
        if let Some(h) = &self.hls {
            *lock(&h.token) = (token, issued);
        }
    }

    /// The HLS session id, for HLS clients.
    pub fn hls_session(&self) -> Option<u64> {
        self.hls.as_ref().map(|h| h.session)
    }

    /// Takes what the session held (when it ends).
    pub(super) fn detach(&self) -> Option<Box<dyn Any + Send + Sync>> {
        self.hls.as_ref().and_then(|h| lock(&h.attachment).take())
    }

    /// Bitrates over the last 30 s (since the start for a younger client).
    pub fn kbps(&self) -> Kbps {
        self.kbps_at(Instant::now())
    }

    /// Bitrates as they are at `now`.
    pub fn kbps_at(&self, now: Instant) -> Kbps {
        self.samples.kbps(now, self.started, self.sent(), self.received())
    }

    pub(super) fn sample(&self, now: Instant) {
        self.samples.take(now, self.sent(), self.received());
    }
}
