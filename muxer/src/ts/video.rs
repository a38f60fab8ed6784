//! One H.264 access unit in the form MPEG-TS carries (ITU-T H.222.0 §2.14): Annex-B, an
//! access unit delimiter first (§2.14.1 requires it), and the SPS/PPS of the current
//! sequence header before every IDR so that each segment can be decoded on its own
//! (Apple HLS authoring spec 7.4).

use estuary_protocol::codec::avc::{nal_type, nal_unit_type, nal_units, START_CODE};
use estuary_protocol::codec::{AvcDecoderConfig, AvcError};

/// Start code and access unit delimiter with `primary_pic_type` 7 (any slice type).
const ACCESS_UNIT_DELIMITER: [u8; 6] = [0, 0, 0, 1, nal_type::ACCESS_UNIT_DELIMITER, 0xf0];

/// An access unit as a list of byte slices that, concatenated, form its Annex-B stream.
/// Borrowing lets the transport packets be written straight from the publisher's bytes.
#[derive(Debug)]
pub struct AvcAccessUnit<'a> {
    chunks: Vec<&'a [u8]>,
    is_idr: bool,
}

impl<'a> AvcAccessUnit<'a> {
    /// Builds the access unit of an AVCC `frame`. Access unit delimiters already in the
    /// frame are dropped (one is written first), and so is filler data (NAL 12, which x264
    /// in CBR mode sends and a segment does not need). SPS and PPS from `config` are
    /// inserted before the first slice of an IDR access unit (or of one flagged
    /// `keyframe`) unless the frame carries its own, as OBS frames do.
    pub fn from_avcc(frame: &'a [u8], config: &'a AvcDecoderConfig, keyframe: bool) -> Result<Self, AvcError> {
        let length_size = config.nalu_length_size;
        let mut has_sps = false;
        let mut has_pps = false;
        let mut is_idr = false;
        let mut count = 0;
        for nal in nal_units(frame, length_size) {
            match nal_unit_type(nal?) {
                nal_type::SPS => has_sps = true,
                nal_type::PPS => has_pps = true,
                nal_type::IDR_SLICE => is_idr = true,
                _ => {}
            }
            count += 1;
        }
        let insert_parameter_sets = (is_idr || keyframe) && !(has_sps && has_pps);
        let mut chunks = Vec::with_capacity(1 + 2 * (count + config.sps.len() + config.pps.len()));
        chunks.push(&ACCESS_UNIT_DELIMITER[..]);
        let mut inserted = !insert_parameter_sets;
        for nal in nal_units(frame, length_size).flatten() {
            let kind = nal_unit_type(nal);
            if kind == nal_type::ACCESS_UNIT_DELIMITER || kind == nal_type::FILLER_DATA || nal.is_empty() {
                continue;
            }
            if !inserted && is_slice_or_sei(kind) {
                push_parameter_sets(&mut chunks, config);
                inserted = true;
            }
            chunks.push(&START_CODE);
            chunks.push(nal);
        }
        if !inserted {
            push_parameter_sets(&mut chunks, config);
        }
        Ok(AvcAccessUnit {
            chunks,
            is_idr: is_idr || keyframe,
        })
    }

    /// The Annex-B bytes as slices, in order.
    pub fn chunks(&self) -> &[&'a [u8]] {
        &self.chunks
    }

    /// Whether a decoder can start here (an IDR slice, or the publisher said keyframe).
    pub fn is_random_access(&self) -> bool {
        self.is_idr
    }

    /// Length of the Annex-B bytes.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// Never true: an access unit has at least its delimiter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parameter sets go before SEI too: H.264 §7.4.1.2.3 orders SPS/PPS before any SEI.
fn is_slice_or_sei(kind: u8) -> bool {
    matches!(kind, nal_type::NON_IDR_SLICE..=nal_type::IDR_SLICE | nal_type::SEI)
}

fn push_parameter_sets<'a>(chunks: &mut Vec<&'a [u8]>, config: &'a AvcDecoderConfig) {
    for set in config.sps.iter().chain(&config.pps) {
        chunks.push(&START_CODE);
        chunks.push(set);
    }
}

#[cfg(test)]
mod tests {
    use estuary_protocol::codec::avc::{annexb_nal_units, annexb_nals_to_avcc};

    use super::*;

    fn config() -> AvcDecoderConfig {
        AvcDecoderConfig {
            version: 1,
            profile_idc: 100,
            profile_compatibility: 0,
            level_idc: 31,
            nalu_length_size: 4,
            sps: vec![bytes::Bytes::from_static(&[0x67, 1])],
            pps: vec![bytes::Bytes::from_static(&[0x68, 2])],
        }
    }

    fn types(au: &AvcAccessUnit<'_>) -> Vec<u8> {
        let bytes: Vec<u8> = au.chunks().concat();
        annexb_nal_units(&bytes).map(nal_unit_type).collect()
    }

    #[test]
    fn idr_gets_delimiter_and_parameter_sets_before_sei() {
        let config = config();
        let frame = annexb_nals_to_avcc([&[0x09u8, 0xf0][..], &[0x06, 5][..], &[0x65, 7][..], &[0x0c, 0xff][..]]);
        let au = AvcAccessUnit::from_avcc(&frame, &config, true).unwrap();
        assert_eq!(types(&au), vec![9, 7, 8, 6, 5]);
        assert!(au.is_random_access());
    }

    #[test]
    fn frames_that_carry_parameter_sets_are_left_alone() {
        let config = config();
        let frame = annexb_nals_to_avcc([&[0x67u8, 9][..], &[0x68, 9][..], &[0x65, 7][..]]);
        let au = AvcAccessUnit::from_avcc(&frame, &config, true).unwrap();
        assert_eq!(types(&au), vec![9, 7, 8, 5]);
        let bytes: Vec<u8> = au.chunks().concat();
        assert_eq!(annexb_nal_units(&bytes).nth(1), Some(&[0x67u8, 9][..]));
    }

    #[test]
    fn non_idr_frames_get_only_the_delimiter() {
        let config = config();
        let frame = annexb_nals_to_avcc([&[0x41u8, 7][..]]);
        let au = AvcAccessUnit::from_avcc(&frame, &config, false).unwrap();
        assert_eq!(types(&au), vec![9, 1]);
        assert!(!au.is_random_access());
        assert!(AvcAccessUnit::from_avcc(&frame[..5], &config, false).is_err());
    }
}
