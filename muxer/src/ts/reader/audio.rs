//! An audio PES (ADTS frames, ISO/IEC 14496-3 §1.A.2) → FLV AAC tag bodies: the
//! `AudioSpecificConfig` the ADTS header implies as a sequence header (first, and again if
//! it changes), then one raw frame per packet, each 1024 samples after the one before.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use estuary_protocol::codec::aac::{parse_adts_header, SAMPLING_FREQUENCIES};
use estuary_protocol::{MediaKind, Packet};

use super::timeline::Stamp;

/// FLV audio tag header byte of AAC (sound format 10; the rate/size/type bits are fixed).
const FLV_AAC: u8 = 0xaf;
const SAMPLES_PER_FRAME: u64 = 1024;

#[derive(Default)]
pub struct AudioTrack {
    config: Option<[u8; 2]>,
}

impl AudioTrack {
    pub fn read(&mut self, data: &Bytes, stamp: Stamp, out: &mut VecDeque<Packet>) -> Result<(), String> {
        let mut rest = &data[..];
        let mut index = 0u64;
        while !rest.is_empty() {
            let header = parse_adts_header(rest).map_err(|e| e.to_string())?;
            let header_len = if header.protection_absent { 7 } else { 9 };
            if header.frame_len < header_len || header.frame_len > rest.len() {
                return Err(format!(
                    "adts frame of {} bytes with {} left in the PES",
                    header.frame_len,
                    rest.len()
                ));
            }
            let rate = *SAMPLING_FREQUENCIES
                .get(usize::from(header.sampling_frequency_index))
                .ok_or_else(|| format!("adts sampling index {}", header.sampling_frequency_index))?;
            let object_type = header.profile + 1;
            let asc = [
                (object_type << 3) | (header.sampling_frequency_index >> 1),
                ((header.sampling_frequency_index & 1) << 7) | (header.channel_config << 3),
            ];
            let dts = stamp.dts_ms + index * SAMPLES_PER_FRAME * 1000 / u64::from(rate);
            if self.config != Some(asc) {
                out.push_back(packet(
                    Bytes::copy_from_slice(&[FLV_AAC, 0, asc[0], asc[1]]),
                    dts,
                    stamp.discontinuity,
                )?);
                self.config = Some(asc);
            }
            let raw = &rest[header_len..header.frame_len];
            let mut body = BytesMut::with_capacity(raw.len() + 2);
            body.put_slice(&[FLV_AAC, 1]);
            body.put_slice(raw);
            out.push_back(packet(body.freeze(), dts, stamp.discontinuity && index == 0)?);
            rest = &rest[header.frame_len..];
            index += 1;
        }
        Ok(())
    }
}

fn packet(body: Bytes, dts_ms: u64, discontinuity: bool) -> Result<Packet, String> {
    let mut packet = Packet::from_flv_body(MediaKind::Audio, 0, body).map_err(|e| e.to_string())?;
    packet.dts = dts_ms;
    packet.discontinuity = discontinuity;
    Ok(packet)
}
