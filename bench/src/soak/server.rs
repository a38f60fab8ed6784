//! The server under soak: the real `estuary` binary started with the scenario's config
//! (hooks to our receiver, short stall and linger timeouts), optionally pinned with
//! `taskset`, and read from outside: `/metrics` (its own task counts, hook counters),
//! `/proc/PID/fd` and `/proc/PID/status`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Timeouts of the scenario's server config, chosen so everything a client leaves behind
/// ends within seconds and stalled viewers are cut within the run.
pub struct Timeouts {
    /// `[play] slow_disconnect_ms`: a viewer whose socket takes nothing this long is cut.
    pub slow_disconnect_ms: u64,
    /// `[play] max_lag_ms`.
    pub max_lag_ms: u64,
    /// `[play] send_buffer_bytes`: small, so a stalled viewer's kernel buffer fills fast.
    pub send_buffer_bytes: u64,
    /// `[play] wait_for_publisher_ms` (viewers between two publisher sessions wait this long).
    pub wait_for_publisher_ms: u64,
    /// `[hls] reconnect_window_ms` and `dispose_ms`, `[api] hls_session_idle_ms`.
    pub hls_reconnect_window_ms: u64,
    pub hls_dispose_ms: u64,
    pub hls_session_idle_ms: u64,
    /// `[hooks] retry_max_ms`: how soon a queue drains once the receiver is back.
    pub hook_retry_max_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            slow_disconnect_ms: 2000,
            max_lag_ms: 1000,
            send_buffer_bytes: 32_768,
            wait_for_publisher_ms: 3000,
            hls_reconnect_window_ms: 3000,
            hls_dispose_ms: 3000,
            hls_session_idle_ms: 2000,
            hook_retry_max_ms: 1000,
        }
    }
}

/// The `estuary.toml` of the scenario. `hooks` is the receiver's base URL.
pub fn config_toml(hooks: &str, t: &Timeouts) -> String {
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# Written by the soak scenario (bench/src/soak/server.rs).\n\
         [limits]\n\
         # Every client of the scenario comes from 127.0.0.1.\n\
         per_ip_exempt = [\"127.0.0.0/8\"]\n\n\
         [play]\n\
         slow_disconnect_ms = {}\n\
         max_lag_ms = {}\n\
         send_buffer_bytes = {}\n\
         wait_for_publisher_ms = {}\n\n\
         [hls]\n\
         fragment_ms = 1000\n\
         reconnect_window_ms = {}\n\
         dispose_ms = {}\n\n\
         [api]\n\
         hls_session_idle_ms = {}\n\n\
         [hooks]\n\
         # SRS-style: clients, streams and sessions each on a URL (three delivery queues).\n\
         on_connect = [\"{hooks}/api/v1/clients\"]\n\
         on_close = [\"{hooks}/api/v1/clients\"]\n\
         on_publish = [\"{hooks}/api/v1/streams\"]\n\
         on_unpublish = [\"{hooks}/api/v1/streams\"]\n\
         on_play = [\"{hooks}/api/v1/sessions\"]\n\
         on_stop = [\"{hooks}/api/v1/sessions\"]\n\
         retry_min_ms = 100\n\
         retry_max_ms = {}\n\
         # The receiver's outages must lose nothing: far more tries than they last.\n\
         max_tries = 1000\n\
         # Long enough that a loaded machine cannot make the server give up on a decision\n\
         # the receiver then answers and counts (a false `lost hook`).\n\
         timeout_ms = 30000",
        t.slow_disconnect_ms,
        t.max_lag_ms,
        t.send_buffer_bytes,
        t.wait_for_publisher_ms,
        t.hls_reconnect_window_ms,
        t.hls_dispose_ms,
        t.hls_session_idle_ms,
        t.hook_retry_max_ms,
    );
    c
}

/// A running server; SIGTERM (then SIGKILL) on drop.
pub struct ServerProcess {
    child: Child,
    pub rtmp_port: u16,
    pub http_port: u16,
    pub log: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(StdListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn accepts(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

impl ServerProcess {
    /// Starts `bin -c config` in `dir` on two free loopback ports, under `taskset -c cpus`
    /// when given, and waits (up to 30 s) until both ports accept.
    pub fn start(bin: &Path, config: &Path, dir: &Path, cpus: Option<&str>) -> anyhow::Result<ServerProcess> {
        let mut last = String::new();
        for attempt in 0..5 {
            let (rtmp_port, http_port) = (free_port()?, free_port()?);
            if rtmp_port == http_port {
                continue;
            }
            let log = dir.join(format!("estuary-{attempt}.log"));
            let mut cmd = match cpus {
                // taskset execs the server: the child's pid is the server's.
                Some(cpus) => {
                    let mut c = Command::new("taskset");
                    c.arg("-c").arg(cpus).arg(bin);
                    c
                }
                None => Command::new(bin),
            };
            cmd.current_dir(dir)
                .arg("-c")
                .arg(config)
                .arg("--rtmp-listen")
                .arg(format!("127.0.0.1:{rtmp_port}"))
                .arg("--http-listen")
                .arg(format!("127.0.0.1:{http_port}"))
                .env(
                    "RUST_LOG",
                    std::env::var("ESTUARY_SOAK_LOG").unwrap_or_else(|_| "info".into()),
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?);
            let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
            let mut server = ServerProcess {
                child,
                rtmp_port,
                http_port,
                log,
            };
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                if server.child.try_wait()?.is_some() {
                    last = std::fs::read_to_string(&server.log).unwrap_or_default();
                    break;
                }
                if accepts(rtmp_port) && accepts(http_port) {
                    return Ok(server);
                }
                if std::time::Instant::now() > deadline {
                    bail!(
                        "estuary did not open its ports within 30 s; log {}",
                        server.log.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!("estuary exited before it was ready, 5 times; last log:\n{last}")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn rtmp_url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.rtmp_port)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// Open file descriptors of the server (`/proc/PID/fd`).
    pub fn fds(&self) -> std::io::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid()))?.count())
    }

    /// VmRSS in kB.
    pub fn rss_kb(&self) -> std::io::Result<u64> {
        Ok(crate::procstat::sample(self.pid())?.rss_kb)
    }

    /// SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if !self.alive() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `/metrics` scrape: series (name with labels, as printed) to value.
#[derive(Debug, Default, Clone)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// Parses Prometheus text.
    pub fn parse(text: &str) -> Metrics {
        let mut m = BTreeMap::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if let Some((series, value)) = line.rsplit_once(' ') {
                if let Ok(v) = value.trim().parse::<f64>() {
                    m.insert(series.to_string(), v);
                }
            }
        }
        Metrics(m)
    }

    /// Sum of every series of `name` whose labels include all of `labels` (`k="v"` strings).
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
                n == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// GETs `/metrics` over a fresh HTTP/1.0 connection (closed by the server after the
/// answer, so no keep-alive connection of ours stays open in the server's counts).
pub async fn scrape(http_port: u16) -> anyhow::Result<Metrics> {
    let fetch = async {
        let mut s = TcpStream::connect(("127.0.0.1", http_port)).await?;
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(out)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .context("GET /metrics timed out")?
        .context("GET /metrics")?;
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("GET /metrics: no response head");
    };
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET /metrics: {}", head.lines().next().unwrap_or(""));
    }
    Ok(Metrics::parse(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series_by_label() {
        let m = Metrics::parse(
            "# HELP x\nestuary_clients{kind=\"publisher\"} 2\nestuary_clients{kind=\"rtmp-play\"} 3\nestuary_tasks 17\n",
        );
        assert_eq!(m.sum("estuary_clients", &[]), 5.0);
        assert_eq!(m.sum("estuary_clients", &["kind=\"publisher\""]), 2.0);
        assert_eq!(m.sum("estuary_tasks", &[]), 17.0);
        assert_eq!(m.sum("estuary_hook_undelivered_total", &[]), 0.0);
    }

    #[test]
    fn config_parses_as_toml() {
        let c = config_toml("http://127.0.0.1:9", &Timeouts::default());
        let v: toml::Value = toml::from_str(&c).unwrap();
        assert_eq!(v["play"]["slow_disconnect_ms"].as_integer(), Some(2000));
    }
}
