//! Transport packets → the program's tables and whole PES packets (ISO/IEC 13818-1 §2.4.3,
//! §2.4.4). The first program of the PAT is read; of its PMT, the first H.264 or H.265 stream
//! and the first ADTS AAC stream.

use bytes::{Bytes, BytesMut};

use super::super::packet::{TS_PACKET_LEN, TS_SYNC_BYTE};
use super::super::pes::parse_pes_header;
use super::super::psi::{parse_pat, parse_pmt};
use super::super::{PAT_PID, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264};

/// `stream_type` of H.265 video (ITU-T H.222.0 Table 2-34).
pub const STREAM_TYPE_HEVC: u8 = 0x24;

/// What an elementary stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Avc,
    Hevc,
    Aac,
}

/// One whole PES packet.
#[derive(Debug)]
pub struct Pes {
    pub kind: TrackKind,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub data: Bytes,
}

struct Assembly {
    pid: u16,
    kind: TrackKind,
    buf: BytesMut,
    /// A PES start was seen and nothing was lost since.
    open: bool,
    /// `PES_packet_length` + 6 when bounded: the PES is complete at this many bytes.
    expected: Option<usize>,
    counter: Option<u8>,
}

pub struct Demuxer {
    /// Bytes of a transport packet split across pushes, or waiting for sync.
    partial: BytesMut,
    pmt_pid: Option<u16>,
    tracks: Vec<Assembly>,
    max_pes_bytes: usize,
    skipped: u64,
    last_problem: Option<String>,
}

impl Demuxer {
    pub fn new(max_pes_bytes: usize) -> Demuxer {
        Demuxer {
            partial: BytesMut::new(),
            pmt_pid: None,
            tracks: Vec::new(),
            max_pes_bytes,
            skipped: 0,
            last_problem: None,
        }
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn last_problem(&self) -> Option<&str> {
        self.last_problem.as_deref()
    }

    fn skip(&mut self, problem: String) {
        self.skipped += 1;
        self.last_problem = Some(problem);
    }

    /// A new segment after a discontinuity restarts its continuity counters.
    pub fn reset_counters(&mut self) {
        for track in &mut self.tracks {
            track.counter = None;
        }
    }

    /// Reads the transport packets in `data`: straight from the slice, except a packet split
    /// across two pushes, which is completed in `partial` (a segment is not copied whole).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Pes>) {
        let mut data = data;
        if !self.partial.is_empty() {
            let need = TS_PACKET_LEN - self.partial.len();
            let take = need.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < TS_PACKET_LEN {
                return;
            }
            let mut packet = [0u8; TS_PACKET_LEN];
            packet.copy_from_slice(&self.partial);
            self.partial.clear();
            self.packet(&packet, out);
        }
        loop {
            // A packet starts with the sync byte; anything else up to the next one is skipped.
            match data.iter().position(|&b| b == TS_SYNC_BYTE) {
                Some(0) => {}
                Some(n) => {
                    self.skip(format!("{n} bytes out of sync"));
                    data = &data[n..];
                }
                None => {
                    if !data.is_empty() {
                        self.skip(format!("{} bytes out of sync", data.len()));
                    }
                    return;
                }
            }
            if data.len() < TS_PACKET_LEN {
                self.partial.extend_from_slice(data);
                return;
            }
            let (packet, rest) = data.split_at(TS_PACKET_LEN);
            self.packet(packet, out);
            data = rest;
        }
    }

    pub fn flush(&mut self, out: &mut Vec<Pes>) {
        for i in 0..self.tracks.len() {
            self.finish(i, out);
        }
    }

    fn packet(&mut self, packet: &[u8], out: &mut Vec<Pes>) {
        let pusi = packet[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([packet[1] & 0x1f, packet[2]]);
        let afc = (packet[3] >> 4) & 0x03;
        let counter = packet[3] & 0x0f;
        if packet[1] & 0x80 != 0 {
            self.skip(format!("transport error on pid {pid}"));
            return;
        }
        let mut start = 4;
        if afc & 0x02 != 0 {
            start += 1 + usize::from(packet[4]);
        }
        if afc & 0x01 == 0 || start >= TS_PACKET_LEN {
            return; // adaptation field only (PCR, stuffing)
        }
        let payload = &packet[start..];
        if pid == PAT_PID {
            if pusi {
                self.pat(payload);
            }
            return;
        }
        if Some(pid) == self.pmt_pid {
            if pusi {
                self.pmt(payload);
            }
            return;
        }
        let Some(index) = self.tracks.iter().position(|t| t.pid == pid) else {
            return;
        };
        // A repeated counter is a duplicate packet (§2.4.3.3): ignored.
        let track = &mut self.tracks[index];
        match track.counter {
            Some(last) if last == counter => return,
            Some(last) if (last + 1) & 0x0f != counter && track.open && !pusi => {
                track.open = false;
                track.buf.clear();
                self.skip(format!("pid {pid}: a lost packet cut a PES"));
            }
            _ => {}
        }
        self.tracks[index].counter = Some(counter);
        if pusi {
            self.finish(index, out);
            let track = &mut self.tracks[index];
            track.open = true;
            track.expected = None;
            track.buf.extend_from_slice(payload);
            if payload.len() >= 6 {
                let len = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
                if len > 0 {
                    track.expected = Some(len + 6);
                }
            }
        } else {
            let track = &mut self.tracks[index];
            if !track.open {
                return;
            }
            track.buf.extend_from_slice(payload);
        }
        let track = &self.tracks[index];
        if track.buf.len() > self.max_pes_bytes {
            let len = track.buf.len();
            let track = &mut self.tracks[index];
            track.open = false;
            track.buf.clear();
            self.skip(format!("pid {pid}: PES over {len} bytes, past the limit"));
            return;
        }
        if track.expected.is_some_and(|n| track.buf.len() >= n) {
            self.finish(index, out);
        }
    }

    /// Ends the PES being assembled on track `index`, if any.
    fn finish(&mut self, index: usize, out: &mut Vec<Pes>) {
        let track = &mut self.tracks[index];
        if !std::mem::take(&mut track.open) {
            track.buf.clear();
            return;
        }
        let mut data = track.buf.split().freeze();
        if let Some(n) = track.expected.take() {
            data.truncate(n);
        }
        let (pid, kind) = (track.pid, track.kind);
        match parse_pes_header(&data) {
            Ok(header) => out.push(Pes {
                kind,
                pts: header.pts,
                dts: header.dts,
                data: data.slice(header.payload_offset.min(data.len())..),
            }),
            Err(e) => self.skip(format!("pid {pid}: {e}")),
        }
    }

    fn pat(&mut self, payload: &[u8]) {
        match section(payload).map(parse_pat) {
            Some(Ok(pmt)) => self.pmt_pid = Some(pmt),
            Some(Err(e)) => self.skip(e),
            None => self.skip("a PAT pointer past its packet".into()),
        }
    }

    fn pmt(&mut self, payload: &[u8]) {
        let pmt = match section(payload).map(parse_pmt) {
            Some(Ok(pmt)) => pmt,
            Some(Err(e)) => return self.skip(e),
            None => return self.skip("a PMT pointer past its packet".into()),
        };
        let video = pmt.streams.iter().find_map(|s| match s.stream_type {
            STREAM_TYPE_H264 => Some((s.pid, TrackKind::Avc)),
            STREAM_TYPE_HEVC => Some((s.pid, TrackKind::Hevc)),
            _ => None,
        });
        let audio = pmt
            .streams
            .iter()
            .find(|s| s.stream_type == STREAM_TYPE_AAC_ADTS)
            .map(|s| (s.pid, TrackKind::Aac));
        for (pid, kind) in video.into_iter().chain(audio) {
            if self.tracks.iter().any(|t| t.pid == pid && t.kind == kind) {
                continue;
            }
            // A track changed PID or kind: the old one is gone.
            self.tracks
                .retain(|t| !(t.pid == pid || (t.kind == TrackKind::Aac) == (kind == TrackKind::Aac)));
            self.tracks.push(Assembly {
                pid,
                kind,
                buf: BytesMut::new(),
                open: false,
                expected: None,
                counter: None,
            });
        }
    }
}

/// The section after a table packet's pointer field.
fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    payload.get(1 + pointer..)
}
