//! HLS over HTTP: `GET|HEAD /{app}/{stream}.m3u8` and the segments beside it,
//! `/{app}/{stream}-{instance}-{sequence}.ts`, straight from the in-memory store.
//!
//! Caching (RFC 8216 App. B advice, and what CDNs need): the playlist may be cached for at
//! most a second (it changes every target duration), segments are immutable — their names
//! carry the packaging run and sequence number, so a name is never reused — and cached for a
//! day. Unknown streams and segments that left the window answer 404 at once.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use super::{text, Body};
use crate::context::Context;
use crate::hls::packager::parse_segment_name;
use crate::hub::StreamKey;

/// Whether `path` is an HLS request.
pub fn matches(path: &str) -> bool {
    path.ends_with(".m3u8") || path.ends_with(".ts")
}

pub fn serve(ctx: &Arc<Context>, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    let Some((app, file)) = path.strip_prefix('/').and_then(|p| p.rsplit_once('/')) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let head = req.method() == Method::HEAD;
    if let Some(stream) = file.strip_suffix(".m3u8") {
        let playlist = ctx.hls.get(&StreamKey::new(app, stream)).and_then(|s| s.playlist());
        return match playlist {
            Some(body) => respond(body, "application/vnd.apple.mpegurl", "max-age=1", head),
            None => text(StatusCode::NOT_FOUND, "stream not found\n"),
        };
    }
    let Some((stream, instance, sequence)) = parse_segment_name(file) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let segment = ctx
        .hls
        .get(&StreamKey::new(app, stream))
        .filter(|s| s.instance == instance)
        .and_then(|s| s.segment(sequence));
    match segment {
        Some(body) => respond(body, "video/mp2t", "public, max-age=86400, immutable", head),
        None => text(StatusCode::NOT_FOUND, "segment not found\n"),
    }
}

fn respond(body: Bytes, content_type: &'static str, cache: &'static str, head: bool) -> Response<Body> {
    let len = body.len();
    let mut response = if head { Response::new(Empty::new().boxed()) } else { Response::new(Full::new(body).boxed()) };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}
