//! MPEG-TS segment verifier: packet framing, PAT/PMT first, continuity counters per PID
//! (also across consecutive segments), PCR on the PCR PID at most 100 ms apart within a
//! segment (ISO/IEC 13818-1 §2.7.2; between segments the gap is the media's own, which a
//! recording range may have), PES headers, DTS order per PID (modulo the 33-bit wrap), a
//! keyframe with AUD, SPS and PPS first in every independent segment, and ADTS framing.

use std::collections::HashMap;

use estuary_protocol::codec::aac::parse_adts_header;
use estuary_protocol::codec::avc::{annexb_nal_units, nal_type, nal_unit_type};

use crate::ts::pes::parse_pes_header;
use crate::ts::psi::{parse_pat, parse_pmt, ParsedPmt};
use crate::ts::{
    pcr_from_adaptation_field, MAX_PCR_INTERVAL_MS, PAT_PID, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, TICKS_PER_MS,
    TIMESTAMP_MASK, TS_PACKET_LEN, TS_SYNC_BYTE,
};

/// How far `b` is after `a` on the 33-bit 90 kHz clock (negative: before): PTS, DTS and the
/// PCR base wrap every 2^33 ticks (26.5 hours, and at 2^32 ms of stream time), so order is
/// the shorter way round the circle.
fn ticks_after(a: u64, b: u64) -> i64 {
    let diff = b.wrapping_sub(a) & TIMESTAMP_MASK;
    if diff >= 1 << 32 {
        diff as i64 - (1 << 33)
    } else {
        diff as i64
    }
}

/// What a segment contained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentReport {
    pub packets: usize,
    pub video_frames: usize,
    pub audio_frames: usize,
    pub pcr_count: usize,
    /// Earliest PTS (90 kHz, 33 bits) of any PES.
    pub first_pts: Option<u64>,
    /// Latest DTS (90 kHz, 33 bits) of any PES.
    pub last_dts: Option<u64>,
    pub has_video: bool,
    pub has_audio: bool,
    /// The first video access unit has an IDR (false for a segment cut without a keyframe).
    pub starts_with_idr: bool,
    /// Longest time between two consecutive PCRs of the segment (90 kHz).
    pub max_pcr_interval: u64,
}

/// Where a segment stands in its stream, which decides what it must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentContext {
    /// After `EXT-X-DISCONTINUITY`, or the first segment fetched: continuity counters and
    /// timestamps start afresh.
    pub discontinuity: bool,
    /// The segment must start with an IDR carrying SPS and PPS, as every segment of a
    /// playlist with `EXT-X-INDEPENDENT-SEGMENTS` does; a segment cut without a keyframe
    /// (a forced cut) starts with whatever frame came.
    pub independent: bool,
}

/// Checks one segment with no history.
pub fn check_segment(data: &[u8]) -> Result<SegmentReport, Vec<String>> {
    TsChecker::new().check_segment(data, true)
}

/// Checks the segments of one stream in order, carrying continuity counters and DTS order
/// from each segment to the next.
#[derive(Debug, Default)]
pub struct TsChecker {
    continuity: HashMap<u16, u8>,
    last_dts: HashMap<u16, u64>,
}

struct PesInProgress {
    data: Vec<u8>,
    random_access: bool,
    packet_index: usize,
}

struct SegmentState<'a> {
    report: SegmentReport,
    errors: Vec<String>,
    pmt_pid: Option<u16>,
    pmt: Option<ParsedPmt>,
    pes: HashMap<u16, PesInProgress>,
    last_pcr: Option<u64>,
    independent: bool,
    seen_first_video: bool,
    checker: &'a mut TsChecker,
}

impl TsChecker {
    pub fn new() -> Self {
        TsChecker::default()
    }

    /// Checks the next segment, which must start with an IDR. With `discontinuity` (the
    /// playlist's `EXT-X-DISCONTINUITY`, or the first segment fetched) counters and
    /// timestamps start afresh.
    pub fn check_segment(&mut self, data: &[u8], discontinuity: bool) -> Result<SegmentReport, Vec<String>> {
        self.check(
            data,
            SegmentContext {
                discontinuity,
                independent: true,
            },
        )
    }

    /// Checks the next segment in `context`.
    pub fn check(&mut self, data: &[u8], context: SegmentContext) -> Result<SegmentReport, Vec<String>> {
        if context.discontinuity {
            self.continuity.clear();
            self.last_dts.clear();
        }
        let mut state = SegmentState {
            report: SegmentReport::default(),
            errors: Vec::new(),
            pmt_pid: None,
            pmt: None,
            pes: HashMap::new(),
            last_pcr: None,
            independent: context.independent,
            seen_first_video: false,
            checker: self,
        };
        if data.is_empty() {
            state.errors.push("segment is empty".to_owned());
        }
        if !data.chunks_exact(TS_PACKET_LEN).remainder().is_empty() {
            state
                .errors
                .push(format!("segment is {} bytes, not a multiple of 188", data.len()));
        }
        for (index, packet) in data.chunks_exact(TS_PACKET_LEN).enumerate() {
            state.packet(index, packet);
        }
        state.finish()
    }
}

impl SegmentState<'_> {
    fn packet(&mut self, index: usize, packet: &[u8]) {
        self.report.packets += 1;
        if packet[0] != TS_SYNC_BYTE {
            self.errors
                .push(format!("packet {index}: sync byte {:#04x}, expected 0x47", packet[0]));
            return;
        }
        let pid = u16::from_be_bytes([packet[1], packet[2]]) & 0x1fff;
        let unit_start = packet[1] & 0x40 != 0;
        let control = (packet[3] >> 4) & 0x03;
        let cc = packet[3] & 0x0f;
        if control == 0 {
            self.errors.push(format!(
                "packet {index} (pid {pid:#x}): reserved adaptation_field_control 00"
            ));
            return;
        }
        let expected_first = match index {
            0 => Some((PAT_PID, "pat")),
            1 => self.pmt_pid.map(|pmt| (pmt, "pmt")),
            _ => None,
        };
        if let Some((want, name)) = expected_first {
            if pid != want {
                self.errors.push(format!(
                    "packet {index} is pid {pid:#x}, expected the {name} ({want:#x})"
                ));
            }
        }
        let mut payload_start = 4;
        let mut random_access = false;
        let mut discontinuity_indicator = false;
        if control & 0x02 != 0 {
            let af_len = usize::from(packet[4]);
            if af_len > 183 || (control == 0x03 && af_len > 182) {
                self.errors.push(format!(
                    "packet {index} (pid {pid:#x}): adaptation field of {af_len} bytes"
                ));
                return;
            }
            if af_len > 0 {
                discontinuity_indicator = packet[5] & 0x80 != 0;
                random_access = packet[5] & 0x40 != 0;
            }
            payload_start = 5 + af_len;
            if let Some(pcr) = pcr_from_adaptation_field(packet) {
                self.pcr(index, pid, pcr);
            }
        }
        let has_payload = control & 0x01 != 0;
        self.continuity(index, pid, cc, has_payload, discontinuity_indicator);
        if !has_payload {
            return;
        }
        let payload = &packet[payload_start..];
        if pid == PAT_PID {
            self.pat(index, unit_start, payload);
        } else if Some(pid) == self.pmt_pid {
            self.pmt(index, unit_start, payload);
        } else if pid != 0x1fff {
            self.elementary(index, pid, unit_start, random_access, payload);
        }
    }

    fn continuity(&mut self, index: usize, pid: u16, cc: u8, has_payload: bool, reset: bool) {
        let previous = self.checker.continuity.insert(pid, cc);
        if let (Some(previous), false) = (previous, reset) {
            let expected = if has_payload { (previous + 1) & 0x0f } else { previous };
            if cc != expected {
                self.errors.push(format!(
                    "packet {index} (pid {pid:#x}): continuity counter {cc}, expected {expected}"
                ));
            }
        }
    }

    fn pcr(&mut self, index: usize, pid: u16, pcr: u64) {
        let pcr_pid = self.pmt.as_ref().map(|pmt| pmt.pcr_pid);
        if pcr_pid != Some(pid) {
            return;
        }
        self.report.pcr_count += 1;
        if let Some(last) = self.last_pcr {
            let interval = pcr.wrapping_sub(last) & TIMESTAMP_MASK;
            if interval >= 1 << 32 {
                self.errors
                    .push(format!("packet {index}: pcr {pcr} is below the previous one ({last})"));
            } else {
                self.report.max_pcr_interval = self.report.max_pcr_interval.max(interval);
                if interval > MAX_PCR_INTERVAL_MS * TICKS_PER_MS {
                    self.errors.push(format!(
                        "packet {index}: pcr {} ms after the previous one, above {MAX_PCR_INTERVAL_MS} ms",
                        interval as f64 / TICKS_PER_MS as f64
                    ));
                }
            }
        }
        self.last_pcr = Some(pcr);
    }

    fn section<'p>(&mut self, index: usize, unit_start: bool, payload: &'p [u8], name: &str) -> Option<&'p [u8]> {
        if !unit_start {
            self.errors
                .push(format!("packet {index}: {name} continuation packets are not expected"));
            return None;
        }
        let pointer = usize::from(*payload.first()?);
        let section = payload.get(1 + pointer..);
        if section.is_none() {
            self.errors.push(format!(
                "packet {index}: {name} pointer field {pointer} overruns the packet"
            ));
        }
        section
    }

    fn pat(&mut self, index: usize, unit_start: bool, payload: &[u8]) {
        let Some(section) = self.section(index, unit_start, payload, "pat") else {
            return;
        };
        match parse_pat(section) {
            Ok(pmt_pid) => self.pmt_pid = Some(pmt_pid),
            Err(e) => self.errors.push(format!("packet {index}: {e}")),
        }
    }

    fn pmt(&mut self, index: usize, unit_start: bool, payload: &[u8]) {
        let Some(section) = self.section(index, unit_start, payload, "pmt") else {
            return;
        };
        match parse_pmt(section) {
            Ok(pmt) => {
                self.report.has_video |= pmt.streams.iter().any(|s| s.stream_type == STREAM_TYPE_H264);
                self.report.has_audio |= pmt.streams.iter().any(|s| s.stream_type == STREAM_TYPE_AAC_ADTS);
                self.pmt = Some(pmt);
            }
            Err(e) => self.errors.push(format!("packet {index}: {e}")),
        }
    }

    fn elementary(&mut self, index: usize, pid: u16, unit_start: bool, random_access: bool, payload: &[u8]) {
        let Some(pmt) = &self.pmt else {
            self.errors
                .push(format!("packet {index} (pid {pid:#x}) comes before the pmt"));
            return;
        };
        if !pmt.streams.iter().any(|s| s.pid == pid) {
            self.errors
                .push(format!("packet {index}: pid {pid:#x} is not in the pmt"));
            return;
        }
        if unit_start {
            if let Some(done) = self.pes.remove(&pid) {
                self.finish_pes(pid, done);
            }
            self.pes.insert(
                pid,
                PesInProgress {
                    data: payload.to_vec(),
                    random_access,
                    packet_index: index,
                },
            );
        } else if let Some(pes) = self.pes.get_mut(&pid) {
            pes.data.extend_from_slice(payload);
        } else {
            self.errors
                .push(format!("packet {index} (pid {pid:#x}): payload without a pes start"));
        }
    }

    fn finish_pes(&mut self, pid: u16, pes: PesInProgress) {
        let at = format!("pes at packet {} (pid {pid:#x})", pes.packet_index);
        let header = match parse_pes_header(&pes.data) {
            Ok(header) => header,
            Err(e) => return self.errors.push(format!("{at}: {e}")),
        };
        if header.packet_len != 0 && usize::from(header.packet_len) + 6 != pes.data.len() {
            self.errors.push(format!(
                "{at}: PES_packet_length {} but {} bytes follow",
                header.packet_len,
                pes.data.len() - 6
            ));
        }
        let Some(pts) = header.pts else {
            return self.errors.push(format!("{at}: no pts"));
        };
        let dts = header.dts.unwrap_or(pts);
        if ticks_after(dts, pts) < 0 {
            self.errors.push(format!("{at}: pts {pts} is below dts {dts}"));
        }
        if let Some(last) = self.checker.last_dts.insert(pid, dts) {
            if ticks_after(last, dts) <= 0 {
                self.errors
                    .push(format!("{at}: dts {dts} does not increase (previous {last})"));
            }
        }
        self.report.first_pts =
            Some(
                self.report
                    .first_pts
                    .map_or(pts, |first| if ticks_after(first, pts) < 0 { pts } else { first }),
            );
        self.report.last_dts =
            Some(
                self.report
                    .last_dts
                    .map_or(dts, |last| if ticks_after(last, dts) > 0 { dts } else { last }),
            );
        let es = pes.data.get(header.payload_offset..).unwrap_or_default();
        let stream_type = self
            .pmt
            .as_ref()
            .and_then(|pmt| pmt.streams.iter().find(|s| s.pid == pid))
            .map(|s| s.stream_type);
        match stream_type {
            Some(STREAM_TYPE_H264) => self.video_access_unit(&at, es, pes.random_access),
            Some(STREAM_TYPE_AAC_ADTS) => self.adts_frames(&at, es),
            _ => {}
        }
    }

    fn video_access_unit(&mut self, at: &str, es: &[u8], random_access: bool) {
        self.report.video_frames += 1;
        let types: Vec<u8> = annexb_nal_units(es).map(nal_unit_type).collect();
        if types.first() != Some(&nal_type::ACCESS_UNIT_DELIMITER) {
            self.errors.push(format!(
                "{at}: access unit does not start with a delimiter (nal types {types:?})"
            ));
        }
        let has_idr = types.contains(&nal_type::IDR_SLICE);
        if has_idr && !random_access {
            self.errors.push(format!("{at}: idr without random_access_indicator"));
        }
        if !self.seen_first_video {
            self.seen_first_video = true;
            self.report.starts_with_idr = has_idr;
            if !self.independent {
                return;
            }
            for (kind, name) in [
                (nal_type::IDR_SLICE, "an idr"),
                (nal_type::SPS, "an sps"),
                (nal_type::PPS, "a pps"),
            ] {
                if !types.contains(&kind) {
                    self.errors.push(format!(
                        "{at}: first video frame of the segment has no {name} (nal types {types:?})"
                    ));
                }
            }
        }
    }

    fn adts_frames(&mut self, at: &str, mut es: &[u8]) {
        if es.is_empty() {
            self.errors.push(format!("{at}: empty audio pes"));
        }
        while !es.is_empty() {
            match parse_adts_header(es) {
                Ok(header) if header.frame_len >= 7 && header.frame_len <= es.len() => {
                    self.report.audio_frames += 1;
                    es = &es[header.frame_len..];
                }
                Ok(header) => {
                    self.errors.push(format!(
                        "{at}: adts frame_length {} with {} bytes left",
                        header.frame_len,
                        es.len()
                    ));
                    return;
                }
                Err(e) => {
                    self.errors.push(format!("{at}: {e}"));
                    return;
                }
            }
        }
    }

    fn finish(mut self) -> Result<SegmentReport, Vec<String>> {
        let mut open: Vec<(u16, PesInProgress)> = self.pes.drain().collect();
        open.sort_by_key(|(_, pes)| pes.packet_index);
        for (pid, pes) in open {
            self.finish_pes(pid, pes);
        }
        if self.pmt.is_none() {
            self.errors.push("segment has no pmt".to_owned());
        }
        if self.pmt.is_some() && self.report.pcr_count == 0 {
            self.errors.push("segment has no pcr on the pcr pid".to_owned());
        }
        if self.report.has_video && self.report.video_frames == 0 {
            self.errors
                .push("pmt lists video but the segment has no video frame".to_owned());
        }
        if self.errors.is_empty() {
            Ok(self.report)
        } else {
            Err(self.errors)
        }
    }
}
