use super::*;
use bytes::Bytes;
use estuary_protocol::MediaKind;

fn hub_with(play: crate::config::PlayConfig) -> Hub {
    let mut config = Config {
        play,
        ..Config::default()
    };
    config.stream.queue_packets = 64;
    Hub::new(Arc::new(config))
}

fn hub() -> Hub {
    hub_with(Default::default())
}

fn video(ts: u32, keyframe: bool) -> Packet {
    let body = if keyframe {
        vec![0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]
    } else {
        vec![0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41]
    };
    Packet::from_flv_body(MediaKind::Video, ts, Bytes::from(body)).unwrap()
}

fn video_header() -> Packet {
    Packet::from_flv_body(
        MediaKind::Video,
        0,
        Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
    )
    .unwrap()
}

fn audio(ts: u32) -> Packet {
    Packet::from_flv_body(MediaKind::Audio, ts, Bytes::from_static(&[0xaf, 1, 0x21, 0x00])).unwrap()
}

fn key() -> StreamKey {
    StreamKey::new("live", "cam")
}

#[tokio::test]
async fn two_viewers_get_the_same_allocation_for_a_packet() {
    let hub = hub();
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    let mut a = hub.subscribe(&key());
    let mut b = hub.subscribe(&key());
    publisher.send(video(0, true));
    let (pa, pb) = (a.recv().await.unwrap(), b.recv().await.unwrap());
    assert!(Arc::ptr_eq(&pa, &pb), "one shared packet");
    assert_eq!(pa.payload.as_ptr(), pb.payload.as_ptr());
    assert_eq!(
        pa.rtmp_chunks(4096).as_ptr(),
        pb.rtmp_chunks(4096).as_ptr(),
        "RTMP chunks built once"
    );
    assert_eq!(pa.flv_tag().as_ptr(), pb.flv_tag().as_ptr(), "FLV tag built once");
}

#[tokio::test]
async fn joining_viewer_starts_with_headers_then_the_gop_from_its_keyframe() {
    let hub = hub();
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    publisher.send(video_header());
    publisher.send(video(0, false)); // before any keyframe: never cached
    publisher.send(video(40, true));
    publisher.send(audio(50));
    publisher.send(video(80, false));
    let mut viewer = hub.subscribe(&key());
    let first = viewer.recv().await.unwrap();
    assert!(first.seq_header);
    let second = viewer.recv().await.unwrap();
    assert!(second.keyframe, "first frame after headers is the keyframe");
    assert!(viewer.recv().await.unwrap().is_audio());
    assert!(!viewer.recv().await.unwrap().keyframe);
    assert!(viewer.try_recv().is_none());
}

#[tokio::test]
async fn second_publisher_is_refused_but_takes_over_an_idle_one() {
    let mut config = Config::default();
    config.rtmp.publisher_idle_timeout_ms = 100;
    let hub = Hub::new(Arc::new(config));
    let kick = CancellationToken::new();
    let first = hub.claim(&key(), 1, kick.clone()).unwrap();
    first.send(video(0, true));
    assert!(matches!(
        hub.claim(&key(), 2, CancellationToken::new()),
        Err(ClaimError::Busy(_))
    ));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = hub.claim(&key(), 2, CancellationToken::new()).unwrap();
    assert!(kick.is_cancelled(), "the idle publisher is told to go");
    assert!(
        !first.send(video(40, false)),
        "the replaced publisher can no longer publish"
    );
    drop(first); // must not end the new publisher's claim
    assert_eq!(second.stream().publisher(), Some(2));
}

#[tokio::test]
async fn viewer_keeps_its_subscription_across_a_publisher_reconnect() {
    let hub = hub();
    let mut viewer = hub.subscribe(&key());
    let p1 = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    p1.send(video(1000, true));
    p1.send(video(1040, false));
    drop(p1);
    let p2 = hub.claim(&key(), 2, CancellationToken::new()).unwrap();
    p2.send(video(0, true));
    let ts: Vec<u64> = [viewer.recv().await, viewer.recv().await, viewer.recv().await]
        .into_iter()
        .map(|p| p.unwrap().dts)
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] < w[1]),
        "monotonic across the reconnect: {ts:?}"
    );
    assert!(hub.get(&key()).is_some());
}

#[tokio::test]
async fn lagging_viewer_skips_to_the_next_keyframe() {
    let hub = hub_with(crate::config::PlayConfig {
        max_lag_ms: 500,
        ..Default::default()
    });
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    let mut viewer = hub.subscribe(&key());
    publisher.send(video(0, true));
    for i in 1..30 {
        publisher.send(video(i * 40, false)); // viewer reads nothing meanwhile
    }
    publisher.send(video(1200, true));
    publisher.send(video(1240, false));
    let mut got = Vec::new();
    while let Some(p) = viewer.try_recv() {
        got.push(p.unwrap());
    }
    let dts: Vec<u64> = got.iter().map(|p| p.dts).collect();
    assert_eq!(
        dts,
        vec![1200, 1240],
        "frames over max_lag behind are dropped up to the next keyframe"
    );
    assert!(got[0].keyframe);
    assert_eq!(viewer.dropped, 30);
}

#[tokio::test]
async fn ring_overflow_resyncs_with_headers_and_a_keyframe() {
    let hub = hub();
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    publisher.send(video_header());
    let mut viewer = hub.subscribe(&key());
    viewer.recv().await.unwrap(); // header from the snapshot
    for i in 0..200u32 {
        publisher.send(video(i * 2, i % 50 == 0));
    }
    let first = viewer.try_recv().unwrap().unwrap();
    assert!(first.seq_header, "headers are re-sent after losing packets");
    let next = viewer.try_recv().unwrap().unwrap();
    assert!(next.keyframe);
}

#[tokio::test]
async fn stream_is_forgotten_when_nobody_uses_it() {
    let hub = hub();
    let viewer = hub.subscribe(&key());
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    drop(publisher);
    assert!(hub.get(&key()).is_some(), "a viewer is still waiting");
    drop(viewer);
    assert!(hub.get(&key()).is_none());
}

#[tokio::test]
async fn merge_write_gathers_frames_into_one_ring_entry() {
    let mut config = Config::default();
    config.stream.merge_write_ms = 200;
    let hub = Hub::new(Arc::new(config));
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    let mut viewer = hub.subscribe(&key());
    publisher.send(video(0, true));
    for i in 1..5 {
        publisher.send(video(i * 40, false));
    }
    assert!(viewer.try_recv().is_none(), "160 ms gathered: nothing sent yet");
    publisher.send(video(200, false)); // 200 ms gathered: the batch goes out
    let mut batch = Vec::new();
    viewer.recv_batch(&mut batch, 64).await.unwrap();
    let dts: Vec<u64> = batch.iter().map(|p| p.dts).collect();
    assert_eq!(dts, vec![0, 40, 80, 120, 160, 200]);
}
