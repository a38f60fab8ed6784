use proptest::prelude::*;

use super::*;

/// The sequence header OBS 29.0.2 sent (x264, High 3.1, 1280x720 @30): no High-profile
/// extension bytes after the PPS.
pub(crate) const OBS_AVC_RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1c, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01,
    0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb, 0x01, 0x00,
    0x04, 0x68, 0xef, 0xbc, 0xb0,
];

#[test]
fn parses_the_obs_record_without_high_profile_extension() {
    let config = AvcDecoderConfig::parse(OBS_AVC_RECORD).unwrap();
    assert_eq!(config.profile_idc, 100);
    assert_eq!(config.level_idc, 31);
    assert_eq!(config.nalu_length_size, 4);
    assert_eq!(config.sps.len(), 1);
    assert_eq!(config.sps[0].len(), 28);
    assert_eq!(config.pps.len(), 1);
    assert_eq!(&config.pps[0][..], &[0x68, 0xef, 0xbc, 0xb0]);
    assert_eq!(config.codec_string(), "avc1.64001F");
}

#[test]
fn parses_a_record_with_high_profile_extension() {
    let mut record = OBS_AVC_RECORD.to_vec();
    record.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0x00]);
    let config = AvcDecoderConfig::parse(&record).unwrap();
    assert_eq!(config.pps.len(), 1);
}

#[test]
fn parses_the_obs_sps() {
    let config = AvcDecoderConfig::parse(OBS_AVC_RECORD).unwrap();
    let sps = config.sps_info().unwrap();
    assert_eq!((sps.width, sps.height), (1280, 720));
    assert_eq!(sps.profile_name(), "High");
    assert_eq!(sps.level_name(), "3.1");
    assert_eq!(sps.chroma_format_idc, 1);
    assert_eq!(sps.bit_depth_luma, 8);
    assert_eq!(sps.frame_rate, Some(30.0));
}

#[test]
fn sps_with_cropping_gives_1080_lines() {
    // x264 baseline 1920x1080: 120x68 macroblocks, frame_crop_bottom_offset 4 (8 lines).
    let sps = [
        0x67, 0x42, 0xc0, 0x28, 0xda, 0x01, 0xe0, 0x08, 0x9f, 0x96, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
        0x03, 0x03, 0xc8, 0xf1, 0x83, 0x2a,
    ];
    let info = SpsInfo::parse(&sps).unwrap();
    assert_eq!((info.width, info.height), (1920, 1080));
    assert_eq!(info.profile_name(), "Constrained Baseline");
    assert_eq!(info.level_name(), "4.0");
}

#[test]
fn short_records_name_the_object() {
    let err = AvcDecoderConfig::parse(&[1, 0x64, 0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "avc decoder configuration is 3 bytes, expected at least 7"
    );
    let err = AvcDecoderConfig::parse(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0x00, 0x1c, 0x67]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "avc decoder configuration sps #0 declares 28 bytes but only 1 remain"
    );
    assert_eq!(
        SpsInfo::parse(&[0x68, 0]).unwrap_err().to_string(),
        "avc sequence parameter set has nal unit type 8, expected 7"
    );
    assert!(matches!(
        SpsInfo::parse(&[0x67, 0x64]),
        Err(AvcError::SpsMalformed { .. })
    ));
}

#[test]
fn avcc_to_annexb_converts_and_validates() {
    let frame = annexb_nals_to_avcc([&[0x65u8, 1, 2][..], &[0x06, 9][..]]);
    let mut out = BytesMut::new();
    avcc_to_annexb(&frame, 4, &mut out).unwrap();
    assert_eq!(&out[..], &[0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x06, 9]);
    let nals: Vec<&[u8]> = annexb_nal_units(&out).collect();
    assert_eq!(nals, vec![&[0x65u8, 1, 2][..], &[0x06, 9][..]]);

    let mut out = BytesMut::new();
    let err = avcc_to_annexb(&frame[..frame.len() - 1], 4, &mut out).unwrap_err();
    assert_eq!(
        err,
        AvcError::NaluTruncated {
            index: 1,
            declared: 2,
            left: 1
        }
    );
    assert!(out.is_empty());
    assert_eq!(nal_units(&frame, 0).next(), Some(Err(AvcError::InvalidLengthSize(0))));
}

#[test]
fn annexb_split_handles_three_byte_start_codes() {
    let stream = [0xaa, 0, 0, 1, 9, 0xf0, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x68];
    let nals: Vec<&[u8]> = annexb_nal_units(&stream).collect();
    assert_eq!(nals, vec![&[9u8, 0xf0][..], &[0x67][..], &[0x68][..]]);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = AvcDecoderConfig::parse(&data);
        let _ = SpsInfo::parse(&data);
        let mut sps = data.clone();
        sps.insert(0, 0x67);
        let _ = SpsInfo::parse(&sps);
        for size in 0..6 {
            let _ = nal_units(&data, size).count();
            let _ = avcc_to_annexb(&data, size, &mut BytesMut::new());
        }
        let _ = annexb_nal_units(&data).count();
    }

    #[test]
    fn sps_fields_fuzzed_from_real_prefix(tail in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut sps = OBS_AVC_RECORD[8..12].to_vec();
        sps.extend_from_slice(&tail);
        let _ = SpsInfo::parse(&sps);
    }
}
