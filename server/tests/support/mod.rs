//! Small helpers for the end-to-end tests: the real `estuary` binary on 127.0.0.1 with free
//! ports (killed, stopped and restarted in its own working directory), ffmpeg publishers of
//! generated clips and players, ffprobe of files and URLs, a blocking HTTP client that sends
//! JSON and decodes chunked bodies, and a hook receiver that records bodies. Every wait is
//! bounded and every child process is killed on drop.
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
    /// How many processes ran in `dir` before this one (each logs to its own file).
    run: u32,
}

impl Server {
    /// Starts the server in a fresh working directory of its own.
    pub fn start(name: &str, config: &str) -> Server {
        let dir = target_dir()
            .join("api-test")
            .join(format!("{name}-{}", std::process::id()));
        // A directory left by an earlier run with the same pid would leak its files (a
        // recording catalogue) into this one.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("estuary.toml"), config).expect("write config");
        let token = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("token = \"").and_then(|r| r.strip_suffix('"')))
            .unwrap_or("")
            .to_string();
        Server::spawn_in(dir, token, 0)
    }

    /// Starts another server process in this one's working directory with its config (on
    /// new ports), after this one was stopped or killed: what it left on disk is its.
    pub fn restart(self) -> Server {
        let (dir, token, run) = (self.dir.clone(), self.token.clone(), self.run + 1);
        drop(self);
        Server::spawn_in(dir, token, run)
    }

    /// Like `restart`, with `config` written over the config file first.
    pub fn restart_with(self, config: &str) -> Server {
        std::fs::write(self.dir.join("estuary.toml"), config).expect("write config");
        self.restart()
    }

    fn log_path(dir: &Path, run: u32) -> PathBuf {
        if run == 0 {
            dir.join("estuary.log")
        } else {
            dir.join(format!("estuary.{run}.log"))
        }
    }

    fn spawn_in(dir: PathBuf, token: String, run: u32) -> Server {
        let cfg = dir.join("estuary.toml");
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
            let mut proc = Proc::spawn(&mut cmd, &Server::log_path(&dir, run));
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
                    run,
                };
            }
        }
        panic!(
            "estuary did not start; log in {}",
            Server::log_path(&dir, run).display()
        );
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// The server's resident memory (`VmRSS` of `/proc/PID/status`), in KiB.
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// This process's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(Server::log_path(&self.dir, self.run)).unwrap_or_default()
    }

    /// SIGKILL, as a crash or an OOM kill: nothing is finished or flushed.
    pub fn kill9(&mut self) {
        let _ = self.proc.0.kill();
        let status = self.proc.wait(LIMIT).expect("the killed server is gone");
        assert!(!status.success(), "the server exited normally on SIGKILL");
    }

    /// SIGTERM, and waits for the server to exit; panics unless it exits 0 in time.
    pub fn stop(&mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.proc.0.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let status = self.proc.wait(LIMIT);
        assert!(
            status.is_some_and(|s| s.success()),
            "the server did not exit 0 on SIGTERM ({status:?}); log:\n{}",
            self.log()
        );
    }

    /// `/metrics`, parsed.
    /// `estuary_connections_rejected_total{protocol, reason}`, 0 when never counted.
    pub fn rejected(&self, protocol: &str, reason: &str) -> f64 {
        let want = [("protocol", protocol), ("reason", reason)];
        sample(&self.metrics(), "estuary_connections_rejected_total", &want).unwrap_or(0.0)
    }

    pub fn metrics(&self) -> Vec<Sample> {
        let r = get(self.http, "/metrics", "").expect("/metrics");
        assert_eq!(r.status, 200, "/metrics");
        parse_metrics(&String::from_utf8_lossy(&r.body))
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

    /// POST (or PUT) an API path with a JSON body; the answer's status and JSON (`Null` if
    /// it is not JSON).
    pub fn send_json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = request_json(self.http, method, path, &self.token, &body.to_string()).expect("api request");
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        let r = request(self.http, "DELETE", path, &self.token).expect("api request");
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    /// ffmpeg publishing the clip in a loop, in real time.
    pub fn publish(&self, path: &str, log: &str) -> Proc {
        self.publish_url(&self.rtmp_url(path), log)
    }

    /// ffmpeg publishing the clip in a loop, in real time, to a full URL (a signed one, say).
    pub fn publish_url(&self, url: &str, log: &str) -> Proc {
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
        .args(["-c", "copy", "-f", "flv", url]);
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

    /// The clients of one SRS `type` (`rtmp-play`, `flv-play`, `hls-play`, `fmle-publish`…),
    /// from the API; `"publisher"` is every publisher (`publish: true`), whatever its type.
    pub fn clients_of(&self, kind: &str) -> Vec<Value> {
        let (_, v) = self.api("/api/v1/clients");
        v["clients"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                if kind == "publisher" {
                    c["publish"] == true
                } else {
                    c["type"] == kind
                }
            })
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
    send(port, method, path, token, None)
}

/// One HTTP/1.1 request with a JSON body (`Content-Type: application/json`).
pub fn request_json(port: u16, method: &str, path: &str, token: &str, body: &str) -> std::io::Result<HttpResponse> {
    send(port, method, path, token, Some(body))
}

fn send(port: u16, method: &str, path: &str, token: &str, body: Option<&str>) -> std::io::Result<HttpResponse> {
    let s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
    exchange(s, port, method, path, token, body, &[])
}

/// [`request`] from another address of this machine (`127.0.0.2`, say: another host, as the
/// server sees it), with extra headers.
pub fn request_from(
    source: [u8; 4],
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    exchange(socket.into(), port, method, path, token, None, headers)
}

fn exchange(
    mut s: TcpStream,
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let content = match body {
        Some(b) => format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()),
        None => String::new(),
    };
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}{content}{extra}Connection: close\r\n\r\n{}",
        body.unwrap_or("")
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

/// An HTTP/1.1 client on one kept-alive connection: many requests without opening a
/// connection each (which the per-IP limits would count).
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    port: u16,
}

impl KeepAlive {
    pub fn connect(port: u16) -> std::io::Result<KeepAlive> {
        let s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        Ok(KeepAlive {
            writer: s.try_clone()?,
            reader: BufReader::new(s),
            port,
        })
    }

    /// GET `path`: the status and the body (by Content-Length or chunked).
    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        // One write: a request in pieces would wait on Nagle and the server's delayed ACK.
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: estuary-tests\r\n\r\n",
            self.port
        );
        self.writer.write_all(head.as_bytes())?;
        let (status, headers) = read_head(&mut self.reader)?;
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            read_chunked(&mut self.reader, |b| body.extend_from_slice(b))?;
        } else {
            let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            body.resize(len, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok((status, body))
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

/// A generated H.264 320x240@25 + AAC clip with a keyframe every second exactly (`-g 25`, no
/// scene-cut keyframes, no B-frames), and what it holds.
#[derive(Debug, Clone)]
pub struct Clip {
    pub path: PathBuf,
    pub secs: u32,
    /// Video frames in the file, as ffprobe counts them.
    pub frames: u64,
    /// Audio frames from the first video frame on (a recording starts at a keyframe).
    pub audio_frames: u64,
}

pub const CLIP_FPS: u64 = 25;

/// The `secs`-second clip, generated once under target/.
pub fn gop1_clip(secs: u32) -> Clip {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = target_dir().join("api-test-media");
    std::fs::create_dir_all(&dir).expect("media dir");
    let path = dir.join(format!("gop1-{secs}s.flv"));
    if !path.exists() {
        let tmp = dir.join(format!("gop1-{secs}s.{}.tmp.flv", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", &secs.to_string(), "-r", "25"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0"])
            .args(["-x264-params", "keyint=25:min-keyint=25:scenecut=0"])
            .args(["-c:a", "aac", "-b:a", "64k"])
            .arg(&tmp)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "generating the {secs}-s clip failed");
        std::fs::rename(&tmp, &path).expect("rename clip");
    }
    let video = video_packets(&path);
    let frames = video.len() as u64;
    assert_eq!(frames, u64::from(secs) * CLIP_FPS, "frames of {}", path.display());
    let first = video.first().map_or(0.0, |p| p.pts);
    let audio_frames = audio_packets(&path).iter().filter(|p| p.pts >= first - 0.0005).count() as u64;
    Clip {
        path,
        secs,
        frames,
        audio_frames,
    }
}

impl Server {
    /// ffmpeg publishing `clip` once, in real time: it exits when the clip ends.
    pub fn publish_clip(&self, path: &str, clip: &Clip, log: &str) -> Proc {
        self.publish_file(path, clip, false, log)
    }

    /// ffmpeg publishing `clip` in a loop, in real time, until it is killed.
    pub fn publish_looping(&self, path: &str, clip: &Clip, log: &str) -> Proc {
        self.publish_file(path, clip, true, log)
    }

    fn publish_file(&self, path: &str, clip: &Clip, looping: bool, log: &str) -> Proc {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-re"]);
        if looping {
            cmd.args(["-stream_loop", "-1"]);
        }
        cmd.arg("-i")
            .arg(&clip.path)
            .args(["-c", "copy", "-f", "flv", &self.rtmp_url(path)]);
        Proc::spawn(&mut cmd, &self.dir.join(log))
    }
}

/// What ffprobe says of a file or URL.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    /// The container's duration, in seconds.
    pub duration: f64,
    /// The container's start time, in seconds.
    pub start: f64,
    /// Video frames decoded (`-count_frames`); 0 when not counted.
    pub video_frames: u64,
    pub raw: Value,
}

/// ffprobe of a file, counting its video frames by decoding them.
pub fn ffprobe(path: &Path) -> Probe {
    probe(path.as_os_str(), true)
}

/// ffprobe of a live URL (no frame count: a live stream has no end), bounded in time.
pub fn ffprobe_live(url: &str) -> Probe {
    probe(std::ffi::OsStr::new(url), false)
}

fn probe(target: &std::ffi::OsStr, count: bool) -> Probe {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-of", "json", "-rw_timeout", "15000000"]);
    if count {
        cmd.arg("-count_frames");
    }
    cmd.args([
        "-show_entries",
        "stream=codec_type,codec_name,nb_read_frames:format=duration,start_time",
    ])
    .arg(target);
    let out = run_bounded(&mut cmd, LIMIT);
    let raw: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ffprobe {target:?}: not json ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let streams = raw["streams"].as_array().cloned().unwrap_or_default();
    let codec = |kind: &str| {
        streams
            .iter()
            .find(|s| s["codec_type"] == kind)
            .and_then(|s| s["codec_name"].as_str())
            .map(str::to_string)
    };
    let number = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    Probe {
        video_codec: codec("video"),
        audio_codec: codec("audio"),
        duration: number(&raw["format"]["duration"]),
        start: number(&raw["format"]["start_time"]),
        video_frames: streams
            .iter()
            .find(|s| s["codec_type"] == "video")
            .map_or(0, |s| number(&s["nb_read_frames"]) as u64),
        raw,
    }
}

/// One packet of a file: presentation time (s) and whether it is a keyframe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaPacket {
    pub pts: f64,
    pub key: bool,
}

/// The video packets of a file, in file order.
pub fn video_packets(path: &Path) -> Vec<MediaPacket> {
    packets(path, "v:0")
}

/// The audio packets of a file, in file order.
pub fn audio_packets(path: &Path) -> Vec<MediaPacket> {
    packets(path, "a:0")
}

fn packets(path: &Path, stream: &str) -> Vec<MediaPacket> {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-select_streams", stream])
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(path);
    let out = run_bounded(&mut cmd, LIMIT);
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (pts, flags) = l.split_once(',').unwrap_or((l, ""));
            MediaPacket {
                pts: pts.trim().parse().unwrap_or(f64::NAN),
                key: flags.contains('K'),
            }
        })
        .collect()
}

/// What `ffmpeg -v error` says when it decodes the whole of `path`: nothing, for a file any
/// player opens. Also fails (returning the reason) if ffmpeg exits non-zero.
pub fn decode_errors(path: &Path) -> String {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"]);
    let out = run_bounded(&mut cmd, LIMIT);
    let mut said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        said += &format!(" (ffmpeg exited with {})", out.status);
    }
    said
}

/// Runs `cmd` to its end, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let id = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let end = Instant::now() + limit;
            while !done.load(Ordering::SeqCst) {
                if Instant::now() > end {
                    let _ = Command::new("kill").args(["-KILL", &id.to_string()]).status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let out = child.wait_with_output().expect("wait");
    done.store(true, Ordering::SeqCst);
    let _ = watchdog.join();
    out
}
