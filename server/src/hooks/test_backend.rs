//! A hook backend for tests: a hyper HTTP/1 server on 127.0.0.1 that records every request
//! and answers with a programmable reply. It can be stopped and restarted on the same port.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

/// One request as the backend saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub body: Value,
}

/// What the backend answers.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }
}

type Responder = dyn Fn(&Received) -> Reply + Send + Sync;

struct State {
    received: Mutex<Vec<Received>>,
    responder: Box<Responder>,
    connections: AtomicUsize,
}

pub struct Backend {
    pub addr: SocketAddr,
    state: Arc<State>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl Backend {
    pub async fn start(responder: impl Fn(&Received) -> Reply + Send + Sync + 'static) -> Self {
        let state = Arc::new(State {
            received: Mutex::new(Vec::new()),
            responder: Box::new(responder),
            connections: AtomicUsize::new(0),
        });
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let (addr, server) = serve(addr, state.clone());
        Self {
            addr,
            state,
            server: Mutex::new(Some(server)),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Closes the listener and every open connection.
    pub fn stop(&self) {
        if let Some(h) = self.server.lock().expect("test lock").take() {
            h.abort();
        }
    }

    /// Listens again on the same port.
    pub fn restart(&self) {
        let (_, server) = serve(self.addr, self.state.clone());
        *self.server.lock().expect("test lock") = Some(server);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("test lock").clone()
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests arrived (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "backend got {} of {n} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(addr: SocketAddr, state: Arc<State>) -> (SocketAddr, JoinHandle<()>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket.bind(addr).expect("bind test backend");
    let listener = socket.listen(128).expect("listen");
    let addr = listener.local_addr().expect("local addr");
    let server = tokio::spawn(async move {
        // Dropping the set (when this task is aborted) closes every connection.
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            state.connections.fetch_add(1, Ordering::SeqCst);
            let state = state.clone();
            conns.spawn(async move {
                let svc = service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, server)
}

async fn handle(state: Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = req.into_body().collect().await?.to_bytes();
    let received = Received {
        path,
        content_type,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    let reply = (state.responder)(&received);
    state.received.lock().expect("test lock").push(received);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("test status");
    Ok(resp)
}
