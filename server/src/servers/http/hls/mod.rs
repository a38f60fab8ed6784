//! HLS over HTTP: `GET|HEAD /{app}/{stream}.m3u8` and the segments beside it,
//! `/{app}/{stream}-{instance}-{sequence}.ts`, straight from the in-memory store.
//!
//! Caching (RFC 8216 App. B advice, and what CDNs need): the playlist may be cached for at
//! most a second (it changes every target duration), segments are immutable — their names
//! carry the packaging run and sequence number, so a name is never reused — and cached for a
//! day. Unknown streams and segments that left the window answer 404 at once.
//!
//! Viewers are counted by playback session: the playlist's segment URIs carry
//! `?session=TOKEN`, and every request with a token refreshes that session in the client
//! registry. A playlist request without a token (a player reloading the URL it was given)
//! gets a token derived from the client's address, user agent and stream, so its reloads stay
//! one session. A new session goes through the play admission (403 when refused) and holds
//! its viewer's hold on the path until it ends (idle expiry or a kick), which tells the hooks
//! `on_stop`; the hooks' `client_id` of an HLS viewer is its session token.

mod session_urls;

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::response::{bytes, text, Body};
use super::urls::request_url;
use crate::admission::{HttpOrigin, Request as Admit};
use crate::clients::Client;
use crate::context::Context;
use crate::hooks::HookSubject;
use crate::hooks::{ClientInfo, StreamInfo};
use crate::outputs::hls::parse_segment_name;
use crate::stream::StreamKey;
use session_urls::{hls_session_param, playlist_with_session};

/// Whether `path` is an HLS request.
pub fn matches(path: &str) -> bool {
    path.ends_with(".m3u8") || path.ends_with(".ts")
}

pub async fn serve(ctx: &Arc<Context>, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = req.uri().path();
    let Some((app, file)) = path.strip_prefix('/').and_then(|p| p.rsplit_once('/')) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let head = req.method() == Method::HEAD;
    let token = hls_session_param(req.uri().query());
    if let Some(stream) = file.strip_suffix(".m3u8") {
        let key = StreamKey::new(app, stream);
        let Some(playlist) = first_playlist(ctx, &key).await else {
            return text(StatusCode::NOT_FOUND, "stream not found\n");
        };
        let derived;
        let token = match token {
            Some(t) => t,
            None => {
                derived = derived_token(req, peer, &key);
                &derived
            }
        };
        let client = match session(ctx, req, peer, &key, token).await {
            Ok(client) => client,
            Err(refused) => return refused,
        };
        let token = client.hls_token().unwrap_or(token);
        let body = Bytes::from(playlist_with_session(&String::from_utf8_lossy(&playlist), token));
        client.add_sent(body.len() as u64);
        return bytes(body, "application/vnd.apple.mpegurl", "max-age=1", head);
    }
    let Some((stream, instance, sequence)) = parse_segment_name(file) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let key = StreamKey::new(app, stream);
    let segment = ctx
        .hls
        .get(&key)
        .filter(|s| s.instance == instance)
        .and_then(|s| s.segment(sequence));
    let Some(body) = segment else {
        return text(StatusCode::NOT_FOUND, "segment not found\n");
    };
    if let Some(token) = token {
        match session(ctx, req, peer, &key, token).await {
            Ok(client) => client.add_sent(body.len() as u64),
            Err(refused) => return refused,
        }
    }
    bytes(body, "video/mp2t", "public, max-age=86400, immutable", head)
}

/// The stream's playlist. A stream that is live but has no complete segment yet (its
/// publisher just started) is waited for, up to a few fragment durations, so a player that
/// comes with the publisher starts instead of failing on a 404; an unknown stream answers at
/// once.
async fn first_playlist(ctx: &Context, key: &StreamKey) -> Option<Bytes> {
    let wait = Duration::from_millis(ctx.config.hls.fragment_ms * 3);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(playlist) = ctx.hls.get(key).and_then(|s| s.playlist()) {
            return Some(playlist);
        }
        let live = ctx.paths.get(key).is_some_and(|p| p.is_live());
        if !live || tokio::time::Instant::now() >= deadline || ctx.shutdown.is_cancelled() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The playback session `token`, refreshed. A new session first goes through the play
/// admission (HTTP 403 when refused) and then holds the viewer it got until it ends.
async fn session(
    ctx: &Context,
    req: &Request<Incoming>,
    peer: SocketAddr,
    key: &StreamKey,
    token: &str,
) -> Result<Arc<Client>, Response<Body>> {
    let ip = peer.ip().to_string();
    let mut viewer = None;
    if !ctx.clients.has_hls_session(token) {
        let mut client = ClientInfo::new(token, ip.clone(), key.app.clone());
        client.tc_url = url(req);
        let param = req.uri().query().map_or(String::new(), |q| format!("?{q}"));
        let stream = StreamInfo {
            stream: key.name.clone(),
            param,
            stream_id: key.to_string(),
        };
        let header = |name: hyper::header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
        let admit = Admit {
            key: key.clone(),
            subject: HookSubject { client, stream },
            protocol: "hls",
            peer: peer.ip(),
            credentials: req.uri().query().unwrap_or_default().to_string(),
            http: Some(HttpOrigin {
                origin: header(hyper::header::ORIGIN).map(str::to_string),
                referer: header(hyper::header::REFERER).map(str::to_string),
            }),
        };
        match ctx.admission.play(admit).await {
            Ok(v) => viewer = Some(v),
            Err(_) => return Err(text(StatusCode::FORBIDDEN, "forbidden\n")),
        }
    }
    let client = ctx
        .clients
        .touch_hls_session(Some(token), key, &ip, &url(req))
        .map_err(|_| text(StatusCode::FORBIDDEN, "session ended\n"))?;
    if let Some(viewer) = viewer {
        client.attach(Box::new(viewer));
    }
    Ok(client)
}

/// A stable session token for a client that did not send one.
fn derived_token(req: &Request<Incoming>, peer: SocketAddr, key: &StreamKey) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    peer.ip().hash(&mut h);
    req.headers()
        .get(hyper::header::USER_AGENT)
        .map(|v| v.as_bytes())
        .hash(&mut h);
    key.hash(&mut h);
    format!("{:016x}", h.finish())
}

fn url(req: &Request<Incoming>) -> String {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    request_url(host, req.uri().path())
}
