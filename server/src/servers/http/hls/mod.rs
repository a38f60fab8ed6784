//! HLS over HTTP: `GET|HEAD /{app}/{stream}.m3u8` and the segments beside it,
//! `/{app}/{stream}-{instance}-{sequence}.ts`, straight from the in-memory store. Both are
//! percent-decoded (the playlist's segment URIs encode the stream name). An fMP4 stream's
//! `{stream}.m3u8` is its master playlist; its media playlist is `{stream}.media.m3u8`,
//! beside `.m4s` segments and parts and `.mp4` init sections; LL-HLS requests that wait are
//! in [`blocking`].
//!
//! Caching (RFC 8216 App. B advice, and what CDNs need): the playlist may be cached by the
//! player for at most a second (it changes every target duration) and by no shared cache (it
//! carries the viewer's session), segments are immutable — their names
//! carry the packaging run and sequence number, so a name is never reused — and cached for a
//! day. Unknown streams and segments that left the window answer 404 at once.
//!
//! Viewers are counted by playback session: the playlist's segment URIs carry
//! `?session=TOKEN`, a token the server signed for this stream (`clients/session_token.rs`).
//! A request whose token does not verify (forged, for another stream, expired, garbage) is
//! answered 403 at once: nothing is looked up, created or asked. A verified token refreshes
//! its session in the client registry. A playlist request without a token (a player
//! reloading the URL it was given) gets a session id derived from the client's address, user
//! agent, stream and query, so its reloads stay one session, and a neighbour without the
//! same credentials in its query does not share it. A new session is first checked
//! against the session limits (429), then goes through the play admission (403 when refused,
//! 429 for the viewer limits) and holds its viewer's hold on the path until it ends (idle
//! expiry or a kick), which tells the hooks `on_stop`; the hooks' `client_id` of an HLS
//! viewer is its client id in the API, by which `DELETE /api/v1/clients/{id}` kicks it.
//!
//! An unknown stream's playlist answers 404 before any session is made.
//!
//! Past one machine (README "HLS behind a cache or CDN"): a stream another cluster node owns
//! is answered from its owner (`owner_fetch.rs`); a peer's request and, in CDN mode, every
//! request skip the sessions (`cdn.rs`); caching rules are in `cache_headers.rs`.

mod blocking;
mod cache_headers;
mod cdn;
mod owner_fetch;
mod playlist_wait;
mod session_urls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::response::{bytes, text, too_many, Body};
use super::urls::{player_tc_url, request_url};
use crate::admission::{Action, HttpOrigin, Request as Admit};
use crate::clients::{Client, HlsRefusal, Introduction, TokenError};
use crate::context::Context;
use crate::hooks::HookSubject;
use crate::hooks::{ClientInfo, StreamInfo};
use crate::outputs::hls::HlsFile;
use crate::percent::decode;
use crate::stream::StreamKey;
use blocking::{Directives, Waited};
use playlist_wait::first_playlist;
use session_urls::{hls_session_param, playlist_with_session};
use tracing::warn;

/// Whether `path` is an HLS request.
pub fn matches(path: &str) -> bool {
    [".m3u8", ".ts", ".m4s", ".mp4"].iter().any(|ext| path.ends_with(ext))
}

/// Answers an HLS request, counted by kind (`estuary_hls_requests_total`); a 404 is cached
/// briefly (`cache_headers.rs`).
pub async fn serve(ctx: &Arc<Context>, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let kind = if req.uri().path().ends_with(".m3u8") {
        "playlist"
    } else {
        "segment"
    };
    metrics::counter!(crate::metrics::HLS_REQUESTS_TOTAL, "kind" => kind).increment(1);
    let mut answer = serve_request(ctx, req, peer).await;
    cache_headers::on_not_found(&mut answer);
    answer
}

async fn serve_request(ctx: &Arc<Context>, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = req.uri().path();
    let Some((app, file)) = path.strip_prefix('/').and_then(|p| p.rsplit_once('/')) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    // Split first, then decode: the playlist's segment URIs percent-encode the stream name,
    // and players may encode a playlist URL's marks too. An encoded `/` stays in its part and
    // so names no stream.
    let (app, file) = (decode(app), decode(file));
    let (app, file) = (app.as_str(), file.as_str());
    let head = req.method() == Method::HEAD;
    // A cluster peer's request, and every request in CDN mode, carry no session.
    if let Some(answer) = cdn::serve(ctx, req, peer, app, file, head).await {
        return answer;
    }
    let token = hls_session_param(req.uri().query());
    if let Some(stem) = file.strip_suffix(".m3u8") {
        return serve_playlist(ctx, req, peer, app, stem, token, head).await;
    }
    let Some((stream, instance, what)) = HlsFile::parse(file) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let key = StreamKey::new(app, stream);
    let verified = match token.map(|t| verify(ctx, t, &key, peer)) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return bad_token(),
        None => None,
    };
    if verified.is_none() {
        if let Some(refused) = refuse_sessionless_segment(ctx, req, peer, &key) {
            return refused;
        }
    }
    let body = match ctx.hls.get(&key).filter(|s| s.instance == instance) {
        Some(hls) => {
            let body = match what {
                HlsFile::TsSegment(sequence) | HlsFile::Segment(sequence) => hls.segment(sequence),
                HlsFile::Init(id) => hls.init(id),
                HlsFile::Part(sequence, index) => match hls.part(sequence, index) {
                    Some(part) => Some(part),
                    // The part a preload hint names: answered the moment it exists.
                    None if hls.is_low_latency() => {
                        match blocking::wait_until(&hls, &ctx.shutdown, |p| p.position(sequence, Some(index))).await {
                            Waited::Ready => hls.part(sequence, index),
                            Waited::TooFar | Waited::TimedOut => None,
                        }
                    }
                    None => None,
                },
            };
            match body {
                Some(body) => body,
                None => return text(StatusCode::NOT_FOUND, "segment not found\n"),
            }
        }
        // Another node's stream: its owner's file.
        None => match owner_fetch::fetch(ctx, &key, req.uri().path(), "segment").await {
            Ok(Some(owned)) => owned.body,
            Ok(None) => return text(StatusCode::NOT_FOUND, "segment not found\n"),
            Err(failed) => return failed,
        },
    };
    if let Some(session) = verified {
        match open_or_refresh(ctx, req, peer, &key, session).await {
            Ok(client) => client.add_sent(body.len() as u64),
            Err(refused) => return refused,
        }
    }
    bytes(body, cdn::content_type(what), cache_headers::SEGMENT, head)
}

/// A playlist: MPEG-TS's media playlist at `{stream}.m3u8`; for fMP4 the master playlist
/// there and the media playlist at `{stream}.media.m3u8`, which answers LL-HLS blocking
/// reloads and delta updates ([`blocking`]).
async fn serve_playlist(
    ctx: &Arc<Context>,
    req: &Request<Incoming>,
    peer: SocketAddr,
    app: &str,
    stem: &str,
    token: Option<&str>,
    head: bool,
) -> Response<Body> {
    let directives = match Directives::parse(req.uri().query()) {
        Ok(d) => d,
        Err(e) => {
            warn!(%peer, app, "hls playlist request refused: {e}");
            return text(StatusCode::BAD_REQUEST, "bad _HLS_ directive\n");
        }
    };
    // A stream whose own name ends in `.media` keeps its playlist URL.
    let (key, media) = match stem.strip_suffix(".media") {
        Some(base) if ctx.hls.get(&StreamKey::new(app, stem)).is_none() => (StreamKey::new(app, base), true),
        _ => (StreamKey::new(app, stem), false),
    };
    let verified = match token.map(|t| verify(ctx, t, &key, peer)) {
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return bad_token(),
        None => None,
    };
    // Another node's stream: its owner's playlist (one media sequence everywhere).
    let owned = match owner_fetch::fetch(ctx, &key, req.uri().path(), "playlist").await {
        Ok(Some(owned)) => Some(owned.body),
        Ok(None) if first_playlist(ctx, &key).await.is_some() => None,
        Ok(None) => return text(StatusCode::NOT_FOUND, "stream not found\n"),
        Err(failed) => return failed,
    };
    let session = match verified {
        Some(v) => v,
        None => Verified {
            id: derived_id(ctx, req, peer, &key),
            token: None,
        },
    };
    let client = match open_or_refresh(ctx, req, peer, &key, session).await {
        Ok(client) => client,
        Err(refused) => return refused,
    };
    let mut cache = "private, max-age=1".to_owned();
    let playlist = match owned {
        Some(playlist) => playlist,
        None => match local_playlist(ctx, &key, media, &directives, &mut cache).await {
            Ok(playlist) => playlist,
            Err(answer) => return answer,
        },
    };
    let token = current_token(ctx, &client, &key);
    let carried = ctx.admission.play_signature(app, req.uri().query().unwrap_or_default());
    let body = Bytes::from(playlist_with_session(
        &String::from_utf8_lossy(&playlist),
        &token,
        &carried,
    ));
    client.add_sent(body.len() as u64);
    // Private: its URIs carry this viewer's session, which a shared cache must not hand
    // to the next viewer (who would skip its own admission).
    let mut response = bytes(body, "application/vnd.apple.mpegurl", "private, max-age=1", head);
    if let Ok(value) = hyper::header::HeaderValue::from_str(&cache) {
        response.headers_mut().insert(hyper::header::CACHE_CONTROL, value);
    }
    response
}

/// This node's playlist of `key`: for fMP4 the master playlist unless `media` asks for the
/// media one, which answers LL-HLS blocking reloads and delta updates ([`blocking`]) and
/// sets their `cache` header.
async fn local_playlist(
    ctx: &Context,
    key: &StreamKey,
    media: bool,
    directives: &Directives,
    cache: &mut String,
) -> Result<Bytes, Response<Body>> {
    let Some(hls) = ctx.hls.get(key) else {
        return Err(text(StatusCode::NOT_FOUND, "stream not found\n"));
    };
    let master = if media { None } else { hls.master() };
    Ok(match master {
        Some(master) => master,
        None if hls.is_low_latency() => {
            if let Some((msn, part)) = directives.block {
                match blocking::wait_until(&hls, &ctx.shutdown, |p| p.position(msn, part)).await {
                    Waited::Ready => {}
                    Waited::TooFar => {
                        return Err(text(
                            StatusCode::BAD_REQUEST,
                            "_HLS_msn is more than two segments ahead\n",
                        ))
                    }
                    Waited::TimedOut => return Err(text(StatusCode::SERVICE_UNAVAILABLE, "part not ready in time\n")),
                }
            }
            *cache = blocking::playlist_cache(directives.block.is_some(), hls.target_duration_secs());
            let delta = directives.skip.then(|| hls.delta()).flatten();
            match delta.or_else(|| hls.playlist()) {
                Some(playlist) => playlist,
                None => return Err(text(StatusCode::NOT_FOUND, "stream not found\n")),
            }
        }
        None => match hls.playlist() {
            Some(playlist) => playlist,
            None => return Err(text(StatusCode::NOT_FOUND, "stream not found\n")),
        },
    })
}

/// Why a segment may not be fetched by a request that names no session (a CDN filling its
/// cache, a player that dropped the query), as the answer to send; `None` lets it through.
/// When `on_play` decides who plays, it may not (the hook approved a session, not a URL);
/// otherwise it may if it passes the play's access list and signed URL, which the playlist's
/// segment URIs carry over from the playlist's own.
fn refuse_sessionless_segment(
    ctx: &Context,
    req: &Request<Incoming>,
    peer: SocketAddr,
    key: &StreamKey,
) -> Option<Response<Body>> {
    if ctx.admission.play_has_hook(&key.app) {
        crate::metrics::rejected("hls", "no_session");
        if let Some(held) = ctx.refusal_log.pass("no_session", peer.ip(), Instant::now()) {
            warn!(%peer, stream = %key, quietly_refused_since = held, "hls segment refused: no session (on_play decides)");
        }
        return Some(text(StatusCode::FORBIDDEN, "segment needs its playback session\n"));
    }
    let admit = admission_request(req, peer, key, String::new());
    ctx.admission
        .check_credentials(&admit, Action::Play)
        .err()
        .map(|_| text(StatusCode::FORBIDDEN, "forbidden\n"))
}

/// A session a request names: its id, and the token it came with (none for a derived one).
struct Verified {
    id: u64,
    token: Option<(String, u32)>,
}

/// The session `token` names, if this server signed it for `key` and it has not expired;
/// a refusal is counted, and logged once per address now and then.
fn verify(ctx: &Context, token: &str, key: &StreamKey, peer: SocketAddr) -> Result<Verified, TokenError> {
    match ctx.clients.tokens().verify(token, key) {
        Ok(t) => Ok(Verified {
            id: t.id,
            token: Some((token.to_string(), t.issued)),
        }),
        Err(e) => {
            crate::metrics::rejected("hls", "bad_token");
            if let Some(held) = ctx.refusal_log.pass("bad_token", peer.ip(), Instant::now()) {
                warn!(%peer, stream = %key, quietly_refused_since = held, "hls request refused: {e}");
            }
            Err(e)
        }
    }
}

fn bad_token() -> Response<Body> {
    text(StatusCode::FORBIDDEN, "bad session token\n")
}

/// Session `session`, refreshed; or opened, if it does not live: the session limits, then the
/// play admission, then the registry (which holds the viewer it got until the session ends).
async fn open_or_refresh(
    ctx: &Context,
    req: &Request<Incoming>,
    peer: SocketAddr,
    key: &StreamKey,
    session: Verified,
) -> Result<Arc<Client>, Response<Body>> {
    let ip = peer.ip();
    let refused = |r: HlsRefusal| {
        crate::metrics::rejected("hls", r.reason());
        if let Some(held) = ctx.refusal_log.pass(r.reason(), ip, Instant::now()) {
            warn!(%peer, stream = %key, quietly_refused_since = held, "hls session refused: {r}");
        }
        match r {
            HlsRefusal::Kicked => text(StatusCode::FORBIDDEN, "session ended\n"),
            HlsRefusal::PerIp(_) | HlsRefusal::Total(_) => too_many("too many hls sessions\n"),
        }
    };
    match ctx.clients.hls_session(session.id) {
        Ok(Some(client)) => return Ok(client),
        Ok(None) => {}
        Err(r) => return Err(refused(r)),
    }
    ctx.clients.hls_room(session.id, ip).map_err(refused)?;
    let tokens = ctx.clients.tokens();
    let (token, issued) = session.token.unwrap_or_else(|| {
        let now = tokens.now();
        (tokens.issue_at(session.id, key, now), now)
    });
    // The client's id is taken before on_play, which tells it to the backend.
    let id = ctx.clients.next_id();
    let admit = admission_request(req, peer, key, id.to_string());
    let viewer = match ctx.admission.play(admit).await {
        Ok(viewer) => viewer,
        Err(r) if r.is_limit() => return Err(too_many("too many viewers\n")),
        Err(_) => return Err(text(StatusCode::FORBIDDEN, "forbidden\n")),
    };
    let client = ctx
        .clients
        .open_hls_session(id, session.id, (token, issued), key, ip, &url(req), Box::new(viewer))
        .map_err(refused)?;
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let host = header(hyper::header::HOST)
        .or_else(|| req.uri().host())
        .unwrap_or_default();
    client.introduce(Introduction::http(host, &key.app, header(hyper::header::REFERER)));
    Ok(client)
}

/// What the admission needs to know of an HLS viewer; `client_id` is its API client id.
fn admission_request(req: &Request<Incoming>, peer: SocketAddr, key: &StreamKey, client_id: String) -> Admit {
    let ip = peer.ip();
    let mut client = ClientInfo::new(client_id, ip.to_canonical().to_string(), key.app.clone());
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    client.tc_url = player_tc_url(host, &key.app);
    let param = req.uri().query().map_or(String::new(), |q| format!("?{q}"));
    let stream = StreamInfo {
        stream: key.name.clone(),
        param,
        // Set by the admission: the path's id, the API's stream id.
        stream_id: String::new(),
    };
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Admit {
        key: key.clone(),
        subject: HookSubject { client, stream },
        protocol: "hls",
        peer: ip,
        credentials: req.uri().query().unwrap_or_default().to_string(),
        http: Some(HttpOrigin {
            origin: header(hyper::header::ORIGIN),
            referer: header(hyper::header::REFERER),
        }),
    }
}

/// The token for the session's playlist URLs: its own, or a new one for the same session
/// once it is half its life old.
fn current_token(ctx: &Context, client: &Client, key: &StreamKey) -> String {
    let tokens = ctx.clients.tokens();
    match (client.hls_token_issued(), client.hls_session()) {
        (Some((token, issued)), _) if !tokens.is_aging(issued) => token,
        (_, Some(id)) => {
            let now = tokens.now();
            let token = tokens.issue_at(id, key, now);
            client.set_hls_token(token.clone(), now);
            token
        }
        (Some((token, _)), None) => token,
        (None, None) => String::new(),
    }
}

/// The session id of a client that sent no token: the same for each of its reloads of the
/// same URL. The query is part of it because it carries what admitted the session (a signed
/// URL, the `?token=` a hook checked): another client behind the same address, with the same
/// user agent but without those credentials, gets a session of its own, and its own
/// admission, instead of riding on the first one's.
fn derived_id(ctx: &Context, req: &Request<Incoming>, peer: SocketAddr, key: &StreamKey) -> u64 {
    let ip = peer.ip().to_canonical().to_string();
    let agent = req
        .headers()
        .get(hyper::header::USER_AGENT)
        .map_or(&b""[..], |v| v.as_bytes());
    let stream = key.to_string();
    // Without the LL-HLS directives, which change at every blocking reload.
    let query = blocking::without_directives(req.uri().query().unwrap_or_default());
    ctx.clients
        .tokens()
        .derived_id(&[ip.as_bytes(), agent, stream.as_bytes(), query.as_bytes()])
}

fn url(req: &Request<Incoming>) -> String {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // No query: the session token and any signature stay out of the listing.
    request_url(host, req.uri().path(), "")
}
