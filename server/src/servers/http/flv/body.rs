//! HTTP-FLV through hyper: `GET /{app}/{stream}.flv` on a connection that asked for
//! something else first (a connection that opens with it takes the socket itself, see
//! `socket.rs`), and every `HEAD`. The body is the live FLV, chunked, for flv.js, mpegts.js,
//! ffmpeg and VLC.
//!
//! The FLV header's audio/video flags are written once the stream's tracks are known (from
//! metadata or the first packets), since flv.js and mpegts.js stall waiting for a track the
//! header announces (srs#939). Every tag is the packet's shared FLV framing, built once for
//! all viewers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

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

use super::super::response::{text, Body};
use super::request::{admit, is_live, may_look, FlvRequest};
use crate::clients::ClientGuard;
use crate::context::Context;
use crate::path::viewer::Viewer;
use crate::stream::{StreamKey, Subscriber, SubscriberEnd};

/// `GET /{app}/{stream}.flv` through hyper: a connection that asked for something else
/// first (the common case takes the socket itself, see `flv_socket.rs`).
pub async fn serve(ctx: &Arc<Context>, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let header = |name: hyper::header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let flv_req = FlvRequest {
        path: req.uri().path(),
        query: req.uri().query(),
        host,
        origin: header(hyper::header::ORIGIN),
        referer: header(hyper::header::REFERER),
    };
    let mut response = if req.method() == Method::HEAD {
        // A HEAD tells whether the stream is live now: it is not a viewer, so no on_play, and
        // it does not wait for a publisher; it needs a viewer's credentials all the same.
        if !may_look(ctx, &flv_req, peer) {
            return text(StatusCode::FORBIDDEN, "forbidden\n");
        }
        if !is_live(ctx, flv_req.path) {
            return text(StatusCode::NOT_FOUND, "stream not found\n");
        }
        Response::new(http_body_util::Empty::new().boxed())
    } else {
        let admitted = match admit(ctx, &flv_req, peer).await {
            Ok(a) => a,
            Err((status, body)) => return text(status, body),
        };
        let client = admitted.register(ctx, &flv_req, peer);
        let viewer = FlvViewer {
            accounting: Accounting {
                client,
                bytes_sent: crate::metrics::bytes_sent("http_flv"),
                unflushed: 0,
            },
            key: admitted.key,
            subscriber: admitted.subscriber,
            pending: VecDeque::new(),
            batch: Vec::new(),
            header_sent: false,
            shutdown: ctx.shutdown.clone(),
            _viewer: admitted.viewer,
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

/// Most packets taken from the stream at once (hyper queues up to 16 body pieces per write).
const MAX_BATCH: usize = 16;

struct FlvViewer {
    accounting: Accounting,
    key: StreamKey,
    subscriber: Subscriber,
    pending: VecDeque<Bytes>,
    /// Packets received and not yet turned into body pieces.
    batch: Vec<Arc<Packet>>,
    header_sent: bool,
    shutdown: CancellationToken,
    /// The viewer's hold on the stream's path: dropped with the body, which tells the hooks.
    _viewer: Viewer,
}

impl Drop for FlvViewer {
    fn drop(&mut self) {
        info!(stream = %self.key, "http-flv play stopped");
    }
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
                info!(stream = %self.key, "http-flv viewer kicked");
                return None;
            }
            r = self.subscriber.recv_batch(&mut self.batch, MAX_BATCH) => r,
        };
        match received {
            Ok(()) => {}
            Err(SubscriberEnd::TooSlow) => {
                tracing::warn!(stream = %self.key, "http-flv viewer too slow; disconnected");
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
