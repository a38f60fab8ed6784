//! HLS of a stream another cluster node owns, fetched from that node (issue 15 item 3).
//!
//! Only the owner packages a stream's HLS; a node that has no source for the stream and
//! finds in Redis that another node owns it answers its viewer with the owner's playlist or
//! segment, fetched over HTTP — it proxies rather than redirects: viewers keep one URL (a
//! load balancer or CDN in front of all nodes needs nothing per node, Apple's authoring spec
//! 8.18 asks for no redirects), and since every node serves the owner's playlist, all viewers
//! see one media sequence whichever node answers (hls.js#1225 stalls when two nodes disagree).
//!
//! The request carries `x-estuary-peer` (`cluster/peer_auth.rs`), so the owner serves it as
//! it is: this node ran the viewer's admission and holds its session. Bounded: the whole
//! fetch (connect, request, body) within `hls.owner_fetch_timeout_ms`, the body at most
//! `hls.max_segment_bytes`; never to this node itself (by id or address), and the owner
//! never fetches onward (a peer request is served from its own store or 404), so no loop.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::warn;

use super::super::response::{text, Body};
use crate::cluster::peer_auth::{self, PEER_HEADER};
use crate::cluster::NodeRecord;
use crate::context::Context;
use crate::stream::StreamKey;

/// What an owner answered with.
pub struct Owned {
    pub body: Bytes,
    pub content_type: Option<HeaderValue>,
    pub cache_control: Option<HeaderValue>,
}

/// Why a fetch from the owner failed.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("http with {0}: {1}")]
    Http(String, hyper::Error),
    #[error("answer body from {0}: {1}")]
    Body(String, String),
    #[error("no answer from {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("{0} answered status {1}")]
    Status(String, StatusCode),
    #[error("node {0} publishes no peer key")]
    NoPeerKey(String),
}

/// `path` (a playlist or segment of `key`, as requested of this node) from the stream's
/// owner: `Ok(None)` when this node should answer from its own store (no cluster, no owner,
/// or the owner is this node) or the owner has no such file; `Err` is the answer to send when
/// the owner could not be asked (502). A stream this node pulls as an edge of its owner (for
/// its RTMP and HTTP-FLV viewers) is still the owner's to package: its HLS comes from there.
pub async fn fetch(
    ctx: &Context,
    key: &StreamKey,
    path: &str,
    kind: &'static str,
) -> Result<Option<Owned>, Response<Body>> {
    let Some(cluster) = &ctx.cluster else { return Ok(None) };
    let owner = match cluster.owner(key).await {
        Ok(Some(owner)) if !cluster.is_self(&owner) => owner,
        Ok(_) => return Ok(None),
        Err(e) => {
            count(kind, "failed");
            warn!(stream = %key, cause = %e, "hls: cannot find the stream's owner");
            return Err(text(StatusCode::BAD_GATEWAY, "cluster directory unreachable\n"));
        }
    };
    let config = &ctx.config.hls;
    let timeout = Duration::from_millis(config.owner_fetch_timeout_ms);
    // The connection's task is ended however the fetch ends, a timeout included.
    let mut connection = None;
    let fetched = tokio::time::timeout(timeout, get(&owner, path, config.max_segment_bytes, &mut connection))
        .await
        .unwrap_or_else(|_| Err(FetchError::Timeout(owner.http.clone(), timeout)));
    if let Some(task) = connection {
        task.abort();
    }
    match fetched {
        Ok(owned) => {
            count(kind, "ok");
            Ok(Some(owned))
        }
        Err(FetchError::Status(_, StatusCode::NOT_FOUND)) => {
            count(kind, "not_found");
            Ok(None)
        }
        Err(e) => {
            count(kind, "failed");
            warn!(stream = %key, owner = %owner.node_id, cause = %e, "hls: fetch from the stream's owner failed");
            Err(text(StatusCode::BAD_GATEWAY, "the stream's owner did not answer\n"))
        }
    }
}

fn count(kind: &'static str, result: &'static str) {
    metrics::counter!(crate::metrics::HLS_OWNER_FETCHES_TOTAL, "kind" => kind, "result" => result).increment(1);
}

/// One `GET` of `path` from `owner`, signed as a peer's, on a connection of its own.
async fn get(
    owner: &NodeRecord,
    path: &str,
    max_bytes: usize,
    connection: &mut Option<tokio::task::JoinHandle<()>>,
) -> Result<Owned, FetchError> {
    let addr = owner.http.as_str();
    let signature =
        peer_auth::sign(&owner.peer_key, path).ok_or_else(|| FetchError::NoPeerKey(owner.node_id.clone()))?;
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| FetchError::Connect(addr.to_string(), e))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| FetchError::Http(addr.to_string(), e))?;
    *connection = Some(tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(cause = %e, "hls owner connection ended");
        }
    }));
    let request = Request::get(path)
        .header(HOST, addr)
        .header(PEER_HEADER, signature)
        .body(Empty::<Bytes>::new());
    let request = request.map_err(|e| FetchError::Body(addr.to_string(), e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| FetchError::Http(addr.to_string(), e))?;
    if response.status() != StatusCode::OK {
        return Err(FetchError::Status(addr.to_string(), response.status()));
    }
    let headers = response.headers();
    let content_type = headers.get(CONTENT_TYPE).cloned();
    let cache_control = headers.get(CACHE_CONTROL).cloned();
    let body = Limited::new(response.into_body(), max_bytes)
        .collect()
        .await
        .map_err(|e| FetchError::Body(addr.to_string(), e.to_string()))?
        .to_bytes();
    Ok(Owned {
        body,
        content_type,
        cache_control,
    })
}
