//! The path with sources and viewers that are not RTMP connections: the media behaviour a
//! viewer sees (shared packets, join snapshot, lag policy, reconnects, takeover), outputs,
//! on-demand sources, and the HLS packager as an output.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use estuary_protocol::{MediaKind, Packet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::on_demand::SourceProvider;
use super::registry::Paths;
use super::source::Source;
use super::viewer::Viewer;
use super::Path;
use crate::config::Config;
use crate::hooks::{ClientInfo, HookSubject, Hooks, HooksConfig, ServerIdentity, StreamInfo};
use crate::outputs::{Output, OutputKind};
use crate::stream::{ClaimError, StreamKey, Subscriber};

/// Path ids from a counter of their own, as the server's would give them.
fn counter() -> super::registry::NextId {
    let next = std::sync::atomic::AtomicU64::new(1);
    Arc::new(move || next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

fn hooks() -> Hooks {
    Hooks::new(HooksConfig::default(), HashMap::new(), ServerIdentity::new("test")).unwrap()
}

fn subject(id: u64, key: &StreamKey) -> HookSubject {
    HookSubject {
        client: ClientInfo::new(id.to_string(), "127.0.0.1", key.app.clone()),
        stream: StreamInfo {
            stream: key.name.clone(),
            param: String::new(),
            stream_id: key.to_string(),
        },
    }
}

/// Sources and viewers of paths, the way a protocol server makes them (without admission).
struct Hub {
    paths: Paths,
}

/// A viewer's hold on a path and its reader of the stream.
struct TestViewer {
    subscriber: Subscriber,
    _viewer: Viewer,
}

impl std::ops::Deref for TestViewer {
    type Target = Subscriber;
    fn deref(&self) -> &Subscriber {
        &self.subscriber
    }
}

impl std::ops::DerefMut for TestViewer {
    fn deref_mut(&mut self) -> &mut Subscriber {
        &mut self.subscriber
    }
}

impl Hub {
    fn new(config: Arc<Config>) -> Hub {
        Hub::with_outputs(config, Vec::new())
    }

    fn with_outputs(config: Arc<Config>, kinds: Vec<Arc<dyn OutputKind>>) -> Hub {
        Hub {
            paths: Paths::new(
                config,
                hooks(),
                kinds,
                CancellationToken::new(),
                TaskTracker::new(),
                counter(),
            ),
        }
    }

    /// A source for `key`, replacing an idle one as a publish admission does.
    fn claim(&self, key: &StreamKey, id: u64, kick: CancellationToken) -> Result<Source, ClaimError> {
        let path = self.paths.path(key);
        path.evict_idle_source();
        Source::start(&path, id, kick, Some(subject(id, key)))
    }

    fn subscribe(&self, key: &StreamKey) -> TestViewer {
        let viewer = Viewer::join(&self.paths, self.paths.path(key), subject(0, key));
        TestViewer {
            subscriber: viewer.subscribe(&self.paths.config().play),
            _viewer: viewer,
        }
    }

    fn get(&self, key: &StreamKey) -> Option<Arc<Path>> {
        self.paths.get(key)
    }
}

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
    publisher.publish(video(0, true));
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
    publisher.publish(video_header());
    publisher.publish(video(0, false)); // before any keyframe: never cached
    publisher.publish(video(40, true));
    publisher.publish(audio(50));
    publisher.publish(video(80, false));
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
    first.publish(video(0, true));
    assert!(matches!(
        hub.claim(&key(), 2, CancellationToken::new()),
        Err(ClaimError::Busy(_))
    ));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = hub.claim(&key(), 2, CancellationToken::new()).unwrap();
    assert!(kick.is_cancelled(), "the idle publisher is told to go");
    assert!(
        !first.publish(video(40, false)),
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
    p1.publish(video(1000, true));
    p1.publish(video(1040, false));
    drop(p1);
    let p2 = hub.claim(&key(), 2, CancellationToken::new()).unwrap();
    p2.publish(video(0, true));
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
    publisher.publish(video(0, true));
    for i in 1..30 {
        publisher.publish(video(i * 40, false)); // viewer reads nothing meanwhile
    }
    publisher.publish(video(1200, true));
    publisher.publish(video(1240, false));
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

/// A publisher whose audio is stamped 3 s ahead of its video (more than `max_lag_ms`): a
/// viewer that keeps up gets every frame of both tracks; lag is measured on each track's own
/// clock, not against the track that runs furthest ahead.
#[tokio::test]
async fn audio_stamped_ahead_of_video_does_not_make_a_viewer_skip() {
    let hub = hub_with(crate::config::PlayConfig {
        max_lag_ms: 500,
        ..Default::default()
    });
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    let mut viewer = hub.subscribe(&key());
    let mut got = Vec::new();
    for i in 0..100u32 {
        publisher.publish(video(i * 40, i % 50 == 0));
        publisher.publish(audio(3000 + i * 40));
        while let Some(p) = viewer.try_recv() {
            got.push(p.unwrap());
        }
    }
    publisher.publish(video(4000, false)); // sends the audio held for it
    while let Some(p) = viewer.try_recv() {
        got.push(p.unwrap());
    }
    let frames = got.iter().filter(|p| p.is_video()).count();
    let sounds = got.iter().filter(|p| p.is_audio()).count();
    assert_eq!((frames, sounds), (101, 100), "every frame delivered");
    assert_eq!(viewer.dropped, 0);

    // The same holds with audio stamped 3 s behind video.
    let late_key = StreamKey::new("live", "late-audio");
    let publisher = hub.claim(&late_key, 2, CancellationToken::new()).unwrap();
    let mut viewer = hub.subscribe(&late_key);
    let mut delivered = 0;
    for i in 0..100u32 {
        publisher.publish(video(3000 + i * 40, i % 50 == 0));
        publisher.publish(audio(i * 40));
        while let Some(p) = viewer.try_recv() {
            p.unwrap();
            delivered += 1;
        }
    }
    publisher.publish(video(7000, false));
    while let Some(p) = viewer.try_recv() {
        p.unwrap();
        delivered += 1;
    }
    assert_eq!((delivered, viewer.dropped), (201, 0));
}

/// With audio stamped ahead of video, a viewer that really falls behind on video still
/// skips to the next keyframe.
#[tokio::test]
async fn viewer_behind_on_video_still_skips_when_audio_runs_ahead() {
    let hub = hub_with(crate::config::PlayConfig {
        max_lag_ms: 500,
        ..Default::default()
    });
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    let mut viewer = hub.subscribe(&key());
    for i in 0..30u32 {
        publisher.publish(video(i * 40, i == 0)); // viewer reads nothing meanwhile
        publisher.publish(audio(3000 + i * 40));
    }
    publisher.publish(video(1200, true));
    publisher.publish(audio(4200));
    let mut video_dts = Vec::new();
    while let Some(p) = viewer.try_recv() {
        let p = p.unwrap();
        if p.is_video() {
            video_dts.push(p.dts);
        }
    }
    assert_eq!(
        video_dts,
        vec![1200],
        "frames over max_lag behind are dropped up to the next keyframe"
    );
    assert!(viewer.dropped > 0);
}

#[tokio::test]
async fn ring_overflow_resyncs_with_headers_and_a_keyframe() {
    let hub = hub();
    let publisher = hub.claim(&key(), 1, CancellationToken::new()).unwrap();
    publisher.publish(video_header());
    let mut viewer = hub.subscribe(&key());
    viewer.recv().await.unwrap(); // header from the snapshot
    for i in 0..200u32 {
        publisher.publish(video(i * 2, i % 50 == 0));
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
    publisher.publish(video(0, true));
    for i in 1..5 {
        publisher.publish(video(i * 40, false));
    }
    assert!(viewer.try_recv().is_none(), "160 ms gathered: nothing sent yet");
    publisher.publish(video(200, false)); // 200 ms gathered: the batch goes out
    let mut batch = Vec::new();
    viewer.recv_batch(&mut batch, 64).await.unwrap();
    let dts: Vec<u64> = batch.iter().map(|p| p.dts).collect();
    assert_eq!(dts, vec![0, 40, 80, 120, 160, 200]);
}

// ---- the path's own parts: a source that is not an RTMP connection, outputs, on demand ----

/// What a counting output saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Seen {
    started: usize,
    packets: usize,
    gaps: usize,
    gone: usize,
    ended: usize,
}

/// An output kind that counts everything its outputs are told.
struct Counting {
    seen: Arc<Mutex<Seen>>,
    grace: Duration,
    /// Given to every output it starts, when set.
    stop: Option<CancellationToken>,
}

struct CountingOutput {
    seen: Arc<Mutex<Seen>>,
    stop: Option<CancellationToken>,
}

impl Output for CountingOutput {
    fn packet(&mut self, _: &Arc<Packet>) {
        self.seen.lock().unwrap().packets += 1;
    }
    fn gap(&mut self) {
        self.seen.lock().unwrap().gaps += 1;
    }
    fn source_gone(&mut self) {
        self.seen.lock().unwrap().gone += 1;
    }
    fn end(&mut self) {
        self.seen.lock().unwrap().ended += 1;
    }
    fn stop_token(&self) -> Option<CancellationToken> {
        self.stop.clone()
    }
}

impl OutputKind for Counting {
    fn name(&self) -> &'static str {
        "count"
    }
    fn grace(&self) -> Duration {
        self.grace
    }
    fn start(&self, _: &StreamKey, _: Option<&HookSubject>) -> Option<Box<dyn Output>> {
        self.seen.lock().unwrap().started += 1;
        Some(Box::new(CountingOutput {
            seen: Arc::clone(&self.seen),
            stop: self.stop.clone(),
        }))
    }
}

fn counting(grace: Duration) -> (Hub, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let kind = Counting {
        seen: Arc::clone(&seen),
        grace,
        stop: None,
    };
    (
        Hub::with_outputs(Arc::new(Config::default()), vec![Arc::new(kind)]),
        seen,
    )
}

/// Waits (at most 5 s) until `f` holds.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

#[tokio::test]
async fn a_source_that_is_no_connection_feeds_viewers_and_outputs_through_the_path() {
    let (hub, seen) = counting(Duration::from_secs(5));
    let key = key();
    let mut viewer = hub.subscribe(&key);
    // A test's own feeder: no RTMP, no hook subject; it only ever calls publish.
    let path = hub.paths.path(&key);
    let source = Source::start(&path, 77, CancellationToken::new(), None).unwrap();
    assert!(path.is_live());
    assert_eq!(path.outputs(), vec!["count"], "outputs start with the source");
    for i in 0..10u32 {
        assert!(source.publish(video(i * 40, i % 5 == 0)));
    }
    for i in 0..10u32 {
        assert_eq!(viewer.recv().await.unwrap().dts, u64::from(i) * 40);
    }
    assert!(
        eventually(|| seen.lock().unwrap().packets == 10).await,
        "{:?}",
        seen.lock().unwrap()
    );
    assert_eq!(seen.lock().unwrap().started, 1);
}

#[tokio::test]
async fn outputs_carry_on_through_a_reconnect_within_their_grace_and_end_after_it() {
    let (hub, seen) = counting(Duration::from_millis(300));
    let key = key();
    let first = hub.claim(&key, 1, CancellationToken::new()).unwrap();
    first.publish(video(0, true));
    drop(first);
    assert!(eventually(|| seen.lock().unwrap().gone == 1).await);
    // Back within the grace period: the same output goes on.
    let second = hub.claim(&key, 2, CancellationToken::new()).unwrap();
    second.publish(video(0, true));
    assert!(eventually(|| seen.lock().unwrap().packets == 2).await);
    assert_eq!(seen.lock().unwrap().started, 1, "no second output for a reconnect");
    drop(second);
    // No source for longer than the grace period: the output ends, and the path with it.
    assert!(eventually(|| seen.lock().unwrap().ended == 1).await);
    assert!(
        eventually(|| hub.get(&key).is_none()).await,
        "nothing holds the path any more"
    );
    let third = hub.claim(&key, 3, CancellationToken::new()).unwrap();
    assert_eq!(
        seen.lock().unwrap().started,
        2,
        "a new source after the grace gets a new output"
    );
    drop(third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_starting_as_the_grace_runs_out_still_gets_its_outputs() {
    // The HLS packager once ended a moment after a new publisher had found it still running,
    // so that publisher went without HLS. Start sources right around the end of the grace
    // period, many times: every one of them must reach a running output.
    let grace = Duration::from_millis(20);
    let (hub, seen) = counting(grace);
    let key = key();
    // Held so the path (and its Stream) stay the same across rounds.
    let _viewer = hub.subscribe(&key);
    for round in 0..60u64 {
        let source = hub.claim(&key, round + 1, CancellationToken::new()).unwrap();
        source.publish(video(0, true));
        let before = seen.lock().unwrap().packets;
        drop(source);
        tokio::time::sleep(grace - Duration::from_millis(3) + Duration::from_micros(100 * (round % 60))).await;
        let source = hub.claim(&key, 1000 + round, CancellationToken::new()).unwrap();
        source.publish(video(0, true));
        assert!(
            eventually(|| seen.lock().unwrap().packets > before).await,
            "round {round}: the new source's packet reached no output: {:?}",
            seen.lock().unwrap()
        );
        drop(source);
        assert!(eventually(|| hub.get(&key).unwrap().outputs().is_empty()).await);
    }
}

#[tokio::test]
async fn an_output_started_on_a_live_path_begins_at_the_gop_and_ends_when_told() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = CancellationToken::new();
    let kind = Counting {
        seen: Arc::clone(&seen),
        grace: Duration::from_secs(5),
        stop: Some(stop.clone()),
    };
    let config = Arc::new(Config::default());
    let hub = Hub::with_outputs(config, vec![Arc::new(kind)]);
    let key = key();
    let path = hub.paths.path(&key);
    assert_eq!(
        path.start_output("count"),
        super::outputs::StartNow::Declined,
        "no source yet"
    );
    let source = Source::start(&path, 1, CancellationToken::new(), None).unwrap();
    // Started with the source (the kind wants one for every source); end it by hand.
    assert!(eventually(|| path.outputs() == vec!["count"]).await);
    stop.cancel();
    assert!(eventually(|| seen.lock().unwrap().ended == 1).await);
    assert!(path.outputs().is_empty());
    source.publish(video(0, false));
    source.publish(video(40, true));
    source.publish(video(80, false));
    // Started by hand mid-stream: it gets the GOP from its keyframe.
    let before = seen.lock().unwrap().packets;
    assert_eq!(path.start_output("nothing"), super::outputs::StartNow::NoSuchKind);
    // The kind's token is cancelled already, so this output ends at once; what it got first
    // is the snapshot.
    assert_eq!(path.start_output("count"), super::outputs::StartNow::Started);
    assert!(eventually(|| seen.lock().unwrap().ended == 2).await);
    assert_eq!(seen.lock().unwrap().packets - before, 2, "the GOP from the keyframe");
    assert_eq!(seen.lock().unwrap().started, 2);
}

/// Starts a feeder task per request; counts starts and stops.
#[derive(Default)]
struct Feeder {
    paths: Mutex<Option<Paths>>,
    started: Mutex<u32>,
    stopped: Arc<Mutex<u32>>,
}

impl SourceProvider for Feeder {
    fn start(&self, key: &StreamKey, stop: CancellationToken) -> bool {
        let Some(paths) = self.paths.lock().unwrap().clone() else {
            return false;
        };
        *self.started.lock().unwrap() += 1;
        let path = paths.path(key);
        let stopped = Arc::clone(&self.stopped);
        tokio::spawn(async move {
            let source = Source::start(&path, 500, CancellationToken::new(), None).unwrap();
            let mut ts = 0;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                }
                source.publish(video(ts, ts.is_multiple_of(400)));
                ts += 40;
            }
            drop(source);
            *stopped.lock().unwrap() += 1;
        });
        true
    }
}

#[tokio::test]
async fn an_on_demand_source_starts_with_the_first_viewer_and_stops_after_the_last() {
    let mut config = Config::default();
    config.stream.on_demand_close_after_ms = 200;
    let hub = Hub::new(Arc::new(config));
    let feeder = Arc::new(Feeder::default());
    *feeder.paths.lock().unwrap() = Some(hub.paths.clone());
    hub.paths.add_source_provider(feeder.clone());
    let key = key();
    let mut first = hub.subscribe(&key);
    let mut second = hub.subscribe(&key);
    assert_eq!(*feeder.started.lock().unwrap(), 1, "one source for every viewer");
    assert!(
        first.recv().await.unwrap().is_video(),
        "the viewer plays what the source sends"
    );
    assert!(second.recv().await.unwrap().is_video());
    drop(first);
    drop(second);
    // A viewer back within the close delay keeps the source.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = hub.subscribe(&key);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*feeder.stopped.lock().unwrap(), 0, "a viewer came back in time");
    assert_eq!(*feeder.started.lock().unwrap(), 1);
    assert!(third.recv().await.is_ok());
    drop(third);
    assert!(
        eventually(|| *feeder.stopped.lock().unwrap() == 1).await,
        "stopped after the last viewer"
    );
    assert!(eventually(|| hub.get(&key).is_none()).await, "and the path is gone");
}

/// Has no source for any key; counts how often it was asked.
#[derive(Default)]
struct Declines {
    asked: Mutex<u32>,
}

impl SourceProvider for Declines {
    fn start(&self, _key: &StreamKey, _stop: CancellationToken) -> bool {
        *self.asked.lock().unwrap() += 1;
        false
    }
}

#[tokio::test]
async fn providers_are_asked_in_order_until_one_starts_a_source() {
    let hub = Hub::new(Arc::new(Config::default()));
    let declines = Arc::new(Declines::default());
    let feeder = Arc::new(Feeder::default());
    *feeder.paths.lock().unwrap() = Some(hub.paths.clone());
    hub.paths.add_source_provider(declines.clone());
    hub.paths.add_source_provider(feeder.clone());
    let key = key();
    let mut viewer = hub.subscribe(&key);
    let mut other = hub.subscribe(&key);
    assert!(
        viewer.recv().await.unwrap().is_video(),
        "the second provider's source plays"
    );
    assert!(other.recv().await.is_ok());
    assert_eq!(
        (*declines.asked.lock().unwrap(), *feeder.started.lock().unwrap()),
        (1, 1),
        "asked once, for the first viewer; one source for both"
    );
}

// ---- the HLS packager as an output ----

/// OBS 29.0.2's AVC sequence header (High 3.1, 1280x720).
const OBS_AVC_RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1c, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01,
    0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb, 0x01, 0x00,
    0x04, 0x68, 0xef, 0xbc, 0xb0,
];

fn h264_header() -> Packet {
    let mut body = vec![0x17, 0, 0, 0, 0];
    body.extend_from_slice(OBS_AVC_RECORD);
    Packet::from_flv_body(MediaKind::Video, 0, Bytes::from(body)).unwrap()
}

/// An H.264 frame (one slice NAL unit in AVCC form) of about 2 KB.
fn h264_frame(ts: u32, keyframe: bool) -> Packet {
    let slice: Vec<u8> = std::iter::once(if keyframe { 0x65 } else { 0x41 })
        .chain((1..2000u32).map(|i| (i % 251) as u8 | 1))
        .collect();
    let mut body = vec![if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    body.extend_from_slice(&(slice.len() as u32).to_be_bytes());
    body.extend_from_slice(&slice);
    Packet::from_flv_body(MediaKind::Video, ts, Bytes::from(body)).unwrap()
}

/// The playlist's segments in order: (sequence, preceded by `EXT-X-DISCONTINUITY`).
fn playlist_entries(playlist: &str) -> Vec<(u64, bool)> {
    let mut out = Vec::new();
    let mut discontinuity = false;
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if !line.starts_with('#') && !line.is_empty() {
            let (_, _, seq) = crate::outputs::hls::parse_segment_name(line).unwrap();
            out.push((seq, std::mem::take(&mut discontinuity)));
        }
    }
    out
}

#[tokio::test]
async fn an_hls_packager_that_falls_behind_skips_to_a_keyframe_after_a_discontinuity() {
    let mut config = Config::default();
    config.stream.queue_packets = 16;
    config.hls.fragment_ms = 1000;
    config.hls.window_segments = 20;
    let config = Arc::new(config);
    let store = crate::outputs::hls::HlsStore::default();
    let kinds = crate::outputs::builtin(crate::outputs::Parts {
        config: &config,
        hooks: &hooks(),
        hls: &store,
        recordings: None,
        recorders: &TaskTracker::new(),
        forwards: &crate::outputs::forward::Forwards::new(Arc::clone(&config), TaskTracker::new()),
    });
    let hub = Hub::with_outputs(Arc::clone(&config), kinds);
    let key = key();
    let source = hub.claim(&key, 1, CancellationToken::new()).unwrap();
    source.publish(h264_header());
    let mut ts = 0u32;
    let mut frames = |n: u32, source: &Source| {
        for _ in 0..n {
            source.publish(h264_frame(ts, ts.is_multiple_of(1000)));
            ts += 40;
        }
    };
    // 3 s the packager keeps up with (this test's runtime has one thread: the packager runs
    // only when the test yields).
    for _ in 0..75 {
        frames(1, &source);
        tokio::task::yield_now().await;
    }
    // 2 s published while the packager cannot run: more than the ring holds.
    frames(50, &source);
    for _ in 0..100 {
        frames(1, &source);
        tokio::task::yield_now().await;
    }
    drop(source);
    let stream = store.get(&key).unwrap();
    let playlist = String::from_utf8(stream.playlist().unwrap().to_vec()).unwrap();
    let entries = playlist_entries(&playlist);
    assert!(entries.len() >= 5, "{playlist}");
    assert!(
        entries.iter().skip(1).any(|(_, d)| *d),
        "a discontinuity where packets were lost:\n{playlist}"
    );
    // Every segment decodes on its own terms: starts with a keyframe, timestamps only go
    // forward (a replayed GOP would go back), continuity holds except after a discontinuity.
    let mut checker = estuary_muxer::check::TsChecker::new();
    let mut last_pts = None;
    for (i, (seq, discontinuity)) in entries.iter().enumerate() {
        let data = stream.segment(*seq).unwrap();
        let report = checker
            .check_segment(&data, i == 0 || *discontinuity)
            .unwrap_or_else(|e| panic!("segment {seq}: {e:?}\n{playlist}"));
        let first = report.first_pts.unwrap();
        assert!(
            last_pts.is_none_or(|last| first > last),
            "segment {seq} goes back in time"
        );
        last_pts = report.last_dts;
    }
}

#[tokio::test]
async fn every_packaging_run_names_its_segments_apart() {
    let config = Config::default();
    let store = crate::outputs::hls::HlsStore::default();
    let kind = crate::outputs::hls::HlsOutputs::new(&config.hls, hooks(), store.clone());
    let key = key();
    let mut instances = std::collections::HashSet::new();
    for _ in 0..100 {
        // Runs started within the same second (a restart, another node) once shared a name.
        let _run = kind.start(&key, None).unwrap();
        assert!(instances.insert(store.get(&key).unwrap().instance.clone()));
    }
}
