//! The one place that implements the slow-viewer policy (DESIGN.md rule 2).
//!
//! A subscriber first gets the join snapshot (metadata, sequence headers, GOP), then live
//! packets from the stream's ring. A viewer whose next packet is more than `max_lag_ms` of
//! stream time behind the live edge of that packet's track (audio and video each keep
//! their own clock), or that lost packets because the ring lapped it, drops audio and video
//! until the next video keyframe (metadata and sequence headers always pass); one still
//! behind after `slow_disconnect_ms` is ended with [`SubscriberEnd::TooSlow`].
//!
//! The ring carries batches (what the stream published together: a video frame and the
//! audio held before it); the subscriber hands them out packet by packet, so the policy
//! stays per packet while each viewer wakes once per batch. A viewer at the live edge can
//! [`park`](Subscriber::park) its socket with the stream, which then writes to it directly
//! (`direct.rs`); batches are numbered, so when it takes the socket back it skips what was
//! written for it and notices what it lost.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use estuary_protocol::Packet;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::batch::Batch;
use super::direct::{DirectSink, Unsent};
use super::live::Stream;
use super::metadata::Tracks;
use crate::config::PlayConfig;

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscriberEnd {
    #[error("viewer stayed behind the live edge for too long")]
    TooSlow,
    #[error("no publisher within the wait time")]
    NoPublisher,
}

/// One viewer's (or packager's) read position in a stream.
pub struct Subscriber {
    stream: Arc<Stream>,
    backlog: VecDeque<Arc<Packet>>,
    /// `None` while parked (the stream writes to the viewer directly).
    ring: Option<broadcast::Receiver<Arc<Batch>>>,
    /// The ring entry being delivered, and the index of its next packet.
    current: Option<(Arc<Batch>, usize)>,
    /// The last batch taken from the ring or written directly.
    seq: u64,
    /// Fires when nothing arrived for `wait_for_publisher`.
    idle: Pin<Box<tokio::time::Sleep>>,
    tracks: Option<Tracks>,
    max_lag_ms: u64,
    slow_disconnect: Duration,
    wait_for_publisher: Duration,
    /// Dropping audio/video until the next keyframe.
    skipping: bool,
    /// Lost packets in the ring: re-send the headers before resuming.
    resync: bool,
    behind_since: Option<Instant>,
    /// Packets dropped by the lag policy.
    pub dropped: u64,
    /// `estuary_frames_dropped_total{reason}` handles, looked up once per subscriber.
    dropped_lag: metrics::Counter,
    dropped_overflow: metrics::Counter,
}

impl Subscriber {
    /// Joins `stream`: the join snapshot first, then live batches.
    pub fn new(stream: Arc<Stream>, play: &PlayConfig) -> Self {
        let (snapshot, ring) = stream.subscribe();
        // Without a cached GOP the first thing a decoder can use is the next keyframe.
        let has_keyframe = snapshot.packets.iter().any(|p| p.is_video() && p.keyframe);
        let skipping = !has_keyframe && snapshot.tracks.is_none_or(|t| t.video);
        Subscriber {
            stream,
            backlog: snapshot.packets.into(),
            ring: Some(ring),
            current: None,
            seq: snapshot.seq,
            idle: Box::pin(tokio::time::sleep(Duration::from_millis(play.wait_for_publisher_ms))),
            tracks: snapshot.tracks,
            max_lag_ms: play.max_lag_ms,
            slow_disconnect: Duration::from_millis(play.slow_disconnect_ms),
            wait_for_publisher: Duration::from_millis(play.wait_for_publisher_ms),
            skipping,
            resync: false,
            behind_since: None,
            dropped: 0,
            dropped_lag: metrics::counter!(crate::metrics::FRAMES_DROPPED_TOTAL, "reason" => "lag"),
            dropped_overflow: metrics::counter!(crate::metrics::FRAMES_DROPPED_TOTAL, "reason" => "overflow"),
        }
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Tracks known when the subscription started (refreshed from the stream if unknown).
    pub fn tracks(&self) -> Option<Tracks> {
        self.tracks.or_else(|| self.stream.tracks())
    }

    /// The next packet to deliver, waiting for one. Ends when the viewer is too slow or no
    /// publisher has been seen for `wait_for_publisher_ms`.
    pub async fn recv(&mut self) -> Result<Arc<Packet>, SubscriberEnd> {
        loop {
            if let Some(p) = self.next_ready()? {
                return Ok(p);
            }
            let Some(ring) = self.ring.as_mut() else {
                // Parked: the stream delivers; only the publisher's absence ends this.
                return Err(self.publisher_gone().await);
            };
            // One long-lived timer per subscriber, re-armed only when it fires: creating a
            // timer per packet costs more than the rest of the fan-out.
            tokio::select! {
                biased;
                received = ring.recv() => match received {
                    Ok(batch) => self.take(batch),
                    // The gap shows in the next batch's `seq` (see `take`).
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return Err(SubscriberEnd::NoPublisher),
                },
                end = Self::idle_check(&mut self.idle, &self.stream, self.wait_for_publisher) => return Err(end),
            }
        }
    }

    /// Completes when no publisher has been seen for `wait_for_publisher_ms`.
    pub async fn publisher_gone(&mut self) -> SubscriberEnd {
        Self::idle_check(&mut self.idle, &self.stream, self.wait_for_publisher).await
    }

    async fn idle_check(idle: &mut Pin<Box<tokio::time::Sleep>>, stream: &Stream, wait: Duration) -> SubscriberEnd {
        loop {
            idle.as_mut().await;
            if !stream.is_live() && stream.last_packet_age() >= wait {
                return SubscriberEnd::NoPublisher;
            }
            idle.as_mut().reset(tokio::time::Instant::now() + wait);
        }
    }

    /// Makes `batch` the one being delivered, unless it was already written directly;
    /// batches missing before it were lost (the ring lapped this viewer).
    fn take(&mut self, batch: Arc<Batch>) {
        // A filler only pushed older batches out of the ring (its byte budget); any loss
        // shows in the next real batch's `seq`.
        if batch.is_filler() || batch.seq <= self.seq {
            return;
        }
        let missing = batch.seq - self.seq - 1;
        if missing > 0 {
            self.lost(missing);
        }
        self.seq = batch.seq;
        self.current = Some((batch, 0));
    }

    /// Hands the viewer's socket to the stream, which then writes every batch to it directly,
    /// if the viewer is at the live edge: everything delivered, nothing waiting in the ring,
    /// not skipping. False if it is not (carry on with [`recv_batch`](Self::recv_batch)).
    pub fn park(&mut self, sink: &Arc<DirectSink>) -> bool {
        let caught_up = self.backlog.is_empty() && self.current.is_none() && !self.skipping && !self.resync;
        if !caught_up {
            return false;
        }
        let Some(ring) = self.ring.take() else {
            return false;
        };
        match self.stream.park(sink, ring, self.seq) {
            Ok(()) => true,
            Err(ring) => {
                self.ring = Some(ring);
                false
            }
        }
    }

    /// Takes the socket back from the stream; returns what the stream could not write of the
    /// batches it took on, which must be written before anything else.
    pub fn unpark(&mut self, sink: &Arc<DirectSink>) -> Unsent {
        let returned = self.stream.unpark(sink);
        self.seq = self.seq.max(returned.seq);
        self.ring = Some(returned.ring);
        returned.unsent
    }

    /// Appends to `batch` the next packets to deliver, waiting for at least one: what the
    /// stream published together (a video frame and the audio held before it) and anything
    /// else already waiting, up to `max`. One batch is one socket write.
    ///
    /// Cancel-safe: packets taken from the ring are in `batch` before any `.await`.
    pub async fn recv_batch(&mut self, batch: &mut Vec<Arc<Packet>>, max: usize) -> Result<(), SubscriberEnd> {
        if batch.is_empty() {
            let first = self.recv().await?;
            batch.push(first);
        }
        while batch.len() < max {
            match self.try_recv() {
                Some(Ok(p)) => batch.push(p),
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(())
    }

    /// The next packet if one is ready now, for batching writes.
    pub fn try_recv(&mut self) -> Option<Result<Arc<Packet>, SubscriberEnd>> {
        loop {
            match self.next_ready() {
                Ok(Some(p)) => return Some(Ok(p)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            let ring = self.ring.as_mut()?;
            match ring.try_recv() {
                Ok(batch) => self.take(batch),
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    }

    /// The next deliverable packet from the backlog or the current ring entry, applying the
    /// lag policy; `None` when both are used up.
    fn next_ready(&mut self) -> Result<Option<Arc<Packet>>, SubscriberEnd> {
        loop {
            if let Some(p) = self.backlog.pop_front() {
                if self.backlog.is_empty() && self.backlog.capacity() > 16 {
                    self.backlog = VecDeque::new(); // the join snapshot is delivered
                }
                return Ok(Some(p));
            }
            let Some((batch, index)) = &mut self.current else {
                return Ok(None);
            };
            let Some(packet) = batch.packets.get(*index).cloned() else {
                self.current = None;
                return Ok(None);
            };
            *index += 1;
            if let Some(p) = self.admit(packet)? {
                return Ok(Some(p));
            }
        }
    }

    /// `n` batches were lost.
    fn lost(&mut self, n: u64) {
        if !self.skipping {
            tracing::warn!(stream = %self.stream.key, lost_batches = n, "viewer fell a whole ring behind; skipping to the next keyframe");
        }
        self.dropped += n;
        self.dropped_overflow.increment(n);
        self.skipping = true;
        self.resync = true;
        self.behind_since.get_or_insert_with(Instant::now);
    }

    /// Applies the lag policy to a live packet: `Some` to deliver, `None` to drop.
    fn admit(&mut self, packet: Arc<Packet>) -> Result<Option<Arc<Packet>>, SubscriberEnd> {
        if packet.seq_header || !(packet.is_video() || packet.is_audio()) {
            return Ok(Some(packet));
        }
        // Lag on the packet's own track: a publisher may stamp audio seconds ahead of (or
        // behind) video, and measuring video against audio's clock would make every viewer
        // of such a stream skip video.
        let lag = self.stream.edge_ms(packet.kind).saturating_sub(packet.dts);
        if !self.skipping && lag > self.max_lag_ms {
            tracing::warn!(stream = %self.stream.key, lag_ms = lag, "viewer behind the live edge; skipping to the next keyframe");
            self.skipping = true;
            self.behind_since.get_or_insert_with(Instant::now);
        }
        if !self.skipping {
            return Ok(Some(packet));
        }
        let has_video = self.tracks().is_none_or(|t| t.video);
        let resume = if has_video {
            packet.is_video() && packet.keyframe
        } else {
            true
        };
        if resume && lag <= self.max_lag_ms {
            self.skipping = false;
            self.behind_since = None;
            if std::mem::take(&mut self.resync) {
                self.backlog.extend(self.stream.headers());
                self.backlog.push_back(packet);
                return Ok(self.backlog.pop_front());
            }
            return Ok(Some(packet));
        }
        self.dropped += 1;
        self.dropped_lag.increment(1);
        if self
            .behind_since
            .is_some_and(|since| since.elapsed() > self.slow_disconnect)
        {
            return Err(SubscriberEnd::TooSlow);
        }
        Ok(None)
    }
}
