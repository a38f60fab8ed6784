//! The HLS segmenter: packets in, MPEG-TS segments out (RFC 8216 §3.2; Apple HLS authoring
//! spec 7.4: every segment starts with an IDR).
//!
//! A segment is cut at the first video keyframe at or after the fragment duration; an
//! audio-only stream is cut at the first audio frame at or after it. Packets before the
//! first keyframe are dropped. A packet flagged `discontinuity`, a change of sequence
//! header or of the set of tracks starts a new segment marked discontinuous, which the
//! playlist turns into `EXT-X-DISCONTINUITY` (RFC 8216 §4.3.2.3; Apple 8.13).
//!
//! # Target duration and forced cuts
//!
//! Every segment's duration, rounded to the nearest second, is at most the playlist's
//! `EXT-X-TARGETDURATION` (RFC 8216 §4.3.3.1), which never changes (§6.2.1). Only the
//! segmenter can keep that promise, so it owns the target: it is fixed when the first
//! segment closes, at `max(ceil(1.5 × fragment), round(first segment) + 1)` seconds, at most
//! `ceil(max_segment_ms / 1000)`, and every [`Segment`] carries it. The first term gives
//! keyframe jitter room over the fragment; the second follows an encoder whose keyframe
//! interval is longer than the fragment (OBS's default of 250 frames is 8.3 s at 30 fps,
//! 10 s at 25 fps), whose segments last a whole GOP: those keep starting with keyframes.
//!
//! A segment that would outgrow the target (or `max_segment_ms`) without a keyframe is cut
//! at the last video frame that keeps it within: a forced cut. The segment after it does
//! not start with a keyframe, so it is not [`Segment::independent`] and the playlist drops
//! `EXT-X-INDEPENDENT-SEGMENTS` while it is listed. A frame that comes later than the limit
//! (the stream stalled) closes the segment at the end of its last frame and starts a
//! discontinuous one; so does video that stays silent while audio runs on.
//!
//! Contract (push/poll, as in retina): after each [`HlsSegmenter::push`] and after
//! [`HlsSegmenter::finish`], call [`HlsSegmenter::poll_segment`] until it returns `None`.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use estuary_protocol::codec::{AudioSpecificConfig, AvcDecoderConfig};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};

use super::duration::rounded_secs;
use crate::ts::{AdtsFrame, AvcAccessUnit, TrackLayout, TsWriter};
use crate::MuxError;

/// Settings of an [`HlsSegmenter`].
#[derive(Debug, Clone)]
pub struct HlsSegmenterConfig {
    /// A segment is cut at the first keyframe at or after this many ms (default 2000),
    /// less half a frame interval to absorb timestamp rounding.
    pub fragment_ms: u64,
    /// No segment lasts longer than this (default 60 000): one that would, without a
    /// keyframe, is cut at the last video frame that keeps it within; the next segment then
    /// does not start with a keyframe (counted in [`SegmenterStats::forced_cuts`]). Also
    /// caps the target duration at `ceil(max_segment_ms / 1000)` seconds.
    pub max_segment_ms: u64,
    /// With no video sequence header seen, audio arriving for this many ms makes the
    /// stream audio-only (default 1000). A later video sequence header switches it back,
    /// with a discontinuity.
    pub audio_only_after_ms: u64,
    /// Consecutive AAC frames packed in one PES (default 4, about 90 ms at 44.1 kHz).
    pub audio_frames_per_pes: usize,
    /// Sequence number of the first segment (default 0).
    pub first_sequence: u64,
    /// Byte budget of the open segment: one that would grow past this with the next
    /// audio/video packet is cut before it, keyframe or not (counted in
    /// [`SegmenterStats::byte_cuts`]); the next segment starts with that packet. Frozen
    /// timestamps never reach `max_segment_ms`; this still ends the segment. Default 64 MiB.
    pub max_segment_bytes: usize,
}

impl Default for HlsSegmenterConfig {
    fn default() -> Self {
        HlsSegmenterConfig {
            fragment_ms: 2000,
            max_segment_ms: 60_000,
            audio_only_after_ms: 1000,
            audio_frames_per_pes: 4,
            first_sequence: 0,
            max_segment_bytes: 64 * 1024 * 1024,
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
    /// It starts with an IDR (or carries audio alone), so it decodes without the segment
    /// before it; false after a forced cut.
    pub independent: bool,
    /// `EXT-X-TARGETDURATION` of the playlists that list this stream: fixed when the first
    /// segment closed, the same on every segment, and never exceeded by a segment's
    /// duration rounded to the nearest second.
    pub target_duration_secs: u64,
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
    /// Segments cut without a keyframe because they would have outgrown the target
    /// duration or `max_segment_ms`.
    pub forced_cuts: u64,
    /// Segments cut because they reached `max_segment_bytes`.
    pub byte_cuts: u64,
}

struct OpenSegment {
    buf: BytesMut,
    start_dts: u64,
    program_date_time_ms: u64,
    discontinuity: bool,
    independent: bool,
    layout: TrackLayout,
    /// Estimated end of the last frame written: its DTS plus the track's frame interval.
    end_estimate: u64,
}

/// How long audio may run past a segment's longest duration while its video is silent
/// before the segment is ended without it (a frame interval of jitter is far less).
const VIDEO_STALL_GRACE_MS: u64 = 1000;

/// How long an open segment is at a frame, against the longest it may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    /// The next frame still fits.
    Room,
    /// The frame fits, the next one (a frame interval later) would not: cut here.
    Full,
    /// The frame comes after the limit: the stream stalled or jumped.
    Overrun,
}

/// Where a closing segment ends.
#[derive(Debug, Clone, Copy)]
enum SegmentEnd {
    /// Where the next one starts.
    At(u64),
    /// Where its last frame ends (estimated), at most its longest duration.
    LastFrame,
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
    /// Fixed when the first segment closes; see the module documentation.
    target_duration_secs: Option<u64>,
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
            target_duration_secs: None,
            stats: SegmenterStats::default(),
        }
    }

    /// Feeds one packet. An error means this packet was dropped and nothing else changed
    /// (except that its `discontinuity` flag still took effect).
    pub fn push(&mut self, packet: &Packet) -> Result<(), MuxError> {
        if packet.discontinuity {
            self.break_timeline();
        }
        self.cut_if_full(packet);
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
        let random_access = au.is_random_access();
        let mut layout = self.layout_now();
        let mut length = Length::Room;
        let cut = match &self.open {
            None => random_access,
            Some(open) => {
                length = self.length_at(open.start_dts, packet.dts, self.video_clock);
                let changed = open.layout != layout || self.config_changed;
                if random_access {
                    self.pending_discontinuity |= changed;
                    changed
                        || length != Length::Room
                        || self.fragment_reached(open.start_dts, packet.dts, self.video_clock)
                } else {
                    // A forced cut keeps the tracks: a change waits for its keyframe.
                    layout = open.layout;
                    open.layout.video && length != Length::Room
                }
            }
        };
        if cut {
            if self.open.is_some() && !random_access {
                self.stats.forced_cuts += 1;
            }
            self.cut(packet, length, layout, random_access);
            if random_access {
                self.config_changed = false;
            }
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
        } else {
            self.cut_audio_waiting_for_video(packet);
            self.end_segment_of_stalled_video(packet);
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

    /// The byte budget of the open segment (`max_segment_bytes`): if `packet` would take it
    /// past the budget, the segment is closed where it is and a new one with the same tracks
    /// starts at `packet`. A segment holding nothing but its tables is not cut: a packet
    /// larger than the budget makes a segment of its own.
    fn cut_if_full(&mut self, packet: &Packet) {
        if packet.seq_header || packet.kind == MediaKind::Script {
            return;
        }
        let Some(open) = &self.open else { return };
        // What MPEG-TS adds to a payload: 4 header bytes per 184 (under 1/32), and the PES
        // header, AUD, parameter sets and adaptation fields (under 1 KiB).
        let in_ts = |n: usize| n + n / 32 + 1024;
        let pending: usize = self.pending_audio.iter().map(|f| f.data.len() + 7).sum();
        let held = open.buf.len() + if pending > 0 { in_ts(pending) } else { 0 };
        let only_tables = held <= 2 * 188; // PAT and PMT, one TS packet each
        if only_tables || held + in_ts(packet.payload.len()) <= self.config.max_segment_bytes {
            return;
        }
        let layout = open.layout;
        // Cut on anything but a video keyframe, the new segment is not independent.
        let independent = !layout.video || (packet.kind == MediaKind::Video && packet.keyframe);
        self.stats.byte_cuts += 1;
        self.close_open(SegmentEnd::At(packet.dts));
        self.open_segment(packet, layout, independent);
    }

    /// Starts or cuts segments of a stream that has no video sequence header.
    fn cut_audio_only(&mut self, packet: &Packet) {
        let layout = self.layout_now();
        match &self.open {
            None => {
                let since = *self.audio_wait_since.get_or_insert(packet.dts);
                if packet.dts.saturating_sub(since) >= self.config.audio_only_after_ms {
                    self.open_segment(packet, layout, true);
                }
            }
            Some(open) => {
                let changed = open.layout != layout || self.config_changed;
                let length = self.length_at(open.start_dts, packet.dts, self.audio_clock);
                if changed
                    || length != Length::Room
                    || self.fragment_reached(open.start_dts, packet.dts, self.audio_clock)
                {
                    self.pending_discontinuity |= changed;
                    self.cut(packet, length, layout, true);
                    self.config_changed = false;
                }
            }
        }
    }

    /// Keeps an audio-only segment within its longest duration while the video that just
    /// got a sequence header waits for its first keyframe (which starts the next segment).
    fn cut_audio_waiting_for_video(&mut self, packet: &Packet) {
        let Some(open) = self.open.as_ref().filter(|open| !open.layout.video) else {
            return;
        };
        let length = self.length_at(open.start_dts, packet.dts, self.audio_clock);
        if length != Length::Room {
            let layout = open.layout;
            self.cut(packet, length, layout, true);
        }
    }

    /// Audio that runs [`VIDEO_STALL_GRACE_MS`] past the longest duration of a segment with
    /// video means the video stalled: the segment ends at its limit, and the stream waits for
    /// a keyframe, after a discontinuity, as at its start (the audio until then is dropped).
    fn end_segment_of_stalled_video(&mut self, packet: &Packet) {
        let Some(open) = self.open.as_ref().filter(|open| open.layout.video) else {
            return;
        };
        let elapsed = packet.dts.saturating_sub(open.start_dts);
        if elapsed > self.max_duration_ms() + VIDEO_STALL_GRACE_MS {
            self.close_open(SegmentEnd::LastFrame);
            self.pending_discontinuity = true;
        }
    }

    /// Closes the open segment and starts one at `packet` with `layout`. An overrun closes
    /// it where its last frame ends, and the new one is discontinuous: the media has a gap
    /// that the durations cannot show.
    fn cut(&mut self, packet: &Packet, length: Length, layout: TrackLayout, independent: bool) {
        if length == Length::Overrun {
            self.pending_discontinuity = true;
            self.close_open(SegmentEnd::LastFrame);
        } else {
            self.close_open(SegmentEnd::At(packet.dts));
        }
        self.open_segment(packet, layout, independent);
    }

    /// The longest a segment may last: `max_segment_ms`, and once the target duration is
    /// fixed, what still rounds to it.
    fn max_duration_ms(&self) -> u64 {
        let limit = self.config.max_segment_ms.max(1);
        self.target_duration_secs
            .map_or(limit, |target| limit.min(target * 1000 + 499))
    }

    /// How long a segment that started at `start_dts` is at a frame at `dts` of the track
    /// timed by `clock`.
    fn length_at(&self, start_dts: u64, dts: u64, clock: TrackClock) -> Length {
        let limit = self.max_duration_ms();
        let elapsed = dts.saturating_sub(start_dts);
        if elapsed > limit {
            Length::Overrun
        } else if elapsed + clock.interval > limit {
            Length::Full
        } else {
            Length::Room
        }
    }

    /// The target duration, fixed by the first segment to close (see the module docs).
    fn target_duration_secs(&mut self, first_segment_ms: u64) -> u64 {
        let config = &self.config;
        *self.target_duration_secs.get_or_insert_with(|| {
            let from_fragment = (config.fragment_ms * 3).div_ceil(2000);
            let from_first_segment = rounded_secs(first_segment_ms) + 1;
            let most = config.max_segment_ms.div_ceil(1000);
            from_fragment.max(from_first_segment).min(most).max(1)
        })
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

    fn open_segment(&mut self, packet: &Packet, layout: TrackLayout, independent: bool) {
        let mut buf = BytesMut::with_capacity(self.last_segment_len + self.last_segment_len / 4);
        self.writer.write_tables(&mut buf, layout);
        self.open = Some(OpenSegment {
            buf,
            start_dts: packet.dts,
            program_date_time_ms: packet.arrival_ms,
            discontinuity: std::mem::take(&mut self.pending_discontinuity),
            independent,
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

    /// Closes the open segment.
    fn close_open(&mut self, end: SegmentEnd) {
        self.flush_audio();
        let longest = self.max_duration_ms();
        let Some(open) = self.open.take() else { return };
        let end = match end {
            SegmentEnd::At(dts) => dts,
            SegmentEnd::LastFrame => open.end_estimate.min(open.start_dts.saturating_add(longest)),
        };
        let duration_ms = end.saturating_sub(open.start_dts);
        let target_duration_secs = self.target_duration_secs(duration_ms);
        self.last_segment_len = open.buf.len();
        self.ready.push_back(Segment {
            sequence: self.next_sequence,
            duration_ms,
            start_dts: open.start_dts,
            program_date_time_ms: open.program_date_time_ms,
            discontinuity: open.discontinuity,
            independent: open.independent,
            target_duration_secs,
            data: open.buf.freeze(),
        });
        self.next_sequence += 1;
        self.stats.segments += 1;
    }

    /// Closes the open segment where its last frame ends; the next one is discontinuous.
    fn break_timeline(&mut self) {
        let had_output = self.open.is_some() || self.next_sequence != self.config.first_sequence;
        self.close_open(SegmentEnd::LastFrame);
        self.pending_discontinuity |= had_output;
        self.audio_wait_since = None;
        self.video_clock = TrackClock::default();
        self.audio_clock = TrackClock::default();
        self.writer.restart_clock();
    }
}

#[cfg(test)]
mod tests;
