//! A video PES (an Annex-B access unit) → FLV video tag bodies: H.264 as legacy codec 7,
//! H.265 as Enhanced RTMP `hvc1` (what our ingest and ffmpeg 6.1+ read). Parameter sets are
//! taken out of the frames into a decoder configuration record, sent as a sequence header
//! before the first keyframe and again whenever they change. Frames before the first
//! keyframe with parameter sets are dropped: nothing could decode them.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use estuary_protocol::codec::avc::annexb_nal_units;
use estuary_protocol::codec::HevcSpsInfo;
use estuary_protocol::{MediaKind, Packet};

use super::demux::TrackKind;
use super::timeline::Stamp;

const AVC_SPS: u8 = 7;
const AVC_PPS: u8 = 8;
const AVC_AUD: u8 = 9;
const AVC_IDR: u8 = 5;
const HEVC_VPS: u8 = 32;
const HEVC_SPS: u8 = 33;
const HEVC_PPS: u8 = 34;
const HEVC_AUD: u8 = 35;
/// HEVC IRAP pictures (BLA, IDR, CRA): NAL types 16 to 21.
const HEVC_IRAP: std::ops::RangeInclusive<u8> = 16..=21;

#[derive(Default)]
pub struct VideoTrack {
    /// The record last sent as a sequence header.
    config: Option<Bytes>,
    /// A keyframe went out since the last sequence header.
    started: bool,
    vps: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Vec<Bytes>,
}

impl VideoTrack {
    pub fn read(
        &mut self,
        kind: TrackKind,
        data: &Bytes,
        stamp: Stamp,
        out: &mut VecDeque<Packet>,
    ) -> Result<(), String> {
        let hevc = kind == TrackKind::Hevc;
        let nal_type = |nal: &[u8]| if hevc { (nal[0] >> 1) & 0x3f } else { nal[0] & 0x1f };
        let mut frame_nals: Vec<&[u8]> = Vec::new();
        let mut keyframe = false;
        let (mut new_sps, mut new_pps, mut new_vps) = (None, Vec::new(), None);
        for nal in annexb_nal_units(data) {
            let nal = trim_trailing_zeros(nal);
            if nal.len() < 2 {
                continue;
            }
            let t = nal_type(nal);
            match (hevc, t) {
                (false, AVC_SPS) | (true, HEVC_SPS) => new_sps = Some(data.slice_ref(nal)),
                (false, AVC_PPS) | (true, HEVC_PPS) => {
                    let pps = data.slice_ref(nal);
                    if !new_pps.contains(&pps) {
                        new_pps.push(pps);
                    }
                }
                (true, HEVC_VPS) => new_vps = Some(data.slice_ref(nal)),
                (false, AVC_AUD) | (true, HEVC_AUD) => {}
                (false, 12) | (true, 38) => {} // filler data
                _ => {
                    keyframe |= if hevc { HEVC_IRAP.contains(&t) } else { t == AVC_IDR };
                    frame_nals.push(nal);
                }
            }
        }
        if new_sps.is_some() {
            self.sps = new_sps;
        }
        if !new_pps.is_empty() {
            self.pps = new_pps;
        }
        if new_vps.is_some() {
            self.vps = new_vps;
        }
        if frame_nals.is_empty() {
            return Ok(());
        }
        if keyframe {
            let record = if hevc { self.hevc_record()? } else { self.avc_record()? };
            if let Some(record) = record {
                if self.config.as_ref() != Some(&record) {
                    let mut body = BytesMut::with_capacity(record.len() + 5);
                    if hevc {
                        body.put_u8(0x80 | 0x10); // ex header, keyframe, SequenceStart
                        body.put_slice(b"hvc1");
                    } else {
                        body.put_slice(&[0x17, 0, 0, 0, 0]);
                    }
                    body.put_slice(&record);
                    out.push_back(packet(body.freeze(), stamp.dts_ms, stamp.discontinuity)?);
                    self.config = Some(record);
                    self.started = false;
                }
            }
        }
        if self.config.is_none() || !(self.started || keyframe) {
            return Ok(()); // joined mid-GOP: wait for a keyframe
        }
        self.started = true;
        let size: usize = frame_nals.iter().map(|n| n.len() + 4).sum();
        let mut body = BytesMut::with_capacity(size + 8);
        let frame_type = if keyframe { 1 } else { 2 };
        let cts = stamp.cts_ms.to_be_bytes();
        if hevc {
            body.put_u8(0x80 | (frame_type << 4) | 1); // CodedFrames, with a composition time
            body.put_slice(b"hvc1");
        } else {
            body.put_u8((frame_type << 4) | 7);
            body.put_u8(1);
        }
        body.put_slice(&cts[1..]);
        for nal in frame_nals {
            body.put_u32(nal.len() as u32);
            body.put_slice(nal);
        }
        out.push_back(packet(body.freeze(), stamp.dts_ms, stamp.discontinuity)?);
        Ok(())
    }

    /// `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1) of the current SPS/PPS.
    fn avc_record(&self) -> Result<Option<Bytes>, String> {
        let (Some(sps), false) = (&self.sps, self.pps.is_empty()) else {
            return Ok(None);
        };
        if sps.len() < 4 {
            return Err(format!("h264 sps of {} bytes", sps.len()));
        }
        let mut r = BytesMut::new();
        r.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
        r.put_u16(sps.len() as u16);
        r.put_slice(sps);
        r.put_u8(self.pps.len().min(31) as u8);
        for pps in self.pps.iter().take(31) {
            r.put_u16(pps.len() as u16);
            r.put_slice(pps);
        }
        Ok(Some(r.freeze()))
    }

    /// `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1) of the current
    /// VPS/SPS/PPS; the profile, tier and level are the SPS's own bytes.
    fn hevc_record(&self) -> Result<Option<Bytes>, String> {
        let (Some(vps), Some(sps), false) = (&self.vps, &self.sps, self.pps.is_empty()) else {
            return Ok(None);
        };
        let rbsp = unescape(sps, 16);
        if rbsp.len() < 15 {
            return Err(format!("h265 sps of {} bytes", sps.len()));
        }
        let max_sub_layers = ((rbsp[2] >> 1) & 0x07) + 1;
        let nesting = rbsp[2] & 1;
        let info = HevcSpsInfo::parse(sps).map_err(|e| e.to_string())?;
        let mut r = BytesMut::new();
        r.put_u8(1);
        r.put_slice(&rbsp[3..15]); // profile space/tier/idc, compatibility, constraints, level
        r.put_slice(&[0xf0, 0x00, 0xfc]);
        r.put_u8(0xfc | (info.chroma_format_idc as u8 & 0x03));
        r.put_u8(0xf8 | (info.bit_depth_luma.saturating_sub(8) as u8 & 0x07));
        r.put_u8(0xf8 | (info.bit_depth_chroma.saturating_sub(8) as u8 & 0x07));
        r.put_u16(0);
        r.put_u8((max_sub_layers << 3) | (nesting << 2) | 3);
        r.put_u8(3);
        for (t, units) in [
            (HEVC_VPS, std::slice::from_ref(vps)),
            (HEVC_SPS, std::slice::from_ref(sps)),
            (HEVC_PPS, &self.pps[..]),
        ] {
            r.put_u8(0x80 | t);
            r.put_u16(units.len() as u16);
            for unit in units {
                r.put_u16(unit.len() as u16);
                r.put_slice(unit);
            }
        }
        Ok(Some(r.freeze()))
    }
}

fn packet(body: Bytes, dts_ms: u64, discontinuity: bool) -> Result<Packet, String> {
    let mut packet = Packet::from_flv_body(MediaKind::Video, 0, body).map_err(|e| e.to_string())?;
    packet.dts = dts_ms;
    packet.discontinuity = discontinuity;
    Ok(packet)
}

fn trim_trailing_zeros(nal: &[u8]) -> &[u8] {
    let end = nal.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &nal[..end]
}

/// The first `want` bytes of a NAL unit without its emulation prevention bytes.
fn unescape(nal: &[u8], want: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(want);
    let mut zeros = 0;
    for &b in nal {
        if out.len() >= want {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}
