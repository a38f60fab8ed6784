//! The HLS segmenter: packets in, MPEG-TS segments out (RFC 8216 §3.2; Apple HLS authoring
//! spec 7.4: every segment starts with an IDR).
//!
//! A segment is cut at the first video keyframe at or after the fragment duration; an
//! audio-only stream is cut at the first audio frame at or after it. Packets before the
//! first keyframe are dropped. A packet flagged `discontinuity`, a change of sequence
//! header or of the set of tracks starts a new segment marked discontinuous, which the
//! playlist turns into `EXT-X-DISCONTINUITY` (RFC 8216 §4.3.2.3; Apple 8.13).
//!
//! Contract (push/poll, as in retina): after each [`HlsSegmenter::push`] and after
//! [`HlsSegmenter::finish`], call [`HlsSegmenter::poll_segment`] until it returns `None`.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use estuary_protocol::codec::{AudioSpecificConfig, AvcDecoderConfig};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};

use crate::ts::{AdtsFrame, AvcAccessUnit, TrackLayout, TsWriter};
use crate::MuxError;

/// Settings of an [`HlsSegmenter`].
#[derive(Debug, Clone)]
pub struct HlsSegmenterConfig {
    /// A segment is cut at the first keyframe at or after this many ms (default 2000),
    /// less half a frame interval to absorb timestamp rounding.
    pub fragment_ms: u64,
    /// A segment that reaches this length without a keyframe is cut anyway, at the next
    /// video frame, so memory stays bounded; the next segment then does not start with a
    /// keyframe (counted in [`SegmenterStats::forced_cuts`]). Default 60 000.
    pub max_segment_ms: u64,
    /// With no video sequence header seen, audio arriving for this many ms makes the
    /// stream audio-only (default 1000). A later video sequence header switches it back,
    /// with a discontinuity.
    pub audio_only_after_ms: u64,
    /// Consecutive AAC frames packed in one PES (default 4, about 90 ms at 44.1 kHz).
    pub audio_frames_per_pes: usize,
    /// Sequence number of the first segment (default 0).
    pub first_sequence: u64,
}

impl Default for HlsSegmenterConfig {
    fn default() -> Self {
        HlsSegmenterConfig {
            fragment_ms: 2000,
            max_segment_ms: 60_000,
            audio_only_after_ms: 1000,
            audio_frames_per_pes: 4,
            first_sequence: 0,
        }
    }
}

/// One finished MPEG-TS segment.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number: consecutive, starting at [`HlsSegmenterConfig::first_sequence`].
    pub sequence: u64,
    /// From its first DTS to the first DTS of the next segment (or the estimated end of its
    /// last frame when the timeline breaks or the publisher leaves).
    pub duration_ms: u64,
    /// DTS of its first packet on the stream's normalised timeline.
    pub start_dts: u64,
    /// Arrival wall-clock time of its first packet, in Unix ms.
    pub program_date_time_ms: u64,
    /// The timeline or the encoding changed before this segment.
    pub discontinuity: bool,
    /// The whole segment: PAT, PMT, then PES packets.
    pub data: Bytes,
}

/// Counters the server exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmenterStats {
    pub segments: u64,
    /// Packets dropped while waiting for a keyframe (stream start, after a discontinuity,
    /// or a track that the current segment's PMT does not list).
    pub dropped_packets: u64,
    /// Segments cut without a keyframe because they reached `max_segment_ms`.
    pub forced_cuts: u64,
}

struct OpenSegment {
    buf: BytesMut,
    start_dts: u64,
    program_date_time_ms: u64,
    discontinuity: bool,
    layout: TrackLayout,
    /// Estimated end of the last frame written: its DTS plus the track's frame interval.
    end_estimate: u64,
}

/// Frame interval of one track, learnt from consecutive DTS values.
#[derive(Debug, Default, Clone, Copy)]
struct TrackClock {
    last_dts: Option<u64>,
    interval: u64,
}

impl TrackClock {
    /// Records a frame; returns the estimated end of it.
    fn advance(&mut self, dts: u64) -> u64 {
        if let Some(last) = self.last_dts {
            if dts > last {
                self.interval = dts - last;
            }
        }
        self.last_dts = Some(dts);
        dts.saturating_add(self.interval)
    }
}

/// Turns a stream's packets into MPEG-TS segments. One per stream, fed every packet in
/// order from the first sequence headers on.
pub struct HlsSegmenter {
    config: HlsSegmenterConfig,
    writer: TsWriter,
    avc: Option<Arc<AvcDecoderConfig>>,
    aac: Option<AudioSpecificConfig>,
    open: Option<OpenSegment>,
    pending_audio: Vec<AdtsFrame>,
    pending_audio_pts: u64,
    ready: VecDeque<Segment>,
    next_sequence: u64,
    /// The next segment gets `discontinuity`.
    pending_discontinuity: bool,
    /// A sequence header changed: cut, discontinuous, at the next random access point.
    config_changed: bool,
    /// DTS of the first audio frame seen with no video sequence header.
    audio_wait_since: Option<u64>,
    video_clock: TrackClock,
    audio_clock: TrackClock,
    last_segment_len: usize,
    stats: SegmenterStats,
}

impl HlsSegmenter {
    pub fn new(config: HlsSegmenterConfig) -> Self {
        let next_sequence = config.first_sequence;
        HlsSegmenter {
            config,
            writer: TsWriter::new(),
            avc: None,
            aac: None,
            open: None,
            pending_audio: Vec::new(),
            pending_audio_pts: 0,
            ready: VecDeque::new(),
            next_sequence,
            pending_discontinuity: false,
            config_changed: false,
            audio_wait_since: None,
            video_clock: TrackClock::default(),
            audio_clock: TrackClock::default(),
            last_segment_len: 0,
            stats: SegmenterStats::default(),
        }
    }

    /// Feeds one packet. An error means this packet was dropped and nothing else changed
    /// (except that its `discontinuity` flag still took effect).
    pub fn push(&mut self, packet: &Packet) -> Result<(), MuxError> {
        if packet.discontinuity {
            self.break_timeline();
        }
        match packet.kind {
            MediaKind::Video => self.push_video(packet),
            MediaKind::Audio => self.push_audio(packet),
            MediaKind::Script => Ok(()),
        }
    }

    /// The next finished segment, oldest first.
    pub fn poll_segment(&mut self) -> Option<Segment> {
        self.ready.pop_front()
    }

    /// The publisher left: closes the open segment (poll it next). If packets come again
    /// the next segment is marked discontinuous and sequence numbers continue.
    pub fn finish(&mut self) {
        self.break_timeline();
    }

    pub fn stats(&self) -> SegmenterStats {
        self.stats
    }

    /// The current H.264 sequence header, for the API (profile, level, size).
    pub fn video_config(&self) -> Option<&AvcDecoderConfig> {
        self.avc.as_deref()
    }

    /// The current AAC sequence header, for the API.
    pub fn audio_config(&self) -> Option<&AudioSpecificConfig> {
        self.aac.as_ref()
    }

    fn push_video(&mut self, packet: &Packet) -> Result<(), MuxError> {
        match packet.codec {
            Codec::Video(VideoCodec::Avc) => {}
            Codec::Video(other) => return Err(MuxError::UnsupportedVideoCodec(other)),
            _ => {
                self.stats.dropped_packets += 1;
                return Ok(());
            }
        }
        let body = packet.body();
        if packet.seq_header {
            let config = AvcDecoderConfig::parse(&body).map_err(MuxError::VideoSequenceHeader)?;
            if self.avc.as_deref().is_some_and(|old| *old != config) {
                self.config_changed = true;
            }
            self.avc = Some(Arc::new(config));
            return Ok(());
        }
        let config = self.avc.clone().ok_or(MuxError::VideoBeforeSequenceHeader)?;
        let au = AvcAccessUnit::from_avcc(&body, &config, packet.keyframe).map_err(MuxError::VideoFrame)?;
        let layout = self.layout_now();
        let cut = match &self.open {
            None => au.is_random_access(),
            Some(open) if au.is_random_access() => {
                open.layout != layout
                    || self.config_changed
                    || self.fragment_reached(open.start_dts, packet.dts, self.video_clock)
            }
            Some(open) => open.layout.video && packet.dts.saturating_sub(open.start_dts) >= self.config.max_segment_ms,
        };
        if cut {
            if let Some(open) = &self.open {
                if open.layout != layout || self.config_changed {
                    self.pending_discontinuity = true;
                }
                if !au.is_random_access() {
                    self.stats.forced_cuts += 1;
                }
            }
            self.close_open(Some(packet.dts));
            self.config_changed = false;
            self.open_segment(packet, layout);
        }
        let Some(open) = self.open.as_mut().filter(|open| open.layout.video) else {
            self.stats.dropped_packets += 1;
            return Ok(());
        };
        self.writer.write_video(&mut open.buf, &au, packet.dts, packet.pts());
        let end = self.video_clock.advance(packet.dts);
        open.end_estimate = open.end_estimate.max(end);
        Ok(())
    }

    fn push_audio(&mut self, packet: &Packet) -> Result<(), MuxError> {
        match packet.codec {
            Codec::Audio(AudioCodec::Aac) => {}
            Codec::Audio(other) => return Err(MuxError::UnsupportedAudioCodec(other)),
            _ => {
                self.stats.dropped_packets += 1;
                return Ok(());
            }
        }
        let body = packet.body();
        if packet.seq_header {
            let config = AudioSpecificConfig::parse(&body).map_err(MuxError::AudioSequenceHeader)?;
            config.adts_header(0).map_err(MuxError::AudioSequenceHeader)?;
            if self.aac.as_ref().is_some_and(|old| *old != config) {
                self.config_changed = true;
            }
            self.aac = Some(config);
            return Ok(());
        }
        let config = self.aac.as_ref().ok_or(MuxError::AudioBeforeSequenceHeader)?;
        let header = config.adts_header(body.len()).map_err(MuxError::AudioFrame)?;
        let frame = AdtsFrame { header, data: body };
        if self.avc.is_none() {
            self.cut_audio_only(packet);
        }
        let Some(open) = self.open.as_mut().filter(|open| open.layout.audio) else {
            self.stats.dropped_packets += 1;
            return Ok(());
        };
        let end = self.audio_clock.advance(packet.dts);
        open.end_estimate = open.end_estimate.max(end);
        if self.pending_audio.is_empty() {
            self.pending_audio_pts = packet.pts();
        }
        self.pending_audio.push(frame);
        let pending_bytes: usize = self.pending_audio.iter().map(|f| f.data.len() + 7).sum();
        // Stay far below the 16-bit PES_packet_length.
        if self.pending_audio.len() >= self.config.audio_frames_per_pes || pending_bytes > 30_000 {
            self.flush_audio();
        }
        Ok(())
    }

    /// Starts or cuts segments of a stream that has no video sequence header.
    fn cut_audio_only(&mut self, packet: &Packet) {
        let layout = self.layout_now();
        match &self.open {
            None => {
                let since = *self.audio_wait_since.get_or_insert(packet.dts);
                if packet.dts.saturating_sub(since) >= self.config.audio_only_after_ms {
                    self.open_segment(packet, layout);
                }
            }
            Some(open) => {
                let changed = open.layout != layout || self.config_changed;
                if changed || self.fragment_reached(open.start_dts, packet.dts, self.audio_clock) {
                    self.pending_discontinuity |= changed;
                    self.close_open(Some(packet.dts));
                    self.config_changed = false;
                    self.open_segment(packet, layout);
                }
            }
        }
    }

    /// Whether a segment that started at `start_dts` is long enough to be cut at `dts`.
    /// Half a frame of slack absorbs millisecond rounding: OBS at 30 fps stamps its
    /// 2-second keyframes 1999 ms apart, which would otherwise double every segment.
    fn fragment_reached(&self, start_dts: u64, dts: u64, clock: TrackClock) -> bool {
        dts.saturating_sub(start_dts) + clock.interval / 2 >= self.config.fragment_ms
    }

    /// The tracks a segment started now would list.
    fn layout_now(&self) -> TrackLayout {
        TrackLayout {
            video: self.avc.is_some(),
            audio: self.aac.is_some(),
        }
    }

    fn open_segment(&mut self, packet: &Packet, layout: TrackLayout) {
        let mut buf = BytesMut::with_capacity(self.last_segment_len + self.last_segment_len / 4);
        self.writer.write_tables(&mut buf, layout);
        self.open = Some(OpenSegment {
            buf,
            start_dts: packet.dts,
            program_date_time_ms: packet.arrival_ms,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            layout,
            end_estimate: packet.dts,
        });
        self.audio_wait_since = None;
    }

    fn flush_audio(&mut self) {
        if let Some(open) = self.open.as_mut() {
            self.writer
                .write_audio(&mut open.buf, &self.pending_audio, self.pending_audio_pts);
        }
        self.pending_audio.clear();
    }

    /// Closes the open segment, ending at `end_dts` or at its estimated end.
    fn close_open(&mut self, end_dts: Option<u64>) {
        self.flush_audio();
        let Some(open) = self.open.take() else { return };
        let end = end_dts.unwrap_or(open.end_estimate).max(open.start_dts);
        self.last_segment_len = open.buf.len();
        self.ready.push_back(Segment {
            sequence: self.next_sequence,
            duration_ms: end - open.start_dts,
            start_dts: open.start_dts,
            program_date_time_ms: open.program_date_time_ms,
            discontinuity: open.discontinuity,
            data: open.buf.freeze(),
        });
        self.next_sequence += 1;
        self.stats.segments += 1;
    }

    /// Closes the open segment where its last frame ends; the next one is discontinuous.
    fn break_timeline(&mut self) {
        let had_output = self.open.is_some() || self.next_sequence != self.config.first_sequence;
        self.close_open(None);
        self.pending_discontinuity |= had_output;
        self.audio_wait_since = None;
        self.video_clock = TrackClock::default();
        self.audio_clock = TrackClock::default();
        self.writer.restart_clock();
    }
}

#[cfg(test)]
mod tests;
