//! Join latency: how long a new RTMP viewer of one stream waits while another stream of the
//! same server is busy (e.g. fanning out to 2000 viewers; `bench/join-latency.sh` sets that
//! up). One join at a time: TCP connect, handshake, connect, createStream, play, until
//! `NetStream.Play.Start` ("accepted"), then until the first video message (the join
//! snapshot's keyframe, "first frame"); then the connection is closed and, after
//! `--interval-ms`, the next join starts.
//!
//!   cargo run --release -p estuary-bench --example join_latency -- \
//!       --url rtmp://127.0.0.1:1935/live/b --joins 300

use std::time::{Duration, Instant};

use bytes::BytesMut;
use clap::Parser;
use estuary_protocol::rtmp::client::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Args {
    /// The stream to join, `rtmp://HOST:PORT/APP/STREAM`.
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 300)]
    joins: usize,
    /// Pause between one join's end and the next one's start.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Name of this run in the report.
    #[arg(long, default_value = "join")]
    label: String,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// Microseconds from the start of the join to play accepted and to the first video message.
async fn join(url: &str) -> anyhow::Result<(u64, u64)> {
    let start = Instant::now();
    let config = ClientConfig::from_url(url, ClientMode::Play)?;
    let mut socket = TcpStream::connect(&config.addr).await?;
    socket.set_nodelay(true)?;
    let mut session = ClientSession::new(config)?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut accepted = None;
    let limit = Duration::from_secs(5);
    loop {
        if let Some(out) = session.take_output() {
            socket.write_all(&out).await?;
        }
        loop {
            match session.handle_input(&mut buf)? {
                None => break,
                Some(ClientEvent::Started { .. }) => accepted = Some(start.elapsed().as_micros() as u64),
                Some(ClientEvent::Media(msg)) if msg.type_id == 9 => {
                    let first = start.elapsed().as_micros() as u64;
                    return Ok((accepted.unwrap_or(first), first));
                }
                Some(_) => {}
            }
        }
        if let Some(out) = session.take_output() {
            socket.write_all(&out).await?;
        }
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, socket.read_buf(&mut buf)).await {
            Ok(Ok(0)) => anyhow::bail!("closed by the server"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => anyhow::bail!("no video within {limit:?}"),
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<u64>) -> serde_json::Value {
    v.sort_unstable();
    let mean = if v.is_empty() {
        0
    } else {
        v.iter().sum::<u64>() / v.len() as u64
    };
    let s = serde_json::json!({
        "p50_us": percentile(&v, 0.5),
        "p90_us": percentile(&v, 0.9),
        "p99_us": percentile(&v, 0.99),
        "max_us": v.last().copied().unwrap_or(0),
        "mean_us": mean,
    });
    println!(
        "{name:>12}: p50 {:>7} µs  p90 {:>7} µs  p99 {:>7} µs  max {:>7} µs  mean {:>7} µs",
        s["p50_us"], s["p90_us"], s["p99_us"], s["max_us"], s["mean_us"]
    );
    s
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut accepted = Vec::with_capacity(args.joins);
    let mut first = Vec::with_capacity(args.joins);
    let mut failed = 0usize;
    for _ in 0..args.joins {
        match join(&args.url).await {
            Ok((a, f)) => {
                accepted.push(a);
                first.push(f);
            }
            Err(e) => {
                failed += 1;
                eprintln!("join failed: {e}");
                if (failed > 10 && accepted.is_empty()) || failed > args.joins / 10 + 10 {
                    anyhow::bail!("{failed} joins failed: is the stream published?");
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
    println!("{}: {} joins, {failed} failed", args.label, accepted.len());
    let report = serde_json::json!({
        "label": args.label,
        "joins": accepted.len(),
        "failed": failed,
        "accepted": summary("accepted", accepted),
        "first_frame": summary("first frame", first),
    });
    if let Some(path) = args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}
