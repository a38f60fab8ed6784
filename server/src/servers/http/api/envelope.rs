//! SRS's answer envelope: `{"code":0,"server":…,"service":…,"pid":…,"<field>":value}`, and
//! errors as `{"code":N,"message":"…"}` with an HTTP status that says the same.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::super::response::Body;
use crate::context::Context;

/// SRS `ERROR_RTMP_STREAM_NOT_FOUND`.
pub const CODE_STREAM_NOT_FOUND: u32 = 2048;
/// SRS `ERROR_RTMP_CLIENT_NOT_FOUND`.
pub const CODE_CLIENT_NOT_FOUND: u32 = 2049;
/// SRS `ERROR_RTMP_VHOST_NOT_FOUND`.
pub const CODE_VHOST_NOT_FOUND: u32 = 2014;

/// Marks an answer that is one of SRS's own errors (`srs_api_response_code`): a 404 here,
/// HTTP 200 with `api.srs_compat`, as SRS answers it (see `srs_compat.rs`).
#[derive(Debug, Clone, Copy)]
pub struct SrsError;

/// `{"code":0,"server":…,"service":…,"pid":…,"<field>":value}`
pub fn ok(ctx: &Context, field: &str, value: Value) -> Response<Body> {
    ok_with(ctx, vec![(field, value)])
}

/// The envelope with several fields (a list and its paging, say).
pub fn ok_with(ctx: &Context, fields: Vec<(&str, Value)>) -> Response<Body> {
    let mut m = Map::new();
    m.insert("code".into(), json!(0));
    m.insert("server".into(), json!(ctx.identity.server_id));
    m.insert("service".into(), json!(ctx.identity.service_id));
    m.insert("pid".into(), json!(std::process::id().to_string()));
    for (field, value) in fields {
        m.insert(field.into(), value);
    }
    respond(StatusCode::OK, &Value::Object(m))
}

pub fn error(status: StatusCode, code: u32, message: &str) -> Response<Body> {
    respond(status, &json!({ "code": code, "message": message }))
}

/// SRS's "not found" error `code` (2048 stream, 2049 client, 2014 vhost): 404 with the code.
pub fn srs_not_found(code: u32, message: &str) -> Response<Body> {
    let mut r = error(StatusCode::NOT_FOUND, code, message);
    r.extensions_mut().insert(SrsError);
    r
}

pub fn not_allowed(allow: &'static str) -> Response<Body> {
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
