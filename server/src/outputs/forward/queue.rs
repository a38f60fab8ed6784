//! What waits to be sent to one upstream, bounded in bytes (`forward.max_queue_bytes`).
//!
//! The output pushes every packet into every upstream's queue and returns at once; the
//! upstream's task takes what is queued and writes it. A queue that reaches its bound is
//! emptied (keeping the latest metadata and sequence headers) and takes nothing more until
//! the next place a decoder can start: a video keyframe, or any audio frame of a stream with
//! no video. So a slow upstream loses frames, never the stream or the other upstreams.

use std::collections::VecDeque;
use std::sync::Arc;

use estuary_protocol::{MediaKind, Packet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The upstream is not publishing: nothing is kept.
    Closed,
    Open,
    /// Packets are dropped until the next start point.
    Skipping,
}

/// What [`Queue::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Not queued: the upstream is not publishing now.
    Closed,
    /// Dropped, with the audio/video frames the queue held when it overflowed (0 if it
    /// was already skipping): the upstream resumes at the next keyframe.
    Dropped {
        emptied: u64,
    },
}

/// One upstream's queue.
#[derive(Debug)]
pub struct Queue {
    packets: VecDeque<Arc<Packet>>,
    bytes: u64,
    max_bytes: u64,
    state: State,
}

/// Where a decoder can start.
fn is_start(packet: &Packet, has_video: bool) -> bool {
    match packet.kind {
        MediaKind::Video => packet.keyframe && !packet.seq_header,
        MediaKind::Audio => !has_video,
        MediaKind::Script => false,
    }
}

/// Metadata and codec configuration: never dropped, they are small and what comes after
/// them cannot be decoded without them.
fn is_header(packet: &Packet) -> bool {
    packet.seq_header || packet.kind == MediaKind::Script
}

impl Queue {
    pub fn new(max_bytes: u64) -> Queue {
        Queue {
            packets: VecDeque::new(),
            bytes: 0,
            max_bytes,
            state: State::Closed,
        }
    }

    /// The upstream started publishing: it is sent `start` (headers, then the GOP from its
    /// keyframe) and what comes next. An empty GOP (none cached, or too large) means it
    /// waits for the next start point.
    pub fn open(&mut self, start: impl IntoIterator<Item = Arc<Packet>>, has_video: bool) {
        self.packets.clear();
        self.bytes = 0;
        self.state = State::Skipping;
        for packet in start {
            self.push(&packet, has_video);
        }
    }

    /// The upstream stopped publishing (dropped, or being retried): nothing is kept.
    pub fn close(&mut self) {
        self.packets.clear();
        self.bytes = 0;
        self.state = State::Closed;
    }

    /// Packets were lost before the queue: what follows does not join what was queued, so
    /// the next frames wait for a start point.
    pub fn gap(&mut self) {
        if self.state == State::Open {
            self.state = State::Skipping;
        }
    }

    pub fn push(&mut self, packet: &Arc<Packet>, has_video: bool) -> Pushed {
        let mut emptied = 0;
        match self.state {
            State::Closed => return Pushed::Closed,
            State::Open if self.bytes + packet.payload.len() as u64 > self.max_bytes => {
                emptied = self.empty_keeping_headers();
                self.state = State::Skipping;
            }
            State::Open => return self.queue(packet),
            State::Skipping => {}
        }
        if is_header(packet) {
            return self.queue(packet);
        }
        if is_start(packet, has_video) {
            self.state = State::Open;
            return self.queue(packet);
        }
        Pushed::Dropped { emptied }
    }

    fn queue(&mut self, packet: &Arc<Packet>) -> Pushed {
        self.bytes += packet.payload.len() as u64;
        self.packets.push_back(Arc::clone(packet));
        Pushed::Queued
    }

    /// Drops every queued frame, keeping the last header of each kind; returns the number of
    /// audio/video frames dropped.
    fn empty_keeping_headers(&mut self) -> u64 {
        let mut kept: Vec<Arc<Packet>> = Vec::new();
        let mut dropped = 0;
        for packet in self.packets.drain(..).rev() {
            if !is_header(&packet) {
                dropped += 1;
            } else if !kept.iter().any(|k| k.kind == packet.kind) {
                kept.push(packet);
            }
        }
        self.bytes = kept.iter().map(|p| p.payload.len() as u64).sum();
        self.packets.extend(kept.into_iter().rev());
        dropped
    }

    /// Moves everything queued into `out` (which the caller keeps and reuses).
    pub fn take(&mut self, out: &mut VecDeque<Arc<Packet>>) {
        std::mem::swap(&mut self.packets, out);
        self.bytes = 0;
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(keyframe: bool, len: usize) -> Arc<Packet> {
        let mut p = Packet::new(MediaKind::Video, 0, Bytes::from(vec![0u8; len]));
        p.keyframe = keyframe;
        Arc::new(p)
    }

    fn header(kind: MediaKind) -> Arc<Packet> {
        let mut p = Packet::new(kind, 0, Bytes::from_static(&[0; 8]));
        p.seq_header = kind != MediaKind::Script;
        Arc::new(p)
    }

    fn audio() -> Arc<Packet> {
        Arc::new(Packet::new(MediaKind::Audio, 0, Bytes::from_static(&[0; 10])))
    }

    fn taken(q: &mut Queue) -> Vec<Arc<Packet>> {
        let mut out = VecDeque::new();
        q.take(&mut out);
        out.into()
    }

    #[test]
    fn a_closed_queue_keeps_nothing() {
        let mut q = Queue::new(1000);
        assert_eq!(q.push(&video(true, 10), true), Pushed::Closed);
        assert!(q.is_empty());
    }

    #[test]
    fn opening_starts_at_the_gop_keyframe_or_waits_for_one() {
        let mut q = Queue::new(1000);
        let gop = [header(MediaKind::Video), video(true, 10), video(false, 10)];
        q.open(gop.iter().cloned(), true);
        assert_eq!(taken(&mut q).len(), 3);
        // No GOP: the headers go, frames wait for a keyframe.
        q.open([header(MediaKind::Video)], true);
        assert_eq!(q.push(&video(false, 10), true), Pushed::Dropped { emptied: 0 });
        assert_eq!(q.push(&audio(), true), Pushed::Dropped { emptied: 0 });
        assert_eq!(q.push(&video(true, 10), true), Pushed::Queued);
        assert_eq!(q.push(&audio(), true), Pushed::Queued);
        assert_eq!(taken(&mut q).len(), 3);
    }

    #[test]
    fn overflow_empties_the_queue_keeps_headers_and_resumes_at_the_next_keyframe() {
        let mut q = Queue::new(100);
        q.open([header(MediaKind::Script), header(MediaKind::Video)], true);
        assert_eq!(q.push(&video(true, 40), true), Pushed::Queued);
        assert_eq!(q.push(&video(false, 40), true), Pushed::Queued);
        assert_eq!(q.push(&video(false, 40), true), Pushed::Dropped { emptied: 2 });
        assert_eq!(q.push(&video(false, 40), true), Pushed::Dropped { emptied: 0 });
        assert_eq!(q.push(&video(true, 40), true), Pushed::Queued);
        let sent = taken(&mut q);
        assert_eq!(sent.len(), 3, "metadata, video header, the keyframe");
        assert!(sent[2].keyframe);
    }

    #[test]
    fn audio_only_streams_resume_at_any_frame_and_gaps_wait_for_a_start() {
        let mut q = Queue::new(100);
        q.open([header(MediaKind::Audio)], false);
        assert_eq!(q.push(&audio(), false), Pushed::Queued);
        q.gap();
        assert_eq!(q.push(&audio(), false), Pushed::Queued);
        q.gap();
        assert_eq!(q.push(&video(false, 10), true), Pushed::Dropped { emptied: 0 });
    }
}
