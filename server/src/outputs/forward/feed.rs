//! The forward output of one stream: it keeps the stream's headers and current GOP (shared
//! packets, no copies) so that an upstream that (re)connects starts at the GOP's keyframe,
//! and hands every packet to each upstream's queue. It never waits: the upstreams' tasks do
//! the writing.

use std::sync::{Arc, Mutex, MutexGuard};

use estuary_protocol::{MediaKind, Packet};

use super::upstream::Upstream;
use crate::stream::StreamKey;

/// The headers and GOP a starting upstream is sent, and the upstreams.
#[derive(Default)]
struct State {
    metadata: Option<Arc<Packet>>,
    video_header: Option<Arc<Packet>>,
    audio_header: Option<Arc<Packet>>,
    /// The current GOP from its keyframe; empty when none is known or it outgrew
    /// `forward.max_queue_bytes` (a starting upstream then waits for the next keyframe).
    gop: Vec<Arc<Packet>>,
    gop_bytes: u64,
    upstreams: Vec<Arc<Upstream>>,
}

impl State {
    fn has_video(&self) -> bool {
        self.video_header.is_some()
    }

    fn remember(&mut self, packet: &Arc<Packet>, max_gop_bytes: u64) {
        match packet.kind {
            MediaKind::Script => self.metadata = Some(Arc::clone(packet)),
            MediaKind::Video if packet.seq_header => self.video_header = Some(Arc::clone(packet)),
            MediaKind::Audio if packet.seq_header => self.audio_header = Some(Arc::clone(packet)),
            _ if !self.has_video() => {}
            MediaKind::Video if packet.keyframe => {
                self.gop.clear();
                self.gop_bytes = 0;
                self.keep(packet, max_gop_bytes);
            }
            _ if !self.gop.is_empty() => self.keep(packet, max_gop_bytes),
            _ => {}
        }
    }

    fn keep(&mut self, packet: &Arc<Packet>, max_gop_bytes: u64) {
        self.gop_bytes += packet.payload.len() as u64;
        if self.gop_bytes > max_gop_bytes {
            self.forget_gop();
        } else {
            self.gop.push(Arc::clone(packet));
        }
    }

    fn forget_gop(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
    }

    fn start(&self) -> impl Iterator<Item = Arc<Packet>> + '_ {
        self.metadata
            .iter()
            .chain(&self.video_header)
            .chain(&self.audio_header)
            .chain(&self.gop)
            .cloned()
    }
}

/// One stream's forwards while its forward output runs.
pub struct Feed {
    pub key: StreamKey,
    max_queue_bytes: u64,
    state: Mutex<State>,
}

impl Feed {
    pub fn new(key: StreamKey, max_queue_bytes: u64) -> Feed {
        Feed {
            key,
            max_queue_bytes,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add(&self, upstream: Arc<Upstream>) {
        self.state().upstreams.push(upstream);
    }

    /// Stops and forgets upstream `id`; false if the feed has none.
    pub fn remove(&self, id: u64) -> bool {
        let mut state = self.state();
        let before = state.upstreams.len();
        state.upstreams.retain(|u| {
            if u.id == id {
                u.stop.cancel();
            }
            u.id != id
        });
        state.upstreams.len() != before
    }

    /// Forgets the GOP: a starting upstream waits for the next keyframe.
    pub fn forget_gop(&self) {
        self.state().forget_gop();
    }

    pub fn upstreams(&self) -> Vec<Arc<Upstream>> {
        self.state().upstreams.clone()
    }

    /// Upstream `upstream` was accepted: its queue opens with the headers and the GOP. Under
    /// the same lock as [`publish`](Self::publish), so it misses or repeats no packet.
    pub fn prime(&self, upstream: &Upstream) {
        let state = self.state();
        upstream.queue().open(state.start(), state.has_video());
        upstream.wake();
    }

    pub fn publish(&self, packet: &Arc<Packet>) {
        let mut state = self.state();
        state.remember(packet, self.max_queue_bytes);
        let has_video = state.has_video();
        for upstream in &state.upstreams {
            upstream.push(packet, has_video);
        }
    }

    pub fn gap(&self) {
        let mut state = self.state();
        state.forget_gop();
        for upstream in &state.upstreams {
            upstream.queue().gap();
        }
    }

    /// Stops every upstream (their tasks close their connections).
    pub fn stop_all(&self) {
        for upstream in self.state().upstreams.drain(..) {
            upstream.stop.cancel();
        }
    }
}
