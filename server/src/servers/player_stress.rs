//! Parking under load: many players at once park with the stream, are handed back when
//! their viewer stops reading, take their socket back and park again when it reads fast, or
//! are dropped outright (a kick), while the publisher streams and new players join. Every
//! viewer must get a gapless, duplicate-free run of what was published, in order; the ones
//! still there at the end get it up to the last packet; and nothing is left parked.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use estuary_protocol::{MediaKind, Packet};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::player::{Framing, LivePlayer};
use crate::config::Config;
use crate::stream::{SentCounter, SinkFormat, Stream, StreamKey, Subscriber};

/// Video frames published (33 ms apart, a keyframe every 30, audio after every other one).
const FRAMES: u32 = 900;
/// Players at the start; as many more join while the stream runs.
const PLAYERS: usize = 24;

fn config() -> Config {
    let mut config = Config::default();
    // This test checks delivery, not the lag policy: nobody may be skipped ahead or lapped.
    config.play.max_lag_ms = 3_600_000;
    config.play.slow_disconnect_ms = 3_600_000;
    config.play.wait_for_publisher_ms = 300;
    config.stream.queue_packets = 8192;
    config
}

fn video(i: u32) -> Packet {
    let key = i.is_multiple_of(30);
    // Sizes vary so batches split at different points in full sockets.
    let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    body.resize(500 + (i as usize * 997) % 9000, (i % 251) as u8);
    Packet::from_flv_body(MediaKind::Video, i * 33, Bytes::from(body)).expect("video packet")
}

fn audio(i: u32) -> Packet {
    let mut body = vec![0xAF, 1];
    body.resize(300, (i % 251) as u8);
    Packet::from_flv_body(MediaKind::Audio, i * 33 + 1, Bytes::from(body)).expect("audio packet")
}

/// (tag type, timestamp) of every packet, in publishing order.
fn published() -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    for i in 0..FRAMES {
        out.push((9, i * 33));
        if i.is_multiple_of(2) {
            out.push((8, i * 33 + 1));
        }
    }
    out
}

/// Undoes HTTP/1.1 chunked framing, stopping at a truncated chunk.
fn dechunk(mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = input.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&input[..eol]).expect("size line"), 16).expect("hex size");
        let data = &input[eol + 2..];
        if data.len() < size + 2 {
            out.extend_from_slice(&data[..data.len().min(size)]);
            break;
        }
        assert_eq!(&data[size..size + 2], b"\r\n", "chunk trailer");
        out.extend_from_slice(&data[..size]);
        input = &data[size + 2..];
    }
    out
}

/// (tag type, timestamp) of the whole FLV tags in `bytes` (a truncated last one is left out),
/// checking each tag's framing.
fn tags(bytes: &[u8]) -> Vec<(u8, u32)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 11 {
        let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
        if rest.len() < 15 + size {
            break;
        }
        let ts = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
        let prev = u32::from_be_bytes([rest[11 + size], rest[12 + size], rest[13 + size], rest[14 + size]]) as usize;
        assert_eq!(prev, 11 + size, "PreviousTagSize after tag {} at {ts}", out.len());
        out.push((rest[0], ts));
        rest = &rest[15 + size..];
    }
    out
}

/// A reader that alternates between reading fast and not reading at all (so the server's
/// socket fills and the stream hands it back), until the connection ends.
async fn flappy_reader(mut socket: TcpStream, seed: u64) -> Vec<u8> {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Fast: read whatever comes for a while.
        let fast = tokio::time::sleep(Duration::from_millis(5 + next(60)));
        tokio::pin!(fast);
        loop {
            tokio::select! {
                _ = &mut fast => break,
                read = socket.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                },
            }
        }
        // Slow: read nothing.
        tokio::time::sleep(Duration::from_millis(next(200))).await;
    }
}

struct Watcher {
    format: SinkFormat,
    player: JoinHandle<()>,
    reader: JoinHandle<Vec<u8>>,
    kicked: bool,
}

/// A player of `stream` on a loopback connection with small buffers, driven by its own task.
async fn watch(stream: &Arc<Stream>, config: &Config, n: usize) -> Watcher {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let viewer = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    socket2::SockRef::from(&server)
        .set_send_buffer_size(16 * 1024)
        .expect("SO_SNDBUF");
    socket2::SockRef::from(&viewer)
        .set_recv_buffer_size(32 * 1024)
        .expect("SO_RCVBUF");
    let (_, write) = server.into_split();
    let format = if n.is_multiple_of(2) {
        SinkFormat::Flv
    } else {
        SinkFormat::ChunkedFlv
    };
    let subscriber = Subscriber::new(Arc::clone(stream), &config.play);
    let on_sent: SentCounter = Arc::new(|_| {});
    let mut player = LivePlayer::new(
        subscriber,
        Arc::new(write),
        Framing::Shared(format),
        on_sent,
        Duration::from_secs(3600),
        CancellationToken::new(),
    );
    let player = tokio::spawn(async move {
        while player.ready().await.is_ok() {
            if player.write(None).await.is_err() {
                break;
            }
        }
    });
    let reader = tokio::spawn(flappy_reader(viewer, n as u64 + 1));
    Watcher {
        format,
        player,
        reader,
        kicked: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parking_handing_back_and_kicking_under_load_lose_and_repeat_nothing() {
    let config = config();
    let stream = Arc::new(Stream::new(StreamKey::new("live", "stress"), &config.stream));
    stream.claim(1, CancellationToken::new()).expect("claim");
    let mut watchers = Vec::new();
    for n in 0..PLAYERS {
        watchers.push(watch(&stream, &config, n).await);
    }
    let publisher = {
        let stream = Arc::clone(&stream);
        tokio::spawn(async move {
            for i in 0..FRAMES {
                assert!(stream.publish_yielding(1, video(i)).await);
                if i.is_multiple_of(2) {
                    assert!(stream.publish_yielding(1, audio(i)).await);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // While it publishes: kick one player and let a new one join, again and again.
    let mut kicks = 0;
    let mut parked_seen = 0;
    let mut n = PLAYERS;
    while !publisher.is_finished() {
        tokio::time::sleep(Duration::from_millis(40)).await;
        parked_seen = parked_seen.max(stream.parked_count());
        if n < 2 * PLAYERS {
            // Spread over old and new players, skipping the ones kicked already.
            let len = watchers.len();
            if let Some(victim) = (0..len).map(|k| (n * 13 + k) % len).find(|&v| !watchers[v].kicked) {
                watchers[victim].player.abort();
                watchers[victim].kicked = true;
                kicks += 1;
            }
            watchers.push(watch(&stream, &config, n).await);
            n += 1;
        }
    }
    publisher.await.expect("publisher");
    stream.release(1);
    assert!(parked_seen > 0, "players parked with the stream");
    assert!(kicks >= PLAYERS / 2, "only {kicks} kicks happened");

    let all = published();
    let mut finished = 0;
    for (i, w) in watchers.into_iter().enumerate() {
        let _ = w.player.await;
        let bytes = w.reader.await.expect("reader");
        let body = if w.format == SinkFormat::ChunkedFlv {
            dechunk(&bytes)
        } else {
            bytes
        };
        let got = tags(&body);
        let Some(&first) = got.first() else {
            assert!(w.kicked, "viewer {i} got nothing");
            continue;
        };
        let start = all
            .iter()
            .position(|t| *t == first)
            .unwrap_or_else(|| panic!("viewer {i}: first tag {first:?} was never published"));
        let expected = &all[start..(start + got.len()).min(all.len())];
        if let Some(at) = (0..got.len()).find(|&k| expected.get(k) != Some(&got[k])) {
            panic!(
                "viewer {i} ({:?}, kicked: {}): tag {at} is {:?}, expected {:?} (a gap or a repeat)",
                w.format,
                w.kicked,
                got[at],
                expected.get(at)
            );
        }
        if !w.kicked {
            assert_eq!(got.last(), all.last(), "viewer {i} did not get to the end");
            finished += 1;
        }
    }
    assert!(finished >= PLAYERS / 2, "only {finished} viewers stayed to the end");
    assert_eq!(stream.parked_count(), 0, "sockets left parked with the stream");
    assert_eq!(stream.subscriber_count(), 0, "subscribers left on the stream");
}
