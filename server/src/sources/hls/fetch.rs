//! The HTTP/1.1 GETs of an HLS pull: hyper's low-level client (as the hooks use it), one
//! kept-alive connection per `host:port`, every fetch under a deadline and a byte cap.
//! Plain `http://` only; an `https://` source is refused when it is configured.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HOST, USER_AGENT};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("bad url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("{url}: cannot connect: {why}")]
    Connect { url: String, why: String },
    #[error("{url}: {why}")]
    Http { url: String, why: String },
    #[error("{url}: status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: longer than {cap} bytes")]
    TooLong { url: String, cap: usize },
    #[error("{url}: no answer within {ms} ms")]
    Timeout { url: String, ms: u64 },
}

impl FetchError {
    /// The server answered 404 or 410: the resource is not (or no longer) there.
    pub fn is_gone(&self) -> bool {
        matches!(self, FetchError::Status { status: 404 | 410, .. })
    }
}

/// An `http://host[:port]/path?query` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` to connect to.
    pub addr: String,
    /// The `Host` header.
    pub host: String,
    /// `/path?query`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, FetchError> {
        let bad = |why: &str| FetchError::BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// is supported"))?;
        let (host, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host, or credentials in the url"));
        }
        let addr = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(HttpUrl {
            addr,
            host: host.to_owned(),
            path,
        })
    }

    /// Resolves a playlist's reference (absolute URL, absolute path or relative path)
    /// against this URL.
    pub fn join(&self, reference: &str) -> Result<HttpUrl, FetchError> {
        if reference.contains("://") {
            return HttpUrl::parse(reference);
        }
        let path = if reference.starts_with('/') {
            reference.to_owned()
        } else {
            let without_query = self.path.split('?').next().unwrap_or("/");
            let dir = &without_query[..without_query.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{reference}")
        };
        Ok(HttpUrl {
            addr: self.addr.clone(),
            host: self.host.clone(),
            path,
        })
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The query may carry a token: it is not shown.
        let path = self.path.split('?').next().unwrap_or("");
        write!(f, "http://{}{}", self.host, path)
    }
}

type Sender = SendRequest<Empty<Bytes>>;

/// GETs with kept-alive connections.
pub struct Fetcher {
    idle: HashMap<String, Sender>,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Fetcher {
        Fetcher {
            idle: HashMap::new(),
            timeout,
        }
    }

    /// The body of `url`, at most `cap` bytes, all within the fetch deadline.
    pub async fn get(&mut self, url: &HttpUrl, cap: usize) -> Result<Bytes, FetchError> {
        let ms = self.timeout.as_millis() as u64;
        match tokio::time::timeout(self.timeout, self.get_inner(url, cap)).await {
            Ok(result) => result,
            Err(_) => {
                self.idle.remove(&url.addr);
                Err(FetchError::Timeout {
                    url: url.to_string(),
                    ms,
                })
            }
        }
    }

    async fn get_inner(&mut self, url: &HttpUrl, cap: usize) -> Result<Bytes, FetchError> {
        // A kept connection the server closed while idle fails at once: retry on a new one.
        if let Some(sender) = self.idle.remove(&url.addr).filter(|s| !s.is_closed()) {
            match self.send(sender, url, cap).await {
                Ok(body) => return Ok(body),
                Err(Retry::No(e)) => return Err(e),
                Err(Retry::Yes(e)) => tracing::debug!(cause = %e, "kept connection failed; reconnecting"),
            }
        }
        let sender = connect(url).await?;
        match self.send(sender, url, cap).await {
            Ok(body) => Ok(body),
            Err(Retry::No(e) | Retry::Yes(e)) => Err(e),
        }
    }

    async fn send(&mut self, mut sender: Sender, url: &HttpUrl, cap: usize) -> Result<Bytes, Retry> {
        let http = |why: String| FetchError::Http {
            url: url.to_string(),
            why,
        };
        sender.ready().await.map_err(|e| Retry::Yes(http(e.to_string())))?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.path.as_str())
            .header(HOST, url.host.as_str())
            .header(USER_AGENT, concat!("estuary/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| Retry::No(http(e.to_string())))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Retry::Yes(http(e.to_string())))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), cap).collect().await;
        let body = match body {
            Ok(b) => b.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return Err(Retry::No(FetchError::TooLong {
                    url: url.to_string(),
                    cap,
                }))
            }
            Err(e) => return Err(Retry::No(http(e.to_string()))),
        };
        self.idle.insert(url.addr.clone(), sender);
        if status != 200 {
            return Err(Retry::No(FetchError::Status {
                url: url.to_string(),
                status,
            }));
        }
        Ok(body)
    }
}

enum Retry {
    Yes(FetchError),
    No(FetchError),
}

async fn connect(url: &HttpUrl) -> Result<Sender, FetchError> {
    let fail = |why: String| FetchError::Connect {
        url: url.to_string(),
        why,
    };
    let stream = TcpStream::connect(&url.addr).await.map_err(|e| fail(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| fail(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(cause = %e, "hls source connection ended");
        }
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_references_resolved() {
        let base = HttpUrl::parse("http://cdn.example:8080/live/cam/index.m3u8?token=s").unwrap();
        assert_eq!(
            (base.addr.as_str(), base.host.as_str()),
            ("cdn.example:8080", "cdn.example:8080")
        );
        assert_eq!(base.join("seg-1.ts").unwrap().path, "/live/cam/seg-1.ts");
        assert_eq!(base.join("/other/seg.ts").unwrap().path, "/other/seg.ts");
        let abs = base.join("http://other.example/a.ts").unwrap();
        assert_eq!((abs.addr.as_str(), abs.path.as_str()), ("other.example:80", "/a.ts"));
        assert_eq!(base.to_string(), "http://cdn.example:8080/live/cam/index.m3u8");
        assert!(HttpUrl::parse("https://x/a.m3u8").is_err());
        assert!(HttpUrl::parse("http:///a.m3u8").is_err());
    }
}
