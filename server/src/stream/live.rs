//! One live stream: its publisher, what a joining viewer needs (metadata, sequence headers,
//! GOP cache), and the fan-out ring every subscriber reads from.
//!
//! `publish` and `subscribe` take the same short `std::sync::Mutex` (no `.await` inside),
//! so a new subscriber's snapshot and its place in the ring line up: no gap, no duplicate.
//! Sending into the ring never blocks: a subscriber that falls a whole ring behind loses
//! packets and is told so (DESIGN.md rules 2 and 4).
//!
//! No lock is held across a syscall: the lock covers only the stream's bookkeeping, and the
//! parked viewers' sockets are written after it is released, by the publisher's task
//! (`direct.rs`), so a join, the API or a claim never waits for a fan-out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use estuary_protocol::{MediaKind, Packet};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::budget::{self, RingWindow};
use super::direct::{DirectSet, DirectSink, Pass, Returned};
use super::extra_tracks::{ExtraTrack, ExtraTracks};
use super::gop::GopCache;
use super::key::StreamKey;
use super::metadata::{self, Tracks};
use super::timeline::Timeline;
use crate::config::StreamConfig;

/// Why a publisher could not take a stream.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClaimError {
    #[error("stream {0} already has an active publisher")]
    Busy(String),
}

/// Who holds a stream as its publisher (see [`Stream::holder`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    None,
    /// Publishing: it sent something within the idle time.
    Active(u64),
    /// Silent for the idle time: it may be replaced.
    Idle(u64),
}

/// The publisher holding a stream.
#[derive(Debug)]
struct PublisherSlot {
    conn_id: u64,
    last_packet: Instant,
    /// Cancelled when another publisher takes the stream over.
    kick: CancellationToken,
}

/// What a joining subscriber is sent before live packets.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Metadata, sequence headers, then the GOP cache, in that order.
    pub packets: Vec<Arc<Packet>>,
    pub tracks: Option<Tracks>,
    /// The last batch published before the snapshot; the ring continues after it.
    pub seq: u64,
}

#[derive(Debug)]
struct State {
    publisher: Option<PublisherSlot>,
    metadata: Option<Arc<Packet>>,
    video_header: Option<Arc<Packet>>,
    audio_header: Option<Arc<Packet>>,
    tracks: Option<Tracks>,
    /// Tracks seen in this publisher's packets, for streams whose metadata names none.
    seen: Tracks,
    /// A Multitrack publisher's tracks ≥ 1: counted, never mixed into what viewers get.
    extra: ExtraTracks,
    gop: GopCache,
    timeline: Timeline,
    /// Audio waiting for the next video frame, sent with it as one ring entry.
    held: Vec<Arc<Packet>>,
    /// What `held` costs against `stream.hold_max_bytes`.
    held_bytes: usize,
    /// Sizes of the ring's entries, for `stream.ring_max_bytes`.
    ring_window: RingWindow,
    /// The last batch's `seq`.
    seq: u64,
}

/// Counters of one stream, for the API and metrics.
#[derive(Debug, Default)]
pub struct StreamStats {
    pub bytes_in: AtomicU64,
    pub packets_in: AtomicU64,
    pub video_frames: AtomicU64,
}

/// One stream key's live state.
#[derive(Debug)]
pub struct Stream {
    pub key: StreamKey,
    state: Mutex<State>,
    ring: broadcast::Sender<Arc<Batch>>,
    /// Viewers at the live edge, written to directly; batches go on the ring through it.
    direct: DirectSet,
    /// `[stream] audio_hold_ms`.
    audio_hold_ms: u64,
    /// `[stream] merge_write_ms`.
    merge_write_ms: u64,
    /// `[stream] hold_max_bytes`.
    hold_max_bytes: usize,
    /// Sent to push the ring's oldest entries out (see `budget.rs`).
    filler: Arc<Batch>,
    created: Instant,
    /// When the last packet was published, in ms since `created`.
    last_packet_ms: AtomicU64,
    live: watch::Sender<bool>,
    /// The last normalised timestamp published on the audio and on the video track, for
    /// subscribers' lag checks: a packet's lag is measured on its own track's clock, so audio
    /// stamped ahead of video (or behind it) does not make video look late.
    audio_edge_ms: AtomicU64,
    video_edge_ms: AtomicU64,
    pub stats: StreamStats,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Stream {
    pub fn new(key: StreamKey, config: &StreamConfig) -> Self {
        let (ring, _) = broadcast::channel(config.queue_packets);
        let gop_max = if config.gop_cache {
            config.gop_cache_max_packets
        } else {
            0
        };
        Stream {
            key,
            state: Mutex::new(State {
                publisher: None,
                metadata: None,
                video_header: None,
                audio_header: None,
                tracks: None,
                seen: Tracks {
                    audio: false,
                    video: false,
                },
                extra: ExtraTracks::default(),
                gop: GopCache::new(gop_max, config.gop_cache_max_bytes),
                timeline: Timeline::new(config.timestamp_jump_ms, config.timeline_start_ms),
                held: Vec::new(),
                held_bytes: 0,
                ring_window: RingWindow::new(config.queue_packets, config.ring_max_bytes),
                seq: 0,
            }),
            direct: DirectSet::new(ring.clone()),
            ring,
            audio_hold_ms: config.audio_hold_ms,
            merge_write_ms: config.merge_write_ms,
            hold_max_bytes: config.hold_max_bytes,
            filler: Arc::new(Batch::filler()),
            created: Instant::now(),
            last_packet_ms: AtomicU64::new(0),
            live: watch::channel(false).0,
            audio_edge_ms: AtomicU64::new(config.timeline_start_ms),
            video_edge_ms: AtomicU64::new(config.timeline_start_ms),
            stats: StreamStats::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug in this module; the state is still
        // consistent enough to keep serving, so recover rather than poison every viewer.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `conn_id` the publisher, unless another publisher holds the stream (an idle one
    /// is first ended with [`evict_idle`](Self::evict_idle), so that its end is told before
    /// the newcomer's start).
    pub fn claim(&self, conn_id: u64, kick: CancellationToken) -> Result<(), ClaimError> {
        let mut state = self.lock();
        if state.publisher.is_some() {
            return Err(ClaimError::Busy(self.key.to_string()));
        }
        state.publisher = Some(PublisherSlot {
            conn_id,
            last_packet: Instant::now(),
            kick,
        });
        Self::reset_publisher_state(&mut state);
        state.timeline.begin_publisher();
        drop(state);
        self.live.send_replace(true);
        Ok(())
    }

    /// Whether a publisher holds the stream, and whether it has sent anything for `idle`.
    pub fn holder(&self, idle: std::time::Duration) -> Holder {
        match &self.lock().publisher {
            None => Holder::None,
            Some(p) if p.last_packet.elapsed() >= idle => Holder::Idle(p.conn_id),
            Some(p) => Holder::Active(p.conn_id),
        }
    }

    /// Ends the publishing of a publisher that has sent nothing for `idle` (the half-dead
    /// connection an OBS reconnect leaves behind): its kick token is cancelled and its next
    /// packet refused. Returns its id.
    pub fn evict_idle(&self, idle: std::time::Duration) -> Option<u64> {
        let state = self.lock();
        let current = state.publisher.as_ref()?;
        if current.last_packet.elapsed() < idle {
            return None;
        }
        let old = current.conn_id;
        tracing::info!(stream = %self.key, old, "idle publisher replaced");
        current.kick.cancel();
        drop(state);
        self.release(old).then_some(old)
    }

    fn reset_publisher_state(state: &mut State) {
        state.metadata = None;
        state.video_header = None;
        state.audio_header = None;
        state.tracks = None;
        state.seen = Tracks {
            audio: false,
            video: false,
        };
        state.extra.clear();
        state.gop.clear();
        state.held.clear();
        state.held_bytes = 0;
    }

    /// Ends `conn_id`'s publishing, if it is still the publisher. Viewers stay subscribed and
    /// continue when a publisher comes back.
    pub fn release(&self, conn_id: u64) -> bool {
        let mut state = self.lock();
        if state.publisher.as_ref().map(|p| p.conn_id) != Some(conn_id) {
            return false;
        }
        state.publisher = None;
        let pass = self.flush_held(&mut state);
        Self::reset_publisher_state(&mut state);
        drop(state);
        if let Some(pass) = pass {
            pass.run();
        }
        self.live.send_replace(false);
        true
    }

    /// Whether a publisher holds the stream.
    pub fn is_live(&self) -> bool {
        *self.live.borrow()
    }

    /// The connection id of the publisher, if any.
    pub fn publisher(&self) -> Option<u64> {
        self.lock().publisher.as_ref().map(|p| p.conn_id)
    }

    /// Follows whether a publisher holds the stream.
    pub fn watch_live(&self) -> watch::Receiver<bool> {
        self.live.subscribe()
    }

    /// Waits until a publisher holds the stream, at most `timeout`.
    pub async fn wait_live(&self, timeout: std::time::Duration) -> bool {
        let mut rx = self.live.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|live| *live))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Puts a packet from publisher `conn_id` on the timeline and fans it out, writing the
    /// parked viewers' sockets before it returns. Returns false if `conn_id` is no longer the
    /// publisher (it was replaced).
    pub fn publish(&self, conn_id: u64, packet: Packet) -> bool {
        let (published, pass) = self.put(conn_id, packet);
        if let Some(pass) = pass {
            pass.run();
        }
        published
    }

    /// [`publish`](Self::publish) for a publisher's task: between groups of parked sockets
    /// it yields to the runtime, so a large fan-out does not hold up other connections on
    /// the same thread for its whole length.
    pub async fn publish_yielding(&self, conn_id: u64, packet: Packet) -> bool {
        let (published, pass) = self.put(conn_id, packet);
        if let Some(pass) = pass {
            pass.run_yielding().await;
        }
        published
    }

    /// The bookkeeping of `publish`, under the lock; returns the pass that writes the parked
    /// sockets, to run after the lock is released.
    pub(super) fn put(&self, conn_id: u64, mut packet: Packet) -> (bool, Option<Pass<'_>>) {
        let len = packet.payload.len() as u64;
        let is_frame = packet.kind == MediaKind::Video && !packet.seq_header && !packet.no_frame;
        let mut state = self.lock();
        match &mut state.publisher {
            Some(p) if p.conn_id == conn_id => p.last_packet = Instant::now(),
            _ => return (false, None),
        }
        if packet.track != 0 {
            // Kept apart: not on track 0's timeline, headers, GOP cache or ring.
            let kind = packet.kind;
            state.extra.record(packet);
            drop(state);
            self.stats.bytes_in.fetch_add(len, Ordering::Relaxed);
            self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
            crate::metrics::extra_track_packet(kind);
            return (true, None);
        }
        let mapped = state.timeline.map(packet.kind, packet.dts as u32);
        packet.dts = mapped.dts;
        packet.discontinuity = mapped.discontinuity;
        packet.arrival_ms = unix_ms();
        if packet.kind == MediaKind::Script {
            if let Some((tracks, annotated)) = metadata::annotate(&packet.payload) {
                state.tracks = Some(tracks);
                packet.payload = annotated;
            }
        }
        let packet = Arc::new(packet);
        match packet.kind {
            MediaKind::Script => state.metadata = Some(Arc::clone(&packet)),
            MediaKind::Video => {
                state.seen.video = true;
                if packet.seq_header {
                    state.video_header = Some(Arc::clone(&packet));
                }
            }
            MediaKind::Audio => {
                state.seen.audio = true;
                if packet.seq_header {
                    state.audio_header = Some(Arc::clone(&packet));
                }
            }
        }
        let (audio_edge, video_edge) = (
            state.timeline.track_edge(MediaKind::Audio),
            state.timeline.track_edge(MediaKind::Video),
        );
        self.audio_edge_ms.store(audio_edge, Ordering::Relaxed);
        self.video_edge_ms.store(video_edge, Ordering::Relaxed);
        self.last_packet_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        // Audio between video frames waits for the next frame (bounded by audio_hold_ms of
        // stream time), so viewers wake and write once per frame, not once per packet. With
        // merge_write_ms set, everything waits until that much stream time has gathered:
        // fewer, larger writes (less CPU) for that much added latency.
        let held_span = state
            .held
            .first()
            .map_or(0, |first| packet.dts.saturating_sub(first.dts));
        let hold_audio = packet.is_audio()
            && !packet.seq_header
            && self.audio_hold_ms > 0
            && state.tracks.map_or(state.seen.video, |t| t.video)
            && held_span < self.audio_hold_ms;
        let merge = self.merge_write_ms > 0
            && !packet.seq_header
            && packet.kind != MediaKind::Script
            && held_span < self.merge_write_ms;
        let hold = hold_audio || merge;
        // Frozen timestamps never end a hold: its byte budget does. What is held goes out
        // before it would outgrow the budget.
        let cost = budget::cost(&packet);
        let mut early = None;
        if hold && !state.held.is_empty() && state.held_bytes + cost > self.hold_max_bytes {
            crate::metrics::budget_exceeded("hold");
            tracing::debug!(stream = %self.key, held_bytes = state.held_bytes, "held packets reached stream.hold_max_bytes; sent at once");
            early = self.flush_held(&mut state);
        }
        state.held.push(packet);
        state.held_bytes += cost;
        let pass = if hold { None } else { self.flush_held(&mut state) };
        // A running pass (the budget's early flush) writes the later batch too.
        let pass = early.or(pass);
        drop(state);
        self.stats.bytes_in.fetch_add(len, Ordering::Relaxed);
        self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
        if is_frame {
            self.stats.video_frames.fetch_add(1, Ordering::Relaxed);
        }
        (true, pass)
    }

    /// Sends the held packets to the ring as one batch, queues it for the parked viewers
    /// and records it in the GOP cache. Returns the pass that writes the parked viewers'
    /// sockets, which the caller runs once it has released the lock.
    fn flush_held(&self, state: &mut State) -> Option<Pass<'_>> {
        if state.held.is_empty() {
            return None;
        }
        state.seq += 1;
        let bytes = std::mem::take(&mut state.held_bytes);
        let batch = Arc::new(Batch {
            seq: state.seq,
            packets: std::mem::take(&mut state.held).into(),
        });
        for p in batch
            .packets
            .iter()
            .filter(|p| !p.seq_header && p.kind != MediaKind::Script)
        {
            if state.gop.push(p) {
                crate::metrics::budget_exceeded("gop_cache");
                tracing::warn!(stream = %self.key, "GOP over stream.gop_cache_max_bytes (or _packets): not cached until the next keyframe");
            }
        }
        // The ring's send is the fan-out's, under its lock, so parked viewers and the ring
        // agree on order; the ring's byte window follows it.
        let (on_ring, pass) = self.direct.send(batch);
        if on_ring {
            state.ring_window.sent(bytes);
            self.trim_ring(state);
        }
        pass
    }

    /// Keeps what the ring holds for its slowest reader within `stream.ring_max_bytes`, by
    /// pushing the oldest entries out with fillers (see `budget.rs`).
    fn trim_ring(&self, state: &mut State) {
        if !state.ring_window.over() {
            return;
        }
        let fillers = state.ring_window.fillers_needed(self.ring.len());
        if fillers == 0 {
            return;
        }
        crate::metrics::budget_exceeded("ring");
        tracing::debug!(stream = %self.key, fillers, "ring over stream.ring_max_bytes: its oldest entries released");
        for _ in 0..fillers {
            if self.ring.send(Arc::clone(&self.filler)).is_err() {
                break;
            }
            state.ring_window.sent(0);
        }
    }

    /// Bytes the ring holds for its slowest reader (the batches not yet seen by every
    /// reader): at most `stream.ring_max_bytes`, or the newest batch alone if it is larger.
    pub fn ring_bytes(&self) -> usize {
        let state = self.lock();
        state.ring_window.queued_bytes(self.ring.len())
    }

    /// Parks `sink` (see `direct.rs`) if `ring` has nothing waiting, taking the receiver:
    /// its viewer has had every batch up to `seq`. Gives the receiver back if a batch came
    /// in the meantime.
    pub(super) fn park(
        &self,
        sink: &Arc<DirectSink>,
        ring: broadcast::Receiver<Arc<Batch>>,
        seq: u64,
    ) -> Result<(), broadcast::Receiver<Arc<Batch>>> {
        self.direct.park(sink, ring, seq)
    }

    /// Takes `sink` back from the stream.
    pub(super) fn unpark(&self, sink: &Arc<DirectSink>) -> Returned {
        self.direct.unpark(sink)
    }

    /// Viewers written to directly right now.
    pub fn parked_count(&self) -> usize {
        self.direct.len()
    }

    /// Time since the last packet was published (or the stream was created).
    pub fn last_packet_age(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_packet_ms.load(Ordering::Relaxed));
        self.created.elapsed().saturating_sub(last)
    }

    /// A snapshot for a joining viewer plus its place in the ring, taken atomically.
    pub fn subscribe(&self) -> (Snapshot, broadcast::Receiver<Arc<Batch>>) {
        let state = self.lock();
        let mut packets = Vec::with_capacity(3 + state.gop.packets().len());
        packets.extend(state.metadata.iter().cloned());
        packets.extend(state.video_header.iter().cloned());
        packets.extend(state.audio_header.iter().cloned());
        packets.extend(state.gop.packets().iter().cloned());
        let snapshot = Snapshot {
            packets,
            tracks: self.tracks_locked(&state),
            seq: state.seq,
        };
        (snapshot, self.ring.subscribe())
    }

    /// The current metadata and sequence headers, for a viewer that lost packets.
    pub fn headers(&self) -> Vec<Arc<Packet>> {
        let state = self.lock();
        [&state.metadata, &state.video_header, &state.audio_header]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn tracks_locked(&self, state: &State) -> Option<Tracks> {
        state.tracks.or_else(|| {
            let seen = Tracks {
                audio: state.seen.audio || state.audio_header.is_some(),
                video: state.seen.video || state.video_header.is_some(),
            };
            (seen.audio || seen.video).then_some(seen)
        })
    }

    /// A Multitrack publisher's tracks ≥ 1, in the order they appeared.
    pub fn extra_tracks(&self) -> Vec<ExtraTrack> {
        self.lock().extra.list()
    }

    /// How many video and audio tracks the publisher sends: track 0 of each kind it has, and
    /// its extra tracks.
    pub fn track_counts(&self) -> (usize, usize) {
        let state = self.lock();
        let main = self.tracks_locked(&state).unwrap_or(Tracks {
            audio: false,
            video: false,
        });
        (
            usize::from(main.video) + state.extra.count(MediaKind::Video),
            usize::from(main.audio) + state.extra.count(MediaKind::Audio),
        )
    }

    /// Which tracks the stream has, once metadata or media told.
    pub fn tracks(&self) -> Option<Tracks> {
        let state = self.lock();
        self.tracks_locked(&state)
    }

    /// The live edge of `kind`'s track: the last normalised timestamp published on it
    /// (script data follows the video track).
    pub fn edge_ms(&self, kind: MediaKind) -> u64 {
        match kind {
            MediaKind::Audio => &self.audio_edge_ms,
            MediaKind::Video | MediaKind::Script => &self.video_edge_ms,
        }
        .load(Ordering::Relaxed)
    }

    /// Number of subscribers: those reading the ring and those parked.
    pub fn subscriber_count(&self) -> usize {
        self.ring.receiver_count() + self.direct.len()
    }

    /// Bytes held by the GOP cache.
    pub fn gop_bytes(&self) -> usize {
        self.lock().gop.bytes()
    }
}

#[cfg(test)]
#[path = "live_budget_tests.rs"]
mod budget_tests;

#[cfg(test)]
#[path = "extra_tracks_tests.rs"]
mod extra_tracks_tests;
