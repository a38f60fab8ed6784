//! One MP4 file served as HLS VOD in MPEG-TS, segment by segment, without rewriting the
//! file (as nginx-vod-module does): a segment's samples are read from their byte ranges and
//! muxed on request.
//!
//! Every segment is muxed on its own, yet consecutive segments continue each other: each
//! starts its continuity counters at 0 and ends them at 0 (PAT and PMT are written 16
//! times, spread over the segment; the last PES of each elementary stream is spread over as
//! many extra transport packets as bring its counter back to 0). So any segment can follow
//! any other, even across files that join, with no discontinuity indicator.
//!
//! Timestamps are the samples' places on the file's timeline
//! ([`VodPlan`](super::VodPlan)), plus [`VOD_TIMESTAMP_BASE_MS`] and the caller's timeline
//! offset (0 for one file; see [`plan_range`](super::plan_range) for several).

use std::io;

use bytes::{Bytes, BytesMut};
use estuary_protocol::codec::{AudioSpecificConfig, AvcDecoderConfig};

use super::codecs::{aac_config, avc_config};
use super::plan::{PlanTrack, VodPlan, VodSegment};
use super::ranges::{coalesce, ByteRange, SegmentBytes};
use super::timeline::{TICKS_PER_MS, VOD_TIMESTAMP_BASE_MS};
use crate::mp4::{Mp4Index, Sample};
use crate::ts::{AdtsFrame, AvcAccessUnit, CounterEnd, TrackLayout, TsWriter, TIMESTAMP_MASK, TS_PACKET_LEN};
use crate::MuxError;

/// The largest segment made: its samples' bytes plus a transport packet per sample. It
/// bounds what a request reads into memory and writes (6 s at 100 Mbit/s is 75 MB; a
/// hostile file with millions of tiny samples in one segment is refused too).
pub const MAX_SEGMENT_BYTES: u64 = 128 << 20;

/// Consecutive AAC frames in one PES: about 90 ms at 44.1 kHz, as the live segmenter does.
const AUDIO_FRAMES_PER_PES: usize = 4;
/// ... and never more bytes than this, far below the 16-bit `PES_packet_length`.
const AUDIO_PES_MAX_BYTES: usize = 30_000;
/// PAT and PMT are written this many times in a segment, so their counters end where they
/// started.
const TABLES_PER_SEGMENT: usize = 16;

/// An MP4 file (H.264 and/or AAC) ready to be served as HLS VOD in MPEG-TS: its index, its
/// segment plan and its codec configurations. Build it once per file and keep it (behind an
/// `Arc`) for as long as the file is being watched; every call is `&self`.
#[derive(Debug)]
pub struct VodTs {
    index: Mp4Index,
    plan: VodPlan,
    avc: Option<AvcDecoderConfig>,
    aac: Option<AudioSpecificConfig>,
}

/// What one segment is made of, in the order it is written.
enum Unit {
    Video {
        index: usize,
        sample: Sample,
        dts: u64,
        pts: u64,
    },
    Audio {
        samples: std::ops::Range<usize>,
        pts: u64,
    },
}

impl Unit {
    fn time(&self) -> u64 {
        match self {
            Unit::Video { dts, .. } => *dts,
            Unit::Audio { pts, .. } => *pts,
        }
    }
}

impl VodTs {
    /// Plans `index` (see [`VodPlan::new`]) and reads its codec configurations. Fails with
    /// [`MuxError::VodUnsupportedCodec`] when the file's video is not H.264 or its audio not
    /// AAC: serve the MP4 itself then.
    pub fn new(index: Mp4Index, target_ms: u64) -> Result<VodTs, MuxError> {
        let plan = VodPlan::new(&index, target_ms)?;
        let avc = plan.video_track().map(avc_config).transpose()?;
        let aac = plan.audio_track().map(aac_config).transpose()?;
        Ok(VodTs { index, plan, avc, aac })
    }

    pub fn plan(&self) -> &VodPlan {
        &self.plan
    }

    pub fn index(&self) -> &Mp4Index {
        &self.index
    }

    /// The RFC 6381 codecs of the file, for a master playlist's `CODECS`:
    /// `avc1.64001F,mp4a.40.2`.
    pub fn codecs(&self) -> String {
        let video = self.avc.as_ref().map(AvcDecoderConfig::codec_string);
        let audio = self.aac.as_ref().map(AudioSpecificConfig::codec_string);
        video.into_iter().chain(audio).collect::<Vec<_>>().join(",")
    }

    /// The byte ranges of the file that segment `number` needs, sorted, adjacent samples
    /// coalesced: read exactly these, in this order, for [`VodTs::mux_segment_from`].
    pub fn segment_ranges(&self, number: usize) -> Result<Vec<ByteRange>, MuxError> {
        let segment = self.plan.require(number)?;
        let video = self.samples(self.plan.video_track(), &segment.video);
        let audio = self.samples(self.plan.audio_track(), &segment.audio);
        let media: u64 = video.iter().chain(audio).map(|s| u64::from(s.size)).sum();
        let bytes = media + (video.len() + audio.len()) as u64 * TS_PACKET_LEN as u64;
        if bytes > MAX_SEGMENT_BYTES {
            return Err(MuxError::VodSegmentTooLarge {
                segment: number,
                bytes,
                limit: MAX_SEGMENT_BYTES,
            });
        }
        Ok(coalesce(video.iter().chain(audio).map(|s| (s.offset, s.size))))
    }

    /// Segment `number` as MPEG-TS, reading its byte ranges with `read` (for example
    /// `File::read_exact_at` inside `spawn_blocking`). `timeline_offset_ms` moves the
    /// segment on the playlist's timeline: 0 for a file played alone. The same file, number
    /// and offset always make the same bytes, so a segment can be cached by its URI.
    pub fn mux_segment(
        &self,
        number: usize,
        timeline_offset_ms: u64,
        mut read: impl FnMut(ByteRange) -> io::Result<Bytes>,
    ) -> Result<Bytes, MuxError> {
        let ranges = self.segment_ranges(number)?;
        let mut data = Vec::with_capacity(ranges.len());
        for range in &ranges {
            data.push(read(*range).map_err(|e| MuxError::VodRead {
                segment: number,
                offset: range.offset,
                len: range.len,
                kind: e.kind(),
                message: e.to_string(),
            })?);
        }
        self.mux_segment_from(number, timeline_offset_ms, &data)
    }

    /// Segment `number` as MPEG-TS from the bytes of its [`VodTs::segment_ranges`], one
    /// `Bytes` per range in the same order (sans-IO: the caller read them as it likes).
    pub fn mux_segment_from(&self, number: usize, timeline_offset_ms: u64, data: &[Bytes]) -> Result<Bytes, MuxError> {
        let ranges = self.segment_ranges(number)?;
        let segment = self.plan.require(number)?;
        if data.len() != ranges.len() {
            return Err(MuxError::VodSegmentData {
                segment: number,
                reason: format!(
                    "{} byte ranges were given, the segment has {}",
                    data.len(),
                    ranges.len()
                ),
            });
        }
        for (range, bytes) in ranges.iter().zip(data) {
            if bytes.len() as u64 != range.len {
                return Err(MuxError::VodSegmentData {
                    segment: number,
                    reason: format!(
                        "{} bytes were given for the {} bytes at byte {}",
                        bytes.len(),
                        range.len,
                        range.offset
                    ),
                });
            }
        }
        let bytes = SegmentBytes { ranges: &ranges, data };
        let base = (i128::from(VOD_TIMESTAMP_BASE_MS) + i128::from(timeline_offset_ms)) * i128::from(TICKS_PER_MS);
        let units = self.units(segment, base);
        let layout = TrackLayout {
            video: self.plan.video_track().is_some(),
            audio: self.plan.audio_track().is_some(),
        };
        let media: usize = data.iter().map(Bytes::len).sum();
        let mut out =
            BytesMut::with_capacity(media + media / 16 + (2 * TABLES_PER_SEGMENT + units.len()) * TS_PACKET_LEN);
        let mut writer = TsWriter::new();
        let last_video = units.iter().rposition(|u| matches!(u, Unit::Video { .. }));
        let last_audio = units.iter().rposition(|u| matches!(u, Unit::Audio { .. }));
        let mut tables = 0;
        for (position, unit) in units.iter().enumerate() {
            while tables < TABLES_PER_SEGMENT && tables * units.len() / TABLES_PER_SEGMENT <= position {
                writer.write_tables(&mut out, layout);
                tables += 1;
            }
            let end = if Some(position) == last_video || Some(position) == last_audio {
                CounterEnd::Zero
            } else {
                CounterEnd::Natural
            };
            match unit {
                Unit::Video {
                    index,
                    sample,
                    dts,
                    pts,
                } => {
                    let times = (*dts, *pts);
                    self.write_video(&mut writer, &mut out, &bytes, (*index, sample), times, end)?
                }
                Unit::Audio { samples, pts } => self.write_audio(&mut writer, &mut out, &bytes, samples, *pts, end)?,
            }
        }
        while tables < TABLES_PER_SEGMENT {
            writer.write_tables(&mut out, layout);
            tables += 1;
        }
        Ok(out.freeze())
    }

    /// The samples of `range` in `track`.
    fn samples(&self, track: Option<&PlanTrack>, range: &std::ops::Range<usize>) -> &[Sample] {
        track
            .and_then(|t| self.index.tracks.get(t.track))
            .and_then(|t| t.samples.get(range.clone()))
            .unwrap_or_default()
    }

    /// The segment's video frames and audio PES packets, interleaved by decode time, on the
    /// 90 kHz clock from `base` (wrapped to 33 bits).
    fn units(&self, segment: &VodSegment, base: i128) -> Vec<Unit> {
        let origin = i128::from(self.plan.origin());
        let at = |ticks: i64| (base + i128::from(ticks) - origin).rem_euclid(i128::from(TIMESTAMP_MASK) + 1) as u64;
        let mut video = Vec::new();
        if let Some(track) = self.plan.video_track() {
            for (i, s) in self.samples(Some(track), &segment.video).iter().enumerate() {
                video.push(Unit::Video {
                    index: segment.video.start + i,
                    sample: *s,
                    dts: at(track.clock.dts(s)),
                    pts: at(track.clock.pts(s)),
                });
            }
        }
        let mut audio = Vec::new();
        if let Some(track) = self.plan.audio_track() {
            let samples = self.samples(Some(track), &segment.audio);
            let mut from = 0;
            while from < samples.len() {
                let mut to = from + 1;
                let mut bytes = samples[from].size as usize;
                while to < samples.len() && to - from < AUDIO_FRAMES_PER_PES {
                    bytes += samples[to].size as usize + 7;
                    if bytes > AUDIO_PES_MAX_BYTES {
                        break;
                    }
                    to += 1;
                }
                audio.push(Unit::Audio {
                    samples: segment.audio.start + from..segment.audio.start + to,
                    pts: at(track.clock.pts(&samples[from])),
                });
                from = to;
            }
        }
        // Merge by time; video first on a tie.
        let mut units = Vec::with_capacity(video.len() + audio.len());
        let (mut video, mut audio) = (video.into_iter().peekable(), audio.into_iter().peekable());
        loop {
            let take_video = match (video.peek(), audio.peek()) {
                (Some(v), Some(a)) => v.time() <= a.time(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            units.extend(if take_video { video.next() } else { audio.next() });
        }
        units
    }

    fn write_video(
        &self,
        writer: &mut TsWriter,
        out: &mut BytesMut,
        bytes: &SegmentBytes<'_>,
        (index, sample): (usize, &Sample),
        (dts, pts): (u64, u64),
        end: CounterEnd,
    ) -> Result<(), MuxError> {
        let (Some(track), Some(config)) = (self.plan.video_track(), &self.avc) else {
            return Ok(());
        };
        let data = sample_bytes(bytes, track, index, sample)?;
        let au = AvcAccessUnit::from_avcc(&data, config, sample.keyframe)
            .map_err(|e| sample_error(track, index, sample, e.to_string()))?;
        writer.write_video_90khz(out, &au, dts, pts, end);
        Ok(())
    }

    fn write_audio(
        &self,
        writer: &mut TsWriter,
        out: &mut BytesMut,
        bytes: &SegmentBytes<'_>,
        samples: &std::ops::Range<usize>,
        pts: u64,
        end: CounterEnd,
    ) -> Result<(), MuxError> {
        let (Some(track), Some(config)) = (self.plan.audio_track(), &self.aac) else {
            return Ok(());
        };
        let mut frames = Vec::with_capacity(samples.len());
        for (index, sample) in samples.clone().zip(self.samples(Some(track), samples)) {
            let data = sample_bytes(bytes, track, index, sample)?;
            let header = config
                .adts_header(data.len())
                .map_err(|e| sample_error(track, index, sample, e.to_string()))?;
            frames.push(AdtsFrame { header, data });
        }
        writer.write_audio_90khz(out, &frames, pts, end);
        Ok(())
    }
}

/// A sample's bytes, sliced out of what was read.
fn sample_bytes(bytes: &SegmentBytes<'_>, track: &PlanTrack, index: usize, sample: &Sample) -> Result<Bytes, MuxError> {
    if sample.size == 0 {
        return Ok(Bytes::new());
    }
    bytes
        .sample(sample.offset, sample.size)
        .ok_or_else(|| sample_error(track, index, sample, "its bytes are not in the ranges read".to_owned()))
}

fn sample_error(track: &PlanTrack, index: usize, sample: &Sample, reason: String) -> MuxError {
    MuxError::VodSample {
        track_id: track.track_id,
        sample: index,
        offset: sample.offset,
        reason,
    }
}

#[cfg(test)]
mod tests;
