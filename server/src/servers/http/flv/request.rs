//! Letting an HTTP-FLV viewer in, whether hyper or the socket path read its request: the
//! play admission, a subscription, and a bounded wait for the publisher.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;

use super::super::urls::{player_tc_url, request_url, split_stream_path};
use crate::admission::{HttpOrigin, Refusal, Request};
use crate::clients::{ClientGuard, ClientKind, Introduction, Role};
use crate::context::Context;
use crate::hooks::HookSubject;
use crate::hooks::{ClientInfo, StreamInfo};
use crate::path::viewer::Viewer;
use crate::stream::{StreamKey, Subscriber};

/// What an HTTP-FLV request asks for, from hyper's request or from the raw request head.
pub struct FlvRequest<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: &'a str,
    /// `Origin` and `Referer` (the referer allow-list).
    pub origin: Option<&'a str>,
    pub referer: Option<&'a str>,
}

/// A viewer let in: admitted, subscribed, the publisher live.
pub struct Admitted {
    pub key: StreamKey,
    pub viewer: Viewer,
    pub subscriber: Subscriber,
    client_id: u64,
}

/// Admits the viewer, subscribes and waits (bounded) for a publisher; the refusal is the
/// status and body to answer with.
pub async fn admit(
    ctx: &Arc<Context>,
    req: &FlvRequest<'_>,
    peer: SocketAddr,
) -> Result<Admitted, (StatusCode, &'static str)> {
    let Some((app, name)) = split_stream_path(req.path, ".flv") else {
        return Err((StatusCode::NOT_FOUND, "not found\n"));
    };
    let key = StreamKey::new(app, name);
    let client_id = ctx.next_conn_id();
    let request = request(req, &key, client_id, peer);
    // Boxed: the hook call's future lives only during admission; a viewer's future stays small.
    let viewer = match Box::pin(ctx.admission.play(request)).await {
        Ok(viewer) => viewer,
        Err(Refusal::BadName(_)) => return Err((StatusCode::NOT_FOUND, "not found\n")),
        // A limit is "later", not "never" (and a 429 is not cached by a CDN).
        Err(r) if r.is_limit() => return Err((StatusCode::TOO_MANY_REQUESTS, "too many viewers\n")),
        Err(_) => return Err((StatusCode::FORBIDDEN, "forbidden\n")),
    };
    // Subscribe before waiting, so nothing the publisher sends first is missed.
    let subscriber = viewer.subscribe(&ctx.config.play);
    let wait = Duration::from_millis(ctx.config.play.wait_for_publisher_ms);
    if !subscriber.stream().is_live() && !subscriber.stream().wait_live(wait).await {
        crate::metrics::rejected("http_flv", "not_found");
        return Err((StatusCode::NOT_FOUND, "stream not found\n"));
    }
    Ok(Admitted {
        key,
        viewer,
        subscriber,
        client_id,
    })
}

/// What the admission needs to know of this viewer.
fn request(req: &FlvRequest<'_>, key: &StreamKey, client_id: u64, peer: SocketAddr) -> Request {
    let mut client = ClientInfo::new(client_id.to_string(), peer.ip().to_string(), key.app.clone());
    client.tc_url = player_tc_url(req.host, &key.app);
    let stream = StreamInfo {
        stream: key.name.clone(),
        param: req.query.map_or(String::new(), |q| format!("?{q}")),
        // Set by the admission: the path's id, the API's stream id.
        stream_id: String::new(),
    };
    Request {
        key: key.clone(),
        subject: HookSubject { client, stream },
        protocol: "http_flv",
        peer: peer.ip(),
        credentials: req.query.unwrap_or_default().to_string(),
        http: Some(HttpOrigin {
            origin: req.origin.map(str::to_string),
            referer: req.referer.map(str::to_string),
        }),
    }
}

/// Whether a `HEAD` may learn if the stream is live: the credentials of a play (access
/// list, signed URL), and nothing else asked.
pub fn may_look(ctx: &Context, req: &FlvRequest<'_>, peer: SocketAddr) -> bool {
    let Some((app, name)) = split_stream_path(req.path, ".flv") else {
        return false;
    };
    let key = StreamKey::new(app, name);
    ctx.admission
        .credentials(&request(req, &key, 0, peer), crate::admission::Action::Play)
        .is_ok()
}

impl Admitted {
    /// Registers the viewer in the client registry (API, kick).
    pub fn register(&self, ctx: &Context, req: &FlvRequest<'_>, peer: SocketAddr) -> ClientGuard {
        tracing::info!(stream = %self.key, "http-flv play started");
        let client = ctx.clients.register(
            self.client_id,
            peer.ip().to_string(),
            Role::new(
                ClientKind::FlvPlay,
                Some(self.key.clone()),
                request_url(
                    req.host,
                    req.path,
                    &ctx.admission.shown_query(&self.key.app, req.query.unwrap_or_default()),
                ),
            ),
            // Cancelled by a kick, or by shutdown.
            ctx.shutdown.child_token(),
        );
        client.introduce(Introduction::http(req.host, &self.key.app, req.referer));
        client
    }
}

/// Whether `path` names a stream that is live now (a `HEAD`: no hook, no wait).
pub fn is_live(ctx: &Context, path: &str) -> bool {
    split_stream_path(path, ".flv")
        .and_then(|(app, name)| ctx.paths.get(&StreamKey::new(app, name)))
        .is_some_and(|p| p.is_live())
}
