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
//! | `GET /api/v1/vhosts[/{id}]` | `vhosts[]` / `vhost` (one: `__defaultVhost__`) |
//! | `GET /api/v1/clients[/{id}]` | `clients[]` / `client` |
//! | `DELETE /api/v1/clients/{id}` | kicks the client |
//! | `GET /api/v1/raw?rpc=raw` | SRS's raw-API probe: raw API off (its console asks) |
//! | `/api/v1/recordings[/{id}[/stop]]` | recordings: see `recordings.rs` |
//! | `/api/v1/schedules[/{id}]` | recording schedules: see `schedules.rs` |
//! | `/api/v1/forwards[/{id}]` | forwards to upstream RTMP servers: see `forwards.rs` |
//! | `/api/v1/sources[/{id}[/status]]` | pulled live sources: see `sources.rs` |
//!
//! Lists take SRS's paging, `?start=&count=` (`count` at least 10), when asked; without it,
//! every item. With `api.srs_compat`, JSONP and SRS's error statuses: see `srs_compat.rs`.
//!
//! Who may call it is decided before it is reached: see `control.rs`.

mod clients;
mod envelope;
mod forwards;
mod recordings;
mod schedules;
mod sources;
mod srs_compat;
mod streams;
mod summaries;
mod vhosts;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::response::Body;
use crate::context::Context;
use envelope::{error, not_allowed, ok, srs_not_found, CODE_STREAM_NOT_FOUND, CODE_VHOST_NOT_FOUND};
use srs_compat::SrsCall;

/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// Answers a request whose path starts with `/api/`.
pub async fn serve(ctx: &Arc<Context>, req: Request<Incoming>) -> Response<Body> {
    let call = match SrsCall::parse(ctx.config.api.srs_compat, req.uri().query()) {
        Ok(call) => call,
        Err(refused) => return refused.response(),
    };
    let (head, body) = req.into_parts();
    let mut req = Request::from_parts(head, ());
    if let Some(method) = call.method_for(req.uri().path()) {
        *req.method_mut() = method;
    }
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
    call.answer(route(ctx, &req, &body).await).await
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
    let query = req.uri().query();
    let get = method == Method::GET || method == Method::HEAD;
    match rest {
        "" if get => ok(
            ctx,
            "urls",
            json!({
                "versions": "the version of estuary",
                "summaries": "the summary (uptime, cpu, memory, load, totals)",
                "vhosts": "the vhosts, or /vhosts/{id}",
                "streams": "the streams, or /streams/{id}",
                "clients": "the clients, or /clients/{id}; DELETE /clients/{id} kicks",
                "recordings": "the recordings, or /recordings/{id}; POST starts, POST /recordings/{id}/stop stops",
                "schedules": "the recording schedules, or /schedules/{id}",
                "forwards": "the forwards to upstream RTMP servers, or /forwards/{id}; POST adds, DELETE /forwards/{id} removes",
            }),
        ),
        "/versions" if get => ok(ctx, "data", summaries::versions()),
        "/summaries" if get => ok(ctx, "data", summaries::summaries(ctx)),
        "/vhosts" if get => ok(ctx, "vhosts", Value::Array(vhosts::vhosts(ctx))),
        "/streams" if get => ok(ctx, "streams", page(streams::streams(ctx), query)),
        "/clients" if get => ok(ctx, "clients", page(clients::clients(ctx), query)),
        "/raw" if get => raw(ctx, query),
        "" | "/versions" | "/summaries" | "/vhosts" | "/streams" | "/clients" | "/raw" => not_allowed("GET"),
        _ => {
            if let Some(id) = rest.strip_prefix("/vhosts/") {
                if !get {
                    return not_allowed("GET");
                }
                return match vhosts::find_vhost(ctx, id) {
                    Some(v) => ok(ctx, "vhost", v),
                    None => srs_not_found(CODE_VHOST_NOT_FOUND, &format!("vhost {id} not found")),
                };
            }
            if let Some(id) = rest.strip_prefix("/streams/") {
                if !get {
                    return not_allowed("GET");
                }
                return match streams::find_stream(ctx, id) {
                    Some(v) => ok(ctx, "stream", v),
                    None => srs_not_found(CODE_STREAM_NOT_FOUND, &format!("stream {id} not found")),
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
            if let Some(tail) = rest.strip_prefix("/forwards") {
                return forwards::serve(ctx, method, tail, req.uri().query(), body);
            }
            if let Some(tail) = rest.strip_prefix("/sources") {
                return sources::serve(ctx, method, tail, body).await;
            }
            error(StatusCode::NOT_FOUND, 404, "unknown api path; see /api/v1")
        }
    }
}

/// A query parameter's value.
fn param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// SRS's paging of a list (`SrsGoApiStreams`, `SrsGoApiClients`): from `start` (at least 0),
/// `count` items (at least 10). Without either parameter, the whole list: SRS would give the
/// first 10, which hides the rest from a console that does not page.
fn page(items: Vec<Value>, query: Option<&str>) -> Value {
    let number = |name| param(query, name).map(|v| v.parse::<i64>().unwrap_or(0));
    let (start, count) = (number("start"), number("count"));
    if start.is_none() && count.is_none() {
        return Value::Array(items);
    }
    let start = usize::try_from(start.unwrap_or(0)).unwrap_or(0);
    let count = usize::try_from(count.unwrap_or(0).max(10)).unwrap_or(10);
    Value::Array(items.into_iter().skip(start).take(count).collect())
}

/// `GET /api/v1/raw`: SRS's raw API (reading and changing the config over HTTP), which
/// Estuary does not have. SRS's console asks `?rpc=raw` whether it is on and hides what
/// needs it (its DVR button); every other call gets SRS's "raw API disabled", code 1061.
fn raw(ctx: &Context, query: Option<&str>) -> Response<Body> {
    if param(query, "rpc") == Some("raw") {
        return ok(
            ctx,
            "http_api",
            json!({
                "enabled": ctx.config.api.enabled,
                "listen": ctx.config.api.listen,
                "crossdomain": false,
                "raw_api": { "enabled": false, "allow_reload": false, "allow_query": false, "allow_update": false },
            }),
        );
    }
    srs_not_found(1061, "the raw api is not supported")
}
