//! A Multitrack publisher's tracks ≥ 1 never reach what viewers of the stream get.

use std::sync::Arc;

use bytes::Bytes;
use estuary_protocol::{Codec, MediaKind, Packet};
use tokio::sync::broadcast::error::TryRecvError;

use super::*;
use crate::config::StreamConfig;

/// Track 0 as plain H.264 and track 1 as `Multitrack | OneTrack`, as ffmpeg 9 sends them.
fn track0(ts: u32, body: &[u8]) -> Packet {
    Packet::from_flv_body(MediaKind::Video, ts, Bytes::copy_from_slice(body)).expect("track 0 packet")
}

fn track1(ts: u32, first: u8, packet_type: u8, data: &[u8]) -> Packet {
    let mut body = vec![first, packet_type];
    body.extend_from_slice(b"avc1");
    body.push(1);
    body.extend_from_slice(data);
    Packet::from_flv_body(MediaKind::Video, ts, Bytes::from(body)).expect("track 1 packet")
}

#[test]
fn tracks_above_0_are_counted_and_kept_out_of_headers_gop_and_ring() {
    let config = StreamConfig {
        audio_hold_ms: 0,
        ..StreamConfig::default()
    };
    let stream = Stream::new(StreamKey::new("live", "multitrack"), &config);
    stream.claim(1, CancellationToken::new()).expect("free");
    let (_, mut ring) = stream.subscribe();

    let record0 = [0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x0a, 0xff, 0xe1, 0, 0];
    assert!(stream.publish(1, track0(0, &record0)));
    assert!(stream.publish(1, track1(0, 0x96, 0x00, &[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0])));
    assert!(stream.publish(1, track0(0, &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65])));
    assert!(stream.publish(1, track1(0, 0x96, 0x03, &[0, 0, 0, 1, 0x65])));
    assert!(stream.publish(1, track0(66, &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41])));
    assert!(stream.publish(1, track1(66, 0xa6, 0x03, &[0, 0, 0, 1, 0x41])));

    let mut on_ring = Vec::new();
    loop {
        match ring.try_recv() {
            Ok(batch) => on_ring.extend(batch.packets.iter().cloned()),
            Err(TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert_eq!(on_ring.len(), 3, "only track 0 is fanned out: {on_ring:?}");
    assert!(on_ring.iter().all(|p| p.track == 0));
    let headers = stream.headers();
    assert_eq!(headers.len(), 1);
    assert_eq!(&headers[0].payload[..], &record0, "track 0's sequence header stays");
    let (snapshot, _) = stream.subscribe();
    assert!(snapshot.packets.iter().all(|p: &Arc<Packet>| p.track == 0));

    let extra = stream.extra_tracks();
    assert_eq!(extra.len(), 1);
    let t = &extra[0];
    assert_eq!(
        (t.kind, t.id, t.codec),
        (
            MediaKind::Video,
            1,
            Codec::Video(estuary_protocol::flv::tag::VideoCodec::Avc)
        )
    );
    assert_eq!((t.packets, t.frames), (3, 2));
    assert_eq!(stream.track_counts(), (2, 0));
    assert_eq!(
        stream.stats.video_frames.load(Ordering::Relaxed),
        2,
        "frames of track 0"
    );
    assert_eq!(
        stream.stats.packets_in.load(Ordering::Relaxed),
        6,
        "every packet received"
    );

    assert!(stream.release(1));
    assert!(stream.extra_tracks().is_empty(), "a new publisher starts with none");
}
