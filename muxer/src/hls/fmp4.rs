//! The fMP4 HLS segmenter: packets in, init sections, parts and segments out (RFC 8216bis
//! §3.3 fragmented MPEG-4; Apple HLS authoring spec 1.5: HEVC must be fMP4, 8.20
//! `EXT-X-MAP`).
//!
//! It drives the recorder's [`Fmp4Writer`] (the same `ftyp`/`moov` and `moof`/`mdat`
//! writers) with parts turned on: each fragment it cuts is one LL-HLS part, a run of parts
//! from a keyframe is a segment, and the segment's bytes are its parts back to back. With
//! low latency off, each fragment is a whole segment. Decode times (`tfdt`) are the
//! stream's own timeline converted once, so they run on across segments and across a new
//! init section.
//!
//! A codec configuration that changes (a new sequence header, a track that appears) starts
//! a new init section, and the first segment after it is marked discontinuous; so is the
//! first segment after the publisher came back ([`Fmp4Segmenter::finish`] or a packet
//! flagged `discontinuity`).
//!
//! # Target duration
//!
//! As for MPEG-TS ([`super::segmenter`]): fixed when the first segment closes, at
//! `max(ceil(1.5 × fragment), round(first segment) + 1)` seconds, at most
//! `ceil(max_segment_ms / 1000)`; from then on a segment that would round above it is cut
//! before the frame that would take it there, keyframe or not.
//!
//! Contract (push/poll): after each [`Fmp4Segmenter::push`] and after
//! [`Fmp4Segmenter::finish`], call [`Fmp4Segmenter::poll`] until it returns `None`.

use std::collections::VecDeque;

use bytes::Bytes;
use estuary_protocol::{MediaKind, Packet};

use super::codecs::codecs_attribute;
use super::duration::rounded_secs;
use crate::mp4::{Fmp4Event, Fmp4Writer, Fmp4WriterConfig, Fragment};
use crate::MuxError;

/// Settings of an [`Fmp4Segmenter`].
#[derive(Debug, Clone)]
pub struct Fmp4SegmenterConfig {
    /// A segment is cut at the first keyframe at or after this many ms (default 2000).
    pub fragment_ms: u64,
    /// No segment lasts longer than this (default 60 000); caps the target duration.
    pub max_segment_ms: u64,
    /// LL-HLS parts of at most this many ms (`EXT-X-PART-INF:PART-TARGET`); `None`: no parts.
    pub part_ms: Option<u64>,
    /// Sequence number of the first segment (default 0).
    pub first_sequence: u64,
}

impl Default for Fmp4SegmenterConfig {
    fn default() -> Self {
        Fmp4SegmenterConfig {
            fragment_ms: 2000,
            max_segment_ms: 60_000,
            part_ms: Some(300),
            first_sequence: 0,
        }
    }
}

/// An init section (`EXT-X-MAP`): `ftyp` + `moov` for the segments that follow it.
#[derive(Debug, Clone)]
pub struct InitSection {
    /// 0, 1, … per configuration of the stream.
    pub id: u64,
    pub data: Bytes,
    /// The master playlist's `CODECS` for it, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    /// Picture size, 0 × 0 without video.
    pub width: u16,
    pub height: u16,
}

/// One LL-HLS part: a `moof` + `mdat` of the open segment.
#[derive(Debug, Clone)]
pub struct Part {
    pub sequence: u64,
    /// 0, 1, … within its segment.
    pub index: u32,
    pub duration_ms: u64,
    /// Starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
    pub data: Bytes,
}

/// One finished fMP4 segment.
#[derive(Debug, Clone)]
pub struct Fmp4Segment {
    pub sequence: u64,
    pub duration_ms: u64,
    pub start_dts: u64,
    /// Arrival wall-clock time of its first frame, in Unix ms.
    pub program_date_time_ms: u64,
    pub discontinuity: bool,
    /// Starts with a keyframe.
    pub independent: bool,
    pub target_duration_secs: u64,
    /// The [`InitSection::id`] its fragments are read with.
    pub init_id: u64,
    /// Its parts' durations in order (one entry when it has no parts).
    pub part_durations_ms: Vec<(u64, bool)>,
    pub data: Bytes,
}

/// What the segmenter produced, in order.
#[derive(Debug, Clone)]
pub enum Fmp4Output {
    Init(InitSection),
    Part(Part),
    Segment(Fmp4Segment),
}

/// Counters the server exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fmp4SegmenterStats {
    pub segments: u64,
    pub parts: u64,
    pub init_sections: u64,
    /// Segments cut without a keyframe.
    pub forced_cuts: u64,
}

struct OpenSegment {
    sequence: u64,
    start_dts: u64,
    program_date_time_ms: u64,
    discontinuity: bool,
    independent: bool,
    init_id: u64,
    parts: Vec<(Bytes, u64, bool)>,
}

/// Arrival times of recent frames, to date a segment by its first frame.
const MAX_ARRIVALS: usize = 8192;

/// Turns one stream's packets into fMP4 HLS. One per packaging run.
pub struct Fmp4Segmenter {
    config: Fmp4SegmenterConfig,
    writer: Fmp4Writer,
    open: Option<OpenSegment>,
    init_id: Option<u64>,
    next_sequence: u64,
    pending_discontinuity: bool,
    target_duration_secs: Option<u64>,
    arrivals: VecDeque<(u64, u64)>,
    out: VecDeque<Fmp4Output>,
    stats: Fmp4SegmenterStats,
}

impl Fmp4Segmenter {
    pub fn new(config: Fmp4SegmenterConfig) -> Self {
        let writer = Fmp4Writer::new(Fmp4WriterConfig {
            fragment_ms: config.fragment_ms,
            max_fragment_ms: config.max_segment_ms,
            part_ms: Some(config.part_ms.unwrap_or(u64::MAX)),
            ..Fmp4WriterConfig::default()
        });
        Fmp4Segmenter {
            next_sequence: config.first_sequence,
            config,
            writer,
            open: None,
            init_id: None,
            pending_discontinuity: false,
            target_duration_secs: None,
            arrivals: VecDeque::new(),
            out: VecDeque::new(),
            stats: Fmp4SegmenterStats::default(),
        }
    }

    /// Feeds one packet. An error means it was dropped (a codec fMP4 HLS does not carry
    /// yet, a frame before its sequence header) and nothing else changed.
    pub fn push(&mut self, packet: &Packet) -> Result<(), MuxError> {
        if packet.discontinuity {
            self.finish();
        }
        if packet.kind != MediaKind::Script && !packet.seq_header {
            if self.arrivals.len() >= MAX_ARRIVALS {
                self.arrivals.pop_front();
            }
            self.arrivals.push_back((packet.dts, packet.arrival_ms));
        }
        let result = self.writer.push(packet);
        self.drain();
        result
    }

    /// The publisher left or the packager lost packets: closes the open segment; what comes
    /// next starts a segment marked discontinuous, at a keyframe.
    pub fn finish(&mut self) {
        self.writer.finish();
        self.drain();
        self.pending_discontinuity = true;
    }

    pub fn poll(&mut self) -> Option<Fmp4Output> {
        self.out.pop_front()
    }

    pub fn stats(&self) -> Fmp4SegmenterStats {
        self.stats
    }

    /// The target duration, once the first segment closed.
    pub fn target_duration_secs(&self) -> Option<u64> {
        self.target_duration_secs
    }

    fn drain(&mut self) {
        while let Some(event) = self.writer.poll_event() {
            match event {
                Fmp4Event::Init(init) => {
                    let id = self.init_id.map_or(0, |id| id + 1);
                    self.init_id = Some(id);
                    if init.restart.is_some() {
                        self.pending_discontinuity = true;
                    }
                    self.stats.init_sections += 1;
                    let (width, height) = init.video.as_ref().map_or((0, 0), |v| (v.width, v.height));
                    self.out.push_back(Fmp4Output::Init(InitSection {
                        id,
                        codecs: codecs_attribute(init.video.as_ref(), init.audio.as_ref()),
                        data: init.data,
                        width,
                        height,
                    }));
                }
                Fmp4Event::Fragment(fragment) => self.fragment(fragment),
            }
        }
    }

    fn fragment(&mut self, fragment: Fragment) {
        let open = match self.open.as_mut() {
            Some(open) => open,
            None => {
                let sequence = self.next_sequence;
                self.next_sequence += 1;
                let program_date_time_ms = self.arrival_of(fragment.start_ms);
                self.open.insert(OpenSegment {
                    sequence,
                    start_dts: fragment.start_ms,
                    program_date_time_ms,
                    discontinuity: std::mem::take(&mut self.pending_discontinuity),
                    independent: fragment.starts_with_keyframe,
                    init_id: self.init_id.unwrap_or(0),
                    parts: Vec::new(),
                })
            }
        };
        let data = fragment.to_bytes();
        let index = open.parts.len() as u32;
        open.parts
            .push((data.clone(), fragment.duration_ms, fragment.starts_with_keyframe));
        if self.config.part_ms.is_some() {
            self.stats.parts += 1;
            self.out.push_back(Fmp4Output::Part(Part {
                sequence: open.sequence,
                index,
                duration_ms: fragment.duration_ms,
                independent: fragment.starts_with_keyframe,
                data,
            }));
        }
        if fragment.ends_segment {
            self.close();
        }
    }

    fn close(&mut self) {
        let Some(open) = self.open.take() else { return };
        let mut duration_ms: u64 = open.parts.iter().map(|(_, d, _)| d).sum();
        let target = *self.target_duration_secs.get_or_insert_with(|| {
            let by_fragment = (self.config.fragment_ms * 3).div_ceil(2000);
            let cap = self.config.max_segment_ms.div_ceil(1000).max(1);
            by_fragment.max(rounded_secs(duration_ms) + 1).min(cap).max(1)
        });
        self.writer
            .set_max_fragment_ms(self.config.max_segment_ms.min(target * 1000 + 499));
        if rounded_secs(duration_ms) > target {
            // The stream stalled past the limit: the gap is a break in the timeline.
            duration_ms = target * 1000;
            self.pending_discontinuity = true;
        }
        if !open.independent {
            self.stats.forced_cuts += 1;
        }
        let len = open.parts.iter().map(|(d, _, _)| d.len()).sum();
        let mut data = Vec::with_capacity(len);
        for (part, _, _) in &open.parts {
            data.extend_from_slice(part);
        }
        while self
            .arrivals
            .front()
            .is_some_and(|(dts, _)| *dts < open.start_dts + duration_ms)
        {
            self.arrivals.pop_front();
        }
        self.stats.segments += 1;
        self.out.push_back(Fmp4Output::Segment(Fmp4Segment {
            sequence: open.sequence,
            duration_ms,
            start_dts: open.start_dts,
            program_date_time_ms: open.program_date_time_ms,
            discontinuity: open.discontinuity,
            independent: open.independent,
            target_duration_secs: target,
            init_id: open.init_id,
            part_durations_ms: open.parts.iter().map(|(_, d, i)| (*d, *i)).collect(),
            data: Bytes::from(data),
        }));
    }

    /// Arrival time of the frame at `dts` (the first one at or after it).
    fn arrival_of(&self, dts: u64) -> u64 {
        self.arrivals
            .iter()
            .find(|(d, _)| *d >= dts)
            .or(self.arrivals.back())
            .map_or(0, |(d, arrival)| arrival.saturating_sub(d.saturating_sub(dts)))
    }
}

#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod tests;
