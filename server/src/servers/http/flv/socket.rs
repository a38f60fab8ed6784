//! HTTP-FLV on the socket itself: a connection whose first request is `GET …/{stream}.flv`
//! (what flv.js, mpegts.js, ffmpeg and VLC send) is answered here rather than through hyper,
//! so the viewer is a [`LivePlayer`] like an RTMP one: the stream writes the shared FLV tags
//! straight into its socket once it is at the live edge.
//!
//! The body is chunked for HTTP/1.1 (as through hyper, and as SRS does); each write is one
//! HTTP chunk, and a batch's chunk is built once for all parked viewers. An HTTP/1.0 client
//! gets the FLV bytes themselves, ended by closing the connection.
//!
//! Deadlines: the request head within `http.header_timeout_ms`; every write (answers, the
//! response head, media) gives up when the socket accepts nothing for
//! `play.slow_disconnect_ms`, or at once on a kick or shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use estuary_protocol::flv::tag::file_header;
use hyper::StatusCode;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tracing::{debug, info, warn};

use super::super::response::cors_line;
use super::super::urls::{request_url, split_stream_path};
use super::request::{admit, FlvRequest};
use crate::context::Context;
use crate::servers::io::{write_all, Deadline};
use crate::servers::player::{Framing, LivePlayer, PlayError};
use crate::stream::{SinkFormat, StreamKey, SubscriberEnd};

/// Longest request head read here (hyper's limit for other requests is larger).
const MAX_HEAD: usize = 16 * 1024;

/// Whether `first` (the first bytes of a connection) starts a complete request line
/// `GET /{app}/{stream}.flv[?query] HTTP/1.x`.
pub fn is_live_flv_request(first: &[u8]) -> bool {
    let Some(end) = first.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    let Ok(line) = std::str::from_utf8(&first[..end]) else {
        return false;
    };
    let mut parts = line.split(' ');
    let (Some("GET"), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    // The API's and the recordings' paths stay theirs, as in `route`.
    version.starts_with("HTTP/1.")
        && !path.starts_with("/api/")
        && !path.starts_with("/vod/")
        && split_stream_path(path, ".flv").is_some()
}

/// Serves one HTTP-FLV viewer on `socket`, whose first request line was checked by
/// [`is_live_flv_request`].
pub async fn serve(ctx: Arc<Context>, socket: TcpStream, peer: SocketAddr) {
    let (mut reader, writer) = socket.into_split();
    let writer = Arc::new(writer);
    let slow = Duration::from_millis(ctx.config.play.slow_disconnect_ms);
    let before_admission = Deadline {
        stall: slow,
        stop: &ctx.shutdown,
    };
    let header_timeout = Duration::from_millis(ctx.config.http.header_timeout_ms);
    let head = match tokio::time::timeout(header_timeout, read_head(&mut reader)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            warn!(%peer, limit = MAX_HEAD, "http-flv request head too large; refused");
            let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            let refusal = answer(&ctx, status, "request head too large\n");
            let _ = write_all(&writer, refusal, before_admission).await;
            return;
        }
        Ok(Err(e)) => return debug!(cause = %e, "http-flv request not read"),
        Err(_) => return debug!("http-flv request head timed out"),
    };
    let Some(head) = RequestHead::parse(&head) else {
        let refusal = answer(&ctx, StatusCode::BAD_REQUEST, "bad request\n");
        let _ = write_all(&writer, refusal, before_admission).await;
        return;
    };
    let req = FlvRequest {
        path: &head.path,
        query: head.query.as_deref(),
        host: &head.host,
        origin: head.origin.as_deref(),
        referer: head.referer.as_deref(),
    };
    // The admission may wait for a publisher (`play.wait_for_publisher_ms`); shutdown does
    // not wait for it.
    let admitted = tokio::select! {
        admitted = admit(&ctx, &req, peer) => admitted,
        () = ctx.shutdown.cancelled() => return,
    };
    let admitted = match admitted {
        Ok(a) => a,
        Err((status, body)) => {
            let _ = write_all(&writer, answer(&ctx, status, body), before_admission).await;
            return;
        }
    };
    let client = admitted.register(&ctx, &req, peer);
    // Cancelled by a kick or shutdown: a write to a full socket gives up at once.
    let stop = client.kick.clone();
    // Held to the end of the loop: dropping it tells the hooks the viewer left.
    let viewer = admitted.viewer;
    let key = admitted.key;
    let subscriber = admitted.subscriber;
    let chunked = head.http11;
    let deadline = Deadline {
        stall: slow,
        stop: &stop,
    };
    if let Err(e) = write_all(&writer, ok_head(&ctx, chunked), deadline).await {
        return info!(stream = %key, cause = %e, "http-flv viewer gone before the response");
    }
    let on_sent = crate::servers::player::sent_counter(&client, "http_flv");
    let format = if chunked {
        SinkFormat::ChunkedFlv
    } else {
        SinkFormat::Flv
    };
    let mut player = LivePlayer::new(subscriber, writer, Framing::Shared(format), on_sent, slow, stop.clone());
    let mut header_sent = false;
    // Viewers send nothing after the request; a read only tells that they went away.
    let mut scratch = [0u8; 64];
    loop {
        tokio::select! {
            biased;
            ready = player.ready() => match ready {
                Ok(()) => {
                    // The FLV header's track flags wait for the first media (srs#939).
                    let header = (!header_sent).then(|| {
                        header_sent = true;
                        let tracks = player.subscriber().tracks();
                        let (audio, video) = tracks.map_or((true, true), |t| (t.audio, t.video));
                        file_header(audio, video)
                    });
                    match player.write(header).await {
                        Ok(()) => {}
                        Err(PlayError::Subscriber(SubscriberEnd::TooSlow)) => {
                            slow_viewer(&key);
                            break;
                        }
                        Err(PlayError::Stopped) => {
                            info!(stream = %key, "http-flv viewer stopped (kicked or shutting down) while its socket was full");
                            break;
                        }
                        Err(e) => {
                            debug!(cause = %e, "http-flv viewer write failed");
                            break;
                        }
                    }
                }
                Err(SubscriberEnd::TooSlow) => {
                    slow_viewer(&key);
                    break;
                }
                Err(SubscriberEnd::NoPublisher) => {
                    if chunked {
                        let _ = player.write_raw(Bytes::from_static(b"0\r\n\r\n")).await;
                    }
                    break;
                }
            },
            read = reader.read(&mut scratch) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = client.kick.cancelled() => {
                info!(stream = %key, "http-flv viewer kicked");
                break;
            }
            _ = ctx.shutdown.cancelled() => break,
        }
    }
    drop(player);
    info!(stream = %key, "http-flv play stopped");
    drop(viewer);
}

fn slow_viewer(key: &StreamKey) {
    warn!(
        stream = %key,
        "http-flv viewer too slow (behind the live edge, or its socket accepted nothing, for play.slow_disconnect_ms); disconnected"
    );
    crate::metrics::viewer_too_slow();
}

/// What is used of the request head (owned: the parser's borrows do not outlive parsing,
/// so a thousand idle viewers do not each keep a header table).
struct RequestHead {
    path: String,
    query: Option<String>,
    host: String,
    origin: Option<String>,
    referer: Option<String>,
    http11: bool,
}

impl RequestHead {
    fn parse(head: &[u8]) -> Option<RequestHead> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(_)) = parsed.parse(head) else {
            return None;
        };
        let target = parsed.path.unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (target, None),
        };
        let header = |name: &str| {
            parsed
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::to_string)
        };
        Some(RequestHead {
            path: path.to_string(),
            query,
            host: header("host").unwrap_or_default(),
            origin: header("origin"),
            referer: header("referer"),
            http11: parsed.version == Some(1),
        })
    }
}

/// The socket path's reading of a connection's first bytes, up to admission, for the fuzz
/// target `flv_request_head` ([`crate::fuzzing`]): whether it takes the connection, the request
/// head up to the blank line (as [`read_head`] cuts it), and the stream key, query and URL
/// that admission and the client listing get.
pub(crate) fn read_request_for_fuzzing(first: &[u8]) {
    let _ = is_live_flv_request(first);
    let end = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(first.len(), |end| end + 4)
        .min(MAX_HEAD);
    let Some(head) = RequestHead::parse(&first[..end]) else {
        return;
    };
    if let Some((app, name)) = split_stream_path(&head.path, ".flv") {
        let key = StreamKey::new(app, name);
        let query = head.query.as_deref().unwrap_or_default();
        let _ = (key.to_string(), request_url(&head.host, &head.path, query));
    }
}

/// Reads the request head (through the blank line).
async fn read_head(reader: &mut tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(buf.split_to(end + 4).freeze());
        }
        if buf.len() >= MAX_HEAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        buf.reserve(1024);
        if reader.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// The 200 head of a live FLV body.
fn ok_head(ctx: &Context, chunked: bool) -> Bytes {
    let framing = if chunked {
        "Transfer-Encoding: chunked\r\n"
    } else {
        "Connection: close\r\n"
    };
    Bytes::from(format!(
        "HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nCache-Control: no-cache, no-store\r\n{}{framing}\r\n",
        cors_line(&ctx.config.http.cors_allow_origin)
    ))
}

/// A complete plain-text answer that ends the connection.
fn answer(ctx: &Context, status: StatusCode, body: &str) -> Bytes {
    Bytes::from(format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        cors_line(&ctx.config.http.cors_allow_origin)
    ))
}

#[cfg(test)]
mod tests {
    use super::is_live_flv_request;

    #[test]
    fn only_complete_flv_get_lines_take_the_socket() {
        assert!(is_live_flv_request(b"GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n"));
        assert!(is_live_flv_request(b"GET /live/cam.flv?token=1 HTTP/1.0\r\n"));
        assert!(!is_live_flv_request(b"GET /live/cam.flv HTTP/1.1"), "incomplete line");
        assert!(!is_live_flv_request(b"HEAD /live/cam.flv HTTP/1.1\r\n"));
        assert!(!is_live_flv_request(b"GET /live/cam.m3u8 HTTP/1.1\r\n"));
        assert!(!is_live_flv_request(b"GET /cam.flv HTTP/1.1\r\n"));
        assert!(!is_live_flv_request(b"GET /api/x.flv HTTP/1.1\r\n"));
        assert!(!is_live_flv_request(b"GET /vod/12.flv HTTP/1.1\r\n"));
        assert!(!is_live_flv_request(b"GET /live/cam.flv HTTP/2\r\n"));
    }
}
