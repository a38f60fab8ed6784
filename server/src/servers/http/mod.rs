//! The HTTP server (hyper, HTTP/1.1): HTTP-FLV, HLS, health, API and metrics on one port.
//!
//! A connection whose first request is a live `.flv` GET is served on the socket itself
//! (`flv/socket.rs`); every other connection goes through hyper and [`route`].

mod api;
mod control;
mod flv;
mod hls;
mod metrics;
mod response;
mod urls;
mod vod;

/// For the fuzz target (`crate::fuzzing`).
pub(crate) use flv::read_request_for_fuzzing;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;
use tracing::{debug, warn};

use crate::context::Context;
use control::{Plane, Surface};
use response::{preflight, text, Body};

/// Accepts HTTP connections on the public port until shutdown.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    super::listener::accept_loop(listener, ctx, "http", |ctx, socket, peer, _id| {
        serve_connection(ctx, socket, peer, Surface::Public)
    })
    .await;
}

/// Accepts connections on `api.listen` (the API and `/metrics` alone) until shutdown.
pub async fn serve_control(listener: TcpListener, ctx: Arc<Context>) {
    super::listener::accept_loop(listener, ctx, "api", |ctx, socket, peer, _id| {
        serve_connection(ctx, socket, peer, Surface::Control)
    })
    .await;
}

async fn serve_connection(ctx: Arc<Context>, socket: tokio::net::TcpStream, peer: SocketAddr, surface: Surface) {
    // A connection that opens with a live FLV request is served on the socket itself.
    let header_timeout = Duration::from_millis(ctx.config.http.header_timeout_ms);
    let mut first = [0u8; 512];
    match tokio::time::timeout(header_timeout, socket.peek(&mut first)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
        Ok(Ok(n)) if surface == Surface::Public && flv::is_live_flv_request(&first[..n]) => {
            return flv::serve_socket(ctx, socket, peer).await;
        }
        Ok(Ok(_)) => {}
    }
    // A client whose socket accepts nothing for this long is cut off (slow-viewer policy):
    // the write deadline of every response, HTTP-FLV bodies through hyper included.
    let slow = Duration::from_millis(ctx.config.play.slow_disconnect_ms);
    let mut io = TimeoutStream::new(socket);
    io.set_write_timeout(Some(slow));
    let io = TokioIo::new(Box::pin(io));
    let service_ctx = Arc::clone(&ctx);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&service_ctx);
        async move { Ok::<_, Infallible>(route(ctx, req, peer, surface).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .header_read_timeout(header_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => match result {
            Err(e) if is_write_timeout(&e) => {
                crate::metrics::timed_out("http", "write");
                warn!(
                    slow_disconnect_ms = slow.as_millis() as u64,
                    "http connection closed: the client accepted no bytes for play.slow_disconnect_ms (it stopped reading)"
                );
            }
            Err(e) => debug!(cause = %e, "http connection ended"),
            Ok(()) => {}
        },
        _ = ctx.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// Whether hyper ended the connection because a write timed out (`TimeoutStream`).
fn is_write_timeout(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

async fn route(ctx: Arc<Context>, req: Request<Incoming>, peer: SocketAddr, surface: Surface) -> Response<Body> {
    let path = req.uri().path().to_string();
    let plane = if path == "/api" || path.starts_with("/api/") {
        Some(Plane::Api)
    } else if path == "/metrics" {
        Some(Plane::Metrics)
    } else {
        None
    };
    if let Some(plane) = plane {
        return control_plane(&ctx, req, peer, surface, plane).await;
    }
    if surface == Surface::Control && path != "/healthz" && path != "/readyz" {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let mut response = answer(&ctx, req, peer, &path).await;
    if !ctx.config.http.cors_allow_origin.is_empty() {
        if let Ok(origin) = HeaderValue::from_str(&ctx.config.http.cors_allow_origin) {
            response.headers_mut().insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
    }
    response
}

/// The API and `/metrics`, behind the control plane's gate (`control.rs`).
async fn control_plane(
    ctx: &Arc<Context>,
    req: Request<Incoming>,
    peer: SocketAddr,
    surface: Surface,
    plane: Plane,
) -> Response<Body> {
    let request_headers = req.headers().clone();
    let mut response = if req.method() == Method::OPTIONS && plane == Plane::Api {
        // A preflight carries no credentials; it gets CORS headers and nothing else.
        preflight()
    } else {
        match control::admit(
            &ctx.config.api,
            plane,
            surface,
            peer.ip(),
            req.headers(),
            req.uri().query(),
        ) {
            Err(refused) => {
                crate::metrics::rejected("api", refused.reason());
                refused.response(plane)
            }
            Ok(()) => match plane {
                Plane::Api => api::serve(ctx, req).await,
                Plane::Metrics => metrics::serve(ctx),
            },
        }
    };
    control::cors(&ctx.config.api, &request_headers, &mut response);
    response
}

/// Everything but the API.
async fn answer(ctx: &Arc<Context>, req: Request<Incoming>, peer: SocketAddr, path: &str) -> Response<Body> {
    match (req.method(), path) {
        (&Method::OPTIONS, _) => preflight(),
        (&Method::GET | &Method::HEAD, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET | &Method::HEAD, "/readyz") => {
            if ctx.ready.load(std::sync::atomic::Ordering::Relaxed) && !ctx.shutdown.is_cancelled() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        (&Method::GET | &Method::HEAD, p) if vod::matches(p) => vod::serve(ctx, &req).await,
        (&Method::GET | &Method::HEAD, p) if p.ends_with(".flv") => flv::serve(ctx, &req, peer).await,
        (&Method::GET | &Method::HEAD, p) if hls::matches(p) => hls::serve(ctx, &req, peer).await,
        (&Method::GET | &Method::HEAD, _) => text(StatusCode::NOT_FOUND, "not found\n"),
        _ => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}
