//! In-memory HLS: the rendered playlist and recent segments of every packaged stream,
//! served to HTTP clients by cloning `Bytes` (no copy, no disk).
//!
//! A segment and the playlist that lists it are published under one write lock, so a
//! segment becomes visible in the playlist the moment it is complete, and is never listed
//! before it can be fetched. An ended playlist stays for its linger time, then the store
//! forgets it (lazily on lookup, and in [`HlsStore::purge`]); no task waits for that.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::stream::StreamKey;

/// One stream's playlist and segments.
#[derive(Debug)]
pub struct HlsStream {
    /// Distinguishes this packaging run in segment names, so a CDN never confuses segment 5
    /// of today's stream with segment 5 of yesterday's.
    pub instance: String,
    state: RwLock<HlsState>,
}

#[derive(Debug, Default)]
struct HlsState {
    playlist: Bytes,
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
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HlsState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a new segment together with the playlist that lists it, keeping at most
    /// `keep` segments.
    pub fn publish(&self, sequence: u64, data: Bytes, playlist: Bytes, target_duration_secs: u64, keep: usize) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.segments.push_back((sequence, data));
        while state.segments.len() > keep {
            state.segments.pop_front();
        }
        state.playlist = playlist;
        state.target_duration_secs = target_duration_secs;
    }

    /// Replaces the playlist with its final form (`EXT-X-ENDLIST`), served for `linger`
    /// more, then forgotten.
    pub fn end(&self, playlist: Bytes, linger: Duration) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.playlist = playlist;
        state.ended = true;
        state.expires_at = Some(Instant::now() + linger);
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
}

impl HlsStore {
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
