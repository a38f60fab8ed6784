//! The MPEG-TS writer: tables at the start of each segment, one PES per video access unit
//! and per group of ADTS frames, the PCR on the PCR PID, and continuity counters that run
//! on across segments (Apple HLS authoring spec 7.2: counters continue between segments).
//!
//! The PCR comes at least every 100 ms (ISO/IEC 13818-1 §2.7.2), whatever the frame rate:
//! each PES of the PCR PID carries one, and before any PES whose clock is more than 100 ms
//! past the last PCR, packets that carry only a PCR (no payload) fill the gap on the PCR PID.
//! So video under 10 fps, AAC at low sample rates and an audio-only program all keep the
//! interval, and the PCR PID never goes quiet while the program has data.

use bytes::{Bytes, BytesMut};

use super::clock::{ms_to_90khz, TICKS_PER_MS, TIMESTAMP_MASK};
use super::ids::{
    AUDIO_PID, AUDIO_STREAM_ID, PAT_PID, PMT_PID, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, VIDEO_PID, VIDEO_STREAM_ID,
};
use super::packet::{pes_packet_count, write_pcr_packet, write_pes_packets, write_section_packet, FirstPacketFlags};
use super::pes::pes_header;
use super::psi::{pat_section, pmt_section, PmtStream};
use super::video::AvcAccessUnit;

/// How far the PCR runs behind the DTS of the frame that carries it, so that a decoder
/// model has the frame before it is due and audio queued a few frames behind the video
/// is not late.
pub const PCR_LEAD_MS: u64 = 300;

/// The longest time between two PCRs of a program (ISO/IEC 13818-1 §2.7.2: 0.1 s).
pub const MAX_PCR_INTERVAL_MS: u64 = 100;

/// A clock jump longer than this is not bridged with PCR-only packets: the timeline broke
/// (the segmenter starts a discontinuous segment), and filling it would only add bytes.
const MAX_PCR_FILL_MS: u64 = 10_000;

/// Which elementary streams a segment's PMT lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrackLayout {
    pub video: bool,
    pub audio: bool,
}

impl TrackLayout {
    /// The PID that carries the PCR: video when there is video, otherwise audio.
    pub fn pcr_pid(&self) -> u16 {
        if self.video {
            VIDEO_PID
        } else {
            AUDIO_PID
        }
    }
}

/// Where a PES leaves the continuity counter of its PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterEnd {
    /// The PES takes as many transport packets as it needs.
    #[default]
    Natural,
    /// The PES is spread over up to 15 more packets (adaptation-field stuffing) so that the
    /// counter is 0 after it. A segment whose writer starts at 0 and whose last PES on every
    /// PID ends this way (and that writes the tables 16 times) can follow any other such
    /// segment with continuous counters: VOD segments muxed one per request, in any order.
    Zero,
}

/// One raw AAC frame and the ADTS header that goes before it.
#[derive(Debug, Clone)]
pub struct AdtsFrame {
    pub header: [u8; 7],
    pub data: Bytes,
}

/// Writes transport packets into caller-owned buffers. One writer lives as long as the
/// stream, so continuity counters continue from segment to segment.
#[derive(Debug, Default)]
pub struct TsWriter {
    pat_cc: u8,
    pmt_cc: u8,
    video_cc: u8,
    audio_cc: u8,
    layout: Option<TrackLayout>,
    pmt_version: u8,
    /// The last PCR written (90 kHz, 33 bits), `None` after [`TsWriter::restart_clock`].
    last_pcr: Option<u64>,
}

impl TsWriter {
    pub fn new() -> Self {
        TsWriter::default()
    }

    /// Writes the PAT and the PMT for `layout`. A layout different from the previous one
    /// gets the next PMT version number.
    pub fn write_tables(&mut self, out: &mut BytesMut, layout: TrackLayout) {
        if self.layout.is_some_and(|previous| previous != layout) {
            self.pmt_version = (self.pmt_version + 1) & 0x1f;
        }
        self.layout = Some(layout);
        let mut streams = Vec::with_capacity(2);
        if layout.video {
            streams.push(PmtStream {
                stream_type: STREAM_TYPE_H264,
                pid: VIDEO_PID,
            });
        }
        if layout.audio {
            streams.push(PmtStream {
                stream_type: STREAM_TYPE_AAC_ADTS,
                pid: AUDIO_PID,
            });
        }
        write_section_packet(out, PAT_PID, &mut self.pat_cc, &pat_section());
        let pmt = pmt_section(self.pmt_version, layout.pcr_pid(), &streams);
        write_section_packet(out, PMT_PID, &mut self.pmt_cc, &pmt);
    }

    /// Forgets the last PCR: after a timeline break the next PCR starts afresh instead of
    /// being bridged from the old timeline (the playlist marks the break discontinuous).
    pub fn restart_clock(&mut self) {
        self.last_pcr = None;
    }

    /// Writes one video access unit as a PES on [`VIDEO_PID`], with the PCR when video
    /// carries it and the random-access indicator on IDRs.
    pub fn write_video(&mut self, out: &mut BytesMut, au: &AvcAccessUnit<'_>, dts_ms: u64, pts_ms: u64) {
        let times = PesTimes {
            pts: ms_to_90khz(pts_ms),
            dts: ms_to_90khz(dts_ms),
            pcr: pcr_for(dts_ms),
        };
        self.video(out, au, times, CounterEnd::Natural);
    }

    /// [`TsWriter::write_video`] with DTS and PTS on the 90 kHz clock (wrapped to 33 bits
    /// here), and where the PES leaves the counter.
    pub fn write_video_90khz(
        &mut self,
        out: &mut BytesMut,
        au: &AvcAccessUnit<'_>,
        dts: u64,
        pts: u64,
        end: CounterEnd,
    ) {
        let times = PesTimes {
            pts,
            dts,
            pcr: pcr_for_90khz(dts),
        };
        self.video(out, au, times, end);
    }

    /// Writes consecutive AAC frames as one PES on [`AUDIO_PID`], stamped with the PTS of
    /// the first. Audio frames are all random access points.
    pub fn write_audio(&mut self, out: &mut BytesMut, frames: &[AdtsFrame], pts_ms: u64) {
        let times = PesTimes {
            pts: ms_to_90khz(pts_ms),
            dts: ms_to_90khz(pts_ms),
            pcr: pcr_for(pts_ms),
        };
        self.audio(out, frames, times, CounterEnd::Natural);
    }

    /// [`TsWriter::write_audio`] with the PTS on the 90 kHz clock, and where the PES leaves
    /// the counter.
    pub fn write_audio_90khz(&mut self, out: &mut BytesMut, frames: &[AdtsFrame], pts: u64, end: CounterEnd) {
        let times = PesTimes {
            pts,
            dts: pts,
            pcr: pcr_for_90khz(pts),
        };
        self.audio(out, frames, times, end);
    }

    fn video(&mut self, out: &mut BytesMut, au: &AvcAccessUnit<'_>, times: PesTimes, end: CounterEnd) {
        let pcr = self.pace_pcr(out, VIDEO_PID, times.pcr);
        let (header, header_len) = pes_header(VIDEO_STREAM_ID, times.pts, Some(times.dts), au.len());
        let mut chunks = Vec::with_capacity(au.chunks().len() + 1);
        chunks.push(&header[..header_len]);
        chunks.extend_from_slice(au.chunks());
        let flags = FirstPacketFlags {
            pcr,
            random_access: au.is_random_access(),
            discontinuity: false,
        };
        write_pes(out, VIDEO_PID, &mut self.video_cc, &chunks, flags, end);
    }

    fn audio(&mut self, out: &mut BytesMut, frames: &[AdtsFrame], times: PesTimes, end: CounterEnd) {
        if frames.is_empty() {
            return;
        }
        let pcr = self.pace_pcr(out, AUDIO_PID, times.pcr);
        let payload_len = frames.iter().map(|f| f.header.len() + f.data.len()).sum();
        let (header, header_len) = pes_header(AUDIO_STREAM_ID, times.pts, None, payload_len);
        let mut chunks: Vec<&[u8]> = Vec::with_capacity(1 + 2 * frames.len());
        chunks.push(&header[..header_len]);
        for frame in frames {
            chunks.push(&frame.header);
            chunks.push(&frame.data);
        }
        let flags = FirstPacketFlags {
            pcr,
            random_access: true,
            discontinuity: false,
        };
        write_pes(out, AUDIO_PID, &mut self.audio_cc, &chunks, flags, end);
    }

    fn carries_pcr(&self, pid: u16) -> bool {
        self.layout.unwrap_or_default().pcr_pid() == pid
    }

    /// Before a PES on `pid` whose clock (the PCR it would carry) is `clock`: writes PCR-only
    /// packets on the PCR PID, [`MAX_PCR_INTERVAL_MS`] apart, while the clock is more than
    /// that past the last PCR. Returns the PCR the PES carries if `pid` is the PCR PID: its
    /// clock, or the last PCR when the clock is behind it (a PCR never goes back).
    fn pace_pcr(&mut self, out: &mut BytesMut, pid: u16, clock: u64) -> Option<u64> {
        let step = MAX_PCR_INTERVAL_MS * TICKS_PER_MS;
        let mut pcr = clock;
        if let Some(mut last) = self.last_pcr {
            match ticks_ahead(clock, last) {
                Some(gap) if gap <= MAX_PCR_FILL_MS * TICKS_PER_MS => {
                    let pcr_pid = self.layout.unwrap_or_default().pcr_pid();
                    // A packet without payload repeats the counter of the packet before it.
                    let next_cc = if pcr_pid == VIDEO_PID {
                        self.video_cc
                    } else {
                        self.audio_cc
                    };
                    let cc = next_cc.wrapping_sub(1) & 0x0f;
                    while ticks_ahead(clock, last).is_some_and(|gap| gap > step) {
                        last = (last + step) & TIMESTAMP_MASK;
                        write_pcr_packet(out, pcr_pid, cc, last);
                    }
                    self.last_pcr = Some(last);
                }
                Some(_) => {}
                None => pcr = last,
            }
        }
        if !self.carries_pcr(pid) {
            return None;
        }
        self.last_pcr = Some(pcr);
        Some(pcr)
    }
}

/// How far `clock` is past `last` on the 33-bit clock, `None` if it is behind.
fn ticks_ahead(clock: u64, last: u64) -> Option<u64> {
    let gap = clock.wrapping_sub(last) & TIMESTAMP_MASK;
    (gap < 1 << 32).then_some(gap)
}

/// A PES's timestamps and the PCR that goes with it, on the 90 kHz clock.
#[derive(Debug, Clone, Copy)]
struct PesTimes {
    pts: u64,
    dts: u64,
    pcr: u64,
}

fn write_pes(out: &mut BytesMut, pid: u16, cc: &mut u8, chunks: &[&[u8]], flags: FirstPacketFlags, end: CounterEnd) {
    let extra = match end {
        CounterEnd::Natural => 0,
        CounterEnd::Zero => {
            let len = chunks.iter().map(|c| c.len()).sum();
            let after = (usize::from(*cc) + pes_packet_count(len, flags)) % 16;
            (16 - after) % 16
        }
    };
    write_pes_packets(out, pid, cc, chunks, flags, extra);
}

fn pcr_for(ms: u64) -> u64 {
    ms_to_90khz(ms.saturating_sub(PCR_LEAD_MS))
}

fn pcr_for_90khz(ticks: u64) -> u64 {
    ticks.saturating_sub(PCR_LEAD_MS * TICKS_PER_MS) & TIMESTAMP_MASK
}
