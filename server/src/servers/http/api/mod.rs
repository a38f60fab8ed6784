//! The HTTP API under `/api/v1/`, in SRS's shapes (`trunk/src/app/srs_app_http_api.cpp`) so
//! a dashboard written for SRS reads it.
//!
//! Every answer is JSON in SRS's envelope: `{"code":0,"server":…,"service":…,"pid":…, …}`
//! with `data`, `streams`/`stream` or `clients`/`client` beside it. An error is
//! `{"code":N,"message":"…"}` with an HTTP status that says the same (401, 404, 405).
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/versions` | `data{major,minor,revision,version}` |
//! | `GET /api/v1/summaries` | `data{ok,now_ms,self{…},system{…}}` |
//! | `GET /api/v1/streams[/{id}]` | `streams[]` / `stream`; `{id}` may also be `app/stream` |
//! | `GET /api/v1/clients[/{id}]` | `clients[]` / `client` |
//! | `DELETE /api/v1/clients/{id}` | kicks the client |
//! | `/api/v1/recordings[/{id}[/stop]]` | recordings: see `recordings.rs` |
//! | `/api/v1/schedules[/{id}]` | recording schedules: see `schedules.rs` |
//! | `/api/v1/sources[/{id}[/status]]` | pulled live sources: see `sources.rs` |
//!
//! Who may call it is decided before it is reached: see `control.rs`.

mod clients;
mod envelope;
mod recordings;
mod schedules;
mod sources;
mod streams;
mod summaries;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::response::Body;
use crate::context::Context;
use envelope::{error, not_allowed, ok, CODE_STREAM_NOT_FOUND};

/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// Answers a request whose path starts with `/api/`.
pub async fn serve(ctx: &Arc<Context>, req: Request<Incoming>) -> Response<Body> {
    let (head, body) = req.into_parts();
    let req = Request::from_parts(head, ());
    let body = if matches!(*req.method(), Method::POST | Method::PUT) {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    413,
                    &format!("request body over {MAX_BODY} bytes, or not read"),
                )
            }
        }
    } else {
        Bytes::new()
    };
    route(ctx, &req, &body).await
}

async fn route(ctx: &Arc<Context>, req: &Request<()>, body: &[u8]) -> Response<Body> {
    if !ctx.config.api.enabled {
        return error(StatusCode::NOT_FOUND, 404, "the api is disabled (api.enabled = false)");
    }
    let path = req.uri().path().trim_end_matches('/');
    let Some(rest) = path.strip_prefix("/api/v1") else {
        return error(StatusCode::NOT_FOUND, 404, "unknown api path; see /api/v1");
    };
    let method = req.method();
    let get = method == Method::GET || method == Method::HEAD;
    match rest {
        "" if get => ok(
            ctx,
            "urls",
            json!({
                "versions": "the version of estuary",
                "summaries": "the summary (uptime, cpu, memory, load, totals)",
                "streams": "the streams, or /streams/{id}",
                "clients": "the clients, or /clients/{id}; DELETE /clients/{id} kicks",
                "recordings": "the recordings, or /recordings/{id}; POST starts, POST /recordings/{id}/stop stops",
                "schedules": "the recording schedules, or /schedules/{id}",
            }),
        ),
        "/versions" if get => ok(ctx, "data", summaries::versions()),
        "/summaries" if get => ok(ctx, "data", summaries::summaries(ctx)),
        "/streams" if get => ok(ctx, "streams", Value::Array(streams::streams(ctx))),
        "/clients" if get => clients::list(ctx),
        "" | "/versions" | "/summaries" | "/streams" | "/clients" => not_allowed("GET"),
        _ => {
            if let Some(id) = rest.strip_prefix("/streams/") {
                if !get {
                    return not_allowed("GET");
                }
                return match streams::find_stream(ctx, id) {
                    Some(v) => ok(ctx, "stream", v),
                    None => error(
                        StatusCode::NOT_FOUND,
                        CODE_STREAM_NOT_FOUND,
                        &format!("stream {id} not found"),
                    ),
                };
            }
            if let Some(id) = rest.strip_prefix("/clients/") {
                return clients::client_by_id(ctx, method, id);
            }
            if let Some(tail) = rest.strip_prefix("/recordings") {
                return recordings::serve(ctx, method, tail, req.uri().query(), body).await;
            }
            if let Some(tail) = rest.strip_prefix("/schedules") {
                return schedules::serve(ctx, method, tail, body).await;
            }
            if let Some(tail) = rest.strip_prefix("/sources") {
                return sources::serve(ctx, method, tail, body).await;
            }
            error(StatusCode::NOT_FOUND, 404, "unknown api path; see /api/v1")
        }
    }
}
