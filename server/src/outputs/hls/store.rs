//! In-memory HLS: the rendered playlist and recent segments of every packaged stream,
//! served to HTTP clients by cloning `Bytes` (no copy, no disk).
//!
//! A segment and the playlist that lists it are published under one write lock, so a
//! segment becomes visible in the playlist the moment it is complete, and is never listed
//! before it can be fetched. An ended playlist stays for its linger time, then the store
//! forgets it (lazily on lookup, and in [`HlsStore::purge`]); no task waits for that.
//!
//! fMP4 streams also hold their init sections, their master playlist, the LL-HLS parts of
//! their last segments and the delta-update form of the playlist. Every publish sends one
//! `watch` notification: requests blocked on a part that does not exist yet (a blocking
//! playlist reload, a preload hint) hold a receiver and wake on it; no task polls or sleeps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use estuary_muxer::hls::Progress;
use tokio::sync::watch;

use crate::stream::StreamKey;

/// Segments behind the newest whose parts are still served (hls.js may ask for a part of
/// the last two listed segments; the rest of a window is served as whole segments).
const PART_SEGMENTS_KEPT: u64 = 3;
/// Init sections kept: the current one and those the listed segments may still name.
const INITS_KEPT: usize = 4;

/// One stream's playlist and segments.
#[derive(Debug)]
pub struct HlsStream {
    /// Distinguishes this packaging run in segment names, so a CDN never confuses segment 5
    /// of today's stream with segment 5 of yesterday's.
    pub instance: String,
    state: RwLock<HlsState>,
    /// Bumped at every publish and at the end: wakes every blocked request at once.
    changed: watch::Sender<u64>,
}

/// One publish of a packager: a new segment or part (or neither) and the playlists that
/// list it.
#[derive(Debug, Default)]
pub struct Update {
    pub segment: Option<(u64, Bytes)>,
    /// (segment, part index, bytes).
    pub part: Option<(u64, u32, Bytes)>,
    pub playlist: Bytes,
    /// The LL-HLS delta update (`EXT-X-SKIP`), when segments can be skipped.
    pub delta: Option<Bytes>,
    pub progress: Progress,
    pub target_duration_secs: u64,
    /// Segments kept at most.
    pub keep: usize,
}

#[derive(Debug, Default)]
struct HlsState {
    playlist: Bytes,
    delta: Option<Bytes>,
    /// fMP4: the master playlist (`CODECS`), served at the stream's playlist URL.
    master: Option<Bytes>,
    parts: VecDeque<((u64, u32), Bytes)>,
    inits: VecDeque<(u64, Bytes)>,
    progress: Progress,
    /// The playlist is LL-HLS: blocking reloads and preload hints are answered.
    low_latency: bool,
    /// (sequence, data), oldest first: the playlist window plus a tail.
    segments: VecDeque<(u64, Bytes)>,
    target_duration_secs: u64,
    ended: bool,
    /// When an ended playlist stops being served.
    expires_at: Option<Instant>,
}

impl HlsStream {
    pub fn new(instance: String) -> Self {
        HlsStream {
            instance,
            state: RwLock::new(HlsState::default()),
            changed: watch::Sender::new(0),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HlsState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver woken at the next publish; subscribe, then check, then wait.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Publishes a segment or part with the playlists that list it.
    pub fn publish_update(&self, update: Update) {
        {
            let mut state = self.write();
            if let Some(segment) = update.segment {
                state.segments.push_back(segment);
                while state.segments.len() > update.keep {
                    state.segments.pop_front();
                }
            }
            if let Some((seq, index, data)) = update.part {
                state.parts.push_back(((seq, index), data));
                state.low_latency = true;
            }
            let newest = update.progress.open_sequence.or(update.progress.last_segment);
            if let Some(newest) = newest {
                let oldest = newest.saturating_sub(PART_SEGMENTS_KEPT);
                while state.parts.front().is_some_and(|((seq, _), _)| *seq < oldest) {
                    state.parts.pop_front();
                }
            }
            state.playlist = update.playlist;
            state.delta = update.delta;
            state.progress = update.progress;
            state.target_duration_secs = update.target_duration_secs;
        }
        self.notify();
    }

    /// Publishes an init section (and the master playlist naming its codecs).
    pub fn publish_init(&self, id: u64, data: Bytes, master: Bytes) {
        let mut state = self.write();
        state.inits.push_back((id, data));
        while state.inits.len() > INITS_KEPT {
            state.inits.pop_front();
        }
        state.master = Some(master);
    }

    /// Replaces the master playlist (its `BANDWIDTH` rose).
    pub fn set_master(&self, master: Bytes) {
        self.write().master = Some(master);
    }

    pub fn init(&self, id: u64) -> Option<Bytes> {
        self.read().inits.iter().find(|(i, _)| *i == id).map(|(_, d)| d.clone())
    }

    pub fn part(&self, sequence: u64, index: u32) -> Option<Bytes> {
        self.read()
            .parts
            .iter()
            .find(|(at, _)| *at == (sequence, index))
            .map(|(_, d)| d.clone())
    }

    /// The master playlist of an fMP4 stream, once its first segment is listed.
    pub fn master(&self) -> Option<Bytes> {
        let state = self.read();
        state.master.clone().filter(|_| !state.playlist.is_empty())
    }

    /// The delta update, if there is one now.
    pub fn delta(&self) -> Option<Bytes> {
        self.read().delta.clone()
    }

    pub fn progress(&self) -> Progress {
        self.read().progress
    }

    pub fn is_low_latency(&self) -> bool {
        self.read().low_latency
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HlsState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a new segment together with the playlist that lists it, keeping at most
    /// `keep` segments.
    pub fn publish(&self, sequence: u64, data: Bytes, playlist: Bytes, target_duration_secs: u64, keep: usize) {
        let progress = Progress {
            last_segment: Some(sequence),
            ..Progress::default()
        };
        self.publish_update(Update {
            segment: Some((sequence, data)),
            playlist,
            progress,
            target_duration_secs,
            keep,
            ..Update::default()
        });
    }

    /// Replaces the playlist with its final form (`EXT-X-ENDLIST`), served for `linger`
    /// more, then forgotten.
    pub fn end(&self, playlist: Bytes, linger: Duration) {
        {
            let mut state = self.write();
            state.playlist = playlist;
            state.delta = None;
            state.ended = true;
            state.expires_at = Some(Instant::now() + linger);
        }
        self.notify();
    }

    fn expired(&self, now: Instant) -> bool {
        self.read().expires_at.is_some_and(|at| now >= at)
    }

    /// The playlist, once it lists at least one segment.
    pub fn playlist(&self) -> Option<Bytes> {
        let state = self.read();
        (!state.playlist.is_empty()).then(|| state.playlist.clone())
    }

    pub fn segment(&self, sequence: u64) -> Option<Bytes> {
        self.read()
            .segments
            .iter()
            .find(|(s, _)| *s == sequence)
            .map(|(_, d)| d.clone())
    }

    pub fn target_duration_secs(&self) -> u64 {
        self.read().target_duration_secs
    }

    pub fn is_ended(&self) -> bool {
        self.read().ended
    }

    /// Bytes of segment data held.
    pub fn bytes(&self) -> usize {
        self.read().segments.iter().map(|(_, d)| d.len()).sum()
    }
}

/// Every packaged stream, by key.
#[derive(Debug, Default, Clone)]
pub struct HlsStore {
    streams: Arc<RwLock<HashMap<StreamKey, Arc<HlsStream>>>>,
    /// Streams this node pulls as an edge of their cluster owner: the owner alone packages
    /// their HLS (one media sequence for every viewer), so this node does not.
    elsewhere: Arc<std::sync::Mutex<std::collections::HashSet<StreamKey>>>,
}

impl HlsStore {
    /// Whether `key`'s HLS is the cluster owner's to package (`yes`), or this node's.
    pub fn set_packaged_elsewhere(&self, key: &StreamKey, yes: bool) {
        let mut elsewhere = self.elsewhere.lock().unwrap_or_else(|e| e.into_inner());
        if yes {
            elsewhere.insert(key.clone());
        } else {
            elsewhere.remove(key);
        }
    }

    pub fn is_packaged_elsewhere(&self, key: &StreamKey) -> bool {
        self.elsewhere.lock().unwrap_or_else(|e| e.into_inner()).contains(key)
    }

    /// The stream's playlist and segments, unless it ended and lingered long enough.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<HlsStream>> {
        let stream = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()?;
        if stream.expired(Instant::now()) {
            self.remove(key, &stream);
            return None;
        }
        Some(stream)
    }

    /// Forgets every ended playlist whose linger time is over.
    pub fn purge(&self) {
        let now = Instant::now();
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, s| !s.expired(now));
    }

    pub fn insert(&self, key: StreamKey, stream: Arc<HlsStream>) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, stream);
    }

    /// Removes `key` if it still maps to `stream` (a newer packaging run may have replaced it).
    fn remove(&self, key: &StreamKey, stream: &Arc<HlsStream>) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if streams.get(key).is_some_and(|s| Arc::ptr_eq(s, stream)) {
            streams.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.streams.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_and_playlist_appear_together_and_old_ones_leave() {
        let s = HlsStream::new("a".into());
        assert!(s.playlist().is_none());
        for seq in 0..5 {
            s.publish(
                seq,
                Bytes::from(vec![seq as u8; 188]),
                Bytes::from(format!("list {seq}")),
                3,
                3,
            );
        }
        assert_eq!(s.playlist().unwrap(), "list 4");
        assert!(s.segment(1).is_none());
        let (a, b) = (s.segment(4).unwrap(), s.segment(4).unwrap());
        assert_eq!(a.as_ptr(), b.as_ptr(), "served without a copy");
    }

    #[test]
    fn an_ended_playlist_lingers_then_is_forgotten() {
        let store = HlsStore::default();
        let key = StreamKey::new("live", "a");
        let s = Arc::new(HlsStream::new("a".into()));
        store.insert(key.clone(), Arc::clone(&s));
        s.end(Bytes::from_static(b"ended"), Duration::from_secs(60));
        assert!(store.get(&key).is_some_and(|s| s.is_ended()), "served while it lingers");
        s.end(Bytes::from_static(b"ended"), Duration::ZERO);
        assert!(store.get(&key).is_none());
        assert!(store.is_empty());
    }
}
