//! HTTP-FLV: `GET /{app}/{stream}.flv` streams the live FLV (chunked) for flv.js,
//! mpegts.js, ffmpeg and VLC.
//!
//! The FLV header's audio/video flags are written once the stream's tracks are known (from
//! metadata or the first packets), since flv.js and mpegts.js stall waiting for a track the
//! header announces (srs#939). Every tag is the packet's shared FLV framing, built once for
//! all viewers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use estuary_protocol::flv::tag::file_header;
use estuary_protocol::Packet;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{split_stream_path, text, Body};
use crate::clients::{ClientGuard, ClientKind, Role};
use crate::context::Context;
use crate::hooks::{ClientInfo, Decision, DecisionEvent, NotifyEvent, StreamInfo};
use crate::hub::{StreamKey, Subscriber, SubscriberEnd};

/// What an HTTP-FLV request asks for, from hyper's request or from the raw request head.
pub struct FlvRequest<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: &'a str,
}

/// A viewer let in: subscribed, the publisher live, the hooks agreeing.
pub struct Admitted {
    pub key: StreamKey,
    pub subscriber: Subscriber,
    client_id: u64,
    client: ClientInfo,
    stream: StreamInfo,
}

/// Asks the hooks, subscribes and waits (bounded) for a publisher; the refusal is the
/// status and body to answer with.
pub async fn admit(
    ctx: &Arc<Context>,
    req: &FlvRequest<'_>,
    peer: SocketAddr,
) -> Result<Admitted, (StatusCode, &'static str)> {
    let Some((app, name)) = split_stream_path(req.path, ".flv") else {
        return Err((StatusCode::NOT_FOUND, "not found\n"));
    };
    let key = StreamKey::new(app, name);
    let client_id = ctx.next_conn_id();
    let mut client = ClientInfo::new(client_id.to_string(), peer.ip().to_string(), app);
    client.tc_url = format!("http://{}/{app}", req.host);
    let stream = StreamInfo {
        stream: name.to_string(),
        param: req.query.map_or(String::new(), |q| format!("?{q}")),
        stream_id: key.to_string(),
    };
    if let Decision::Reject { reason } = ctx
        .hooks
        .decide(&DecisionEvent::Play {
            client: client.clone(),
            stream: stream.clone(),
        })
        .await
    {
        info!(stream = %key, %reason, "http-flv play refused");
        crate::metrics::rejected("http_flv", "hook");
        return Err((StatusCode::FORBIDDEN, "forbidden\n"));
    }
    // Subscribe before waiting, so nothing the publisher sends first is missed.
    let subscriber = ctx.hub.subscribe(&key);
    let wait = Duration::from_millis(ctx.config.play.wait_for_publisher_ms);
    if !subscriber.stream().is_live() && !subscriber.stream().wait_live(wait).await {
        crate::metrics::rejected("http_flv", "not_found");
        return Err((StatusCode::NOT_FOUND, "stream not found\n"));
    }
    Ok(Admitted {
        key,
        subscriber,
        client_id,
        client,
        stream,
    })
}

impl Admitted {
    /// Registers the viewer (API, kick) and arranges its `on_stop`; returns them with the
    /// subscriber.
    pub fn start(self, ctx: &Arc<Context>, req: &FlvRequest<'_>, peer: SocketAddr) -> (Subscriber, ClientGuard, Done) {
        info!(stream = %self.key, "http-flv play started");
        let url = format!("http://{}{}", req.host, req.path);
        let registered = ctx.clients.register(
            self.client_id,
            peer.ip().to_string(),
            Role::new(ClientKind::FlvPlay, Some(self.key), url),
            CancellationToken::new(),
        );
        let done = Done {
            ctx: Arc::clone(ctx),
            client: self.client,
            stream: self.stream,
        };
        (self.subscriber, registered, done)
    }
}

/// `GET /{app}/{stream}.flv` through hyper: a connection that asked for something else
/// first (the common case takes the socket itself, see `flv_socket.rs`).
pub async fn serve(ctx: &Arc<Context>, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let flv_req = FlvRequest {
        path: req.uri().path(),
        query: req.uri().query(),
        host,
    };
    let admitted = match admit(ctx, &flv_req, peer).await {
        Ok(a) => a,
        Err((status, body)) => return text(status, body),
    };
    let mut response = if req.method() == Method::HEAD {
        Response::new(http_body_util::Empty::new().boxed())
    } else {
        let (subscriber, client, done) = admitted.start(ctx, &flv_req, peer);
        let viewer = FlvViewer {
            accounting: Accounting {
                client,
                bytes_sent: crate::metrics::bytes_sent("http_flv"),
                unflushed: 0,
            },
            subscriber,
            pending: VecDeque::new(),
            batch: Vec::new(),
            header_sent: false,
            shutdown: ctx.shutdown.clone(),
            done: Some(done),
        };
        let frames = stream::unfold(viewer, |mut v| async move {
            v.next().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), v))
        });
        Response::new(StreamBody::new(frames).boxed())
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("video/x-flv"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store"));
    response
}

/// Bytes a viewer was sent, added to its registry entry and the metrics every
/// [`FLUSH_BYTES`] and when it goes, rather than per packet.
struct Accounting {
    client: ClientGuard,
    bytes_sent: metrics::Counter,
    unflushed: u64,
}

const FLUSH_BYTES: u64 = 64 * 1024;

impl Accounting {
    fn add(&mut self, n: usize) {
        self.unflushed += n as u64;
        if self.unflushed >= FLUSH_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let n = std::mem::take(&mut self.unflushed);
        self.client.add_sent(n);
        self.bytes_sent.increment(n);
    }
}

impl Drop for Accounting {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Sends `on_stop` when the viewer goes, however it goes.
pub struct Done {
    ctx: Arc<Context>,
    client: ClientInfo,
    stream: StreamInfo,
}

impl Drop for Done {
    fn drop(&mut self) {
        info!(stream = %self.stream.stream_id, "http-flv play stopped");
        self.ctx.hooks.notify(&NotifyEvent::Stop {
            client: self.client.clone(),
            stream: self.stream.clone(),
        });
    }
}

/// Most packets taken from the stream at once (hyper queues up to 16 body pieces per write).
const MAX_BATCH: usize = 16;

struct FlvViewer {
    accounting: Accounting,
    subscriber: Subscriber,
    pending: VecDeque<Bytes>,
    /// Packets received and not yet turned into body pieces.
    batch: Vec<Arc<Packet>>,
    header_sent: bool,
    shutdown: CancellationToken,
    #[allow(dead_code)] // held for its Drop
    done: Option<Done>,
}

impl FlvViewer {
    /// The next piece of the body, or `None` to end it.
    async fn next(&mut self) -> Option<Bytes> {
        let next = self.next_piece().await;
        match &next {
            Some(b) => self.accounting.add(b.len()),
            None => self.accounting.flush(),
        }
        next
    }

    async fn next_piece(&mut self) -> Option<Bytes> {
        if let Some(b) = self.pending.pop_front() {
            return Some(b);
        }
        // A batch (one video frame plus the audio before it) becomes consecutive body pieces,
        // which hyper writes with one vectored write.
        let received = tokio::select! {
            _ = self.shutdown.cancelled() => return None,
            _ = self.accounting.client.kick.cancelled() => {
                info!(stream = %self.subscriber.stream().key, "http-flv viewer kicked");
                return None;
            }
            r = self.subscriber.recv_batch(&mut self.batch, MAX_BATCH) => r,
        };
        match received {
            Ok(()) => {}
            Err(SubscriberEnd::TooSlow) => {
                tracing::warn!(stream = %self.subscriber.stream().key, "http-flv viewer too slow; disconnected");
                crate::metrics::viewer_too_slow();
                return None;
            }
            Err(SubscriberEnd::NoPublisher) => return None,
        }
        if !self.header_sent {
            self.header_sent = true;
            let tracks = self.subscriber.tracks();
            let (audio, video) = tracks.map_or((true, true), |t| (t.audio, t.video));
            self.pending.push_back(file_header(audio, video));
        }
        self.pending.extend(self.batch.drain(..).map(|p| p.flv_tag().clone()));
        self.pending.pop_front()
    }
}
