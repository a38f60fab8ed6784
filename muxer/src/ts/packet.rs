//! Transport packets (ISO/IEC 13818-1 §2.4.3.2) and their adaptation field (§2.4.3.4):
//! splitting a payload into 188-byte packets, with PCR, random-access indicator and
//! stuffing.

use bytes::{BufMut, BytesMut};

/// Every transport packet is this long.
pub const TS_PACKET_LEN: usize = 188;
/// First byte of every transport packet.
pub const TS_SYNC_BYTE: u8 = 0x47;
const HEADER_LEN: usize = 4;
const MAX_PAYLOAD: usize = TS_PACKET_LEN - HEADER_LEN;
const PCR_LEN: usize = 6;

/// Adaptation-field contents of the first packet of a payload.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FirstPacketFlags {
    /// PCR base on the 90 kHz clock (the 27 MHz extension is written as 0).
    pub pcr: Option<u64>,
    pub random_access: bool,
    pub discontinuity: bool,
}

impl FirstPacketFlags {
    fn flags_byte(&self) -> u8 {
        (u8::from(self.discontinuity) << 7) | (u8::from(self.random_access) << 6) | (u8::from(self.pcr.is_some()) << 4)
    }

    /// Bytes the adaptation field needs (length byte included), 0 when none is needed.
    fn min_len(&self) -> usize {
        if self.pcr.is_some() {
            2 + PCR_LEN
        } else if self.random_access || self.discontinuity {
            2
        } else {
            0
        }
    }
}

/// Copies bytes out of a list of slices, as if they were one buffer.
struct Gather<'a> {
    chunks: &'a [&'a [u8]],
    index: usize,
    offset: usize,
}

impl Gather<'_> {
    fn copy_to(&mut self, out: &mut BytesMut, mut len: usize) {
        while len > 0 {
            let Some(chunk) = self.chunks.get(self.index) else {
                return;
            };
            let available = &chunk[self.offset..];
            let take = available.len().min(len);
            out.put_slice(&available[..take]);
            len -= take;
            self.offset += take;
            if self.offset == chunk.len() {
                self.index += 1;
                self.offset = 0;
            }
        }
    }
}

/// Transport packets a PES of `len` bytes takes when each carries as much as it can.
pub(crate) fn pes_packet_count(len: usize, first: FirstPacketFlags) -> usize {
    let first_capacity = MAX_PAYLOAD - first.min_len();
    1 + len.saturating_sub(first_capacity).div_ceil(MAX_PAYLOAD)
}

/// Writes the concatenation of `chunks` (a PES packet) as transport packets on `pid`,
/// starting with `payload_unit_start_indicator`, and advances `cc`. The last packet is
/// padded with adaptation-field stuffing.
///
/// With `extra`, the PES takes that many more packets than it needs: packets are filled in
/// order, and the last `extra` carry one byte each after adaptation-field stuffing (ISO/IEC
/// 13818-1 §2.4.3.5 allows stuffing in any packet). Every packet carries payload, so each
/// advances the continuity counter. At most one packet per byte of the PES.
pub(crate) fn write_pes_packets(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    chunks: &[&[u8]],
    first: FirstPacketFlags,
    extra: usize,
) {
    let mut remaining: usize = chunks.iter().map(|c| c.len()).sum();
    let natural = pes_packet_count(remaining, first);
    let total = (natural + extra).min(natural.max(remaining));
    let mut gather = Gather {
        chunks,
        index: 0,
        offset: 0,
    };
    out.reserve(total * TS_PACKET_LEN);
    for index in 0..total {
        let is_first = index == 0;
        let flags = if is_first { first } else { FirstPacketFlags::default() };
        let capacity = MAX_PAYLOAD - flags.min_len();
        // Leave at least one byte for each packet still to come.
        let packets_after = total - index - 1;
        let payload_len = capacity.min(remaining.saturating_sub(packets_after));
        let af_len = MAX_PAYLOAD - payload_len;
        write_header(out, pid, is_first, af_len > 0, payload_len > 0, cc);
        if af_len > 0 {
            write_adaptation_field(out, af_len, &flags);
        }
        gather.copy_to(out, payload_len);
        remaining -= payload_len;
    }
}

/// Writes a packet on `pid` that carries only an adaptation field with a PCR: it keeps the
/// PCR interval when no PES of the PCR PID is due. With no payload, it carries the counter
/// of the PID's previous packet, `cc` (§2.4.3.3).
pub(crate) fn write_pcr_packet(out: &mut BytesMut, pid: u16, cc: u8, pcr: u64) {
    let mut cc = cc;
    write_header(out, pid, false, true, false, &mut cc);
    let flags = FirstPacketFlags {
        pcr: Some(pcr),
        ..FirstPacketFlags::default()
    };
    write_adaptation_field(out, TS_PACKET_LEN - HEADER_LEN, &flags);
}

/// Writes one PSI section (with its pointer field) as a single transport packet padded
/// with 0xff, as §2.4.4 allows. Sections here are far below 183 bytes.
pub(crate) fn write_section_packet(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    let len = section.len().min(MAX_PAYLOAD - 1);
    write_header(out, pid, true, false, true, cc);
    out.put_u8(0); // pointer_field
    out.put_slice(&section[..len]);
    out.put_bytes(0xff, MAX_PAYLOAD - 1 - len);
}

fn write_header(out: &mut BytesMut, pid: u16, unit_start: bool, adaptation: bool, payload: bool, cc: &mut u8) {
    out.put_u8(TS_SYNC_BYTE);
    out.put_u16((u16::from(unit_start) << 14) | (pid & 0x1fff));
    let control = (u8::from(adaptation) << 1) | u8::from(payload);
    out.put_u8((control << 4) | (*cc & 0x0f));
    // The counter advances only with packets that carry payload (§2.4.3.3).
    if payload {
        *cc = (*cc + 1) & 0x0f;
    }
}

/// Writes an adaptation field of exactly `total` bytes (length byte included).
fn write_adaptation_field(out: &mut BytesMut, total: usize, flags: &FirstPacketFlags) {
    out.put_u8((total - 1) as u8);
    if total == 1 {
        return;
    }
    out.put_u8(flags.flags_byte());
    let mut used = 2;
    if let Some(base) = flags.pcr {
        out.put_slice(&encode_pcr(base));
        used += PCR_LEN;
    }
    out.put_bytes(0xff, total - used);
}

fn encode_pcr(base: u64) -> [u8; PCR_LEN] {
    let base = base & super::clock::TIMESTAMP_MASK;
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        (((base & 1) as u8) << 7) | 0x7e, // 6 reserved bits, extension high bit 0
        0,
    ]
}

/// The PCR base of a transport packet's adaptation field, if it carries one.
pub fn pcr_from_adaptation_field(packet: &[u8]) -> Option<u64> {
    if packet.len() < 12 || packet[3] & 0x20 == 0 || packet[4] < 7 || packet[5] & 0x10 == 0 {
        return None;
    }
    let b = &packet[6..12];
    Some(
        (u64::from(b[0]) << 25)
            | (u64::from(b[1]) << 17)
            | (u64::from(b[2]) << 9)
            | (u64::from(b[3]) << 1)
            | u64::from(b[4] >> 7),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn packets(out: &[u8]) -> Vec<&[u8]> {
        assert_eq!(out.len() % TS_PACKET_LEN, 0);
        out.chunks(TS_PACKET_LEN).collect()
    }

    fn payload_of(packet: &[u8]) -> &[u8] {
        let start = if packet[3] & 0x20 != 0 {
            5 + usize::from(packet[4])
        } else {
            4
        };
        &packet[start..]
    }

    #[test]
    fn pcr_round_trips() {
        let mut out = BytesMut::new();
        let mut cc = 0;
        let flags = FirstPacketFlags {
            pcr: Some(0x1_2345_6789),
            random_access: true,
            discontinuity: false,
        };
        write_pes_packets(&mut out, 0x100, &mut cc, &[&[1, 2, 3]], flags, 0);
        let packet = packets(&out)[0];
        assert_eq!(pcr_from_adaptation_field(packet), Some(0x1_2345_6789));
        assert_eq!(packet[5] & 0x40, 0x40);
        assert_eq!(payload_of(packet), &[1, 2, 3]);
    }

    #[test]
    fn pcr_packets_carry_no_payload_and_keep_the_counter() {
        let mut out = BytesMut::new();
        write_pcr_packet(&mut out, 0x100, 7, 123_456);
        let packet = packets(&out)[0];
        assert_eq!(pcr_from_adaptation_field(packet), Some(123_456));
        assert_eq!(packet[3], 0x20 | 7, "adaptation field only, counter as it was");
        assert_eq!(usize::from(packet[4]), TS_PACKET_LEN - 5);
    }

    #[test]
    fn stuffing_covers_every_remainder() {
        for len in 0..400 {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = BytesMut::new();
            let mut cc = 15;
            write_pes_packets(
                &mut out,
                0x101,
                &mut cc,
                &[&data[..len / 3], &data[len / 3..]],
                Default::default(),
                0,
            );
            let mut back = Vec::new();
            for (i, packet) in packets(&out).iter().enumerate() {
                assert_eq!(packet[0], TS_SYNC_BYTE);
                assert_eq!(packet[1] & 0x40 != 0, i == 0);
                back.extend_from_slice(payload_of(packet));
            }
            assert_eq!(back, data, "payload of {len} bytes");
        }
    }

    #[test]
    fn spreading_adds_packets_and_keeps_the_payload() {
        for len in [14usize, 20, 183, 184, 185, 400, 2000] {
            for extra in 0..16 {
                let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut out = BytesMut::new();
                let mut cc = 3;
                let flags = FirstPacketFlags {
                    pcr: Some(90_000),
                    random_access: true,
                    discontinuity: false,
                };
                write_pes_packets(&mut out, 0x100, &mut cc, &[&data], flags, extra);
                // A packet carries at least one byte: 14 bytes fill at most 14 packets.
                let expected = (pes_packet_count(len, flags) + extra).min(len);
                let packets = packets(&out);
                assert_eq!(packets.len(), expected, "{len} bytes, {extra} extra");
                assert_eq!(usize::from(cc), (3 + expected) % 16);
                let mut back = Vec::new();
                for (i, packet) in packets.iter().enumerate() {
                    assert_eq!(packet[3] & 0x0f, ((3 + i) % 16) as u8);
                    assert_ne!(packet[3] & 0x10, 0, "every packet carries payload");
                    back.extend_from_slice(payload_of(packet));
                }
                assert_eq!(back, data);
                assert_eq!(pcr_from_adaptation_field(packets[0]), Some(90_000));
            }
        }
    }

    proptest! {
        #[test]
        fn packets_are_188_bytes_and_counters_advance(
            sizes in proptest::collection::vec(0usize..2000, 1..8),
            start_cc in 0u8..16,
            pcr in proptest::option::of(0u64..(1 << 33)),
        ) {
            let mut out = BytesMut::new();
            let mut cc = start_cc;
            let mut expected = start_cc;
            for size in &sizes {
                let data = vec![0xabu8; *size];
                let flags = FirstPacketFlags { pcr, random_access: pcr.is_some(), discontinuity: false };
                write_pes_packets(&mut out, 0x100, &mut cc, &[&data], flags, 0);
            }
            for packet in packets(&out) {
                prop_assert_eq!(packet.len(), TS_PACKET_LEN);
                prop_assert_eq!(packet[3] & 0x0f, expected);
                if packet[3] & 0x10 != 0 {
                    expected = (expected + 1) & 0x0f;
                }
            }
            prop_assert_eq!(cc, expected);
        }
    }
}
