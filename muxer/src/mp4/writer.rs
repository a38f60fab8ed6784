//! The fragmented-MP4 writer of the recorder: a stream's packets in, an init segment and
//! then fragments out, so that a file on disk is playable up to its last whole fragment
//! whatever happens to the process (ISO/IEC 14496-12 §8.8; the layout ffmpeg's
//! `-movflags frag_keyframe+empty_moov+default_base_moof` writes).
//!
//! - The init segment comes once both tracks' sequence headers are known, or once one track
//!   has sent frames for [`Fmp4WriterConfig::single_track_wait_ms`] without the other (an
//!   audio-only or video-only stream); the frames of that wait are kept and written.
//! - A fragment is cut at the first video keyframe at or after
//!   [`Fmp4WriterConfig::fragment_ms`]; an audio-only stream is cut by time. Samples before
//!   the first video keyframe are dropped.
//! - A sample's duration is the distance to the next sample of its track, so a sample stays
//!   held until its successor arrives and `tfdt` is continuous across fragments. At
//!   [`Fmp4Writer::finish`] the held samples get the track's average duration.
//! - A sequence header that differs from the file's, or a track that appears after the init
//!   segment, ends the file: the open fragment is flushed and a new init segment comes with
//!   [`InitSegment::restart`] set. Configurations are never mixed in one file.
//!
//! # Parts (HLS)
//!
//! With [`Fmp4WriterConfig::part_ms`] set, the writer serves fMP4 HLS and its low-latency
//! parts: `fragment_ms` is then the length of a *segment* (a run of fragments that starts at
//! a keyframe, cut at the first keyframe at or after it), and each segment is cut into
//! fragments (the parts) that never outgrow `part_ms`: a fragment is cut before the frame
//! that would take it past `part_ms`. [`Fragment::ends_segment`] says where segments end; a
//! segment that would outgrow `max_fragment_ms` without a keyframe is cut anyway, and the
//! next one does not start with one. After [`Fmp4Writer::finish`] the next frame written is
//! a keyframe.
//!
//! Contract (push/poll, as in retina): after each [`Fmp4Writer::push`] and after
//! [`Fmp4Writer::finish`], call [`Fmp4Writer::poll_event`] until it returns `None`.

use std::collections::VecDeque;

use bytes::Bytes;
use estuary_protocol::codec::Vp9Config;
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};

use crate::mp4::fragment::{write_fragment, TrackRun};
use crate::mp4::init::{init_segment, TrackIds};
use crate::mp4::track::{AudioTrack, VideoTrack, VIDEO_TIMESCALE};
use crate::mp4::track_queue::{Frame, TrackQueue};
use crate::MuxError;

/// Settings of an [`Fmp4Writer`].
#[derive(Debug, Clone)]
pub struct Fmp4WriterConfig {
    /// A fragment is cut at the first keyframe at or after this many ms (default 1000), less
    /// half a frame interval to absorb millisecond rounding. A crash loses at most the open
    /// fragment.
    pub fragment_ms: u64,
    /// A fragment that reaches this length without a keyframe is cut anyway, so memory stays
    /// bounded (default 10 000); the next fragment then starts with a non-sync sample.
    pub max_fragment_ms: u64,
    /// With one track's sequence header and frames but not the other's, the file is started
    /// with that track alone after this many ms of its frames (default 1000).
    pub single_track_wait_ms: u64,
    /// HLS parts: `Some(ms)` cuts fragments of at most this long inside segments of
    /// `fragment_ms` (see the module documentation); `None` (the recorder) makes each
    /// fragment a segment of its own.
    pub part_ms: Option<u64>,
}

impl Default for Fmp4WriterConfig {
    fn default() -> Self {
        Fmp4WriterConfig {
            fragment_ms: 1000,
            max_fragment_ms: 10_000,
            single_track_wait_ms: 1000,
            part_ms: None,
        }
    }
}

/// What the writer produced.
#[derive(Debug, Clone)]
pub enum Fmp4Event {
    /// The start of a file. A second one means the codec configuration or the set of tracks
    /// changed: the previous file is complete (close and finalise it) and this one starts
    /// the next.
    Init(InitSegment),
    /// A fragment of the current file, to append to it.
    Fragment(Fragment),
}

/// `ftyp` + `moov`.
#[derive(Debug, Clone)]
pub struct InitSegment {
    pub data: Bytes,
    pub video: Option<VideoTrack>,
    pub audio: Option<AudioTrack>,
    /// Why this init segment starts a new file; `None` for the stream's first.
    pub restart: Option<RestartReason>,
}

/// Why the writer started a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartReason {
    /// A video sequence header different from the file's (new resolution, profile, codec).
    VideoConfigChanged,
    /// An audio sequence header different from the file's.
    AudioConfigChanged,
    /// A track the file does not have started (audio after a video-only start, say).
    TrackAdded(MediaKind),
}

/// One `moof` + `mdat`.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// `mfhd` sequence number: 1, 2, ... within a file.
    pub sequence: u32,
    /// DTS in ms of its first sample of the track that cuts (video, or audio in an
    /// audio-only file).
    pub start_ms: u64,
    /// Until the next fragment's start (or the estimated end of its last sample).
    pub duration_ms: u64,
    /// It starts with a video keyframe (always true in an audio-only file).
    pub starts_with_keyframe: bool,
    /// It is the last fragment of its segment: always, unless [`Fmp4WriterConfig::part_ms`]
    /// is set; then the next fragment starts a new segment.
    pub ends_segment: bool,
    /// The bytes, in order: the `moof` and `mdat` header, then each sample's own `Bytes`.
    pub parts: Vec<Bytes>,
}

impl Fragment {
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All parts in one buffer (one copy of the media).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.len());
        for part in &self.parts {
            out.extend_from_slice(part);
        }
        Bytes::from(out)
    }
}

/// Counters the server exports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fmp4WriterStats {
    pub init_segments: u64,
    pub fragments: u64,
    pub samples: u64,
    /// Frames dropped: before the first keyframe, empty, or of a configuration replaced
    /// before the file started.
    pub dropped_packets: u64,
    /// Fragments cut without a keyframe at `max_fragment_ms`.
    pub forced_cuts: u64,
}

/// The file being written.
#[derive(Debug)]
struct OpenFile {
    video: Option<TrackQueue>,
    audio: Option<TrackQueue>,
    /// The first keyframe (or, audio-only, the first frame) arrived.
    started: bool,
    next_sequence: u32,
    /// DTS in ms where the open fragment started, on the track that cuts.
    fragment_start_ms: u64,
    fragment_keyframe: bool,
    /// DTS in ms where the open segment started (with parts; else the fragment's).
    segment_start_ms: u64,
    /// Interval in ms between the last two frames of the track that cuts.
    frame_interval_ms: u64,
    last_cut_dts_ms: Option<u64>,
}

/// Turns one stream's packets into a fragmented MP4 (or several, when the configuration
/// changes). One per recording, fed every packet in order from the sequence headers on.
pub struct Fmp4Writer {
    config: Fmp4WriterConfig,
    video: Option<VideoTrack>,
    /// A VP9 sequence header waiting for the key frame that gives its picture size.
    pending_vp9: Option<Bytes>,
    audio: Option<AudioTrack>,
    file: Option<OpenFile>,
    /// Frames held while waiting for the other track's sequence header.
    waiting: Vec<Frame>,
    waiting_bytes: usize,
    restart: Option<RestartReason>,
    events: VecDeque<Fmp4Event>,
    stats: Fmp4WriterStats,
}

/// Frames held while waiting for a second track are bounded in bytes as well as in time.
const MAX_WAITING_BYTES: usize = 16 << 20;

impl Fmp4Writer {
    pub fn new(config: Fmp4WriterConfig) -> Self {
        Fmp4Writer {
            config,
            video: None,
            pending_vp9: None,
            audio: None,
            file: None,
            waiting: Vec::new(),
            waiting_bytes: 0,
            restart: None,
            events: VecDeque::new(),
            stats: Fmp4WriterStats::default(),
        }
    }

    /// Feeds one packet. An error means this packet was dropped and nothing else changed.
    pub fn push(&mut self, packet: &Packet) -> Result<(), MuxError> {
        if packet.no_frame {
            // An end of sequence or Enhanced RTMP metadata: no sample.
            return Ok(());
        }
        match (packet.kind, packet.codec) {
            (MediaKind::Script, _) => Ok(()),
            (MediaKind::Video, Codec::Video(codec)) => {
                if packet.seq_header {
                    return self.video_sequence_header(codec, packet.body());
                }
                if codec == VideoCodec::Vp9 {
                    if let Some(record) = self.pending_vp9.as_ref() {
                        // The picture size comes with the first key frame.
                        let track = if packet.keyframe {
                            VideoTrack::vp9(record, &packet.body())?
                        } else {
                            None
                        };
                        let Some(track) = track else {
                            self.stats.dropped_packets += 1;
                            return Ok(());
                        };
                        self.pending_vp9 = None;
                        self.set_video(track);
                    }
                }
                if !matches!(&self.video, Some(v) if v.codec == codec) {
                    return Err(MuxError::VideoBeforeSequenceHeader);
                }
                self.push_frame(packet);
                Ok(())
            }
            (MediaKind::Audio, Codec::Audio(codec @ (AudioCodec::Aac | AudioCodec::Opus))) => {
                if packet.seq_header {
                    let body = packet.body();
                    if body.is_empty() {
                        return Ok(());
                    }
                    let track = match codec {
                        AudioCodec::Opus => AudioTrack::opus(&body)?,
                        _ => AudioTrack::from_sequence_header(body)?,
                    };
                    self.set_audio(track);
                    return Ok(());
                }
                if !matches!(&self.audio, Some(a) if a.codec == codec) {
                    return Err(MuxError::AudioBeforeSequenceHeader);
                }
                self.push_frame(packet);
                Ok(())
            }
            (_, codec) => Err(MuxError::Mp4UnsupportedCodec(codec)),
        }
    }

    /// A video sequence header. An empty one is ignored: ffmpeg sends one for AV1 before its
    /// encoder has made the real record, which follows. A VP9 one waits for its first key
    /// frame (the record has no picture size), unless it is the record already in use.
    fn video_sequence_header(&mut self, codec: VideoCodec, record: Bytes) -> Result<(), MuxError> {
        if record.is_empty() {
            return Ok(());
        }
        if codec == VideoCodec::Vp9 {
            let config = Vp9Config::parse(&record).map_err(MuxError::Vp9SequenceHeader)?;
            let current = self
                .video
                .as_ref()
                .is_some_and(|v| v.codec == codec && v.record[..] == config.vpcc_body()[..]);
            self.pending_vp9 = (!current).then_some(record);
            return Ok(());
        }
        let track = VideoTrack::from_sequence_header(codec, record)?;
        self.pending_vp9 = None;
        self.set_video(track);
        Ok(())
    }

    /// The next init segment or fragment, oldest first.
    pub fn poll_event(&mut self) -> Option<Fmp4Event> {
        self.events.pop_front()
    }

    /// The publisher left: writes what is held (a single-track file if the other track
    /// never came) and flushes the open fragment, its last samples given their track's
    /// average duration. Packets pushed after this continue the same file.
    pub fn finish(&mut self) {
        if self.file.is_none() && (self.video.is_some() || self.audio.is_some()) && !self.waiting.is_empty() {
            self.start_file();
        }
        if let Some(file) = self.file.as_mut() {
            for track in [file.video.as_mut(), file.audio.as_mut()].into_iter().flatten() {
                track.release_held();
            }
        }
        self.cut(None, true);
        if self.config.part_ms.is_some() {
            // HLS: what follows a break starts a segment, so it waits for a keyframe.
            if let Some(file) = self.file.as_mut() {
                file.started = false;
            }
        }
    }

    /// Caps segments (with parts) or fragments at `ms` from now on: the HLS packager lowers
    /// it once its target duration is fixed.
    pub fn set_max_fragment_ms(&mut self, ms: u64) {
        self.config.max_fragment_ms = ms.max(1);
    }

    pub fn stats(&self) -> Fmp4WriterStats {
        self.stats
    }

    /// The current video configuration.
    pub fn video_track(&self) -> Option<&VideoTrack> {
        self.video.as_ref()
    }

    /// The current audio configuration.
    pub fn audio_track(&self) -> Option<&AudioTrack> {
        self.audio.as_ref()
    }

    fn set_video(&mut self, track: VideoTrack) {
        if self.video.as_ref() == Some(&track) {
            return;
        }
        let reason = match &self.file {
            Some(file) if file.video.is_some() => Some(RestartReason::VideoConfigChanged),
            Some(_) => Some(RestartReason::TrackAdded(MediaKind::Video)),
            None => None,
        };
        self.video = Some(track);
        self.reconfigure(MediaKind::Video, reason);
    }

    fn set_audio(&mut self, track: AudioTrack) {
        if self.audio.as_ref() == Some(&track) {
            return;
        }
        let reason = match &self.file {
            Some(file) if file.audio.is_some() => Some(RestartReason::AudioConfigChanged),
            Some(_) => Some(RestartReason::TrackAdded(MediaKind::Audio)),
            None => None,
        };
        self.audio = Some(track);
        self.reconfigure(MediaKind::Audio, reason);
    }

    /// A configuration was set: ends the open file if there is one, and starts the next
    /// file when both tracks are known.
    fn reconfigure(&mut self, kind: MediaKind, restart: Option<RestartReason>) {
        if let Some(reason) = restart {
            self.finish();
            self.file = None;
            self.restart = Some(reason);
            self.start_file();
            return;
        }
        // Frames held for the old configuration of this track cannot go in the new file.
        let before = self.waiting.len();
        self.waiting.retain(|f| f.kind != kind);
        self.stats.dropped_packets += (before - self.waiting.len()) as u64;
        self.waiting_bytes = self.waiting.iter().map(|f| f.data.len()).sum();
        if self.video.is_some() && self.audio.is_some() {
            self.start_file();
        }
    }

    /// Writes the init segment for the known tracks and replays the frames held until now.
    fn start_file(&mut self) {
        let ids = TrackIds::new(self.video.is_some(), self.audio.is_some());
        let data = init_segment(self.video.as_ref(), self.audio.as_ref());
        let video = ids
            .video
            .map(|id| TrackQueue::new(id, VIDEO_TIMESCALE, VIDEO_TIMESCALE / 30));
        let audio = ids
            .audio
            .zip(self.audio.as_ref())
            .map(|(id, audio)| TrackQueue::new(id, audio.timescale(), audio.frame_ticks()));
        self.file = Some(OpenFile {
            video,
            audio,
            started: false,
            next_sequence: 1,
            fragment_start_ms: 0,
            fragment_keyframe: false,
            segment_start_ms: 0,
            frame_interval_ms: 0,
            last_cut_dts_ms: None,
        });
        self.events.push_back(Fmp4Event::Init(InitSegment {
            data,
            video: self.video.clone(),
            audio: self.audio.clone(),
            restart: self.restart.take(),
        }));
        self.stats.init_segments += 1;
        self.waiting_bytes = 0;
        for frame in std::mem::take(&mut self.waiting) {
            self.write_frame(frame);
        }
    }

    fn push_frame(&mut self, packet: &Packet) {
        let mut data = packet.body();
        if let (MediaKind::Video, Some(video)) = (packet.kind, self.video.as_ref()) {
            data = video.sample(data);
        }
        if data.is_empty() {
            // An end-of-sequence or empty frame carries no sample.
            self.stats.dropped_packets += 1;
            return;
        }
        let frame = Frame {
            kind: packet.kind,
            dts_ms: packet.dts,
            cts_ms: packet.cts,
            keyframe: packet.keyframe || packet.kind == MediaKind::Audio,
            data,
        };
        if self.file.is_some() {
            self.write_frame(frame);
            return;
        }
        // One track known, the other not yet: hold the frames for a while.
        let since = self.waiting.first().map_or(frame.dts_ms, |f| f.dts_ms);
        let waited = frame.dts_ms.saturating_sub(since);
        self.waiting_bytes += frame.data.len();
        self.waiting.push(frame);
        if waited >= self.config.single_track_wait_ms || self.waiting_bytes > MAX_WAITING_BYTES {
            self.start_file();
        }
    }

    fn write_frame(&mut self, frame: Frame) {
        let Some(file) = self.file.as_mut() else { return };
        let video_cuts = file.video.is_some();
        let is_video = frame.kind == MediaKind::Video;
        if !file.started {
            if video_cuts && !(is_video && frame.keyframe) {
                self.stats.dropped_packets += 1;
                return;
            }
            file.started = true;
            file.fragment_start_ms = frame.dts_ms;
            file.segment_start_ms = frame.dts_ms;
            file.fragment_keyframe = true;
        }
        let track = if is_video {
            file.video.as_mut()
        } else {
            file.audio.as_mut()
        };
        let Some(track) = track else {
            self.stats.dropped_packets += 1;
            return;
        };
        track.push(&frame);
        let elapsed = frame.dts_ms.saturating_sub(file.fragment_start_ms);
        let cut = if is_video == video_cuts {
            if let Some(last) = file.last_cut_dts_ms {
                if frame.dts_ms > last {
                    file.frame_interval_ms = frame.dts_ms - last;
                }
            }
            file.last_cut_dts_ms = Some(frame.dts_ms);
            match self.config.part_ms {
                None => recorder_cut(&self.config, elapsed, file.frame_interval_ms, frame.keyframe),
                Some(part_ms) => part_cut(
                    &self.config,
                    part_ms,
                    frame.dts_ms.saturating_sub(file.segment_start_ms),
                    elapsed,
                    file.frame_interval_ms,
                    frame.keyframe,
                ),
            }
        } else if elapsed >= self.config.max_fragment_ms.saturating_mul(2) {
            // The cutting track stalled: audio alone must not grow the fragment forever.
            Some(Cut::Segment { keyframe: false })
        } else {
            None
        };
        if let Some(cut) = cut {
            let (keyframe, ends_segment) = match cut {
                Cut::Segment { keyframe } => (keyframe, true),
                Cut::Part => (frame.keyframe, false),
            };
            if ends_segment && !keyframe {
                self.stats.forced_cuts += 1;
            }
            self.cut(Some(frame.dts_ms), ends_segment);
            if let Some(file) = self.file.as_mut() {
                file.fragment_start_ms = frame.dts_ms;
                file.fragment_keyframe = keyframe;
                if ends_segment {
                    file.segment_start_ms = frame.dts_ms;
                }
            }
        }
    }

    /// Emits the ready samples of the open fragment; the fragment ends at `end_ms` (the
    /// frame that cuts) or where its samples end.
    fn cut(&mut self, end_ms: Option<u64>, ends_segment: bool) {
        let Some(file) = self.file.as_mut() else { return };
        let tracks: Vec<&TrackQueue> = [file.video.as_ref(), file.audio.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        if tracks.iter().all(|t| t.ready.is_empty()) {
            return;
        }
        let runs: Vec<TrackRun<'_>> = tracks
            .iter()
            .map(|t| TrackRun {
                track_id: t.id,
                base_dts: t.ready_dts,
                samples: &t.ready,
            })
            .collect();
        let parts = write_fragment(file.next_sequence, &runs);
        let samples: usize = runs.iter().map(|r| r.samples.len()).sum();
        let lead = tracks[0];
        let lead_end_ms = (lead.ready_dts + lead.ready.iter().map(|s| u64::from(s.duration)).sum::<u64>())
            .saturating_mul(1000)
            / u64::from(lead.timescale.max(1));
        let end = end_ms.unwrap_or(lead_end_ms).max(file.fragment_start_ms);
        self.events.push_back(Fmp4Event::Fragment(Fragment {
            sequence: file.next_sequence,
            start_ms: file.fragment_start_ms,
            duration_ms: end - file.fragment_start_ms,
            starts_with_keyframe: file.fragment_keyframe,
            ends_segment: ends_segment || self.config.part_ms.is_none(),
            parts,
        }));
        // `mfhd`'s sequence number is 32 bits. Fragments last at least the recorder's
        // 100 ms minimum, so one file reaches 2^32 of them after 13 years; should one ever
        // get there, the number wraps as the field does instead of ending the recording.
        file.next_sequence = file.next_sequence.wrapping_add(1);
        for track in [file.video.as_mut(), file.audio.as_mut()].into_iter().flatten() {
            track.ready.clear();
        }
        self.stats.fragments += 1;
        self.stats.samples += samples as u64;
    }
}

/// Where the frame being written cuts the open fragment: before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// The fragment ends its segment; the next starts with a keyframe unless forced.
    Segment { keyframe: bool },
    /// The fragment is a part and its segment goes on.
    Part,
}

/// The recorder's rule: a fragment per keyframe at or after `fragment_ms`, or forced at
/// `max_fragment_ms`.
fn recorder_cut(config: &Fmp4WriterConfig, elapsed: u64, interval: u64, keyframe: bool) -> Option<Cut> {
    if keyframe && elapsed + interval / 2 >= config.fragment_ms {
        Some(Cut::Segment { keyframe: true })
    } else if elapsed >= config.max_fragment_ms {
        Some(Cut::Segment { keyframe: false })
    } else {
        None
    }
}

/// HLS with parts: a segment at the first keyframe at or after `fragment_ms`, forced before
/// a frame that would take it past `max_fragment_ms`; inside it, a part before a frame that
/// would take the part past `part_ms` (an eighth of a frame interval of slack absorbs
/// millisecond timestamps, so a part never exceeds its target).
fn part_cut(
    config: &Fmp4WriterConfig,
    part_ms: u64,
    segment_elapsed: u64,
    part_elapsed: u64,
    interval: u64,
    keyframe: bool,
) -> Option<Cut> {
    if keyframe && segment_elapsed + interval / 2 >= config.fragment_ms {
        Some(Cut::Segment { keyframe: true })
    } else if segment_elapsed.saturating_add(interval) > config.max_fragment_ms {
        Some(Cut::Segment { keyframe })
    } else if part_elapsed.saturating_add(interval + interval / 8) > part_ms {
        Some(Cut::Part)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
