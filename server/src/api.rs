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
//!
//! With `api.token` set, every request needs `Authorization: Bearer TOKEN`.

use std::sync::Arc;

use bytes::Bytes;
use estuary_protocol::codec::{AudioSpecificConfig, AvcDecoderConfig};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::clients::{unix_ms, Client, ClientKind, StreamUsage};
use crate::context::Context;
use crate::hooks::DEFAULT_VHOST;
use crate::http::Body;
use crate::hub::{Stream, StreamKey};

/// SRS `ERROR_RTMP_STREAM_NOT_FOUND`.
const CODE_STREAM_NOT_FOUND: u32 = 2048;
/// SRS `ERROR_RTMP_CLIENT_NOT_FOUND`.
const CODE_CLIENT_NOT_FOUND: u32 = 2049;

/// Answers a request whose path starts with `/api/`.
pub fn serve<B>(ctx: &Arc<Context>, req: &Request<B>) -> Response<Body> {
    if !ctx.config.api.enabled {
        return error(StatusCode::NOT_FOUND, 404, "the api is disabled (api.enabled = false)");
    }
    if !authorized(&ctx.config.api.token, req) {
        let mut r = error(StatusCode::UNAUTHORIZED, 401, "missing or wrong bearer token");
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        crate::metrics::rejected("api", "auth");
        return r;
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
            }),
        ),
        "/versions" if get => ok(ctx, "data", versions()),
        "/summaries" if get => ok(ctx, "data", summaries(ctx)),
        "/streams" if get => ok(ctx, "streams", Value::Array(streams(ctx))),
        "/clients" if get => {
            let clients = ctx.clients.list();
            ok(
                ctx,
                "clients",
                Value::Array(clients.iter().map(|c| client_json(ctx, c)).collect()),
            )
        }
        "" | "/versions" | "/summaries" | "/streams" | "/clients" => not_allowed("GET"),
        _ => {
            if let Some(id) = rest.strip_prefix("/streams/") {
                if !get {
                    return not_allowed("GET");
                }
                return match find_stream(ctx, id) {
                    Some(v) => ok(ctx, "stream", v),
                    None => error(
                        StatusCode::NOT_FOUND,
                        CODE_STREAM_NOT_FOUND,
                        &format!("stream {id} not found"),
                    ),
                };
            }
            if let Some(id) = rest.strip_prefix("/clients/") {
                return client_by_id(ctx, method, id);
            }
            error(StatusCode::NOT_FOUND, 404, "unknown api path; see /api/v1")
        }
    }
}

fn client_by_id(ctx: &Arc<Context>, method: &Method, id: &str) -> Response<Body> {
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

fn authorized<B>(token: &str, req: &Request<B>) -> bool {
    if token.is_empty() {
        return true;
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(given) = given.strip_prefix("Bearer ").map(str::trim) else {
        return false;
    };
    // Compare every byte so the time taken does not tell how much of the token matched.
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn versions() -> Value {
    let v = env!("CARGO_PKG_VERSION");
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    json!({
        "major": parts.next().unwrap_or(0),
        "minor": parts.next().unwrap_or(0),
        "revision": parts.next().unwrap_or(0),
        "version": v,
    })
}

fn summaries(ctx: &Context) -> Value {
    let proc = crate::sysinfo::process();
    let sys = crate::sysinfo::system();
    let uptime = ctx.started.elapsed().as_secs_f64();
    let clients = ctx.clients.list();
    let streams = ctx.hub.list();
    let (sent, received) = clients
        .iter()
        .fold((0, 0), |(s, r), c| (s + c.sent(), r + c.received()));
    let kbps = clients.iter().fold((0, 0), |(s, r), c| {
        let k = c.kbps();
        (s + k.send, r + k.recv)
    });
    let mem_used = sys.mem_total_kbyte.saturating_sub(sys.mem_available_kbyte);
    let pct = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 0.0 };
    let mut by_kind = Map::new();
    for kind in ClientKind::ALL {
        by_kind.insert(
            kind.as_str().into(),
            json!(clients.iter().filter(|c| c.kind() == kind).count()),
        );
    }
    json!({
        "ok": true,
        "now_ms": unix_ms(),
        "self": {
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "mem_kbyte": proc.rss_bytes / 1024,
            "mem_percent": pct(proc.rss_bytes as f64 / 1024.0, sys.mem_total_kbyte as f64),
            // Average over the process's life; /metrics' counter gives any window.
            "cpu_percent": pct(proc.cpu_seconds, uptime.max(0.001)),
            "cpu_seconds": proc.cpu_seconds,
            "srs_uptime": uptime as u64,
        },
        "system": {
            "cpu_percent": pct(sys.cpu_busy_ticks as f64, sys.cpu_total_ticks as f64),
            "cpus": sys.cpus,
            "cpus_online": sys.cpus,
            "uptime": sys.uptime_seconds,
            "load_1m": sys.load_1m,
            "load_5m": sys.load_5m,
            "load_15m": sys.load_15m,
            "mem_ram_kbyte": sys.mem_total_kbyte,
            "mem_ram_percent": pct(mem_used as f64, sys.mem_total_kbyte as f64),
            "mem_swap_kbyte": sys.swap_total_kbyte,
            "mem_swap_percent": pct(sys.swap_total_kbyte.saturating_sub(sys.swap_free_kbyte) as f64, sys.swap_total_kbyte as f64),
            "disk_read_bytes": sys.disk_read_bytes,
            "disk_write_bytes": sys.disk_write_bytes,
            "srs_send_bytes": sent,
            "srs_recv_bytes": received,
            "conn_srs": clients.len(),
        },
        "totals": {
            "streams": streams.len(),
            "streams_live": streams.iter().filter(|s| s.is_live()).count(),
            "clients": clients.len(),
            "clients_by_kind": by_kind,
            "send_bytes": sent,
            "recv_bytes": received,
            "kbps": { "send_30s": kbps.0, "recv_30s": kbps.1 },
        },
    })
}

fn streams(ctx: &Context) -> Vec<Value> {
    let all = ctx.hub.list();
    let keys: Vec<StreamKey> = all.iter().map(|s| s.key.clone()).collect();
    ctx.clients.retain_stream_ids(&keys);
    let usage = ctx.clients.per_stream(&ctx.clients.list());
    all.iter()
        .map(|s| stream_json(ctx, s, usage.get(&s.key).cloned().unwrap_or_default()))
        .collect()
}

/// `{id}` is the numeric id from the list, or `app/stream`.
fn find_stream(ctx: &Context, id: &str) -> Option<Value> {
    let all = ctx.hub.list();
    let stream = match id.parse::<u64>() {
        Ok(n) => all.into_iter().find(|s| ctx.clients.stream_id(&s.key) == n)?,
        Err(_) => {
            let (app, name) = id.rsplit_once('/')?;
            all.into_iter().find(|s| s.key.app == app && s.key.name == name)?
        }
    };
    let usage = ctx
        .clients
        .per_stream(&ctx.clients.list())
        .remove(&stream.key)
        .unwrap_or_default();
    Some(stream_json(ctx, &stream, usage))
}

fn stream_json(ctx: &Context, s: &Stream, u: StreamUsage) -> Value {
    let key = &s.key;
    let id = ctx.clients.stream_id(key);
    let publisher = u.publisher.as_ref();
    let (tc_url, live_ms) = publisher.map_or((String::new(), 0), |p| {
        let role = p.role();
        let tc = role
            .url
            .rsplit_once('/')
            .map_or(String::new(), |(base, _)| base.to_string());
        (tc, role.since_unix_ms)
    });
    let headers = s.headers();
    json!({
        "id": id.to_string(),
        "name": key.name,
        "vhost": DEFAULT_VHOST,
        "app": key.app,
        "tcUrl": tc_url,
        "url": format!("/{}/{}", key.app, key.name),
        "live_ms": live_ms,
        "clients": u.viewers() + usize::from(publisher.is_some()),
        "viewers": { "total": u.viewers(), "rtmp": u.rtmp, "flv": u.flv, "hls": u.hls },
        "frames": s.stats.video_frames.load(std::sync::atomic::Ordering::Relaxed),
        "send_bytes": u.send_bytes,
        "recv_bytes": s.stats.bytes_in.load(std::sync::atomic::Ordering::Relaxed).max(u.recv_bytes),
        "kbps": { "recv_30s": u.recv_kbps, "send_30s": u.send_kbps },
        "publish": {
            "active": s.is_live(),
            "cid": publisher.map(|p| p.id.to_string()),
        },
        "video": video_json(&headers),
        "audio": audio_json(&headers),
    })
}

fn header_of(headers: &[Arc<Packet>], kind: MediaKind) -> Option<&Arc<Packet>> {
    headers.iter().find(|p| p.kind == kind && p.seq_header)
}

/// Codec, profile, level, size and frame rate from the AVC decoder configuration (its SPS);
/// the frame rate falls back to the metadata's `framerate` when the SPS has no timing.
fn video_json(headers: &[Arc<Packet>]) -> Value {
    let Some(h) = header_of(headers, MediaKind::Video) else {
        return Value::Null;
    };
    let Codec::Video(codec) = h.codec else {
        return Value::Null;
    };
    let name = match codec {
        VideoCodec::Avc => "H264",
        VideoCodec::Hevc => "H265",
        VideoCodec::Av1 => "AV1",
        VideoCodec::Vp9 => "VP9",
    };
    let mut v = json!({ "codec": name, "profile": null, "level": null, "width": null, "height": null, "fps": null });
    if codec == VideoCodec::Avc {
        if let Ok(sps) = AvcDecoderConfig::parse(&h.body()).and_then(|c| c.sps_info()) {
            v["profile"] = json!(sps.profile_name());
            v["level"] = json!(sps.level_name());
            v["width"] = json!(sps.width);
            v["height"] = json!(sps.height);
            v["fps"] = json!(sps.frame_rate);
        }
    }
    if v["fps"].is_null() {
        if let Some(fps) = metadata_number(headers, &["framerate", "fps"]) {
            v["fps"] = json!(fps);
        }
    }
    v
}

fn audio_json(headers: &[Arc<Packet>]) -> Value {
    let Some(h) = header_of(headers, MediaKind::Audio) else {
        return Value::Null;
    };
    let Codec::Audio(codec) = h.codec else {
        return Value::Null;
    };
    match codec {
        AudioCodec::Aac => match AudioSpecificConfig::parse(&h.body()) {
            Ok(asc) => json!({
                "codec": "AAC",
                "sample_rate": asc.sampling_frequency,
                "channel": asc.channel_config,
                "profile": match (asc.object_type, asc.sbr, asc.ps) {
                    (_, _, true) | (29, _, _) => "HE-AACv2",
                    (_, true, _) | (5, _, _) => "HE-AAC",
                    (1, _, _) => "Main",
                    (2, _, _) => "LC",
                    _ => "Other",
                },
            }),
            Err(_) => {
                json!({ "codec": "AAC", "sample_rate": null, "channel": null, "profile": null })
            }
        },
        AudioCodec::Opus => {
            json!({ "codec": "Opus", "sample_rate": 48000, "channel": null, "profile": null })
        }
        AudioCodec::Mp3 => {
            json!({ "codec": "MP3", "sample_rate": null, "channel": null, "profile": null })
        }
        AudioCodec::Legacy(id) => {
            json!({ "codec": format!("flv-{id}"), "sample_rate": null, "channel": null, "profile": null })
        }
    }
}

/// The first of `names` that the `onMetaData` object has as a number.
fn metadata_number(headers: &[Arc<Packet>], names: &[&str]) -> Option<f64> {
    use rml_rtmp::rml_amf0::{self, Amf0Value};
    let meta = headers.iter().find(|p| p.kind == MediaKind::Script)?;
    let values = rml_amf0::deserialize(&mut &meta.payload[..]).ok()?;
    let props = values.iter().find_map(|v| match v {
        Amf0Value::Object(p) => Some(p),
        _ => None,
    })?;
    names.iter().find_map(|n| match props.get(*n) {
        Some(Amf0Value::Number(x)) if *x > 0.0 => Some(*x),
        _ => None,
    })
}

fn client_json(ctx: &Context, c: &Client) -> Value {
    let role = c.role();
    let kbps = c.kbps();
    let stream_id = role.key.as_ref().map(|k| ctx.clients.stream_id(k).to_string());
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

/// `{"code":0,"server":…,"service":…,"pid":…,"<field>":value}`
fn ok(ctx: &Context, field: &str, value: Value) -> Response<Body> {
    let mut m = Map::new();
    m.insert("code".into(), json!(0));
    m.insert("server".into(), json!(ctx.identity.server_id));
    m.insert("service".into(), json!(ctx.identity.service_id));
    m.insert("pid".into(), json!(std::process::id().to_string()));
    m.insert(field.into(), value);
    respond(StatusCode::OK, &Value::Object(m))
}

fn error(status: StatusCode, code: u32, message: &str) -> Response<Body> {
    respond(status, &json!({ "code": code, "message": message }))
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        &format!("method not allowed; use {allow}"),
    );
    r.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri("/api/v1/versions");
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn bearer_token() {
        assert!(authorized("", &req(None)));
        assert!(!authorized("s3cret", &req(None)));
        assert!(!authorized("s3cret", &req(Some("Bearer s3cre"))));
        assert!(!authorized("s3cret", &req(Some("Basic s3cret"))));
        assert!(authorized("s3cret", &req(Some("Bearer s3cret"))));
    }

    #[test]
    fn version_numbers() {
        let v = versions();
        assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
        assert!(v["major"].is_u64());
    }
}
