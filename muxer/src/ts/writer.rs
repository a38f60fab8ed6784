//! The MPEG-TS writer: tables at the start of each segment, one PES per video access unit
//! and per group of ADTS frames, the PCR on the PCR PID, and continuity counters that run
//! on across segments (Apple HLS authoring spec 7.2: counters continue between segments).

use bytes::{Bytes, BytesMut};

use super::clock::ms_to_90khz;
use super::ids::{
    AUDIO_PID, AUDIO_STREAM_ID, PAT_PID, PMT_PID, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, VIDEO_PID, VIDEO_STREAM_ID,
};
use super::packet::{write_pes_packets, write_section_packet, FirstPacketFlags};
use super::pes::pes_header;
use super::psi::{pat_section, pmt_section, PmtStream};
use super::video::AvcAccessUnit;

/// How far the PCR runs behind the DTS of the frame that carries it, so that a decoder
/// model has the frame before it is due and audio queued a few frames behind the video
/// is not late.
pub const PCR_LEAD_MS: u64 = 300;

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

    /// Writes one video access unit as a PES on [`VIDEO_PID`], with the PCR when video
    /// carries it and the random-access indicator on IDRs.
    pub fn write_video(&mut self, out: &mut BytesMut, au: &AvcAccessUnit<'_>, dts_ms: u64, pts_ms: u64) {
        let (header, header_len) = pes_header(
            VIDEO_STREAM_ID,
            ms_to_90khz(pts_ms),
            Some(ms_to_90khz(dts_ms)),
            au.len(),
        );
        let mut chunks = Vec::with_capacity(au.chunks().len() + 1);
        chunks.push(&header[..header_len]);
        chunks.extend_from_slice(au.chunks());
        let flags = FirstPacketFlags {
            pcr: self.carries_pcr(VIDEO_PID).then(|| pcr_for(dts_ms)),
            random_access: au.is_random_access(),
            discontinuity: false,
        };
        write_pes_packets(out, VIDEO_PID, &mut self.video_cc, &chunks, flags);
    }

    /// Writes consecutive AAC frames as one PES on [`AUDIO_PID`], stamped with the PTS of
    /// the first. Audio frames are all random access points.
    pub fn write_audio(&mut self, out: &mut BytesMut, frames: &[AdtsFrame], pts_ms: u64) {
        if frames.is_empty() {
            return;
        }
        let payload_len = frames.iter().map(|f| f.header.len() + f.data.len()).sum();
        let (header, header_len) = pes_header(AUDIO_STREAM_ID, ms_to_90khz(pts_ms), None, payload_len);
        let mut chunks: Vec<&[u8]> = Vec::with_capacity(1 + 2 * frames.len());
        chunks.push(&header[..header_len]);
        for frame in frames {
            chunks.push(&frame.header);
            chunks.push(&frame.data);
        }
        let flags = FirstPacketFlags {
            pcr: self.carries_pcr(AUDIO_PID).then(|| pcr_for(pts_ms)),
            random_access: true,
            discontinuity: false,
        };
        write_pes_packets(out, AUDIO_PID, &mut self.audio_cc, &chunks, flags);
    }

    fn carries_pcr(&self, pid: u16) -> bool {
        self.layout.unwrap_or_default().pcr_pid() == pid
    }
}

fn pcr_for(ms: u64) -> u64 {
    ms_to_90khz(ms.saturating_sub(PCR_LEAD_MS))
}
