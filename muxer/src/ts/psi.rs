//! Program-specific information (ISO/IEC 13818-1 §2.4.4): the Program Association Table
//! (§2.4.4.3), the Program Map Table (§2.4.4.8) and the MPEG-2 CRC-32 that ends every
//! section (Annex A).

use bytes::{BufMut, BytesMut};

use super::ids::{PMT_PID, PROGRAM_NUMBER};

const TABLE_ID_PAT: u8 = 0x00;
const TABLE_ID_PMT: u8 = 0x02;
const TRANSPORT_STREAM_ID: u16 = 1;

/// One elementary stream listed in the PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmtStream {
    pub stream_type: u8,
    pub pid: u16,
}

/// The PAT section of a single-program stream whose PMT is on [`PMT_PID`].
pub fn pat_section() -> BytesMut {
    let mut body = BytesMut::with_capacity(4);
    body.put_u16(PROGRAM_NUMBER);
    body.put_u16(0xe000 | PMT_PID);
    section(TABLE_ID_PAT, TRANSPORT_STREAM_ID, 0, &body)
}

/// The PMT section of program [`PROGRAM_NUMBER`].
pub fn pmt_section(version: u8, pcr_pid: u16, streams: &[PmtStream]) -> BytesMut {
    let mut body = BytesMut::with_capacity(4 + streams.len() * 5);
    body.put_u16(0xe000 | pcr_pid);
    body.put_u16(0xf000); // program_info_length 0
    for stream in streams {
        body.put_u8(stream.stream_type);
        body.put_u16(0xe000 | stream.pid);
        body.put_u16(0xf000); // ES_info_length 0
    }
    section(TABLE_ID_PMT, PROGRAM_NUMBER, version, &body)
}

/// A long-form section: header, `body`, CRC-32.
fn section(table_id: u8, id: u16, version: u8, body: &[u8]) -> BytesMut {
    let section_length = 5 + body.len() + 4;
    let mut out = BytesMut::with_capacity(3 + section_length);
    out.put_u8(table_id);
    // section_syntax_indicator 1, '0', reserved '11', 12-bit length.
    out.put_u16(0xb000 | (section_length as u16 & 0x03ff));
    out.put_u16(id);
    out.put_u8(0xc1 | ((version & 0x1f) << 1)); // reserved, version, current_next_indicator
    out.put_u8(0); // section_number
    out.put_u8(0); // last_section_number
    out.put_slice(body);
    let crc = crc32_mpeg2(&out);
    out.put_u32(crc);
    out
}

/// CRC-32/MPEG-2: polynomial 0x04c11db7, initial value all ones, no reflection, no final
/// XOR. Over a whole section including its CRC it yields 0.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A PMT read back by verifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedPmt {
    pub version: u8,
    pub pcr_pid: u16,
    pub streams: Vec<PmtStream>,
}

/// Reads the PMT PID of program 1 from a PAT section (pointer field already skipped).
pub fn parse_pat(section: &[u8]) -> Result<u16, String> {
    let body = checked_section(section, TABLE_ID_PAT, "pat")?;
    body.chunks_exact(4)
        .find(|entry| u16::from_be_bytes([entry[0], entry[1]]) != 0)
        .map(|entry| u16::from_be_bytes([entry[2], entry[3]]) & 0x1fff)
        .ok_or_else(|| "pat lists no program".to_owned())
}

/// Reads a PMT section (pointer field already skipped).
pub fn parse_pmt(section: &[u8]) -> Result<ParsedPmt, String> {
    let body = checked_section(section, TABLE_ID_PMT, "pmt")?;
    if body.len() < 4 {
        return Err(format!("pmt body is {} bytes, expected at least 4", body.len()));
    }
    let pcr_pid = u16::from_be_bytes([body[0], body[1]]) & 0x1fff;
    let info_len = usize::from(u16::from_be_bytes([body[2], body[3]]) & 0x0fff);
    let mut rest = body
        .get(4 + info_len..)
        .ok_or("pmt program info overruns the section")?;
    let mut streams = Vec::new();
    while rest.len() >= 5 {
        let es_info_len = usize::from(u16::from_be_bytes([rest[3], rest[4]]) & 0x0fff);
        streams.push(PmtStream {
            stream_type: rest[0],
            pid: u16::from_be_bytes([rest[1], rest[2]]) & 0x1fff,
        });
        rest = rest.get(5 + es_info_len..).ok_or("pmt es info overruns the section")?;
    }
    Ok(ParsedPmt {
        version: (section[5] >> 1) & 0x1f,
        pcr_pid,
        streams,
    })
}

/// Validates table id, length and CRC; returns the bytes between the header and the CRC.
fn checked_section<'a>(section: &'a [u8], table_id: u8, name: &str) -> Result<&'a [u8], String> {
    if section.len() < 12 {
        return Err(format!(
            "{name} section is {} bytes, expected at least 12",
            section.len()
        ));
    }
    if section[0] != table_id {
        return Err(format!(
            "{name} section has table id {}, expected {table_id}",
            section[0]
        ));
    }
    let length = usize::from(u16::from_be_bytes([section[1], section[2]]) & 0x0fff);
    let whole = section
        .get(..3 + length)
        .ok_or_else(|| format!("{name} section length {length} overruns its packet"))?;
    if length < 9 || crc32_mpeg2(whole) != 0 {
        return Err(format!("{name} section has a bad crc or length"));
    }
    Ok(&whole[8..whole.len() - 4])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ts::{AUDIO_PID, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, VIDEO_PID};

    #[test]
    fn pat_matches_the_well_known_bytes() {
        // The PAT ffmpeg writes for program 1 / PMT 0x1000 has the same body and CRC.
        let pat = pat_section();
        assert_eq!(
            &pat[..],
            &[0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2]
        );
        assert_eq!(parse_pat(&pat), Ok(PMT_PID));
    }

    #[test]
    fn pmt_round_trips() {
        let streams = [
            PmtStream {
                stream_type: STREAM_TYPE_H264,
                pid: VIDEO_PID,
            },
            PmtStream {
                stream_type: STREAM_TYPE_AAC_ADTS,
                pid: AUDIO_PID,
            },
        ];
        let pmt = pmt_section(3, VIDEO_PID, &streams);
        assert_eq!(crc32_mpeg2(&pmt), 0);
        let parsed = parse_pmt(&pmt).unwrap();
        assert_eq!(
            parsed,
            ParsedPmt {
                version: 3,
                pcr_pid: VIDEO_PID,
                streams: streams.to_vec()
            }
        );
        let mut corrupt = pmt.to_vec();
        corrupt[9] ^= 1;
        assert!(parse_pmt(&corrupt).is_err());
    }
}
