//! The kernel's floor for fan-out on this machine: what a server that does nothing but write
//! each frame to each viewer socket in one `write` pays, in CPU seconds per GB delivered.
//!
//! One thread pinned to core 0 plays the server: every 1/fps s it writes a frame of
//! `--frame-bytes` to every viewer socket (split into `--writes-per-frame` writes), with no
//! parsing, no tasks, no locks. The viewers are the bench's own readers (tokio, one task per
//! socket, kernel-stamped `recvmsg`) on core 1. Compare its CPU s/GB with a real server's
//! from `compare.sh`: no server design that writes each frame separately can go below it.
//!
//!   cargo run --release -p estuary-bench --example kernel_floor -- --viewers 1000

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use estuary_bench::net;
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::socket::{setsockopt, sockopt};
use nix::time::{clock_gettime, ClockId};
use nix::unistd::Pid;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    viewers: usize,
    #[arg(long, default_value_t = 20)]
    secs: u64,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// 2.7 Mbps at 30 fps.
    #[arg(long, default_value_t = 11_250)]
    frame_bytes: usize,
    #[arg(long, default_value_t = 1)]
    writes_per_frame: usize,
    #[arg(long, default_value_t = 262_144)]
    sndbuf: usize,
    /// Request/reply round trips before streaming, as an RTMP player's handshake and
    /// connect/createStream/play make (0: none, as an HTTP-FLV player's single request).
    /// They leave the viewer's TCP in delayed-ACK "pingpong" mode, whose ACKs then come
    /// from the receive path and timers, on loopback the server's core.
    #[arg(long, default_value_t = 0)]
    round_trips: usize,
    /// Also write the figures as JSON here (for `compare.sh`).
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn pin(core: usize) {
    let mut set = CpuSet::new();
    if set.set(core).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

fn thread_cpu_secs() -> f64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    net::raise_fd_limit();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let viewers = {
        let (received, stop, n, round_trips) = (received.clone(), stop.clone(), args.viewers, args.round_trips);
        std::thread::spawn(move || {
            pin(1);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let count = Rc::new(std::cell::Cell::new(0u64));
                for _ in 0..n {
                    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
                    let _ = stream.set_nodelay(true);
                    net::enable_timestamps(&stream);
                    let count = count.clone();
                    tokio::task::spawn_local(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut stream = stream;
                        for _ in 0..round_trips {
                            let mut byte = [0u8; 1];
                            if stream.read_exact(&mut byte).await.is_err() || stream.write_all(&byte).await.is_err() {
                                return;
                            }
                        }
                        while let Ok(Some(n)) = net::recv(&stream, |d, _ts| d.len()).await {
                            count.set(count.get() + n as u64);
                        }
                    });
                }
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    received.store(count.get(), Ordering::Relaxed);
                }
            });
        })
    };

    pin(0);
    let mut socks: Vec<TcpStream> = (0..args.viewers)
        .map(|_| listener.accept().map(|(s, _)| s))
        .collect::<Result<_, _>>()?;
    for mut s in &socks {
        s.set_nodelay(true)?;
        for _ in 0..args.round_trips {
            let mut byte = [1u8];
            s.write_all(&byte)?;
            s.read_exact(&mut byte)?;
        }
        setsockopt(s, sockopt::SndBuf, &args.sndbuf)?;
        s.set_nonblocking(true)?;
    }
    let frame = vec![0x5au8; args.frame_bytes];
    let part = args.frame_bytes.div_ceil(args.writes_per_frame);
    let interval = Duration::from_secs(1) / args.fps;
    let warmup = Duration::from_secs(3);
    let start = Instant::now();
    let (mut cpu0, mut bytes0, mut t0) = (0.0, 0, start);
    let (mut writes, mut blocked) = (0u64, 0u64);
    let mut next = start;
    let mut measuring = false;
    loop {
        let now = Instant::now();
        if !measuring && now >= start + warmup {
            measuring = true;
            (cpu0, bytes0, t0) = (thread_cpu_secs(), received.load(Ordering::Relaxed), now);
            writes = 0;
        }
        if measuring && now >= t0 + Duration::from_secs(args.secs) {
            break;
        }
        for s in socks.iter_mut() {
            for chunk in frame.chunks(part) {
                writes += 1;
                if s.write(chunk).is_err() {
                    blocked += 1;
                }
            }
        }
        next += interval;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let cpu = thread_cpu_secs() - cpu0;
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(100));
    let bytes = received.load(Ordering::Relaxed) - bytes0;
    stop.store(true, Ordering::Relaxed);
    let gb = bytes as f64 / 1e9;
    println!(
        "{} viewers, {} writes/s/viewer of {} B: writer {:.2} CPU s in {:.1} s ({:.0}% of a core), {:.2} GB received, {:.3} CPU s/GB, {:.1} µs per write, {} writes blocked",
        args.viewers,
        writes as f64 / secs / args.viewers as f64,
        part,
        cpu,
        secs,
        cpu / secs * 100.0,
        gb,
        cpu / gb,
        cpu / writes as f64 * 1e6,
        blocked
    );
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "floor": true,
            "viewers": args.viewers,
            "round_trips": args.round_trips,
            "writes_per_frame": args.writes_per_frame,
            "cpu_seconds": cpu,
            "cpu_utilisation": cpu / secs,
            "gb": gb,
            "cpu_seconds_per_gb": cpu / gb,
            "us_per_write": cpu / writes as f64 * 1e6,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    drop(socks);
    let _ = viewers.join();
    Ok(())
}
