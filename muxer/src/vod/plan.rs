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
use crate::mp4::{Mp4Index, Sample};
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
        let media = Media::new(index, video.as_ref(), audio.as_ref())?;
        let origin = media.origin()?;
        let target = i64::try_from(target_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(TICKS_PER_MS);
        let segments = media.segments(origin, target);
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

    /// 90 kHz ticks subtracted from every sample time to place it on the plan's timeline.
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

/// The tracks being planned and their samples.
struct Media<'a> {
    /// With the index of its first keyframe.
    video: Option<(&'a PlanTrack, &'a [Sample], usize)>,
    audio: Option<(&'a PlanTrack, &'a [Sample])>,
}

/// Where a segment starts: its first video sample, its first audio sample, and when it
/// plays (90 kHz ticks on the timeline).
#[derive(Debug, Clone, Copy)]
struct Start {
    video: usize,
    audio: usize,
    ticks: i64,
}

impl<'a> Media<'a> {
    fn new(index: &'a Mp4Index, video: Option<&'a PlanTrack>, audio: Option<&'a PlanTrack>) -> Result<Self, MuxError> {
        let samples = |track: &PlanTrack| index.tracks.get(track.track).map_or(&[][..], |t| &t.samples[..]);
        let video = match video {
            Some(track) => {
                let samples = samples(track);
                let first_key = samples.iter().position(|s| s.keyframe).ok_or(MuxError::VodNoKeyframe {
                    track_id: track.track_id,
                })?;
                Some((track, samples, first_key))
            }
            None => None,
        };
        let audio = audio.map(|track| (track, samples(track)));
        if video.is_none() && audio.is_none_or(|(_, samples)| samples.is_empty()) {
            return Err(MuxError::VodNothingToPlay);
        }
        Ok(Media { video, audio })
    }

    /// The first sample each track plays, in decode order.
    fn firsts(&self) -> impl Iterator<Item = (&'a PlanTrack, &'a Sample)> {
        let video = self
            .video
            .and_then(|(track, samples, first)| Some((track, samples.get(first)?)));
        let audio = self.audio.and_then(|(track, samples)| Some((track, samples.first()?)));
        video.into_iter().chain(audio)
    }

    /// What is subtracted from every time so that the timeline starts at 0 or later: the
    /// earliest presentation if it is before 0. Fails if a track would decode too long before
    /// the timeline's start for MPEG-TS timestamps.
    fn origin(&self) -> Result<i64, MuxError> {
        let origin = self.firsts().map(|(t, s)| t.clock.pts(s)).min().unwrap_or(0).min(0);
        let lowest_decode = -((VOD_TIMESTAMP_BASE_MS - PCR_LEAD_MS) as i64 * TICKS_PER_MS);
        for (track, sample) in self.firsts() {
            let dts = track.clock.dts(sample) - origin;
            if dts < lowest_decode {
                return Err(MuxError::VodTimestamp {
                    track_id: track.track_id,
                    ms: dts.unsigned_abs() / TICKS_PER_MS as u64,
                });
            }
        }
        Ok(origin)
    }

    /// When the first sample plays.
    fn start(&self, origin: i64) -> i64 {
        self.firsts().map(|(t, s)| t.clock.pts(s) - origin).min().unwrap_or(0)
    }

    /// When the last sample stops playing.
    fn end(&self, origin: i64) -> i64 {
        let mut end = self.start(origin);
        if let Some((track, samples, first)) = self.video {
            for s in samples.get(first..).unwrap_or_default() {
                end = end.max(track.clock.pts(s) + track.clock.duration(s) - origin);
            }
        }
        if let Some((track, Some(last))) = self.audio.map(|(t, samples)| (t, samples.last())) {
            end = end.max(track.clock.pts(last) + track.clock.duration(last) - origin);
        }
        end
    }

    /// Where the segments start: at keyframes, or at audio frames without video. The first
    /// starts with the earliest sample of any track.
    fn starts(&self, origin: i64, target: i64) -> Vec<Start> {
        let mut starts = Vec::new();
        match (self.video, self.audio) {
            (Some((track, samples, first)), audio) => {
                let audio = audio.map_or(&[][..], |(_, samples)| samples);
                let mut audio_at = 0;
                for (video, ticks) in cut_points(samples, first, track, origin, target, |s| s.keyframe) {
                    if !starts.is_empty() {
                        // Audio goes to the segment during which it plays.
                        audio_at += audio[audio_at..].partition_point(|s| self.audio_pts(s, origin) < ticks);
                    }
                    starts.push(Start {
                        video,
                        audio: audio_at,
                        ticks,
                    });
                }
            }
            (None, Some((track, samples))) => {
                for (audio, ticks) in cut_points(samples, 0, track, origin, target, |_| true) {
                    starts.push(Start { video: 0, audio, ticks });
                }
            }
            (None, None) => {}
        }
        if let Some(first) = starts.first_mut() {
            first.ticks = self.start(origin);
        }
        starts
    }

    fn audio_pts(&self, sample: &Sample, origin: i64) -> i64 {
        self.audio.map_or(0, |(track, _)| track.clock.pts(sample) - origin)
    }

    fn segments(&self, origin: i64, target: i64) -> Vec<VodSegment> {
        let starts = self.starts(origin, target);
        let video_len = self.video.map_or(0, |(_, samples, _)| samples.len());
        let audio_len = self.audio.map_or(0, |(_, samples)| samples.len());
        let end = self.end(origin);
        let mut segments = Vec::with_capacity(starts.len());
        for (number, start) in starts.iter().enumerate() {
            let next = starts.get(number + 1);
            let start_ms = ms_of_ticks(start.ticks);
            segments.push(VodSegment {
                number,
                start_ms,
                end_ms: next.map_or(ms_of_ticks(end).max(start_ms + 1), |n| ms_of_ticks(n.ticks)),
                video: start.video..next.map_or(video_len, |n| n.video),
                audio: start.audio..next.map_or(audio_len, |n| n.audio),
                keyframe_start: self
                    .video
                    .is_none_or(|(_, samples, _)| samples.get(start.video).is_some_and(|s| s.keyframe)),
            });
        }
        segments
    }
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
