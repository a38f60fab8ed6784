//! The MPEG-TS packager of a stream: feeds `muxer`'s TS segmenter and playlist and
//! publishes what they produce into the stream's [`HlsStream`].
//!
//! Its life is the path's: it starts with the source. When the source stops, the open
//! segment is closed at once; a source that comes back within the grace period
//! (`hls.reconnect_window_ms`) continues the same playlist after an `EXT-X-DISCONTINUITY`;
//! otherwise the playlist gets `EXT-X-ENDLIST` and is served for `hls.dispose_ms` more.
//! Packets the packager lost (it fell a whole ring behind) are a gap: the open segment is
//! closed there, the next one starts at the next keyframe after an `EXT-X-DISCONTINUITY`,
//! and nothing is played twice.

use std::sync::Arc;
use std::time::Duration;

use estuary_muxer::{HlsSegmenter, HlsSegmenterConfig, LivePlaylist, LivePlaylistConfig, Segment};
use estuary_protocol::Packet;
use tracing::{debug, info, warn};

use super::hook::SegmentHook;
use super::names::{segment_name, segment_uri};
use super::store::HlsStream;
use crate::config::HlsConfig;
use crate::hooks::HookSubject;
use crate::outputs::Output;
use crate::stream::StreamKey;

pub struct TsPackaging {
    key: StreamKey,
    hook: SegmentHook,
    out: Arc<HlsStream>,
    segmenter: HlsSegmenter,
    playlist: LivePlaylist,
    /// Segments still served after they left the playlist (`hls.tail_segments`).
    tail: usize,
    /// `hls.dispose_ms`: how long the ended playlist is served.
    linger: Duration,
    errors_logged: u32,
    /// The segmenter's `byte_cuts` already counted in the metrics.
    byte_cuts: u64,
    forced_cut_logged: bool,
}

impl TsPackaging {
    /// Packages `key` as MPEG-TS into `out`.
    pub fn new(hls: &HlsConfig, hook: SegmentHook, out: Arc<HlsStream>, key: &StreamKey) -> TsPackaging {
        TsPackaging {
            key: key.clone(),
            hook,
            out,
            segmenter: HlsSegmenter::new(HlsSegmenterConfig {
                fragment_ms: hls.fragment_ms,
                max_segment_ms: hls.max_segment_ms,
                max_segment_bytes: hls.max_segment_bytes,
                ..HlsSegmenterConfig::default()
            }),
            playlist: LivePlaylist::new(LivePlaylistConfig {
                fragment_ms: hls.fragment_ms,
                window_segments: hls.window_segments,
                part_target_ms: None,
            }),
            tail: hls.tail_segments,
            linger: Duration::from_millis(hls.dispose_ms),
            errors_logged: 0,
            byte_cuts: 0,
            forced_cut_logged: false,
        }
    }

    fn render(&self) -> bytes::Bytes {
        let (stream, instance) = (self.key.name.as_str(), self.out.instance.as_str());
        self.playlist.render(|seq| segment_uri(stream, instance, seq))
    }

    fn drain(&mut self) {
        while let Some(segment) = self.segmenter.poll_segment() {
            self.add(segment);
        }
    }

    fn add(&mut self, segment: Segment) {
        if let Err(e) = self.playlist.push_segment(&segment) {
            return warn!(stream = %self.key, cause = %e, "hls segment not added");
        }
        if !segment.independent {
            crate::metrics::hls_forced_cut(&self.key.app);
            // Once per run is enough: an encoder that does it once does it every GOP.
            if !self.forced_cut_logged {
                self.forced_cut_logged = true;
                warn!(
                    stream = %self.key,
                    sequence = segment.sequence,
                    target_secs = segment.target_duration_secs,
                    "hls segment cut without a keyframe: the encoder's keyframe interval is longer than the target duration (set it to hls.fragment_ms)"
                );
            }
        }
        let playlist = self.render();
        let (sequence, duration_ms) = (segment.sequence, segment.duration_ms);
        // The playlist may list more than window_segments (it covers three target durations,
        // RFC 8216 §6.2.2): keep everything it lists, plus the tail.
        let keep = self.playlist.entries().len() + self.tail;
        self.out.publish(
            sequence,
            segment.data,
            playlist,
            self.playlist.target_duration_secs(),
            keep,
        );
        debug!(stream = %self.key, sequence, duration_ms, "hls segment");
        crate::metrics::hls_segment(&self.key.app);
        self.notify(sequence, duration_ms);
    }

    fn notify(&self, sequence: u64, duration_ms: u64) {
        let (name, instance) = (&self.key.name, &self.out.instance);
        let file = segment_name(name, instance, sequence);
        let uri = segment_uri(name, instance, sequence);
        self.hook.segment(file, uri, sequence, duration_ms);
    }

    /// Closes the open segment where it is; the next one is marked discontinuous.
    fn close_segment(&mut self) {
        self.segmenter.finish();
        self.drain();
    }
}

impl Output for TsPackaging {
    fn source_changed(&mut self, source: Option<&HookSubject>) {
        self.hook.source_changed(source);
    }

    fn packet(&mut self, packet: &Arc<Packet>) {
        if let Err(e) = self.segmenter.push(packet) {
            // Once per kind of trouble is enough for the log; metrics count every one.
            if self.errors_logged < 5 {
                self.errors_logged += 1;
                warn!(stream = %self.key, cause = %e, "hls packager dropped a packet");
            }
        }
        let byte_cuts = self.segmenter.stats().byte_cuts;
        if byte_cuts > self.byte_cuts {
            self.byte_cuts = byte_cuts;
            crate::metrics::budget_exceeded("hls_segment");
            warn!(stream = %self.key, "hls segment reached hls.max_segment_bytes; cut before the next packet");
        }
        self.drain();
    }

    fn gap(&mut self) {
        warn!(stream = %self.key, "hls packager fell behind the stream; the playlist continues after a discontinuity");
        self.close_segment();
    }

    fn source_gone(&mut self) {
        self.close_segment();
    }

    fn end(&mut self) {
        self.close_segment();
        self.playlist.end();
        self.out.end(self.render(), self.linger);
        info!(stream = %self.key, "hls playlist ended");
    }
}
