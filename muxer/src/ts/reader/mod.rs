//! The MPEG-TS reader: the reverse of [`TsWriter`](super::TsWriter), for pulling HLS
//! sources. Transport packets in (any split of the byte stream), [`Packet`]s out, as the
//! RTMP ingest makes them: FLV tag bodies with H.264 (AVCC), H.265 (Enhanced RTMP `hvc1`)
//! or AAC (raw frames), each track announced first by a sequence header rebuilt from the
//! stream (SPS/PPS → `AVCDecoderConfigurationRecord`, VPS/SPS/PPS →
//! `HEVCDecoderConfigurationRecord`, ADTS header → `AudioSpecificConfig`), and again when it
//! changes.
//!
//! - `demux.rs`: transport packets → PAT/PMT and whole PES packets per PID.
//! - `video.rs`, `audio.rs`: a PES's elementary stream → FLV bodies.
//! - `timeline.rs`: 33-bit 90 kHz clocks → one monotonic millisecond timeline, across
//!   [`TsReader::discontinuity`] and across jumps the stream does not announce.
//!
//! Damaged input (lost sync, a bad table, a PES cut short, a frame without its parameter
//! sets) is skipped and counted in [`TsReader::skipped`], never a panic: the bytes come from
//! someone else's server.

mod audio;
mod demux;
mod timeline;
mod video;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use estuary_protocol::Packet;

use demux::{Demuxer, Pes, TrackKind};
use timeline::Timeline;

/// PES held after a discontinuity while waiting for each track's first one.
const MAX_HELD: usize = 64;

/// What the reader is allowed to hold.
#[derive(Debug, Clone, Copy)]
pub struct TsReaderLimits {
    /// Largest PES (one video access unit, or a group of audio frames) assembled; a larger
    /// one is dropped.
    pub max_pes_bytes: usize,
}

impl Default for TsReaderLimits {
    fn default() -> Self {
        TsReaderLimits {
            max_pes_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Reads one MPEG-TS stream (the segments of one HLS source, in order) into packets.
pub struct TsReader {
    demux: Demuxer,
    video: video::VideoTrack,
    audio: audio::AudioTrack,
    timeline: Timeline,
    out: VecDeque<Packet>,
    /// The last DTS put out per track (video, audio): after a break, a track whose first
    /// PES sits a little before the other's would otherwise step back.
    last_dts: [Option<u64>; 2],
    /// After a discontinuity, PES are held until each track's first one is known, so the
    /// new timeline can start after every track's last packet (see `release`).
    held: Option<Vec<Pes>>,
    skipped: u64,
    last_problem: Option<String>,
}

impl TsReader {
    pub fn new(limits: TsReaderLimits) -> TsReader {
        TsReader {
            demux: Demuxer::new(limits.max_pes_bytes),
            video: video::VideoTrack::default(),
            audio: audio::AudioTrack::default(),
            timeline: Timeline::default(),
            out: VecDeque::new(),
            last_dts: [None; 2],
            held: None,
            skipped: 0,
            last_problem: None,
        }
    }

    /// Consumes bytes of the transport stream; whole packets become available from
    /// [`next_packet`](Self::next_packet).
    pub fn push(&mut self, data: &[u8]) {
        let mut pes = Vec::new();
        self.demux.push(data, &mut pes);
        self.take(pes);
    }

    /// The input ended (or a segment boundary is a hard break): the PES still being
    /// assembled on each PID is complete.
    pub fn flush(&mut self) {
        let mut pes = Vec::new();
        self.demux.flush(&mut pes);
        self.take(pes);
        self.release();
    }

    /// The next bytes start a new timeline (an HLS `EXT-X-DISCONTINUITY`): what is being
    /// assembled is finished first, and the next timestamps carry on just after the last.
    pub fn discontinuity(&mut self) {
        self.flush();
        self.demux.reset_counters();
        self.held = Some(Vec::new());
    }

    /// The next packet read, in input order per track.
    pub fn next_packet(&mut self) -> Option<Packet> {
        self.out.pop_front()
    }

    /// PES packets, frames or transport packets skipped as damaged so far.
    pub fn skipped(&self) -> u64 {
        self.skipped + self.demux.skipped()
    }

    /// Why the last thing was skipped.
    pub fn last_problem(&self) -> Option<&str> {
        self.last_problem.as_deref().or(self.demux.last_problem())
    }

    fn take(&mut self, pes: Vec<Pes>) {
        for pes in pes {
            match &mut self.held {
                Some(held) => {
                    held.push(pes);
                    let has = |kind: usize| held.iter().any(|p| usize::from(p.kind == TrackKind::Aac) == kind);
                    let known = (0..2).filter(|&t| self.last_dts[t].is_some());
                    if held.len() >= MAX_HELD || known.into_iter().all(has) {
                        self.release();
                    }
                }
                None => self.place(pes),
            }
        }
    }

    /// Starts the timeline after a discontinuity so that each track's first PES lands after
    /// its last packet, then places what was held.
    fn release(&mut self) {
        let Some(held) = self.held.take() else { return };
        let mut firsts: Vec<(u64, Option<u64>)> = Vec::new();
        for track in 0..2 {
            let first = held
                .iter()
                .find(|p| usize::from(p.kind == TrackKind::Aac) == track)
                .and_then(|p| p.dts.or(p.pts));
            if let Some(dts) = first {
                firsts.push((dts, self.last_dts[track]));
            }
        }
        self.timeline.rebase(&firsts);
        for pes in held {
            self.place(pes);
        }
    }

    fn place(&mut self, pes: Pes) {
        {
            let Some(pts) = pes.pts else {
                self.skip("a PES without a PTS".into());
                return;
            };
            let dts = pes.dts.unwrap_or(pts);
            let Some(mut stamp) = self.timeline.map(dts, pts) else {
                self.skip("a PES with timestamps before the timeline start".into());
                return;
            };
            let track = usize::from(pes.kind == TrackKind::Aac);
            if let Some(last) = self.last_dts[track] {
                if stamp.dts_ms <= last {
                    // Keep the presentation time where it was as far as the offset allows.
                    let bump = last + 1 - stamp.dts_ms;
                    stamp.dts_ms = last + 1;
                    stamp.cts_ms = stamp
                        .cts_ms
                        .saturating_sub(i32::try_from(bump).unwrap_or(i32::MAX))
                        .max(0);
                }
            }
            let before = self.out.len();
            let result = match pes.kind {
                TrackKind::Avc | TrackKind::Hevc => self.video.read(pes.kind, &pes.data, stamp, &mut self.out),
                TrackKind::Aac => self.audio.read(&pes.data, stamp, &mut self.out),
            };
            if let Some(last) = self.out.range(before..).filter(|p| !p.seq_header).map(|p| p.dts).max() {
                self.last_dts[track] = Some(last);
            }
            if let Err(problem) = result {
                self.skip(problem);
            }
        }
    }

    fn skip(&mut self, problem: String) {
        self.skipped += 1;
        self.last_problem = Some(problem);
    }
}
