//! The pieces every HTTP answer is made of: the body type, plain-text answers, CORS.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

pub type Body = BoxBody<Bytes, Infallible>;

/// A plain-text answer.
pub fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// A `429 Too Many Requests` for a client refused by a limit (viewers, HLS sessions): not
/// stored by caches (RFC 6585), unlike a 403 a CDN may keep and hand to every viewer, and a
/// player may try again later.
pub fn too_many(body: &'static str) -> Response<Body> {
    let mut r = text(StatusCode::TOO_MANY_REQUESTS, body);
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("10"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A `200` of `body` with its type and caching; for `HEAD`, the headers alone.
pub fn bytes(body: Bytes, content_type: &'static str, cache: &'static str, head: bool) -> Response<Body> {
    let len = body.len();
    let mut response = if head {
        Response::new(Empty::new().boxed())
    } else {
        Response::new(Full::new(body).boxed())
    };
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// The answer to a CORS preflight (`OPTIONS`).
pub fn preflight() -> Response<Body> {
    let mut r = text(StatusCode::NO_CONTENT, "");
    let h = r.headers_mut();
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS"),
    );
    // `*` does not cover Authorization (Fetch standard), which the API's token needs.
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("*, Authorization, Content-Type"),
    );
    h.insert("access-control-max-age", HeaderValue::from_static("86400"));
    r
}

/// The `Access-Control-Allow-Origin` header line for answers written by hand (HTTP-FLV on
/// the socket), or nothing when `http.cors_allow_origin` is empty or unusable.
pub fn cors_line(origin: &str) -> String {
    if origin.is_empty() || origin.contains(['\r', '\n']) {
        String::new()
    } else {
        format!("Access-Control-Allow-Origin: {origin}\r\n")
    }
}
