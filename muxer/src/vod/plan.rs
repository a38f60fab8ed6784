//! The segment plan of one MP4 file: where its HLS VOD segments start and end, and which
//! samples each holds, computed from the sample table alone (no media byte is read).
//!
//! Segments start at video keyframes (Apple HLS authoring spec 7.4, 9.11): a segment ends
//! at the first keyframe that plays at least the target duration after its own start, less
//! half a frame to absorb timestamp rounding (OBS at 30 fps stamps its 2-second keyframes
//! 1999 ms apart). A file without video is cut at the first audio frame past the target.
//! Audio goes to the segment during which it plays. Video samples before the first
//! keyframe cannot be decoded and are left out.
//!
//! The plan is a pure function of the index: every request computes the same segments, so
//! the playlist and the segments agree without any state kept between requests.

use std::ops::Range;

use bytes::Bytes;
use estuary_protocol::MediaKind;

use super::playlist::VodEntry;
use super::timeline::{ms_of_ticks, TrackClock, TICKS_PER_MS, VOD_TIMESTAMP_BASE_MS};
use crate::mp4::{Mp4Index, Sample, TrackIndex};
use crate::ts::PCR_LEAD_MS;
use crate::MuxError;

/// Apple's recommended segment length for VOD (HLS authoring spec 7.5: 6 seconds).
pub const DEFAULT_TARGET_MS: u64 = 6000;

/// One segment of the plan. Times are milliseconds on the file's presentation timeline,
/// which starts at 0 (or at the earliest sample, if one plays before the movie's start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VodSegment {
    /// Its place in the plan, from 0: the number in its URI.
    pub number: usize,
    pub start_ms: u64,
    /// The next segment's start, or where the last sample stops playing.
    pub end_ms: u64,
    /// Indices into the video track's [`TrackIndex::samples`] (empty without video).
    pub video: Range<usize>,
    /// Indices into the audio track's samples (empty without audio).
    pub audio: Range<usize>,
    /// Its first video frame is a keyframe, so it decodes on its own (always true here:
    /// cuts are made at keyframes, and audio frames are all sync samples).
    pub keyframe_start: bool,
}

impl VodSegment {
    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }

    /// The segment's playlist entry, under `uri`.
    pub fn entry(&self, uri: String) -> VodEntry {
        VodEntry {
            uri,
            duration_ms: self.duration_ms(),
            discontinuity: false,
            program_date_time_ms: None,
            independent: self.keyframe_start,
        }
    }
}

/// A track the plan uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanTrack {
    /// Its position in [`Mp4Index::tracks`].
    pub(crate) track: usize,
    pub(crate) track_id: u32,
    pub(crate) codec: [u8; 4],
    pub(crate) stsd: Bytes,
    pub(crate) clock: TrackClock,
}

/// Where every segment of a file starts and ends, and which samples it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VodPlan {
    video: Option<PlanTrack>,
    audio: Option<PlanTrack>,
    /// 90 kHz ticks subtracted from every sample time so that the timeline starts at 0 or
    /// later (0 unless a sample plays before the movie's start).
    origin: i64,
    target_ms: u64,
    segments: Vec<VodSegment>,
}

impl VodPlan {
    /// Plans the segments of a file: its first video track and its first audio track (each
    /// the first with samples), cut every `target_ms` (at least 1) at keyframes.
    pub fn new(index: &Mp4Index, target_ms: u64) -> Result<VodPlan, MuxError> {
        let target_ms = target_ms.max(1);
        let video = plan_track(index, MediaKind::Video);
        let audio = plan_track(index, MediaKind::Audio);
        let video_samples = video.as_ref().map_or(&[][..], |t| samples(index, t));
        let audio_samples = audio.as_ref().map_or(&[][..], |t| samples(index, t));
        let first_key = match &video {
            Some(track) => Some(
                video_samples
                    .iter()
                    .position(|s| s.keyframe)
                    .ok_or(MuxError::VodNoKeyframe {
                        track_id: track.track_id,
                    })?,
            ),
            None => None,
        };
        // The first sample each track plays, in decode order.
        let mut firsts = Vec::with_capacity(2);
        if let (Some(track), Some(first)) = (&video, first_key) {
            firsts.push((track, &video_samples[first]));
        }
        if let (Some(track), Some(first)) = (&audio, audio_samples.first()) {
            firsts.push((track, first));
        }
        if firsts.is_empty() {
            return Err(MuxError::VodNothingToPlay);
        }
        let origin = firsts
            .iter()
            .map(|(track, sample)| track.clock.pts(sample))
            .min()
            .unwrap_or(0)
            .min(0);
        let lowest_decode = -((VOD_TIMESTAMP_BASE_MS - PCR_LEAD_MS) as i64 * TICKS_PER_MS);
        for (track, sample) in &firsts {
            let dts = track.clock.dts(sample) - origin;
            if dts < lowest_decode {
                return Err(MuxError::VodTimestamp {
                    track_id: track.track_id,
                    ms: dts.unsigned_abs() / TICKS_PER_MS as u64,
                });
            }
        }
        let start = firsts
            .iter()
            .map(|(track, sample)| track.clock.pts(sample) - origin)
            .min()
            .unwrap_or(0);
        let mut end = start;
        if let (Some(track), Some(first)) = (&video, first_key) {
            for s in &video_samples[first..] {
                end = end.max(track.clock.pts(s) + track.clock.duration(s) - origin);
            }
        }
        if let (Some(track), Some(last)) = (&audio, audio_samples.last()) {
            end = end.max(track.clock.pts(last) + track.clock.duration(last) - origin);
        }

        let target = i64::try_from(target_ms).unwrap_or(i64::MAX / 2) * TICKS_PER_MS;
        // (first video sample, first audio sample, start in ticks) of every segment.
        let mut starts: Vec<(usize, usize, i64)> = Vec::new();
        match (&video, first_key) {
            (Some(track), Some(first)) => {
                let mut audio_at = 0;
                for (index, start_ticks) in cut_points(video_samples, first, track, origin, target, |s| s.keyframe) {
                    let audio_from = if starts.is_empty() {
                        0
                    } else {
                        audio_at = audio_at
                            + audio_samples[audio_at..].partition_point(|s| audio_pts(&audio, s, origin) < start_ticks);
                        audio_at
                    };
                    let start_ticks = if starts.is_empty() { start } else { start_ticks };
                    starts.push((index, audio_from, start_ticks));
                }
            }
            _ => {
                if let Some(track) = &audio {
                    for (index, start_ticks) in cut_points(audio_samples, 0, track, origin, target, |_| true) {
                        let start_ticks = if starts.is_empty() { start } else { start_ticks };
                        starts.push((0, index, start_ticks));
                    }
                }
            }
        }

        let video_len = if video.is_some() { video_samples.len() } else { 0 };
        let mut segments = Vec::with_capacity(starts.len());
        for (number, &(video_from, audio_from, start_ticks)) in starts.iter().enumerate() {
            let next = starts.get(number + 1);
            let video_to = next.map_or(video_len, |n| n.0);
            let audio_to = next.map_or(audio_samples.len(), |n| n.1);
            let start_ms = ms_of_ticks(start_ticks);
            let end_ms = match next {
                Some(n) => ms_of_ticks(n.2),
                None => ms_of_ticks(end).max(start_ms + 1),
            };
            segments.push(VodSegment {
                number,
                start_ms,
                end_ms,
                video: video_from..video_to,
                audio: audio_from..audio_to,
                keyframe_start: video.is_none() || video_samples.get(video_from).is_some_and(|s| s.keyframe),
            });
        }
        Ok(VodPlan {
            video,
            audio,
            origin,
            target_ms,
            segments,
        })
    }

    pub fn segments(&self) -> &[VodSegment] {
        &self.segments
    }

    pub fn segment(&self, number: usize) -> Option<&VodSegment> {
        self.segments.get(number)
    }

    /// The segment `number`, or [`MuxError::VodNoSegment`].
    pub fn require(&self, number: usize) -> Result<&VodSegment, MuxError> {
        self.segment(number).ok_or(MuxError::VodNoSegment {
            segment: number,
            segments: self.segments.len(),
        })
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Never true: a plan has at least one segment.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segments that overlap `from_ms..to_ms` on the file's timeline: those that start
    /// before `to_ms` and end after `from_ms`. Empty when the range is empty or misses the
    /// file.
    pub fn window(&self, from_ms: u64, to_ms: u64) -> &[VodSegment] {
        if from_ms >= to_ms {
            return &[];
        }
        let first = self.segments.partition_point(|s| s.end_ms <= from_ms);
        let last = self.segments.partition_point(|s| s.start_ms < to_ms);
        self.segments.get(first..last).unwrap_or_default()
    }

    /// Where the first segment starts (0 unless the file's media starts late).
    pub fn start_ms(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.start_ms)
    }

    /// Where the last segment ends.
    pub fn end_ms(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.end_ms)
    }

    pub fn duration_ms(&self) -> u64 {
        self.end_ms() - self.start_ms()
    }

    /// The target the plan was made for, in ms.
    pub fn target_ms(&self) -> u64 {
        self.target_ms
    }

    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// Every segment starts with a keyframe (`EXT-X-INDEPENDENT-SEGMENTS`).
    pub fn independent(&self) -> bool {
        self.segments.iter().all(|s| s.keyframe_start)
    }

    /// Both files have the same tracks with the same sample entries (codecs and their
    /// configuration), so one can follow the other in a playlist without a discontinuity.
    pub fn same_format(&self, other: &VodPlan) -> bool {
        let key = |t: &Option<PlanTrack>| t.as_ref().map(|t| (t.codec, t.stsd.clone()));
        key(&self.video) == key(&other.video) && key(&self.audio) == key(&other.audio)
    }

    pub(crate) fn video_track(&self) -> Option<&PlanTrack> {
        self.video.as_ref()
    }

    pub(crate) fn audio_track(&self) -> Option<&PlanTrack> {
        self.audio.as_ref()
    }

    /// See [`VodPlan::origin`]'s field.
    pub(crate) fn origin(&self) -> i64 {
        self.origin
    }
}

/// The first track of `kind` that has samples.
fn plan_track(index: &Mp4Index, kind: MediaKind) -> Option<PlanTrack> {
    let (position, track) = index
        .tracks
        .iter()
        .enumerate()
        .find(|(_, t)| t.info.kind() == Some(kind) && !t.samples.is_empty())?;
    Some(PlanTrack {
        track: position,
        track_id: track.info.track_id,
        codec: track.info.codec,
        stsd: track.info.stsd.clone(),
        clock: TrackClock::new(&track.info, &track.samples),
    })
}

fn samples<'i>(index: &'i Mp4Index, track: &PlanTrack) -> &'i [Sample] {
    index
        .tracks
        .get(track.track)
        .map_or(&[][..], |t: &TrackIndex| &t.samples)
}

fn audio_pts(audio: &Option<PlanTrack>, sample: &Sample, origin: i64) -> i64 {
    audio.as_ref().map_or(0, |t| t.clock.pts(sample) - origin)
}

/// The samples (from `first`, which is one) where segments start, and when they play: a
/// candidate at least `target` after the current segment's start, less half the frame
/// before it, and at least 1 ms after it.
fn cut_points(
    samples: &[Sample],
    first: usize,
    track: &PlanTrack,
    origin: i64,
    target: i64,
    candidate: impl Fn(&Sample) -> bool,
) -> Vec<(usize, i64)> {
    let Some(first_sample) = samples.get(first) else {
        return Vec::new();
    };
    let mut start = track.clock.pts(first_sample) - origin;
    let mut cuts = vec![(first, start)];
    for (index, pair) in samples.windows(2).enumerate().skip(first) {
        let (before, sample) = (&pair[0], &pair[1]);
        if !candidate(sample) {
            continue;
        }
        let at = track.clock.pts(sample) - origin;
        let slack = track.clock.duration(before) / 2;
        if at - start >= TICKS_PER_MS && at - start + slack >= target {
            cuts.push((index + 1, at));
            start = at;
        }
    }
    cuts
}

#[cfg(test)]
mod tests;
