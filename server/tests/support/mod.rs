//! Small helpers for the API/hooks/metrics end-to-end tests: the real `estuary` binary on
//! 127.0.0.1 with free ports, ffmpeg publishers and players, a blocking HTTP client that
//! decodes chunked bodies, and a hook receiver that records bodies. Every wait is bounded and
//! every child process is killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const LIMIT: Duration = Duration::from_secs(30);

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `f` every 100 ms until it returns `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_estuary"))
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Proc {
    pub fn spawn(cmd: &mut Command, log: &Path) -> Proc {
        let err = std::fs::File::create(log).expect("log file");
        Proc(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .expect("spawn"),
        )
    }

    /// Exit code, waiting at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        wait_for(limit, || self.0.try_wait().ok().flatten())
    }

    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The 10-s H.264 320x240@25 + AAC clip, generated once under target/.
pub fn clip() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = target_dir().join("api-test-media");
    std::fs::create_dir_all(&dir).expect("media dir");
    let path = dir.join("clip.flv");
    if path.exists() {
        return path;
    }
    let tmp = dir.join(format!("clip.{}.tmp.flv", std::process::id()));
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-c:a",
            "aac",
            "-t",
            "10",
        ])
        .arg(&tmp)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "generating the clip failed");
    std::fs::rename(&tmp, &path).expect("rename clip");
    path
}

/// The server under test.
pub struct Server {
    proc: Proc,
    pub rtmp: u16,
    pub http: u16,
    pub dir: PathBuf,
    pub token: String,
}

impl Server {
    pub fn start(name: &str, config: &str) -> Server {
        let dir = target_dir()
            .join("api-test")
            .join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let cfg = dir.join("estuary.toml");
        std::fs::write(&cfg, config).expect("write config");
        let token = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("token = \"").and_then(|r| r.strip_suffix('"')))
            .unwrap_or("")
            .to_string();
        for _ in 0..5 {
            let (rtmp, http) = (free_port(), free_port());
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_estuary"));
            // Its own working directory: what it writes relative to it (recordings) is the
            // test's.
            cmd.current_dir(&dir);
            cmd.arg("-c").arg(&cfg);
            cmd.args([
                "--rtmp-listen",
                &format!("127.0.0.1:{rtmp}"),
                "--http-listen",
                &format!("127.0.0.1:{http}"),
            ]);
            cmd.env("RUST_LOG", "info,estuary=debug");
            let mut proc = Proc::spawn(&mut cmd, &dir.join("estuary.log"));
            let ready = wait_for(Duration::from_secs(20), || {
                if !proc.running() {
                    return Some(false);
                }
                get(http, "/readyz", "").ok().filter(|r| r.status == 200).map(|_| true)
            });
            if ready == Some(true) {
                return Server {
                    proc,
                    rtmp,
                    http,
                    dir,
                    token,
                };
            }
        }
        panic!("estuary did not start; log in {}", dir.display());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("estuary.log")).unwrap_or_default()
    }

    pub fn rtmp_url(&self, path: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{path}", self.rtmp)
    }

    /// GET an API path with the server's token; panics unless the answer is JSON.
    pub fn api(&self, path: &str) -> (u16, Value) {
        let r = get(self.http, path, &self.token).expect("api request");
        let v = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{path}: not json ({e}): {}", String::from_utf8_lossy(&r.body)));
        (r.status, v)
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        let r = request(self.http, "DELETE", path, &self.token).expect("api request");
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    /// ffmpeg publishing the clip in a loop, in real time.
    pub fn publish(&self, path: &str, log: &str) -> Proc {
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "warning",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(clip())
        .args(["-c", "copy", "-f", "flv", &self.rtmp_url(path)]);
        Proc::spawn(&mut cmd, &self.dir.join(log))
    }

    /// ffmpeg playing RTMP `path` and discarding what it gets.
    pub fn play_rtmp(&self, path: &str, log: &str) -> Proc {
        let mut cmd = Command::new("ffmpeg");
        cmd.args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "warning",
            "-i",
            &self.rtmp_url(path),
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ]);
        Proc::spawn(&mut cmd, &self.dir.join(log))
    }

    /// Waits until the API shows `app/stream` live with video.
    pub fn wait_live(&self, app: &str, stream: &str) {
        let live = wait_for(LIMIT, || {
            let (_, v) = self.api(&format!("/api/v1/streams/{app}/{stream}"));
            (v["stream"]["publish"]["active"] == true && v["stream"]["video"].is_object()).then_some(())
        });
        assert!(live.is_some(), "{app}/{stream} did not go live; log:\n{}", self.log());
    }

    /// The clients of one kind, from the API.
    pub fn clients_of(&self, kind: &str) -> Vec<Value> {
        let (_, v) = self.api("/api/v1/clients");
        v["clients"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] == kind)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail = &log[log.len().saturating_sub(20_000)..];
            eprintln!("===== estuary log =====\n{tail}\n===== end =====");
        }
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn get(port: u16, path: &str, token: &str) -> std::io::Result<HttpResponse> {
    request(port, "GET", path, token)
}

/// One HTTP/1.1 request with `Connection: close`; chunked bodies are decoded.
pub fn request(port: u16, method: &str, path: &str, token: &str) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r)?;
    let mut body = Vec::new();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        read_chunked(&mut r, |b| body.extend_from_slice(b))?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(HttpResponse { status, headers, body })
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, headers))
}

/// Decodes a chunked body, calling `f` with each piece, until the last chunk or EOF.
fn read_chunked(r: &mut impl BufRead, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
        if size == 0 {
            return Ok(());
        }
        let mut buf = vec![0; size + 2];
        r.read_exact(&mut buf)?;
        f(&buf[..size]);
    }
}

/// An HTTP-FLV viewer on a thread, counting the body bytes it decodes.
pub struct FlvViewer {
    pub status: u16,
    pub bytes: Arc<AtomicU64>,
    pub ended: Arc<AtomicBool>,
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

impl FlvViewer {
    pub fn open(port: u16, path: &str) -> FlvViewer {
        let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut r = BufReader::new(s.try_clone().expect("clone"));
        let (status, _) = read_head(&mut r).expect("response head");
        let bytes = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicBool::new(false));
        let (b, e) = (Arc::clone(&bytes), Arc::clone(&ended));
        let thread = std::thread::spawn(move || {
            let _ = read_chunked(&mut r, |piece| {
                b.fetch_add(piece.len() as u64, Ordering::SeqCst);
            });
            e.store(true, Ordering::SeqCst);
        });
        FlvViewer {
            status,
            bytes,
            ended,
            stream: s,
            thread: Some(thread),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }
}

impl Drop for FlvViewer {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request the hook receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub body: Value,
}

type Answer = dyn Fn(&Hit) -> (u16, String) + Send + Sync;

/// A hook receiver: a tiny HTTP/1.1 server recording every JSON body it gets and answering
/// with `answer`. `stop` closes its port (connections are refused) until `start` again.
pub struct HookReceiver {
    pub port: u16,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    answer: Arc<Answer>,
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Open connections, closed by `stop` (the server keeps connections alive).
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl HookReceiver {
    pub fn new(answer: impl Fn(&Hit) -> (u16, String) + Send + Sync + 'static) -> HookReceiver {
        let mut r = HookReceiver {
            port: free_port(),
            hits: Arc::default(),
            answer: Arc::new(answer),
            running: Arc::default(),
            thread: None,
            conns: Arc::default(),
        };
        r.start();
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn start(&mut self) {
        let listener = wait_for(Duration::from_secs(10), || {
            TcpListener::bind(("127.0.0.1", self.port)).ok()
        })
        .expect("rebind hook port");
        listener.set_nonblocking(true).expect("nonblocking");
        self.running.store(true, Ordering::SeqCst);
        let (hits, answer, running) = (
            Arc::clone(&self.hits),
            Arc::clone(&self.answer),
            Arc::clone(&self.running),
        );
        let conns = Arc::clone(&self.conns);
        self.thread = Some(std::thread::spawn(move || {
            while running.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        if let Ok(c) = s.try_clone() {
                            conns.lock().unwrap_or_else(|e| e.into_inner()).push(c);
                        }
                        let (hits, answer) = (Arc::clone(&hits), Arc::clone(&answer));
                        std::thread::spawn(move || serve_hook(s, &hits, &*answer));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }

    pub fn stop(&mut self) {
        self.running.store(false, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for c in self.conns.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn actions(&self) -> Vec<String> {
        self.hits()
            .iter()
            .map(|h| h.body["action"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for HookReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve_hook(s: TcpStream, hits: &Mutex<Vec<Hit>>, answer: &Answer) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut w = match s.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(s);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let hit = Hit {
            path,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        hits.lock().unwrap_or_else(|e| e.into_inner()).push(hit.clone());
        let (status, text) = answer(&hit);
        let _ = write!(
            w,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
    }
}

/// `/metrics` parsed: (name, labels, value) per sample. Panics on a line that is not valid
/// Prometheus text format.
/// One sample of `/metrics`: name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut w = rest.split_whitespace();
            match w.next() {
                Some("HELP") => assert!(w.next().is_some_and(valid_name), "bad HELP: {line}"),
                Some("TYPE") => {
                    assert!(w.next().is_some_and(valid_name), "bad TYPE: {line}");
                    let t = w.next().unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad TYPE: {line}"
                    );
                }
                _ => {}
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (
                n,
                parse_labels(l.strip_suffix('}').unwrap_or_else(|| panic!("bad labels: {line}"))),
            ),
            None => (series, Vec::new()),
        };
        assert!(valid_name(name), "bad name: {line}");
        out.push((name.to_string(), labels, value));
    }
    out
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (k, r) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad labels: {s}"));
        assert!(valid_name(k), "bad label name {k}");
        let mut value = String::new();
        let mut chars = r.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        value.push(if e == 'n' { '\n' } else { e });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label: {s}"));
        out.push((k.to_string(), value));
        rest = r[end + 1..].trim_start_matches(',');
    }
    out
}

/// The value of the sample `name` whose labels include every pair in `want`.
pub fn sample(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
}
