//! Frame tagging: the publisher puts an H.264 SEI NAL unit (user_data_unregistered) with a
//! fixed UUID and a frame id into every coded video frame; viewers find it again in what the
//! server delivers (RTMP and FLV: AVCC in the tag body; HLS: Annex-B in the TS PES), whatever
//! the server did to timestamps.
//!
//! The frame id is written 7 bits per byte with the top bit set, so the SEI payload never
//! holds two zero bytes in a row and needs no emulation prevention: it survives conversion
//! to Annex-B byte streams unchanged.

use bytes::{BufMut, Bytes, BytesMut};

/// The `uuid_iso_iec_11578` of our SEI payload.
pub const UUID: [u8; 16] = *b"estuary-bench-v1";

/// SEI payload type `user_data_unregistered`.
const SEI_USER_DATA_UNREGISTERED: u8 = 5;
/// UUID + 8-byte frame id.
const SEI_PAYLOAD_LEN: u8 = 24;
/// The whole SEI NAL unit: NAL header, payload type, size, payload, rbsp trailing bits.
pub const SEI_NAL_LEN: usize = 1 + 1 + 1 + SEI_PAYLOAD_LEN as usize + 1;
/// Length of the FLV legacy AVC video tag header (frame type/codec, packet type, cts).
const AVC_TAG_HEADER: usize = 5;

/// Frame ids carry the publisher index above this many bits of per-publisher sequence.
pub const SEQ_BITS: u32 = 40;

/// A frame id for publisher `publisher`'s `seq`-th frame.
pub fn frame_id(publisher: usize, seq: u64) -> u64 {
    ((publisher as u64) << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))
}

/// `(publisher, seq)` of a frame id.
pub fn split_id(id: u64) -> (usize, u64) {
    ((id >> SEQ_BITS) as usize, id & ((1 << SEQ_BITS) - 1))
}

fn encode_id(id: u64) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = 0x80 | ((id >> (7 * (7 - i))) & 0x7f) as u8;
    }
    out
}

fn decode_id(b: &[u8]) -> Option<u64> {
    if b.len() < 8 || b[..8].iter().any(|x| x & 0x80 == 0) {
        return None;
    }
    Some(b[..8].iter().fold(0u64, |acc, x| (acc << 7) | u64::from(x & 0x7f)))
}

/// The SEI NAL unit (no length prefix or start code) carrying `id`.
pub fn sei_nal(id: u64) -> [u8; SEI_NAL_LEN] {
    let mut nal = [0u8; SEI_NAL_LEN];
    nal[0] = 0x06; // nal_unit_type 6 (SEI), nal_ref_idc 0
    nal[1] = SEI_USER_DATA_UNREGISTERED;
    nal[2] = SEI_PAYLOAD_LEN;
    nal[3..19].copy_from_slice(&UUID);
    nal[19..27].copy_from_slice(&encode_id(id));
    nal[27] = 0x80;
    nal
}

/// `lengthSizeMinusOne + 1` from an AVC sequence header tag body (FLV header + avcC).
pub fn nal_length_size(seq_header_tag: &[u8]) -> Option<usize> {
    // avcC: version, profile, compat, level, 0b111111xx lengthSizeMinusOne.
    seq_header_tag
        .get(AVC_TAG_HEADER + 4)
        .map(|b| usize::from(b & 0x03) + 1)
}

/// Inserts the SEI carrying `id` into an FLV AVC coded-frame tag body (AVCC, NAL units
/// prefixed with `nal_len_size`-byte lengths) as its first NAL unit after any access unit
/// delimiter: so before the slices, and within the first bytes of the frame where viewers
/// look (an encoder's own SEI, such as x264's ~700-byte version string, can be long).
pub fn insert_sei(tag: &[u8], nal_len_size: usize, id: u64) -> Bytes {
    let at = insert_offset(tag, nal_len_size).min(tag.len());
    let mut out = BytesMut::with_capacity(tag.len() + nal_len_size + SEI_NAL_LEN);
    out.put_slice(&tag[..at]);
    out.put_uint(SEI_NAL_LEN as u64, nal_len_size);
    out.put_slice(&sei_nal(id));
    out.put_slice(&tag[at..]);
    out.freeze()
}

/// Offset of the length prefix of the first NAL unit that is not an access unit delimiter.
fn insert_offset(tag: &[u8], nal_len_size: usize) -> usize {
    let mut pos = AVC_TAG_HEADER;
    while pos + nal_len_size < tag.len() {
        let len = tag[pos..pos + nal_len_size]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        if tag[pos + nal_len_size] & 0x1f != 9 {
            return pos;
        }
        pos += nal_len_size + len;
    }
    AVC_TAG_HEADER
}

/// Finds our SEI in `data` (any framing) and returns the frame id it carries.
pub fn find_id(data: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(data, &UUID)?;
    decode_id(&data[at + UUID.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_encoding_round_trips_without_zero_pairs() {
        for id in [0, 1, 127, 128, frame_id(3, 12345), (1 << 56) - 1] {
            let e = encode_id(id);
            assert!(e.iter().all(|b| *b != 0));
            assert_eq!(decode_id(&e), Some(id));
        }
        assert_eq!(split_id(frame_id(7, 99)), (7, 99));
    }

    #[test]
    fn insert_then_find_in_avcc() {
        // FLV header, then an AUD (type 9), a long encoder SEI (type 6) and an IDR slice
        // (type 5), 4-byte lengths.
        let mut tag = vec![0x17, 0x01, 0, 0, 0];
        tag.extend_from_slice(&[0, 0, 0, 2, 0x09, 0xf0]);
        tag.extend_from_slice(&[0, 0, 3, 0xe9, 0x06, 0x05]);
        tag.extend_from_slice(&[0x55; 1000]);
        tag.extend_from_slice(&[0, 0, 0, 4, 0x65, 0xaa, 0xbb, 0xcc]);
        let out = insert_sei(&tag, 4, 4242);
        assert_eq!(out.len(), tag.len() + 4 + SEI_NAL_LEN);
        // Inserted after the delimiter, before the encoder's SEI and the slice.
        assert_eq!(&out[..11], &tag[..11]);
        assert_eq!(&out[11..15], &(SEI_NAL_LEN as u32).to_be_bytes());
        assert_eq!(out[15], 0x06);
        assert_eq!(&out[15 + SEI_NAL_LEN..], &tag[11..]);
        assert_eq!(find_id(&out[..64]), Some(4242));
        assert_eq!(find_id(&tag), None);
    }

    #[test]
    fn find_in_annex_b() {
        let mut es = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
        es.extend_from_slice(&sei_nal(frame_id(1, 77)));
        es.extend_from_slice(&[0, 0, 1, 0x65, 1, 2, 3]);
        assert_eq!(find_id(&es).map(split_id), Some((1, 77)));
    }

    #[test]
    fn nal_length_size_from_avcc() {
        assert_eq!(nal_length_size(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff]), Some(4));
        assert_eq!(nal_length_size(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xfd]), Some(2));
    }
}
