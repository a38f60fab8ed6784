//! `/api/v1/forwards`: the forwards of every stream to upstream RTMP servers, and adding or
//! removing one stream's forwards.
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/forwards?app&stream` | `forwards[]` |
//! | `POST /api/v1/forwards` `{"app","stream","url"}` | `forward` (publishing as soon as the stream is live) |
//! | `GET /api/v1/forwards/{id}` | `forward` |
//! | `DELETE /api/v1/forwards/{id}` | `forward` (its connection is closed; 409 for a forward from the config file) |
//!
//! A collection of its own rather than `/streams/{id}/forwards`: a forward is set on a stream
//! key, before the stream publishes and across its publishes, while a stream's numeric id
//! exists only while it is listed (as with `/recordings`). `GET /api/v1/streams/{id}` shows
//! the stream's forwards too.
//!
//! `url` is shown with its stream name and query hidden (either may be the upstream's
//! publish key); `upstream` is its `host:port`.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::response::Body;
use super::envelope::{error, not_allowed, ok};
use crate::context::Context;
use crate::outputs::forward::{ForwardError, ForwardInfo, Phase, KIND};
use crate::percent::decode_form;
use crate::stream::StreamKey;

/// `code` of an unknown forward.
const CODE_FORWARD_NOT_FOUND: u32 = 2070;
/// `code` of a forward that cannot be removed (it comes from the config file).
const CODE_FORWARD_CONFLICT: u32 = 2071;

/// `POST /api/v1/forwards`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    app: String,
    stream: String,
    /// `rtmp://host[:port]/app/stream[?query]`; `{app}` and `{stream}` are replaced.
    url: String,
}

/// Answers `/api/v1/forwards[/…]`; `rest` is what follows `/forwards`.
pub fn serve(ctx: &Arc<Context>, method: &Method, rest: &str, query: Option<&str>, body: &[u8]) -> Response<Body> {
    let rest = rest.trim_start_matches('/');
    let get = method == Method::GET || method == Method::HEAD;
    match rest {
        "" if get => list(ctx, query),
        "" if method == Method::POST => add(ctx, body),
        "" => not_allowed("GET, POST"),
        id => {
            let Ok(id) = id.parse::<u64>() else {
                return not_found(id);
            };
            let answer = if get {
                ctx.forwards.get(id).ok_or(ForwardError::NotFound(id))
            } else if method == Method::DELETE {
                ctx.forwards.remove(id)
            } else {
                return not_allowed("GET, DELETE");
            };
            match answer {
                Ok(f) => ok(ctx, "forward", json(&f)),
                Err(e) => forward_error(&e),
            }
        }
    }
}

fn list(ctx: &Context, query: Option<&str>) -> Response<Body> {
    let (mut app, mut stream) = (None, None);
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "app" => app = Some(decode_form(v)),
            "stream" => stream = Some(decode_form(v)),
            _ => {}
        }
    }
    let items = ctx
        .forwards
        .list()
        .iter()
        .filter(|f| app.as_ref().is_none_or(|a| *a == f.key.app))
        .filter(|f| stream.as_ref().is_none_or(|s| *s == f.key.name))
        .map(json)
        .collect();
    ok(ctx, "forwards", Value::Array(items))
}

fn add(ctx: &Context, body: &[u8]) -> Response<Body> {
    let body: AddBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                &format!("body: {e}; expected {{\"app\", \"stream\", \"url\"}}"),
            )
        }
    };
    if body.app.is_empty() || body.stream.is_empty() || body.app.contains('/') || body.stream.contains('/') {
        return error(StatusCode::BAD_REQUEST, 400, "app and stream must be non-empty names");
    }
    let key = StreamKey::new(body.app, body.stream);
    let added = match ctx.forwards.add(&key, &body.url) {
        Ok(f) => f,
        Err(e) => return forward_error(&e),
    };
    // Live now, with no forward output yet: start one (it begins at the GOP's keyframe).
    if let Some(path) = ctx.paths.get(&key) {
        path.start_output(KIND);
    }
    let shown = ctx.forwards.get(added.id).unwrap_or(added);
    ok(ctx, "forward", json(&shown))
}

fn forward_error(e: &ForwardError) -> Response<Body> {
    match e {
        ForwardError::BadUrl(_) => error(StatusCode::BAD_REQUEST, 400, &e.to_string()),
        ForwardError::NotFound(_) => error(StatusCode::NOT_FOUND, CODE_FORWARD_NOT_FOUND, &e.to_string()),
        ForwardError::FromConfig(_) => error(StatusCode::CONFLICT, CODE_FORWARD_CONFLICT, &e.to_string()),
    }
}

fn not_found(id: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        CODE_FORWARD_NOT_FOUND,
        &format!("forward {id} not found"),
    )
}

/// One forward. `state` is `connecting`, `connected`, `retrying`, or `waiting` (added by API
/// for a stream that is not live).
pub fn json(f: &ForwardInfo) -> Value {
    json!({
        "id": f.id,
        "app": f.key.app,
        "stream": f.key.name,
        "url": f.url,
        "upstream": f.upstream,
        "origin": f.origin.as_str(),
        "state": f.phase.map_or("waiting", Phase::as_str),
        "since_ms": f.since_ms,
        "last_error": f.last_error,
        "failures": f.failures,
        "bytes": f.bytes,
        "kbps": f.kbps,
        "frames_dropped": f.frames_dropped,
    })
}

/// The `forwards` field of `GET /api/v1/streams/{id}`.
pub fn of_stream(ctx: &Context, key: &StreamKey) -> Value {
    Value::Array(ctx.forwards.of_stream(key).iter().map(json).collect())
}
