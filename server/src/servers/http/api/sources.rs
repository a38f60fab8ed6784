//! `/api/v1/sources`: live sources pulled from RTMP or HLS URLs (issue 14).
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/sources` | `sources[]` |
//! | `POST /api/v1/sources` `{name, protocol, url, stream, active?, on_demand?, close_after_ms?, max_bandwidth?}` | `source` |
//! | `GET /api/v1/sources/{id}` | `source` |
//! | `PUT /api/v1/sources/{id}` (the same body) | `source` |
//! | `DELETE /api/v1/sources/{id}` | `source` (as it was) |
//! | `GET /api/v1/sources/{id}/status` | `status{online, since_ms, video_codec, audio_codec, kbps, bytes, last_error, last_error_ms, retries}` |
//!
//! A source is `{id, name, protocol, url, stream, active, on_demand, close_after_ms,
//! max_bandwidth, origin, status}`. Sources from the config file (`origin: "config"`) are
//! listed but changed only in the file. The URL is shown as configured: the API is the
//! control plane, closed to the network unless the operator opens it.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde_json::Value;

use super::super::response::Body;
use super::envelope::{error, not_allowed, ok};
use crate::config::SourceSpec;
use crate::context::Context;
use crate::sources::{SourceView, SourcesError};

const CODE_SOURCE_NOT_FOUND: u32 = 2070;
const CODE_SOURCE_FROM_CONFIG: u32 = 2071;
const CODE_SOURCE_STREAM_TAKEN: u32 = 2072;

/// Answers `/api/v1/sources[/{id}[/status]]`; `rest` is what follows `/sources`.
pub async fn serve(ctx: &Arc<Context>, method: &Method, rest: &str, body: &[u8]) -> Response<Body> {
    let sources = &ctx.sources;
    let rest = rest.trim_start_matches('/');
    let spec = || -> Result<SourceSpec, SourcesError> {
        serde_json::from_slice(body).map_err(|e| SourcesError::Invalid(format!("body: {e}")))
    };
    let result = match (method, rest) {
        (&Method::GET | &Method::HEAD, "") => {
            let all: Vec<Value> = sources.list().iter().map(view_json).collect();
            return ok(ctx, "sources", Value::Array(all));
        }
        (&Method::POST, "") => match spec() {
            Ok(spec) => sources.create(spec).await,
            Err(e) => Err(e),
        },
        (_, "") => return not_allowed("GET, POST"),
        (method, tail) => {
            let (id, status) = match tail.strip_suffix("/status") {
                Some(id) => (id, true),
                None => (tail, false),
            };
            let Ok(id) = id.parse::<i64>() else {
                return refused(SourcesError::NotFound(-1), id);
            };
            if status {
                return match *method {
                    Method::GET | Method::HEAD => match sources.get(id) {
                        Ok(v) => ok(ctx, "status", serde_json::to_value(&v.status).unwrap_or_default()),
                        Err(e) => refused(e, &id.to_string()),
                    },
                    _ => not_allowed("GET"),
                };
            }
            match *method {
                Method::GET | Method::HEAD => sources.get(id),
                Method::PUT => match spec() {
                    Ok(spec) => sources.update(id, spec).await,
                    Err(e) => Err(e),
                },
                Method::DELETE => sources.delete(id).await,
                _ => return not_allowed("GET, PUT, DELETE"),
            }
        }
    };
    match result {
        Ok(view) => ok(ctx, "source", view_json(&view)),
        Err(e) => refused(e, rest),
    }
}

fn view_json(view: &SourceView) -> Value {
    serde_json::to_value(view).unwrap_or_default()
}

fn refused(e: SourcesError, id: &str) -> Response<Body> {
    match e {
        SourcesError::NotFound(_) => error(
            StatusCode::NOT_FOUND,
            CODE_SOURCE_NOT_FOUND,
            &format!("source {id} not found"),
        ),
        SourcesError::FromConfig(_) => error(StatusCode::CONFLICT, CODE_SOURCE_FROM_CONFIG, &e.to_string()),
        SourcesError::StreamTaken { .. } => error(StatusCode::CONFLICT, CODE_SOURCE_STREAM_TAKEN, &e.to_string()),
        SourcesError::Invalid(_) => error(StatusCode::BAD_REQUEST, 400, &e.to_string()),
        SourcesError::Store(_) | SourcesError::Task(_) => {
            tracing::error!(cause = %e, "source change not stored");
            error(StatusCode::INTERNAL_SERVER_ERROR, 500, &e.to_string())
        }
    }
}
