//! HLS answers that carry nothing per viewer: to a cluster peer (the node that asked holds
//! the viewer's session) and, in CDN mode (`hls.cdn`), to everyone, so a shared cache serves
//! every viewer from one copy (srs#2995: per-viewer session ids in URLs defeat caches).
//!
//! In CDN mode the playlist is the packager's, unchanged (no `?session=`), and each answer
//! says how long a cache may keep it (`cache_headers.rs`). The origin checks the play
//! access list against the address that asks (the cache's: let only the CDN in); signed URLs
//! and `on_play` are checked where viewers arrive, at the CDN edge (its URL signing, nginx's
//! `secure_link`), since one cached copy answers many viewers. No viewer session is made, so
//! HLS viewers are not clients in the API and not in `estuary_stream_viewers`; what the
//! origin can honestly count is what it serves, `estuary_hls_requests_total{kind}` (with a
//! cache in front: about one segment request per segment and one playlist request per cache
//! lifetime, whatever the audience). Audience figures come from the CDN's logs.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::{Request, Response, StatusCode};

use super::super::response::{bytes, text, Body};
use super::playlist_wait::first_playlist;
use super::{cache_headers, owner_fetch};
use crate::admission::{acl, Action};
use crate::cluster::peer_auth::PEER_HEADER;
use crate::context::Context;
use crate::outputs::hls::HlsFile;
use crate::stream::StreamKey;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
const SEGMENT_TYPE: &str = "video/mp2t";

/// The answer to a peer's or (in CDN mode) anyone's request for `file` of `app`, or `None`
/// when the request goes the session way.
pub async fn serve(
    ctx: &Arc<Context>,
    req: &Request<Incoming>,
    peer: SocketAddr,
    app: &str,
    file: &str,
    head: bool,
) -> Option<Response<Body>> {
    if let Some(signature) = req.headers().get(PEER_HEADER) {
        let proven = ctx
            .cluster
            .as_ref()
            .is_some_and(|c| c.is_peer_request(req.uri().path(), signature.to_str().unwrap_or_default()));
        if !proven {
            refused(ctx, peer, "bad_peer_signature", "not signed by a node of this cluster");
            return Some(text(StatusCode::FORBIDDEN, "bad peer signature\n"));
        }
        return Some(local(ctx, app, file, head).await);
    }
    if !ctx.config.hls.cdn {
        return None;
    }
    if let Ok(rules) = acl::AclConfig::for_app(&ctx.config, app) {
        if let Err(e) = acl::check_ip(&rules, Action::Play, peer.ip()) {
            refused(ctx, peer, e.label(), &e.to_string());
            return Some(text(StatusCode::FORBIDDEN, "forbidden\n"));
        }
    }
    // The owner's first (the only packager of its stream's HLS), then this node's own store.
    let stream = match file.strip_suffix(".m3u8") {
        Some(stem) => Some((stem.strip_suffix(".media").unwrap_or(stem), "playlist")),
        None => HlsFile::parse(file).map(|(stream, _, _)| (stream, "segment")),
    };
    if let Some((stream, kind)) = stream {
        match owner_fetch::fetch(ctx, &StreamKey::new(app, stream), req.uri().path(), kind).await {
            Ok(Some(owned)) => return Some(relayed(owned, kind, head)),
            Ok(None) => {}
            Err(failed) => return Some(failed),
        }
    }
    Some(local(ctx, app, file, head).await)
}

/// Counts a refusal, and logs it once per address now and then.
fn refused(ctx: &Context, peer: SocketAddr, reason: &'static str, why: &str) {
    crate::metrics::rejected("hls", reason);
    if let Some(held) = ctx.refusal_log.pass(reason, peer.ip(), std::time::Instant::now()) {
        tracing::warn!(%peer, quietly_refused_since = held, "hls request refused: {why}");
    }
}

/// `file` from this node's own store, as packaged, never fetched elsewhere (a peer's
/// request stops here: no loop). An fMP4 stream's `{stream}.m3u8` is its master playlist and
/// `{stream}.media.m3u8` its media playlist. LL-HLS blocking reloads (`_HLS_msn`) are not
/// held here: a shared cache keys on the path, so every request gets the latest playlist.
async fn local(ctx: &Context, app: &str, file: &str, head: bool) -> Response<Body> {
    if let Some(stem) = file.strip_suffix(".m3u8") {
        let (key, media) = match stem.strip_suffix(".media") {
            Some(base) if ctx.hls.get(&StreamKey::new(app, stem)).is_none() => (StreamKey::new(app, base), true),
            _ => (StreamKey::new(app, stem), false),
        };
        let Some(media_playlist) = first_playlist(ctx, &key).await else {
            return text(StatusCode::NOT_FOUND, "stream not found\n");
        };
        let master = if media {
            None
        } else {
            ctx.hls.get(&key).and_then(|s| s.master())
        };
        let playlist = master.unwrap_or(media_playlist);
        let ended = ctx.hls.get(&key).is_some_and(|s| s.is_ended());
        let cache = cache_headers::shared_playlist(&ctx.config.hls, ended);
        let mut answer = bytes(playlist, PLAYLIST_TYPE, cache_headers::PRIVATE_PLAYLIST, head);
        if let Ok(value) = HeaderValue::from_str(&cache) {
            answer.headers_mut().insert(CACHE_CONTROL, value);
        }
        return answer;
    }
    let found = HlsFile::parse(file).and_then(|(stream, instance, what)| {
        let hls = ctx
            .hls
            .get(&StreamKey::new(app, stream))
            .filter(|s| s.instance == instance)?;
        let body = match what {
            HlsFile::TsSegment(sequence) | HlsFile::Segment(sequence) => hls.segment(sequence),
            HlsFile::Init(id) => hls.init(id),
            HlsFile::Part(sequence, index) => hls.part(sequence, index),
        }?;
        Some((body, what))
    });
    match found {
        Some((body, what)) => bytes(body, content_type(what), cache_headers::SEGMENT, head),
        None => text(StatusCode::NOT_FOUND, "segment not found\n"),
    }
}

/// The media type of a segment, part or init section.
pub fn content_type(what: HlsFile) -> &'static str {
    match what {
        HlsFile::TsSegment(_) => SEGMENT_TYPE,
        HlsFile::Init(_) => "video/mp4",
        HlsFile::Segment(_) | HlsFile::Part(..) => "video/iso.segment",
    }
}

/// The owner's answer, passed on with its type and caching (the owner knows whether its
/// playlist ended).
pub fn relayed(owned: owner_fetch::Owned, kind: &str, head: bool) -> Response<Body> {
    let content_type = if kind == "playlist" {
        PLAYLIST_TYPE
    } else {
        SEGMENT_TYPE
    };
    let mut answer = bytes(owned.body, content_type, cache_headers::SEGMENT, head);
    let headers = answer.headers_mut();
    if let Some(value) = owned.content_type {
        headers.insert(hyper::header::CONTENT_TYPE, value);
    }
    match owned.cache_control {
        Some(value) => headers.insert(CACHE_CONTROL, value),
        None => headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache_headers::NOT_FOUND)),
    };
    answer
}
