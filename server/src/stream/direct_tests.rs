//! The direct fan-out's bookkeeping at the moments that matter: a viewer taking its socket
//! back while a pass is half done, a batch queued while a pass runs, a socket that takes only
//! part of a batch. Real loopback sockets; passes are stepped by hand.

use std::io::Read;
use std::net::TcpStream as StdStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use estuary_protocol::{MediaKind, Packet};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::direct::{DirectSink, SentCounter, SinkFormat, GROUP};
use super::{Stream, StreamKey};
use crate::config::Config;

fn frame(ts: u32, size: usize) -> Packet {
    let mut body = vec![if ts == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    body.resize(size, 0x41);
    Packet::from_flv_body(MediaKind::Video, ts, Bytes::from(body)).expect("video packet")
}

fn tag_len(size: usize) -> u64 {
    (11 + size + 4) as u64
}

struct Parked {
    sink: Arc<DirectSink>,
    /// The viewer's end, blocking reads.
    viewer: StdStream,
    sent: Arc<AtomicU64>,
}

impl Parked {
    /// Everything that has arrived at the viewer's end by now.
    fn arrived(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        self.viewer
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        while let Ok(n) = self.viewer.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }
}

/// A sink of `format` over a loopback connection, parked at the live edge of `stream`.
async fn park(stream: &Arc<Stream>, format: SinkFormat, sndbuf: Option<usize>) -> Parked {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let viewer = TcpStream::connect(listener.local_addr().expect("addr"))
        .await
        .expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    if let Some(size) = sndbuf {
        socket2::SockRef::from(&server)
            .set_send_buffer_size(size)
            .expect("SO_SNDBUF");
        socket2::SockRef::from(&viewer)
            .set_recv_buffer_size(size)
            .expect("SO_RCVBUF");
    }
    let (_, write) = server.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let counter: SentCounter = {
        let sent = Arc::clone(&sent);
        Arc::new(move |n| {
            sent.fetch_add(n, Ordering::Relaxed);
        })
    };
    let sink = DirectSink::new(Arc::new(write), format, counter);
    let (snapshot, ring) = stream.subscribe();
    assert!(stream.park(&sink, ring, snapshot.seq).is_ok(), "parks at the live edge");
    let viewer = viewer.into_std().expect("std socket");
    viewer.set_nonblocking(false).expect("blocking");
    Parked { sink, viewer, sent }
}

fn published() -> Arc<Stream> {
    let stream = Arc::new(Stream::new(StreamKey::new("live", "direct"), &Config::default().stream));
    stream.claim(1, CancellationToken::new()).expect("claim");
    stream.publish(1, frame(0, 100)); // batch 1: nobody parked yet
    stream
}

/// More than one group of sockets, so a pass can be stopped half way.
const SINKS: usize = GROUP + 8;

#[tokio::test]
async fn a_viewer_leaving_mid_pass_gets_the_batch_it_was_not_written_and_the_ring_after_it() {
    let stream = published();
    let mut parked = Vec::new();
    for _ in 0..SINKS {
        parked.push(park(&stream, SinkFormat::Flv, None).await);
    }
    let (ok, pass) = stream.put(1, frame(33, 1000)); // batch 2
    assert!(ok);
    let mut pass = pass.expect("sockets are parked: a pass to run");
    assert!(pass.step(), "the first group is written, more to go");

    // Not reached yet: batch 2 comes back as bytes to write first.
    let late = stream.unpark(&parked[SINKS - 1].sink);
    assert_eq!(late.seq, 2);
    let bytes: Vec<u8> = late.unsent.bytes.iter().flat_map(|b| b.to_vec()).collect();
    assert_eq!(bytes, frame(33, 1000).flv_tag().to_vec());
    assert_eq!(late.unsent.media, tag_len(1000));
    // Reached already: nothing to write, and nothing written twice.
    let early = stream.unpark(&parked[0].sink);
    assert_eq!(early.seq, 2);
    assert!(early.unsent.bytes.is_empty());

    pass.run();
    assert_eq!(stream.parked_count(), SINKS - 2);
    stream.publish(1, frame(66, 1000)); // batch 3
    for mut returned in [late, early] {
        let next = returned.ring.try_recv().expect("the ring continues after batch 2");
        assert_eq!(next.seq, 3);
    }
    // Those that stayed got batches 2 and 3 once each; the leavers only what preceded.
    let both: Vec<u8> = [frame(33, 1000), frame(66, 1000)]
        .iter()
        .flat_map(|p| p.flv_tag().to_vec())
        .collect();
    for p in parked.iter_mut().take(SINKS - 1).skip(1) {
        assert_eq!(p.arrived(), both);
        assert_eq!(p.sent.load(Ordering::Relaxed), 2 * tag_len(1000));
    }
    assert_eq!(parked[0].arrived(), frame(33, 1000).flv_tag().to_vec());
    assert_eq!(
        parked[SINKS - 1].sent.load(Ordering::Relaxed),
        0,
        "it wrote batch 2 itself"
    );
}

#[tokio::test]
async fn a_batch_published_during_a_pass_is_written_by_it_in_order() {
    let stream = published();
    let mut parked = Vec::new();
    for _ in 0..SINKS {
        parked.push(park(&stream, SinkFormat::ChunkedFlv, None).await);
    }
    let (_, pass) = stream.put(1, frame(33, 1000)); // batch 2
    let mut pass = pass.expect("a pass to run");
    // Another flusher while the pass runs only queues its batch.
    let (ok, second) = stream.put(1, frame(66, 2000)); // batch 3
    assert!(ok);
    assert!(second.is_none(), "the running pass writes it");
    assert!(pass.step());

    let late = stream.unpark(&parked[SINKS - 1].sink);
    assert_eq!(late.seq, 3, "both queued batches come back with it");
    assert_eq!(late.unsent.bytes.len(), 2);
    assert_eq!(late.unsent.media, tag_len(1000) + tag_len(2000));
    let early = stream.unpark(&parked[0].sink);
    assert_eq!(early.seq, 3);
    assert_eq!(early.unsent.bytes.len(), 1, "batch 3 only: batch 2 was written");
    pass.run();

    let expected = [frame(33, 1000), frame(66, 2000)]
        .iter()
        .flat_map(|p| {
            let tag = p.flv_tag();
            let mut chunk = format!("{:x}\r\n", tag.len()).into_bytes();
            chunk.extend_from_slice(tag);
            chunk.extend_from_slice(b"\r\n");
            chunk
        })
        .collect::<Vec<u8>>();
    for p in parked.iter_mut().take(SINKS - 1).skip(1) {
        assert_eq!(p.arrived(), expected, "batches 2 then 3, once each");
    }
    for mut returned in [late, early] {
        assert!(returned.ring.try_recv().is_err(), "nothing after batch 3 yet");
    }
}

#[tokio::test]
async fn only_what_a_full_socket_took_counts_as_sent() {
    for format in [SinkFormat::Flv, SinkFormat::ChunkedFlv] {
        let stream = published();
        let mut p = park(&stream, format, Some(4096)).await;
        stream.publish(1, frame(33, 400_000)); // far more than the socket takes
        assert_eq!(stream.parked_count(), 0, "{format:?}: handed back");
        let returned = stream.unpark(&p.sink);
        let arrived = p.arrived();
        let framing = if format == SinkFormat::ChunkedFlv {
            format!("{:x}\r\n", tag_len(400_000)).len() as u64
        } else {
            0
        };
        let sent = p.sent.load(Ordering::Relaxed);
        assert_eq!(sent, arrived.len() as u64 - framing, "{format:?}: counted what arrived");
        assert_eq!(
            sent + returned.unsent.media,
            tag_len(400_000),
            "{format:?}: the rest is the player's"
        );
    }
}
