//! The HTTP/1.1 client that posts hook bodies, and the SRS answer rule.
//!
//! hyper's low-level `client::conn::http1` with a small keep-alive pool per `host:port`
//! (the workspace's `hyper-util` is built without its `client-legacy` feature).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::config::HookUrl;

/// Largest response body read; a longer one is a rejection.
pub(crate) const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Idle connections kept per `host:port`.
const MAX_IDLE_PER_HOST: usize = 8;

/// How one HTTP call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Status 200/201 and body `0` or `{"code":0,...}`.
    Accepted,
    /// A definite "no": any other status below 500 (except 429) or any other body.
    Rejected(String),
    /// 5xx or 429: the backend is there but failing; notifications retry.
    ServerError(String),
    /// Connection refused, reset, DNS failure or timeout.
    Unreachable(String),
}

impl Outcome {
    /// The `result` label of `estuary_hook_calls_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected(_) => "rejected",
            Self::ServerError(_) => "server_error",
            Self::Unreachable(_) => "unreachable",
        }
    }
}

type Sender = SendRequest<Full<Bytes>>;

/// Posts JSON bodies, reusing connections.
#[derive(Default)]
pub(crate) struct HttpClient {
    idle: Mutex<HashMap<String, Vec<Sender>>>,
}

impl HttpClient {
    /// Posts `body` to `url`, everything (connect, request, body read) within `timeout`.
    pub async fn post(&self, url: &HookUrl, body: Bytes, timeout: Duration) -> Outcome {
        match tokio::time::timeout(timeout, self.post_inner(url, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Unreachable(format!("timed out after {} ms", timeout.as_millis())),
        }
    }

    async fn post_inner(&self, url: &HookUrl, body: Bytes) -> Outcome {
        // A pooled connection may have been closed by the server while idle; if sending on
        // it fails, try once more on a fresh connection.
        if let Some(sender) = self.take_idle(&url.addr) {
            match self.send(sender, url, body.clone()).await {
                Ok(answer) => return answer,
                Err(e) => {
                    tracing::debug!(url = %url.shown, cause = %e, "pooled hook connection failed, reconnecting")
                }
            }
        }
        let sender = match connect(&url.addr).await {
            Ok(s) => s,
            Err(reason) => return Outcome::Unreachable(reason),
        };
        match self.send(sender, url, body).await {
            Ok(answer) => answer,
            Err(e) => Outcome::Unreachable(e.to_string()),
        }
    }

    async fn send(&self, mut sender: Sender, url: &HookUrl, body: Bytes) -> Result<Outcome, hyper::Error> {
        sender.ready().await?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(url.path_and_query.as_str())
            .header(HOST, url.host_header.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("estuary/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body));
        let req = match req {
            Ok(r) => r,
            // The parts were validated when the config was loaded.
            Err(e) => return Ok(Outcome::Rejected(format!("cannot build request: {e}"))),
        };
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = match Limited::new(resp.into_body(), MAX_RESPONSE_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    return Ok(Outcome::Rejected(format!(
                        "status {}, body longer than {MAX_RESPONSE_BODY} bytes",
                        status.as_u16()
                    )));
                }
                return Ok(Outcome::Unreachable(format!("reading response body: {e}")));
            }
        };
        self.put_idle(&url.addr, sender);
        Ok(judge(status, &body))
    }

    fn take_idle(&self, addr: &str) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.get_mut(addr)?;
        while let Some(s) = list.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put_idle(&self, addr: &str, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let list = idle.entry(addr.to_owned()).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < MAX_IDLE_PER_HOST {
            list.push(sender);
        }
    }
}

async fn connect(addr: &str) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    // Small JSON requests: do not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http handshake with {addr}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(cause = %e, "hook connection ended");
        }
    });
    Ok(sender)
}

/// The SRS answer rule: allowed only if the status is 200 or 201 and the body is `0` or a
/// JSON object whose `code` is the integer 0.
pub(crate) fn judge(status: StatusCode, body: &[u8]) -> Outcome {
    let code = status.as_u16();
    if code != 200 && code != 201 {
        let reason = format!("status {code}");
        return if status.is_server_error() || code == 429 {
            Outcome::ServerError(reason)
        } else {
            Outcome::Rejected(reason)
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text == "0" {
        return Outcome::Accepted;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => match o.get("code") {
            Some(c) if c.as_i64() == Some(0) || c.as_u64() == Some(0) => Outcome::Accepted,
            Some(c) => Outcome::Rejected(format!("status {code}, code {c}")),
            None => Outcome::Rejected(format!("status {code}, json body without code")),
        },
        _ => Outcome::Rejected(format!("status {code}, body {:?}", snippet(text))),
    }
}

fn snippet(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_rule() {
        let ok = StatusCode::OK;
        assert_eq!(judge(ok, b"0"), Outcome::Accepted);
        assert_eq!(judge(ok, b" 0\r\n"), Outcome::Accepted);
        assert_eq!(judge(StatusCode::CREATED, br#"{"code":0,"data":1}"#), Outcome::Accepted);
        assert!(matches!(judge(ok, br#"{"code":1}"#), Outcome::Rejected(_)));
        assert!(matches!(judge(ok, br#"{"code":0.5}"#), Outcome::Rejected(_)));
        assert!(matches!(judge(ok, br#"{"code":"0"}"#), Outcome::Rejected(_)));
        assert!(matches!(judge(ok, b""), Outcome::Rejected(_)));
        assert!(matches!(judge(ok, b"ok"), Outcome::Rejected(_)));
        assert!(matches!(judge(ok, b"[0]"), Outcome::Rejected(_)));
        assert!(matches!(
            judge(StatusCode::UNAUTHORIZED, br#"{"code":0}"#),
            Outcome::Rejected(_)
        ));
        assert!(matches!(judge(StatusCode::NO_CONTENT, b"0"), Outcome::Rejected(_)));
        assert!(matches!(judge(StatusCode::BAD_GATEWAY, b"0"), Outcome::ServerError(_)));
        assert!(matches!(
            judge(StatusCode::TOO_MANY_REQUESTS, b""),
            Outcome::ServerError(_)
        ));
    }

    #[test]
    fn snippet_is_bounded() {
        assert_eq!(snippet("abc"), "abc");
        assert_eq!(snippet(&"é".repeat(100)).chars().count(), 83);
    }
}
