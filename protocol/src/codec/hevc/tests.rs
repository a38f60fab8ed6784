use proptest::prelude::*;

use super::*;

/// The `hvcC` of a 2-second 320x240 clip made by ffmpeg 5.1 with libx265 3.5 (`-preset
/// ultrafast`, 4:2:0, 8 bit), without its fourth array (an SEI with x265's settings text).
const X265_320X240_HVCC: &str = "0101600000009000000000003cf000fcfdf8f800000f03200001001840010c01ffff\
01600000030090000003000003003c959409210001002a42010101600000030090000003000003003ca00a080f1659\
5952930bc05a02000003000200000300321022000100064401c073c189";

/// The same for a 352x288 clip in 4:2:2 10 bit (`-pix_fmt yuv422p10le`: Main 4:2:2 10, a
/// range-extensions profile).
const X265_352X288_422_10_HVCC: &str = "0104080000009d08000000003cf000fcfefafa00000f03200001001740010c01ffff\
0408000003009d0800000300003c959409210001002a4201010408000003009d0800000300003cb00b080484d96565\
4a4c2f016808000003000800000300c84022000100064401c073c189";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn x265_main_record_and_sps() {
    let config = HevcDecoderConfig::parse(&hex(X265_320X240_HVCC)).unwrap();
    assert_eq!(config.version, 1);
    assert_eq!(config.general_profile_idc, 1);
    assert_eq!(config.general_level_idc, 60);
    assert_eq!(config.nalu_length_size, 4);
    assert_eq!((config.chroma_format_idc, config.bit_depth_luma), (1, 8));
    let types: Vec<u8> = config.arrays.iter().map(|a| a.nal_type).collect();
    assert_eq!(types, [nal_type::VPS, nal_type::SPS, nal_type::PPS]);
    let sps = config.units_of_type(nal_type::SPS).next().unwrap();
    assert_eq!(nal_unit_type(sps), nal_type::SPS);
    let info = config.sps_info().unwrap();
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(
        (info.chroma_format_idc, info.bit_depth_luma, info.bit_depth_chroma),
        (1, 8, 8)
    );
    assert_eq!((info.general_profile_idc, info.general_level_idc), (1, 60));
}

#[test]
fn x265_422_10bit_record_and_sps() {
    let config = HevcDecoderConfig::parse(&hex(X265_352X288_422_10_HVCC)).unwrap();
    assert_eq!(config.general_profile_idc, 4);
    assert_eq!((config.chroma_format_idc, config.bit_depth_luma), (2, 10));
    let info = config.sps_info().unwrap();
    assert_eq!((info.width, info.height), (352, 288));
    assert_eq!(
        (info.chroma_format_idc, info.bit_depth_luma, info.bit_depth_chroma),
        (2, 10, 10)
    );
}

#[test]
fn truncated_records_are_errors() {
    let record = hex(X265_320X240_HVCC);
    assert_eq!(
        HevcDecoderConfig::parse(&record[..10]),
        Err(HevcError::ConfigTooShort { len: 10, need: 23 })
    );
    assert!(matches!(
        HevcDecoderConfig::parse(&record[..40]),
        Err(HevcError::ConfigTruncated { array: 0, index: 0, .. })
    ));
    let mut no_arrays = record[..23].to_vec();
    no_arrays[22] = 0;
    assert_eq!(
        HevcDecoderConfig::parse(&no_arrays).unwrap().sps_info(),
        Err(HevcError::NoSps)
    );
    let config = HevcDecoderConfig::parse(&record).unwrap();
    let sps = config.units_of_type(nal_type::SPS).next().unwrap();
    assert!(matches!(
        HevcSpsInfo::parse(&sps[..8]),
        Err(HevcError::SpsMalformed { .. })
    ));
    let vps = config.units_of_type(nal_type::VPS).next().unwrap();
    assert_eq!(HevcSpsInfo::parse(vps), Err(HevcError::NotSps(32)));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(config) = HevcDecoderConfig::parse(&data) {
            let _ = config.sps_info();
        }
        let _ = HevcSpsInfo::parse(&data);
    }

    #[test]
    fn corrupted_real_sps_never_panics(index in 0usize..64, value in any::<u8>()) {
        let config = HevcDecoderConfig::parse(&hex(X265_320X240_HVCC)).unwrap();
        let mut sps = config.units_of_type(nal_type::SPS).next().unwrap().to_vec();
        let i = index % sps.len();
        sps[i] = value;
        let _ = HevcSpsInfo::parse(&sps);
    }
}

#[test]
fn codecs_strings_follow_annex_e() {
    let main = HevcDecoderConfig::parse(&hex(X265_320X240_HVCC)).unwrap();
    assert_eq!(main.codecs_string(), "hvc1.1.6.L60.90");
    let rext = HevcDecoderConfig::parse(&hex(X265_352X288_422_10_HVCC)).unwrap();
    assert_eq!(rext.codecs_string(), "hvc1.4.10.L60.9D.8");
}
