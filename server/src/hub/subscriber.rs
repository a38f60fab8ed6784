//! The one place that implements the slow-viewer policy (DESIGN.md rule 2).
//!
//! A subscriber first gets the join snapshot (metadata, sequence headers, GOP), then live
//! packets from the stream's ring. A viewer whose next packet is more than `max_lag_ms` of
//! stream time behind the live edge, or that lost packets because the ring lapped it, drops
//! audio and video until the next video keyframe (metadata and sequence headers always pass);
//! one still behind after `slow_disconnect_ms` is ended with [`SubscriberEnd::TooSlow`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use estuary_protocol::Packet;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::metadata::Tracks;
use super::stream::Stream;
use super::Hub;
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
    hub: Hub,
    backlog: VecDeque<Arc<Packet>>,
    ring: broadcast::Receiver<Arc<Packet>>,
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
    pub(super) fn new(stream: Arc<Stream>, hub: Hub, play: &PlayConfig) -> Self {
        let (snapshot, ring) = stream.subscribe();
        // Without a cached GOP the first thing a decoder can use is the next keyframe.
        let has_keyframe = snapshot.packets.iter().any(|p| p.is_video() && p.keyframe);
        let skipping = !has_keyframe && snapshot.tracks.is_none_or(|t| t.video);
        Subscriber {
            stream,
            hub,
            backlog: snapshot.packets.into(),
            ring,
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
            if let Some(p) = self.backlog.pop_front() {
                return Ok(p);
            }
            let received = tokio::time::timeout(self.wait_for_publisher, self.ring.recv()).await;
            let packet = match received {
                Ok(Ok(p)) => p,
                Ok(Err(RecvError::Lagged(n))) => {
                    self.lost(n);
                    continue;
                }
                Ok(Err(RecvError::Closed)) => return Err(SubscriberEnd::NoPublisher),
                Err(_) if self.stream.is_live() => continue, // live but quiet: keep waiting
                Err(_) => return Err(SubscriberEnd::NoPublisher),
            };
            if let Some(p) = self.admit(packet)? {
                return Ok(p);
            }
        }
    }

    /// Appends the next packets to deliver to `batch`, waiting for at least one, so that a
    /// viewer's socket gets one write per video frame rather than one per packet: audio (and
    /// metadata) that arrives between video frames is held until the next video frame, at
    /// most `hold` after the first held packet. Video is never held, so video latency is
    /// unchanged; streams without video are not held at all.
    ///
    /// Cancel-safe: packets taken from the ring are in `batch` before any `.await`.
    pub async fn recv_batch(
        &mut self,
        batch: &mut Vec<Arc<Packet>>,
        max: usize,
        hold: Duration,
    ) -> Result<(), SubscriberEnd> {
        if batch.is_empty() {
            let first = self.recv().await?;
            batch.push(first);
        }
        let deadline = tokio::time::Instant::now() + hold;
        loop {
            while batch.len() < max {
                match self.try_recv() {
                    Some(Ok(p)) => batch.push(p),
                    Some(Err(e)) => return Err(e),
                    None => break,
                }
            }
            let ends_with_video = batch.last().is_some_and(|p| p.is_video() && !p.seq_header);
            let has_video = self.tracks().is_none_or(|t| t.video);
            if ends_with_video || !has_video || batch.len() >= max || hold.is_zero() {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(Ok(p)) => batch.push(p),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(()), // held long enough: send what we have
            }
        }
    }

    /// The next packet if one is ready now, for batching writes.
    pub fn try_recv(&mut self) -> Option<Result<Arc<Packet>, SubscriberEnd>> {
        loop {
            if let Some(p) = self.backlog.pop_front() {
                return Some(Ok(p));
            }
            let packet = match self.ring.try_recv() {
                Ok(p) => p,
                Err(TryRecvError::Lagged(n)) => {
                    self.lost(n);
                    continue;
                }
                Err(_) => return None,
            };
            match self.admit(packet) {
                Ok(Some(p)) => return Some(Ok(p)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn lost(&mut self, n: u64) {
        if !self.skipping {
            tracing::warn!(stream = %self.stream.key, lost = n, "viewer fell a whole ring behind; skipping to the next keyframe");
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
        let lag = self.stream.edge_ms().saturating_sub(packet.dts);
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

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.hub.forget_if_unused(&self.stream.key);
    }
}
