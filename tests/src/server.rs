//! The `estuary` binary under test, on 127.0.0.1 with ports picked for it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::paths::estuary_bin;
use crate::proc::{wait_until, ChildGuard};
use crate::TestCtx;

/// How long the server gets to open both ports.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// How many times a start is retried when a picked port was taken meanwhile.
const START_ATTEMPTS: u32 = 5;

/// A running `estuary` process. Dropping it sends SIGTERM, then SIGKILL if it lingers; when the
/// test is panicking, the server's log is printed first.
pub struct Server {
    child: Option<ChildGuard>,
    pub rtmp_port: u16,
    pub http_port: u16,
    pub log_path: PathBuf,
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

impl Server {
    /// Starts the server with its defaults (no config file).
    pub fn start(ctx: &TestCtx) -> Server {
        Self::start_inner(ctx, None)
    }

    /// Starts the server with `toml` written to a config file passed with `-c`.
    pub fn start_with_config(ctx: &TestCtx, toml: &str) -> Server {
        let path = ctx.dir.join("estuary.toml");
        std::fs::write(&path, toml).expect("write config");
        Self::start_inner(ctx, Some(path))
    }

    fn start_inner(ctx: &TestCtx, config: Option<PathBuf>) -> Server {
        let bin = estuary_bin();
        assert!(
            bin.exists(),
            "server binary {} does not exist: build it with `cargo build -p estuary`",
            bin.display()
        );
        let mut last_log = String::new();
        for attempt in 0..START_ATTEMPTS {
            let rtmp_port = free_port();
            let http_port = free_port();
            if rtmp_port == http_port {
                continue;
            }
            let log_path = ctx.dir.join(format!("estuary-{attempt}.log"));
            let mut cmd = Command::new(&bin);
            // Its own working directory: what it writes relative to it (recordings) is the
            // test's.
            cmd.current_dir(&ctx.dir);
            if let Some(cfg) = &config {
                cmd.arg("-c").arg(cfg);
            }
            cmd.arg("--rtmp-listen")
                .arg(format!("127.0.0.1:{rtmp_port}"))
                .arg("--http-listen")
                .arg(format!("127.0.0.1:{http_port}"));
            if std::env::var_os("RUST_LOG").is_none() {
                cmd.env("RUST_LOG", "info,estuary=debug");
            }
            let mut child = ChildGuard::spawn_logged("estuary", &mut cmd, &log_path);
            let ready = wait_until(READY_LIMIT, || {
                if child.try_status().is_some() {
                    return Some(false);
                }
                (accepts(rtmp_port) && accepts(http_port)).then_some(true)
            });
            match ready {
                Some(true) if child.try_status().is_none() => {
                    return Server {
                        child: Some(child),
                        rtmp_port,
                        http_port,
                        log_path,
                    };
                }
                Some(_) => {
                    // Exited: most likely a port was taken between picking and binding.
                    last_log = child.stderr_text();
                }
                None => {
                    last_log = child.stderr_text();
                    panic!(
                        "estuary did not open 127.0.0.1:{rtmp_port} and :{http_port} within \
                         {READY_LIMIT:?}; log:\n{last_log}"
                    );
                }
            }
        }
        panic!("estuary exited before it was ready, {START_ATTEMPTS} times; last log:\n{last_log}");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// `rtmp://127.0.0.1:PORT/{app}/{stream}`
    pub fn rtmp_url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{stream}", self.rtmp_port)
    }

    /// `http://127.0.0.1:PORT/{app}/{stream}.flv`
    pub fn flv_url(&self, app: &str, stream: &str) -> String {
        format!("http://127.0.0.1:{}/{app}/{stream}.flv", self.http_port)
    }

    /// `http://127.0.0.1:PORT/{app}/{stream}.m3u8`
    pub fn m3u8_url(&self, app: &str, stream: &str) -> String {
        format!("http://127.0.0.1:{}/{app}/{stream}.m3u8", self.http_port)
    }

    /// The value of one series from `/metrics`, written as it appears there (e.g.
    /// `estuary_clients{kind="rtmp-play"}`); 0 if it is absent or cannot be read.
    pub fn metric(&self, series: &str) -> f64 {
        let url = format!("http://127.0.0.1:{}/metrics", self.http_port);
        let Ok((head, body)) = crate::http::get(&url, Duration::from_secs(10)) else {
            return 0.0;
        };
        if head.status != 200 {
            return 0.0;
        }
        let prefix = format!("{series} ");
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Connected clients of a kind (`rtmp-play`, `flv-play`, …), from `/metrics`.
    pub fn clients_of_kind(&self, kind: &str) -> u64 {
        self.metric(&format!("estuary_clients{{kind=\"{kind}\"}}")) as u64
    }

    /// The recordings `/api/v1/recordings` lists, newest first.
    pub fn recordings(&self) -> Vec<serde_json::Value> {
        let url = format!("http://127.0.0.1:{}/api/v1/recordings", self.http_port);
        let (head, body) = crate::http::get(&url, crate::LIMIT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        v["recordings"].as_array().cloned().unwrap_or_default()
    }

    /// Waits (up to `LIMIT`) until more than `before` recordings are listed and the newest
    /// is `completed`, and returns it.
    pub fn completed_recording(&self, before: usize) -> serde_json::Value {
        let deadline = std::time::Instant::now() + crate::LIMIT;
        loop {
            let all = self.recordings();
            if all.len() > before && all[0]["state"] == "completed" {
                return all[0].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no completed recording: {all:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The server's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_status().is_none())
    }

    /// Sends `sig` ("TERM", "INT") and waits up to `limit` for the process to exit.
    pub fn signal_and_wait(&mut self, sig: &str, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("server is running");
        child.signal(sig);
        child.wait_timeout(limit)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.logs();
            let tail = tail_chars(&log, 60_000);
            eprintln!(
                "===== estuary log ({}) =====\n{tail}\n===== end of estuary log =====",
                self.log_path.display()
            );
        }
        if let Some(mut child) = self.child.take() {
            if child.try_status().is_none() {
                child.signal("TERM");
                if child.wait_timeout(Duration::from_secs(5)).is_none() {
                    child.kill();
                }
            }
        }
    }
}

/// The last `n` characters of `s` (on a char boundary).
pub fn tail_chars(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
