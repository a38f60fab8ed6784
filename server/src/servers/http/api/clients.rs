//! `GET /api/v1/clients[/{id}]` and `DELETE /api/v1/clients/{id}` (kick).

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::super::response::Body;
use super::envelope::{error, not_allowed, ok, CODE_CLIENT_NOT_FOUND};
use crate::clients::{Client, ClientKind};
use crate::context::Context;
use crate::hooks::DEFAULT_VHOST;

/// Every client.
pub fn list(ctx: &Context) -> Response<Body> {
    let clients = ctx.clients.list();
    ok(
        ctx,
        "clients",
        Value::Array(clients.iter().map(|c| client_json(ctx, c)).collect()),
    )
}

pub fn client_by_id(ctx: &Arc<Context>, method: &Method, id: &str) -> Response<Body> {
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            CODE_CLIENT_NOT_FOUND,
            &format!("client {id} not found"),
        )
    };
    let Ok(n) = id.parse::<u64>() else {
        return not_found();
    };
    match *method {
        Method::GET | Method::HEAD => match ctx.clients.get(n) {
            Some(c) => ok(ctx, "client", client_json(ctx, &c)),
            None => not_found(),
        },
        Method::DELETE => {
            if ctx.clients.kick(n) {
                tracing::info!(client = n, "client kicked through the api");
                ok(ctx, "data", json!({ "id": id, "kicked": true }))
            } else {
                not_found()
            }
        }
        _ => not_allowed("GET, DELETE"),
    }
}

fn client_json(ctx: &Context, c: &Client) -> Value {
    let role = c.role();
    let kbps = c.kbps();
    let stream_id = role
        .key
        .as_ref()
        .and_then(|k| ctx.paths.get(k))
        .map(|p| p.id.to_string());
    let (app, name) = role
        .key
        .as_ref()
        .map_or((String::new(), String::new()), |k| (k.app.clone(), k.name.clone()));
    json!({
        "id": c.id.to_string(),
        "vhost": DEFAULT_VHOST,
        "stream": stream_id,
        "app": app,
        "name": name,
        "ip": c.ip,
        "url": role.url,
        "type": role.kind.as_str(),
        "kind": role.kind.as_str(),
        "publish": role.kind == ClientKind::Publisher,
        "alive": c.started.elapsed().as_secs_f64(),
        "since_ms": role.since_unix_ms,
        "send_bytes": c.sent(),
        "recv_bytes": c.received(),
        "kbps": { "recv_30s": kbps.recv, "send_30s": kbps.send },
        "session": c.hls_token(),
    })
}
