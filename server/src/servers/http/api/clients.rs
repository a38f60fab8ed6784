//! `GET /api/v1/clients[/{id}]` and `DELETE /api/v1/clients/{id}` (kick).
//!
//! A client is shaped as SRS's (`SrsStatisticClient::dumps`): `id, vhost` (the vhost's id),
//! `stream` (the stream's id), `ip, pageUrl, swfUrl, tcUrl, url` (`/app/stream`), `name`,
//! `type` (SRS's: `fmle-publish`, `flash-publish`, `haivision-publish`, `rtmp-play`,
//! `flv-play`, `hls-play`), `publish, alive` (seconds), `send_bytes, recv_bytes, kbps`. Then
//! Estuary's own: `app`, `kind` (the metrics' label), `since_ms`, `request_url` (the URL asked
//! for, tokens hidden) and `session` (an HLS session's token). An RTMP connection that
//! neither publishes nor plays is not listed, as in SRS (it can still be kicked by its id).

use std::sync::Arc;

use hyper::{Method, Response};
use serde_json::{json, Value};

use super::super::response::Body;
use super::envelope::{not_allowed, ok, srs_not_found, CODE_CLIENT_NOT_FOUND};
use super::vhosts::default_vhost_id;
use crate::clients::{Client, ClientKind};
use crate::context::Context;

/// Every client that publishes or plays.
pub fn clients(ctx: &Context) -> Vec<Value> {
    let clients = ctx.clients.list();
    clients.iter().filter_map(|c| client_json(ctx, c)).collect()
}

pub fn client_by_id(ctx: &Arc<Context>, method: &Method, id: &str) -> Response<Body> {
    let not_found = || srs_not_found(CODE_CLIENT_NOT_FOUND, &format!("client {id} not found"));
    let Ok(n) = id.parse::<u64>() else {
        return not_found();
    };
    match *method {
        Method::GET | Method::HEAD => match ctx.clients.get(n).and_then(|c| client_json(ctx, &c)) {
            Some(c) => ok(ctx, "client", c),
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

fn client_json(ctx: &Context, c: &Client) -> Option<Value> {
    let role = c.role();
    let intro = c.introduction();
    let srs_type = role.kind.srs_type(intro.publish_style)?;
    let kbps = c.kbps();
    let stream_id = role
        .key
        .as_ref()
        .and_then(|k| ctx.paths.get(k))
        .map_or(String::new(), |p| p.id.to_string());
    let (app, name) = role
        .key
        .as_ref()
        .map_or((String::new(), String::new()), |k| (k.app.clone(), k.name.clone()));
    Some(json!({
        "id": c.id.to_string(),
        "vhost": default_vhost_id(),
        "stream": stream_id,
        "ip": c.ip,
        "pageUrl": intro.page_url,
        "swfUrl": intro.swf_url,
        "tcUrl": intro.tc_url,
        "url": format!("/{app}/{name}"),
        "name": name,
        "type": srs_type,
        "publish": role.kind == ClientKind::Publisher,
        "alive": c.started.elapsed().as_secs_f64(),
        "send_bytes": c.sent(),
        "recv_bytes": c.received(),
        "kbps": { "recv_30s": kbps.recv, "send_30s": kbps.send },
        "app": app,
        "kind": role.kind.as_str(),
        "since_ms": role.since_unix_ms,
        "request_url": role.url,
        "session": c.hls_token(),
    }))
}
