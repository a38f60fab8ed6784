//! `estuary-bench`: one publisher (or several) plus N RTMP, M HTTP-FLV and K HLS viewers
//! against any server's URLs, for a fixed duration; a JSON report and a human summary.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use estuary_bench::run::{run, RunConfig};

#[derive(Debug, Parser)]
#[command(name = "estuary-bench", version, about)]
struct Args {
    /// RTMP URL to publish to; `{stream}` is replaced by the stream name.
    #[arg(long, default_value = "rtmp://127.0.0.1:1935/live/{stream}")]
    publish_url: String,
    /// RTMP URL to play (default: the publish URL).
    #[arg(long)]
    rtmp_url: Option<String>,
    /// HTTP-FLV URL, e.g. http://127.0.0.1:8080/live/{stream}.flv
    #[arg(long)]
    flv_url: Option<String>,
    /// HLS playlist URL, e.g. http://127.0.0.1:8080/live/{stream}.m3u8
    #[arg(long)]
    hls_url: Option<String>,
    /// Stream name (with several publishers: NAME-0, NAME-1, ...).
    #[arg(long, default_value = "bench")]
    stream: String,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    #[arg(long, default_value_t = 0)]
    rtmp_viewers: usize,
    #[arg(long, default_value_t = 0)]
    flv_viewers: usize,
    #[arg(long, default_value_t = 0)]
    hls_viewers: usize,
    /// FLV clip to publish (H.264 + AAC); generated with ffmpeg when missing.
    #[arg(long, default_value = "bench/media/clip-720p-2500k.flv")]
    clip: PathBuf,
    /// Seconds of measurement (viewers play this long, plus the grace period).
    #[arg(long, default_value_t = 20.0)]
    duration_secs: f64,
    /// Seconds of publishing before viewers start.
    #[arg(long, default_value_t = 5.0)]
    warmup_secs: f64,
    /// Seconds over which viewers connect.
    #[arg(long, default_value_t = 2.0)]
    ramp_secs: f64,
    /// Seconds viewers keep reading after publishing stops.
    #[arg(long, default_value_t = 2.0)]
    grace_secs: f64,
    /// HLS playlist poll interval in milliseconds.
    #[arg(long, default_value_t = 500)]
    hls_poll_ms: u64,
    /// Viewer threads (each a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    viewer_threads: usize,
    /// PID of the server, for CPU and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Name of this run in the report.
    #[arg(long, default_value = "bench")]
    label: String,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.publishers == 0 {
        anyhow::bail!("--publishers must be at least 1");
    }
    let cfg = RunConfig {
        label: a.label,
        rtmp_url: a.rtmp_url.unwrap_or_else(|| a.publish_url.clone()),
        publish_url: a.publish_url,
        flv_url: a.flv_url,
        hls_url: a.hls_url,
        stream: a.stream,
        publishers: a.publishers,
        rtmp_viewers: a.rtmp_viewers,
        flv_viewers: a.flv_viewers,
        hls_viewers: a.hls_viewers,
        clip: a.clip,
        warmup: secs(a.warmup_secs),
        duration: secs(a.duration_secs),
        ramp: secs(a.ramp_secs),
        grace: secs(a.grace_secs),
        hls_poll: Duration::from_millis(a.hls_poll_ms.max(10)),
        viewer_threads: a.viewer_threads,
        server_pid: a.server_pid,
    };
    let report = run(&cfg)?;
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{}", estuary_bench::report::human(&report));
    Ok(())
}
