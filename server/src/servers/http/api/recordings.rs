//! `/api/v1/recordings`: start, stop, list, show and delete recordings.
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/v1/recordings` `{"app","stream"}` | `recording` (pending until the stream is live) |
//! | `POST /api/v1/recordings/{id}/stop` | `recording` (its file is finalised, then `completed`) |
//! | `GET /api/v1/recordings?app&stream&state&from&to&limit&offset` | `recordings[]`, `total`, `limit`, `offset` |
//! | `GET /api/v1/recordings/{id}` | `recording` |
//! | `DELETE /api/v1/recordings/{id}` | `recording` (its files are removed; 409 while recording) |
//!
//! `from`/`to` are Unix milliseconds or RFC 3339 times, on when a recording started.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::response::Body;
use super::super::urls::time_ms;
use super::envelope::{error, not_allowed, ok, ok_with};
use crate::context::Context;
use crate::path::demand::Demand;
use crate::percent::decode_form as percent_decode;
use crate::recordings::catalogue::{CatalogueError, Recording, RecordingFilter, RecordingState};
use crate::recordings::service::{ControlError, Recordings, StartError};
use crate::stream::StreamKey;

/// `code` of an unknown recording.
const CODE_RECORDING_NOT_FOUND: u32 = 2060;
/// `code` of a recording that cannot be changed in its state.
const CODE_RECORDING_CONFLICT: u32 = 2061;

/// `POST /api/v1/recordings`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    app: String,
    stream: String,
}

/// Answers `/api/v1/recordings[/…]`; `rest` is what follows `/recordings`.
pub async fn serve(
    ctx: &Arc<Context>,
    method: &Method,
    rest: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    let Some(service) = ctx.recordings.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            503,
            "recordings are off: their root or catalogue could not be opened (see the server log)",
        );
    };
    let rest = rest.trim_start_matches('/');
    match (method, rest) {
        (&Method::GET | &Method::HEAD, "") => list(ctx, service, query).await,
        (&Method::POST, "") => start(ctx, service, body).await,
        (_, "") => not_allowed("GET, POST"),
        _ => {
            let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
            let Ok(id) = id.parse::<i64>() else {
                return not_found(id);
            };
            match (method, action) {
                (&Method::GET | &Method::HEAD, "") => blocking(ctx, move || service.catalogue().get(id)).await,
                (&Method::DELETE, "") => control(ctx, move || service.delete(id)).await,
                (_, "") => not_allowed("GET, DELETE"),
                (&Method::POST, "stop") => control(ctx, move || service.stop(id)).await,
                (_, "stop") => not_allowed("POST"),
                _ => error(StatusCode::NOT_FOUND, 404, "unknown api path; see /api/v1"),
            }
        }
    }
}

async fn start(ctx: &Arc<Context>, service: Recordings, body: &[u8]) -> Response<Body> {
    let body: StartBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                400,
                &format!("body: {e}; expected {{\"app\", \"stream\"}}"),
            )
        }
    };
    if body.app.is_empty() || body.stream.is_empty() || body.app.contains('/') || body.stream.contains('/') {
        return error(StatusCode::BAD_REQUEST, 400, "app and stream must be non-empty names");
    }
    let key = StreamKey::new(body.app, body.stream);
    let requester = service.clone();
    let request_key = key.clone();
    let requested = tokio::task::spawn_blocking(move || requester.request(&request_key)).await;
    let recording = match requested {
        Ok(Ok(r)) => r,
        Ok(Err(StartError::AlreadyRecording { key, id })) => {
            return error(
                StatusCode::CONFLICT,
                CODE_RECORDING_CONFLICT,
                &format!("stream {key} is being recorded already (recording {id})"),
            )
        }
        Ok(Err(e)) => return error(StatusCode::CONFLICT, CODE_RECORDING_CONFLICT, &e.to_string()),
        Err(_) => return internal(),
    };
    // An on-demand source of the key (a pulled source) is started for the recording.
    service.keep_wanted(&key, || Demand::new(&ctx.paths, &key));
    // Live now: recorded from now (from its last keyframe). Otherwise when it comes.
    if let Some(path) = ctx.paths.get(&key) {
        path.start_output("record");
    }
    let id = recording.id;
    blocking(ctx, move || service.catalogue().get(id)).await
}

async fn list(ctx: &Arc<Context>, service: Recordings, query: Option<&str>) -> Response<Body> {
    let filter = match filter(query) {
        Ok(f) => f,
        Err(message) => return error(StatusCode::BAD_REQUEST, 400, &message),
    };
    let page = match tokio::task::spawn_blocking(move || service.catalogue().list(&filter)).await {
        Ok(Ok(page)) => page,
        Ok(Err(e)) => return catalogue_error(&e),
        Err(_) => return internal(),
    };
    let items: Vec<Value> = page.items.iter().map(json).collect();
    ok_with(
        ctx,
        vec![
            ("recordings", Value::Array(items)),
            ("total", json!(page.total)),
            ("limit", json!(page.limit)),
            ("offset", json!(page.offset)),
        ],
    )
}

/// The list's filter from the query string.
fn filter(query: Option<&str>) -> Result<RecordingFilter, String> {
    let mut filter = RecordingFilter::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        match key {
            "app" => filter.app = Some(value),
            "stream" => filter.stream = Some(value),
            "state" => filter.state = Some(value.parse::<RecordingState>().map_err(|e| format!("state: {e}"))?),
            "from" => filter.from = Some(time_ms(&value).ok_or(format!("from: {value:?} is not a time"))?),
            "to" => filter.to = Some(time_ms(&value).ok_or(format!("to: {value:?} is not a time"))?),
            "limit" => filter.limit = Some(value.parse().map_err(|_| format!("limit: {value:?}"))?),
            "offset" => filter.offset = Some(value.parse().map_err(|_| format!("offset: {value:?}"))?),
            _ => {}
        }
    }
    Ok(filter)
}

/// A recording as the API shows it.
pub fn json(r: &Recording) -> Value {
    let finished = matches!(r.state, RecordingState::Completed | RecordingState::Interrupted);
    json!({
        "id": r.id,
        "app": r.app,
        "stream": r.stream,
        "state": r.state.as_str(),
        "format": r.format.as_str(),
        "plan": r.plan.as_str(),
        "path": r.path,
        "created": r.created_at,
        "start": r.started_at,
        "end": r.ended_at,
        "duration": r.duration_ms as f64 / 1000.0,
        "duration_ms": r.duration_ms,
        "size": r.size_bytes,
        "error": r.error,
        "schedule_id": r.schedule_id,
        "urls": {
            "file": finished.then(|| format!("/vod/{}.{}", r.id, r.format.as_str())),
            "hls": (finished && r.format.as_str() == "mp4").then(|| format!("/vod/{}.m3u8", r.id)),
            "poster": r.poster_path.as_ref().map(|_| format!("/vod/{}.jpg", r.id)),
        },
    })
}

/// Runs a catalogue read off the async runtime and answers with the recording.
async fn blocking(
    ctx: &Arc<Context>,
    read: impl FnOnce() -> Result<Recording, CatalogueError> + Send + 'static,
) -> Response<Body> {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(r)) => ok(ctx, "recording", json(&r)),
        Ok(Err(e)) => catalogue_error(&e),
        Err(_) => internal(),
    }
}

/// Runs a stop or delete off the async runtime and answers with the recording.
async fn control(
    ctx: &Arc<Context>,
    act: impl FnOnce() -> Result<Recording, ControlError> + Send + 'static,
) -> Response<Body> {
    match tokio::task::spawn_blocking(act).await {
        Ok(Ok(r)) => ok(ctx, "recording", json(&r)),
        Ok(Err(ControlError::Catalogue(e))) => catalogue_error(&e),
        Ok(Err(e)) => error(StatusCode::CONFLICT, CODE_RECORDING_CONFLICT, &e.to_string()),
        Err(_) => internal(),
    }
}

fn catalogue_error(e: &CatalogueError) -> Response<Body> {
    match e {
        CatalogueError::RecordingNotFound(id) => not_found(&id.to_string()),
        e => {
            tracing::warn!(cause = %e, "recordings api: catalogue error");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                500,
                "catalogue error (see the server log)",
            )
        }
    }
}

fn not_found(id: &str) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        CODE_RECORDING_NOT_FOUND,
        &format!("recording {id} not found"),
    )
}

fn internal() -> Response<Body> {
    error(StatusCode::INTERNAL_SERVER_ERROR, 500, "internal error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_filters_from_the_query() {
        let f = filter(Some(
            "app=live&stream=cam%201&state=completed&from=1000&to=2026-01-01T00:00:00Z&limit=5",
        ))
        .unwrap();
        assert_eq!(f.app.as_deref(), Some("live"));
        assert_eq!(f.stream.as_deref(), Some("cam 1"));
        assert_eq!(f.state, Some(RecordingState::Completed));
        assert_eq!(f.from, Some(1000));
        assert_eq!(f.to, Some(1_767_225_600_000));
        assert_eq!(f.limit, Some(5));
        assert!(filter(Some("state=nope")).is_err());
        assert!(filter(Some("from=yesterday")).is_err());
    }
}
