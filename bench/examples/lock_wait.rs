//! What a large fan-out costs the rest of the server in locks, measured in one process:
//! stream A's publisher fans out to `VIEWERS` parked loopback sockets (30 frames of 10 KB a
//! second, on its own thread and runtime, as a publisher's connection task does; with
//! `Stream::publish`, which every commit has, so the same file measures older builds), their
//! other ends
//! drained on a second thread, while a third thread times, one after the other, what a join,
//! a leave, a claim and an API listing do on stream B and on A's counters:
//!
//! - `join+leave B`: a viewer subscribes to B (snapshot and ring) and goes away;
//! - `claim+release B`: a publisher takes B and leaves it;
//! - `list A`: what `/api/v1/streams` reads of A (viewers, parked, GOP bytes, the publisher).
//!
//! Run: `cargo run --release -p estuary-bench --example lock_wait -- [VIEWERS] [SECONDS]`
//! (defaults 2000 and 10). With 0 viewers it gives the quiet baseline. The operations' times
//! include any preemption of the measuring thread by the other two (the machine has two
//! cores), which is what the tail shows; the median is the lock cost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use estuary::config::Config;
use estuary::stream::{DirectSink, SentCounter, SinkFormat, Stream, StreamKey, Subscriber};
use estuary_protocol::{MediaKind, Packet};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const FRAME_BYTES: usize = 10_000;

fn frame(n: u32) -> Packet {
    let key = n.is_multiple_of(30);
    let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    body.resize(FRAME_BYTES, 0x41);
    Packet::from_flv_body(MediaKind::Video, n * 33, Bytes::from(body)).expect("video packet")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let viewers: usize = args.next().map_or(2000, |a| a.parse().expect("VIEWERS"));
    let seconds: u64 = args.next().map_or(10, |a| a.parse().expect("SECONDS"));
    let config = Arc::new(Config::default());
    let a = Arc::new(Stream::new(StreamKey::new("live", "a"), &config.stream));
    let b = Arc::new(Stream::new(StreamKey::new("live", "b"), &config.stream));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(3));

    // The listener's address goes from the fan-out thread to the drain thread.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let drain = {
        let (stop, ready) = (Arc::clone(&stop), Arc::clone(&ready));
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let addr = addr_rx.recv().expect("listener address");
                let mut readers = Vec::new();
                for _ in 0..viewers {
                    let mut s = TcpStream::connect(addr).await.expect("connect");
                    let stop = Arc::clone(&stop);
                    readers.push(tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while !stop.load(Ordering::Relaxed) {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {}
                            }
                        }
                    }));
                }
                tokio::task::spawn_blocking(move || ready.wait())
                    .await
                    .expect("barrier");
                for r in readers {
                    let _ = r.await;
                }
            })
        })
    };
    let fanout = {
        let (a, config, stop, sent, ready) = (
            Arc::clone(&a),
            Arc::clone(&config),
            Arc::clone(&stop),
            Arc::clone(&sent),
            Arc::clone(&ready),
        );
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).expect("address");
                a.claim(1, CancellationToken::new()).expect("claim A");
                // A keyframe first: a viewer parks once it has had the stream up to the edge.
                a.publish(1, frame(0));
                let mut parked = Vec::new();
                for _ in 0..viewers {
                    let (socket, _) = listener.accept().await.expect("accept");
                    let (_, write) = socket.into_split();
                    let counter: SentCounter = {
                        let sent = Arc::clone(&sent);
                        Arc::new(move |n| {
                            sent.fetch_add(n, Ordering::Relaxed);
                        })
                    };
                    let sink = DirectSink::new(Arc::new(write), SinkFormat::Flv, counter);
                    let mut viewer = Subscriber::new(Arc::clone(&a), &config.play);
                    while let Some(Ok(_)) = viewer.try_recv() {}
                    assert!(viewer.park(&sink), "parks at the live edge");
                    parked.push((viewer, sink));
                }
                tokio::task::spawn_blocking(move || ready.wait())
                    .await
                    .expect("barrier");
                let mut tick = tokio::time::interval(Duration::from_millis(33));
                let mut n = 1;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    a.publish(1, frame(n));
                    n += 1;
                }
                parked.len()
            })
        })
    };

    ready.wait();
    let measure = runtime();
    let mut joins = Vec::new();
    let mut claims = Vec::new();
    let mut lists = Vec::new();
    let started = Instant::now();
    let mut listed = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        measure.block_on(async {
            let t = Instant::now();
            let viewer = Subscriber::new(Arc::clone(&b), &config.play);
            drop(viewer);
            joins.push(t.elapsed().as_nanos() as u64);

            let t = Instant::now();
            b.claim(2, CancellationToken::new()).expect("claim B");
            b.release(2);
            claims.push(t.elapsed().as_nanos() as u64);

            let t = Instant::now();
            listed += a.subscriber_count() + a.parked_count() + a.gop_bytes() + usize::from(a.publisher().is_some());
            lists.push(t.elapsed().as_nanos() as u64);
        });
        std::thread::sleep(Duration::from_micros(500));
    }
    stop.store(true, Ordering::Relaxed);
    let parked = fanout.join().expect("fan-out thread");
    // Closing A's sockets ends the drain's reads.
    drop(a);
    let _ = drain.join();

    let gb = sent.load(Ordering::Relaxed) as f64 / 1e9;
    println!("viewers {parked}, {seconds} s, fanned out {gb:.2} GB ({listed} listed)");
    println!(
        "{:<18} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "operation", "n", "p50 µs", "p99 µs", "p99.9 µs", "max µs"
    );
    for (name, mut times) in [("join+leave B", joins), ("claim+release B", claims), ("list A", lists)] {
        times.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        println!(
            "{:<18} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>10.1}",
            name,
            times.len(),
            us(percentile(&times, 0.5)),
            us(percentile(&times, 0.99)),
            us(percentile(&times, 0.999)),
            us(*times.last().expect("samples"))
        );
    }
}
