//! The hook receiver: a real HTTP/1.1 backend on 127.0.0.1 that accepts every SRS callback
//! (`{"code":0}`) and counts what it accepted by action and client id, and that can be taken
//! down (its port closed: connection refused, as a backend being restarted) and brought back
//! on the same port.
//!
//! An event is counted only once its answer was written: a request cut short by going down
//! is neither answered nor counted, so the server (which then sees the backend unreachable)
//! and the receiver agree on what was delivered. Going down never cuts a request in the
//! middle; it closes the listener and every idle keep-alive connection.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Largest request head or body accepted.
const MAX_REQUEST: usize = 256 * 1024;
/// An idle keep-alive connection is closed after this long (nginx's default is 75 s; short
/// here so the server's pooled connections come and go during the run).
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(2);
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{\"code\":0}";

/// What the receiver accepted: per action, per client id, how many times.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub events: BTreeMap<String, HashMap<String, u32>>,
    /// Requests that were not a hook body (no `action` or `client_id`).
    pub malformed: u64,
}

impl Tally {
    /// Accepted calls of `action` (duplicates included).
    pub fn count(&self, action: &str) -> u64 {
        self.events
            .get(action)
            .map_or(0, |m| m.values().map(|n| u64::from(*n)).sum())
    }

    /// Client ids with at least one `action`.
    pub fn ids(&self, action: &str) -> Vec<&str> {
        self.events
            .get(action)
            .map_or_else(Vec::new, |m| m.keys().map(String::as_str).collect())
    }

    fn has(&self, action: &str, id: &str) -> bool {
        self.events.get(action).is_some_and(|m| m.contains_key(id))
    }

    /// Ids with a `first` but no `then` (e.g. an `on_publish` without its `on_unpublish`),
    /// sorted.
    pub fn unmatched(&self, first: &str, then: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .ids(first)
            .into_iter()
            .filter(|id| !self.has(then, id))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// Events received more than once for the same client (delivery is at-least-once).
    pub fn duplicates(&self) -> u64 {
        self.events
            .values()
            .flat_map(|m| m.values())
            .map(|n| u64::from(n.saturating_sub(1)))
            .sum()
    }

    /// Per action: accepted calls.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.events.keys().map(|a| (a.clone(), self.count(a))).collect()
    }
}

/// Outages as the receiver saw them.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Outages {
    pub count: u32,
    pub down_secs: f64,
}

/// The receiver's handle: its port, the tally, and the switch.
#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    tally: Rc<RefCell<Tally>>,
    up: Rc<watch::Sender<bool>>,
}

impl Receiver {
    /// Binds a free port on 127.0.0.1 and starts serving (call inside a `LocalSet`).
    pub async fn start() -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (up, _) = watch::channel(true);
        let r = Receiver {
            port,
            tally: Rc::default(),
            up: Rc::new(up),
        };
        tokio::task::spawn_local(serve(listener, port, r.tally.clone(), r.up.subscribe()));
        Ok(r)
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Closes the port (and idle connections) or opens it again.
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    pub fn tally(&self) -> Tally {
        self.tally.borrow().clone()
    }
}

/// Accepts while up; while down the port is closed.
async fn serve(first: TcpListener, port: u16, tally: Rc<RefCell<Tally>>, mut up: watch::Receiver<bool>) {
    let mut listener = Some(first);
    loop {
        let Some(l) = listener.take() else {
            // Down: wait to come back, then bind the same port again (retrying while the
            // kernel still holds it).
            while !*up.borrow_and_update() {
                if up.changed().await.is_err() {
                    return;
                }
            }
            loop {
                match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    tokio::task::spawn_local(connection(stream, tally.clone(), up.clone()));
                }
                listener = Some(l);
            }
            changed = up.changed() => {
                if changed.is_err() {
                    return;
                }
                if *up.borrow_and_update() {
                    listener = Some(l);
                }
                // else: dropping `l` closes the port.
            }
        }
    }
}

/// One keep-alive connection: requests answered and counted one at a time.
async fn connection(mut stream: TcpStream, tally: Rc<RefCell<Tally>>, mut up: watch::Receiver<bool>) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // A whole request, or close when idle (and down, or idle too long).
        let request = loop {
            if let Some(len) = request_len(&buf) {
                match len {
                    Ok(n) => break buf.drain(..n).collect::<Vec<u8>>(),
                    Err(()) => return,
                }
            }
            if buf.is_empty() && !*up.borrow_and_update() {
                return;
            }
            let mut chunk = [0u8; 4096];
            tokio::select! {
                read = stream.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                },
                _ = up.changed(), if buf.is_empty() => {}
                () = tokio::time::sleep(KEEP_ALIVE_IDLE), if buf.is_empty() => return,
            }
        };
        if stream.write_all(ANSWER).await.is_err() {
            return;
        }
        record(&request, &tally);
    }
}

/// Length of the first complete request in `buf`: `None` if incomplete, `Err` if unusable.
fn request_len(buf: &[u8]) -> Option<Result<usize, ()>> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (buf.len() > MAX_REQUEST).then_some(Err(()));
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut body_len = 0usize;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                match value.trim().parse() {
                    Ok(n) if n <= MAX_REQUEST => body_len = n,
                    _ => return Some(Err(())),
                }
            }
        }
    }
    let total = head_end + 4 + body_len;
    (buf.len() >= total).then_some(Ok(total))
}

fn record(request: &[u8], tally: &RefCell<Tally>) {
    let body = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&[][..], |i| &request[i + 4..]);
    let mut t = tally.borrow_mut();
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| json.as_ref().and_then(|j| j[k].as_str()).map(str::to_string);
    match (field("action"), field("client_id")) {
        (Some(action), Some(id)) => *t.events.entry(action).or_default().entry(id).or_insert(0) += 1,
        _ => t.malformed += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_boundaries() {
        let req = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloPOST";
        assert_eq!(request_len(&req[..20]), None);
        assert_eq!(request_len(&req[..40]), None);
        assert_eq!(request_len(req), Some(Ok(req.len() - 4)));
        assert_eq!(
            request_len(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Some(Err(()))
        );
    }

    #[test]
    fn pairs_and_duplicates() {
        let t = RefCell::new(Tally::default());
        let post = |action: &str, id: &str| {
            let body = format!(r#"{{"action":"{action}","client_id":"{id}"}}"#);
            format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
        };
        record(&post("on_publish", "1"), &t);
        record(&post("on_publish", "2"), &t);
        record(&post("on_unpublish", "2"), &t);
        record(&post("on_unpublish", "2"), &t);
        let t = t.into_inner();
        assert_eq!(t.unmatched("on_publish", "on_unpublish"), vec!["1".to_string()]);
        assert_eq!(t.duplicates(), 1);
        assert_eq!(t.count("on_unpublish"), 2);
    }
}
