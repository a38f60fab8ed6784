//! VP9 as carried by Enhanced RTMP (FourCC `vp09`) and MP4: the
//! `VPCodecConfigurationRecord` of the `vpcC` box (VP Codec ISO Media File Format Binding
//! v1.0 §2.3), which Enhanced RTMP sends as the sequence start, box version and flags
//! included, and the picture size of a key frame's uncompressed header (VP9 bitstream
//! §6.2), which an MP4 `vp09` sample entry needs and the record does not carry.

use super::bits::BitReader;

/// Why a VP9 configuration could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Vp9Error {
    #[error("vp9 codec configuration is {len} bytes, expected at least {need}")]
    ConfigTooShort { len: usize, need: usize },
    #[error("vp9 codec configuration has version {0}, expected 1")]
    BadVersion(u8),
    #[error("vp9 codec configuration has {field} {value}, which VP9 does not define")]
    BadField { field: &'static str, value: u8 },
}

/// A parsed `vpcC` (version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp9Config {
    pub profile: u8,
    pub level: u8,
    pub bit_depth: u8,
    /// 0 4:2:0 vertical, 1 4:2:0 colocated, 2 4:2:2, 3 4:4:4.
    pub chroma_subsampling: u8,
    pub video_full_range: bool,
    pub colour_primaries: u8,
    pub transfer_characteristics: u8,
    pub matrix_coefficients: u8,
    /// `codecInitializationDataSize` (0 for VP9).
    pub codec_init_data_len: usize,
}

/// Box version and flags, then the 8 bytes of the record before its initialisation data.
const FIXED: usize = 4 + 8;

impl Vp9Config {
    /// Parses a `vpcC` body: version (1), flags, then the record.
    pub fn parse(record: &[u8]) -> Result<Self, Vp9Error> {
        if record.len() < FIXED {
            return Err(Vp9Error::ConfigTooShort {
                len: record.len(),
                need: FIXED,
            });
        }
        if record[0] != 1 {
            return Err(Vp9Error::BadVersion(record[0]));
        }
        let r = &record[4..];
        let config = Vp9Config {
            profile: r[0],
            level: r[1],
            bit_depth: r[2] >> 4,
            chroma_subsampling: (r[2] >> 1) & 0x07,
            video_full_range: r[2] & 1 != 0,
            colour_primaries: r[3],
            transfer_characteristics: r[4],
            matrix_coefficients: r[5],
            codec_init_data_len: usize::from(u16::from_be_bytes([r[6], r[7]])),
        };
        let bad = |field, value| Err(Vp9Error::BadField { field, value });
        if config.profile > 3 {
            return bad("profile", config.profile);
        }
        if !matches!(config.bit_depth, 8 | 10 | 12) {
            return bad("bitDepth", config.bit_depth);
        }
        if config.chroma_subsampling > 3 {
            return bad("chromaSubsampling", config.chroma_subsampling);
        }
        if record.len() < FIXED + config.codec_init_data_len {
            return Err(Vp9Error::ConfigTooShort {
                len: record.len(),
                need: FIXED + config.codec_init_data_len,
            });
        }
        Ok(config)
    }

    /// The RFC 6381 `CODECS` value (VP9 ISOBMFF binding §"Codecs Parameter String"), full
    /// form: `vp09.PP.LL.DD.CC.cp.tc.mc.FF`, e.g. `vp09.00.10.08.01.02.02.02.00`.
    pub fn codecs_string(&self) -> String {
        format!(
            "vp09.{:02}.{:02}.{:02}.{:02}.{:02}.{:02}.{:02}.{:02}",
            self.profile,
            self.level,
            self.bit_depth,
            self.chroma_subsampling,
            self.colour_primaries,
            self.transfer_characteristics,
            self.matrix_coefficients,
            u8::from(self.video_full_range)
        )
    }

    /// The `vpcC` box body (version 1, flags 0, the record with no initialisation data), for
    /// an MP4 `vp09` sample entry.
    pub fn vpcc_body(&self) -> [u8; FIXED] {
        [
            1,
            0,
            0,
            0,
            self.profile,
            self.level,
            (self.bit_depth << 4) | (self.chroma_subsampling << 1) | u8::from(self.video_full_range),
            self.colour_primaries,
            self.transfer_characteristics,
            self.matrix_coefficients,
            0,
            0,
        ]
    }
}

/// The frame size of a VP9 key frame (VP9 bitstream §6.2 `uncompressed_header`, §6.2.2
/// `color_config`, §6.2.3 `frame_size`): `None` for an inter frame, a shown existing frame or
/// bytes that are not a key frame header. In a superframe the first frame is at the start.
pub fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None; // frame_marker
    }
    let low = r.bits(1)?;
    let high = r.bits(1)?;
    let profile = (high << 1) | low;
    if profile == 3 {
        r.skip(1)?; // reserved_zero
    }
    if r.bit()? {
        return None; // show_existing_frame
    }
    if r.bit()? {
        return None; // frame_type: non-key
    }
    r.skip(2)?; // show_frame, error_resilient_mode
    if r.bits(24)? != 0x49_8342 {
        return None; // frame_sync_code
    }
    if profile >= 2 {
        r.skip(1)?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        // color_range, then subsampling_x, subsampling_y and reserved_zero in profiles 1 and 3.
        r.skip(if profile == 1 || profile == 3 { 4 } else { 1 })?;
    } else if profile == 1 || profile == 3 {
        r.skip(1)?; // reserved_zero (sRGB is 4:4:4)
    }
    let width = r.bits(16)? + 1;
    let height = r.bits(16)? + 1;
    Some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence start ffmpeg 9 (libvpx-vp9, 4:2:0 8 bit) sends, after its FourCC.
    const FFMPEG_VPCC: [u8; 12] = [1, 0, 0, 0, 0, 0x0a, 0x82, 2, 2, 2, 0, 0];

    /// Found by the `codec_config` fuzz target: a record that claims codec initialization
    /// data (VP9 has none; its size must be 0) is read, and the vpcC we write leaves it out.
    #[test]
    fn a_vpcc_claiming_codec_init_data_is_written_without_it() {
        let mut record = FFMPEG_VPCC.to_vec();
        record[10..12].copy_from_slice(&31u16.to_be_bytes());
        record.extend_from_slice(&[0u8; 31]);
        let config = Vp9Config::parse(&record).expect("read");
        assert_eq!(config.codec_init_data_len, 31);
        let written = config.vpcc_body();
        assert_eq!(&written[10..12], &[0, 0], "no codec initialization data written");
        let again = Vp9Config::parse(&written).expect("reads back");
        assert_eq!(
            again,
            Vp9Config {
                codec_init_data_len: 0,
                ..config
            }
        );
    }

    #[test]
    fn keyframe_size_of_ffmpeg_libvpx_frames() {
        // The first bytes of ffmpeg 9's libvpx-vp9 key frame at 160x90, profile 0.
        let key = [0x82, 0x49, 0x83, 0x42, 0x00, 0x09, 0xf0, 0x05, 0x96, 0x06, 0x38, 0x24];
        assert_eq!(keyframe_size(&key), Some((160, 90)));
        // Its next inter frame, and bytes cut short.
        assert_eq!(keyframe_size(&[0x86, 0x00, 0x40, 0x92, 0xf1, 0x21]), None);
        assert_eq!(keyframe_size(&key[..6]), None);
        assert_eq!(keyframe_size(&[]), None);
    }

    #[test]
    fn parses_ffmpeg_vpcc() {
        let c = Vp9Config::parse(&FFMPEG_VPCC).unwrap();
        assert_eq!((c.profile, c.level, c.bit_depth, c.chroma_subsampling), (0, 10, 8, 1));
        assert!(!c.video_full_range);
        assert_eq!(c.codecs_string(), "vp09.00.10.08.01.02.02.02.00");
        assert_eq!(c.vpcc_body(), FFMPEG_VPCC);
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(
            Vp9Config::parse(&FFMPEG_VPCC[..5]),
            Err(Vp9Error::ConfigTooShort { len: 5, need: 12 })
        );
        let mut v0 = FFMPEG_VPCC;
        v0[0] = 0;
        assert_eq!(Vp9Config::parse(&v0), Err(Vp9Error::BadVersion(0)));
        let mut depth = FFMPEG_VPCC;
        depth[6] = 0x92;
        assert_eq!(
            Vp9Config::parse(&depth),
            Err(Vp9Error::BadField {
                field: "bitDepth",
                value: 9
            })
        );
        let mut init = FFMPEG_VPCC;
        init[11] = 4;
        assert_eq!(
            Vp9Config::parse(&init),
            Err(Vp9Error::ConfigTooShort { len: 12, need: 16 })
        );
    }
}
