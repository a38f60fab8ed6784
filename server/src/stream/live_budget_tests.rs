//! The stream's byte budgets for held packets and the ring (the GOP cache's are in `gop.rs`).

use std::sync::Arc;

use bytes::Bytes;
use estuary_protocol::{MediaKind, Packet};
use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::config::{PlayConfig, StreamConfig};
use crate::stream::Subscriber;

fn packet(kind: MediaKind, dts: u64, keyframe: bool, bytes: usize) -> Packet {
    let mut p = Packet::new(kind, dts, Bytes::from(vec![0u8; bytes]));
    p.keyframe = keyframe;
    p
}

fn live_stream(config: StreamConfig) -> Stream {
    let stream = Stream::new(StreamKey::new("live", "budget"), &config);
    stream
        .claim(1, CancellationToken::new())
        .expect("a fresh stream is free");
    stream
}

/// Every batch waiting for `ring`.
fn drain(ring: &mut broadcast::Receiver<Arc<Batch>>) -> Vec<Arc<Batch>> {
    let mut out = Vec::new();
    loop {
        match ring.try_recv() {
            Ok(b) => out.push(b),
            Err(TryRecvError::Lagged(_)) => {}
            Err(_) => return out,
        }
    }
}

fn batch_bytes(batch: &Batch) -> usize {
    batch.packets.iter().map(|p| budget::cost(p)).sum()
}

#[test]
fn frozen_audio_is_held_no_longer_than_its_byte_budget() {
    let max = 20_000;
    let stream = live_stream(StreamConfig {
        audio_hold_ms: 50,
        hold_max_bytes: max,
        ..StreamConfig::default()
    });
    let (_, mut ring) = stream.subscribe();
    // A video frame makes it a stream with video, whose audio waits for the next frame;
    // then only audio comes, every packet at the same timestamp, so the hold never times out.
    assert!(stream.publish(1, packet(MediaKind::Video, 0, true, 500)));
    assert_eq!(drain(&mut ring).len(), 1);
    let audio = 1000;
    for _ in 0..1000 {
        assert!(stream.publish(1, packet(MediaKind::Audio, 10, false, audio)));
    }
    let batches = drain(&mut ring);
    let per_batch = max / budget::cost(&packet(MediaKind::Audio, 0, false, audio));
    let still_held = (1000 - 1) % per_batch + 1;
    assert_eq!(
        batches.len(),
        (1000 - still_held) / per_batch,
        "held audio went out every {per_batch} packets"
    );
    for batch in &batches {
        assert!(batch_bytes(batch) <= max, "a batch of {} bytes", batch_bytes(batch));
    }
    // The rest is still held, within the budget, and goes out with the next frame.
    assert!(stream.publish(1, packet(MediaKind::Video, 10, false, 500)));
    let last = drain(&mut ring);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].packets.len(), still_held + 1);
}

#[tokio::test]
async fn a_reader_that_stops_reading_keeps_no_more_than_the_ring_budget() {
    let max = 1024 * 1024;
    let stream = Arc::new(live_stream(StreamConfig {
        ring_max_bytes: max,
        ..StreamConfig::default()
    }));
    let play = PlayConfig {
        max_lag_ms: u64::MAX / 2,
        ..PlayConfig::default()
    };
    // A viewer that stops reading, and one that reads after every frame.
    let mut stuck = Subscriber::new(Arc::clone(&stream), &play);
    let (_, mut live) = stream.subscribe();
    let frame = 100_000;
    let mut delivered = 0;
    for i in 0..500u64 {
        assert!(stream.publish(1, packet(MediaKind::Video, i * 40, i % 50 == 0, frame)));
        assert!(
            stream.ring_bytes() <= max,
            "frame {i}: the ring holds {} bytes",
            stream.ring_bytes()
        );
        delivered += drain(&mut live).iter().filter(|b| !b.is_filler()).count();
    }
    assert_eq!(delivered, 500, "the reader at the live edge lost nothing");
    // The stuck viewer lost what the budget released (the last keyframe with it) and
    // resumes at the next keyframe.
    assert!(stuck.try_recv().is_none(), "nothing decodable is left for it");
    assert!(stream.publish(1, packet(MediaKind::Video, 500 * 40, true, frame)));
    let first = stuck
        .try_recv()
        .expect("the stuck viewer has packets waiting")
        .expect("not ended");
    assert!(first.keyframe, "resumed at a keyframe");
    assert!(stuck.dropped > 0);
}
