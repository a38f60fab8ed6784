//! PES packets (ISO/IEC 13818-1 §2.4.3.6): the header with PTS and DTS (§2.4.3.7), and
//! reading a header back for verifiers.

/// Longest PES header written here: 9 fixed bytes, PTS and DTS.
pub const MAX_HEADER_LEN: usize = 19;

/// A PES header. `payload_len` is the length of the elementary-stream data that follows;
/// `PES_packet_length` is written as 0 ("unbounded", allowed for video only) when the
/// packet would not fit in 16 bits.
pub fn pes_header(stream_id: u8, pts: u64, dts: Option<u64>, payload_len: usize) -> ([u8; MAX_HEADER_LEN], usize) {
    let dts = dts.filter(|&dts| dts != pts);
    let optional_len = if dts.is_some() { 10 } else { 5 };
    let header_len = 9 + optional_len;
    let packet_len = header_len - 6 + payload_len;
    let packet_len = u16::try_from(packet_len).unwrap_or(0);
    let mut out = [0u8; MAX_HEADER_LEN];
    out[..4].copy_from_slice(&[0, 0, 1, stream_id]);
    out[4..6].copy_from_slice(&packet_len.to_be_bytes());
    out[6] = 0x84; // '10' marker, data_alignment_indicator
    out[7] = if dts.is_some() { 0xc0 } else { 0x80 };
    out[8] = optional_len as u8;
    match dts {
        Some(dts) => {
            out[9..14].copy_from_slice(&encode_timestamp(0x3, pts));
            out[14..19].copy_from_slice(&encode_timestamp(0x1, dts));
        }
        None => out[9..14].copy_from_slice(&encode_timestamp(0x2, pts)),
    }
    (out, header_len)
}

/// A 33-bit timestamp in the 5-byte PES form, with its 4-bit prefix and marker bits.
pub fn encode_timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & super::clock::TIMESTAMP_MASK;
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8) << 1) | 1,
    ]
}

/// Reads a 5-byte PES timestamp; `None` if the marker bits are wrong.
pub fn decode_timestamp(b: &[u8]) -> Option<u64> {
    let b: &[u8; 5] = b.get(..5)?.try_into().ok()?;
    if b[0] & 1 == 0 || b[2] & 1 == 0 || b[4] & 1 == 0 {
        return None;
    }
    Some(
        (u64::from((b[0] >> 1) & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1),
    )
}

/// A PES header read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedPesHeader {
    pub stream_id: u8,
    /// `PES_packet_length` (0 = unbounded).
    pub packet_len: u16,
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    /// Offset of the elementary-stream data.
    pub payload_offset: usize,
}

/// Parses the PES header at the start of `data`.
pub fn parse_pes_header(data: &[u8]) -> Result<ParsedPesHeader, String> {
    if data.len() < 9 {
        return Err(format!("pes header is {} bytes, expected at least 9", data.len()));
    }
    if data[..3] != [0, 0, 1] {
        return Err(format!("pes packet starts with {:02x?}, expected 00 00 01", &data[..3]));
    }
    let flags = data[7] >> 6;
    let header_data_len = usize::from(data[8]);
    let payload_offset = 9 + header_data_len;
    if data.len() < payload_offset {
        return Err(format!(
            "pes header declares {header_data_len} header bytes, only {} present",
            data.len() - 9
        ));
    }
    let (pts, dts) = match flags {
        0b10 => (
            Some(decode_timestamp(&data[9..]).ok_or("pes pts has bad marker bits")?),
            None,
        ),
        0b11 => (
            Some(decode_timestamp(&data[9..]).ok_or("pes pts has bad marker bits")?),
            Some(decode_timestamp(&data[14..]).ok_or("pes dts has bad marker bits")?),
        ),
        0b00 => (None, None),
        _ => return Err("pes PTS_DTS_flags is the forbidden value 01".to_owned()),
    };
    Ok(ParsedPesHeader {
        stream_id: data[3],
        packet_len: u16::from_be_bytes([data[4], data[5]]),
        pts,
        dts,
        payload_offset,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn pts_only_when_dts_equals_pts() {
        let (header, len) = pes_header(0xc0, 900, Some(900), 100);
        assert_eq!(len, 14);
        let parsed = parse_pes_header(&header[..len]).unwrap();
        assert_eq!((parsed.pts, parsed.dts, parsed.packet_len), (Some(900), None, 108));
    }

    #[test]
    fn long_video_pes_is_unbounded() {
        let (header, len) = pes_header(0xe0, 0, Some(1), 70_000);
        assert_eq!(parse_pes_header(&header[..len]).unwrap().packet_len, 0);
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(pts in 0u64..(1 << 33), delta in 1u64..100_000) {
            let dts = pts.saturating_sub(delta);
            let (header, len) = pes_header(0xe0, pts, Some(dts), 1000);
            let parsed = parse_pes_header(&header[..len]).unwrap();
            prop_assert_eq!(parsed.pts, Some(pts));
            prop_assert_eq!(parsed.dts, if dts == pts { None } else { Some(dts) });
            prop_assert_eq!(parsed.payload_offset, len);
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_pes_header(&data);
        }
    }
}
