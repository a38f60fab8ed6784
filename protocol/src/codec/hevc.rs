//! H.265 as carried by Enhanced RTMP (FourCC `hvc1`) and MP4: the
//! `HEVCDecoderConfigurationRecord` of a sequence header (ISO/IEC 14496-15 §8.3.3.1), and
//! just enough of the sequence parameter set (ITU-T H.265 §7.3.2.2.1) to know the picture
//! size, chroma format and bit depth that an MP4 sample entry and the API show.
//!
//! Frames are length-prefixed NAL units like AVC's ([`super::avc::nal_units`] walks them); a
//! HEVC NAL header is two bytes and its type is `(byte0 >> 1) & 0x3f`.

use bytes::Bytes;

use super::bits::{nal_to_rbsp, BitReader};

/// NAL unit types (H.265 Table 7-1) that packagers care about.
pub mod nal_type {
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
}

/// Why H.265 data could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HevcError {
    #[error("hevc decoder configuration is {len} bytes, expected at least {need}")]
    ConfigTooShort { len: usize, need: usize },
    #[error(
        "hevc decoder configuration array #{array} nal unit #{index} declares {declared} bytes but only {left} remain"
    )]
    ConfigTruncated {
        array: usize,
        index: usize,
        declared: usize,
        left: usize,
    },
    #[error("hevc decoder configuration has no sequence parameter set")]
    NoSps,
    #[error("hevc sequence parameter set has nal unit type {0}, expected 33")]
    NotSps(u8),
    #[error("hevc sequence parameter set is truncated or malformed at {field}")]
    SpsMalformed { field: &'static str },
}

/// One array of parameter sets in the record, all of one NAL unit type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcNalArray {
    pub completeness: bool,
    pub nal_type: u8,
    /// The NAL units, header included.
    pub units: Vec<Bytes>,
}

/// A parsed `HEVCDecoderConfigurationRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcDecoderConfig {
    pub version: u8,
    pub general_profile_space: u8,
    pub general_tier_flag: bool,
    pub general_profile_idc: u8,
    pub general_profile_compatibility_flags: u32,
    /// The 48 bits of `general_constraint_indicator_flags`.
    pub general_constraint_indicator_flags: u64,
    pub general_level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
    /// Bytes in each NAL unit length prefix of the frames (1, 2 or 4).
    pub nalu_length_size: u8,
    pub arrays: Vec<HevcNalArray>,
}

/// Length of the record before its `numOfArrays` byte.
const HEADER: usize = 22;

impl HevcDecoderConfig {
    pub fn parse(record: &[u8]) -> Result<Self, HevcError> {
        if record.len() < HEADER + 1 {
            return Err(HevcError::ConfigTooShort {
                len: record.len(),
                need: HEADER + 1,
            });
        }
        let constraints = record[6..12].iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let mut config = HevcDecoderConfig {
            version: record[0],
            general_profile_space: record[1] >> 6,
            general_tier_flag: record[1] & 0x20 != 0,
            general_profile_idc: record[1] & 0x1f,
            general_profile_compatibility_flags: u32::from_be_bytes([record[2], record[3], record[4], record[5]]),
            general_constraint_indicator_flags: constraints,
            general_level_idc: record[12],
            chroma_format_idc: record[16] & 0x03,
            bit_depth_luma: (record[17] & 0x07) + 8,
            bit_depth_chroma: (record[18] & 0x07) + 8,
            nalu_length_size: (record[21] & 0x03) + 1,
            arrays: Vec::new(),
        };
        let array_count = usize::from(record[HEADER]);
        let mut pos = HEADER + 1;
        for array in 0..array_count {
            let head = record.get(pos..pos + 3).ok_or(HevcError::ConfigTooShort {
                len: record.len(),
                need: pos + 3,
            })?;
            let count = usize::from(u16::from_be_bytes([head[1], head[2]]));
            let mut nal_array = HevcNalArray {
                completeness: head[0] & 0x80 != 0,
                nal_type: head[0] & 0x3f,
                units: Vec::with_capacity(count.min(16)),
            };
            pos += 3;
            for index in 0..count {
                let len = record.get(pos..pos + 2).ok_or(HevcError::ConfigTooShort {
                    len: record.len(),
                    need: pos + 2,
                })?;
                let declared = usize::from(u16::from_be_bytes([len[0], len[1]]));
                pos += 2;
                let unit = record.get(pos..pos + declared).ok_or(HevcError::ConfigTruncated {
                    array,
                    index,
                    declared,
                    left: record.len() - pos,
                })?;
                nal_array.units.push(Bytes::copy_from_slice(unit));
                pos += declared;
            }
            config.arrays.push(nal_array);
        }
        Ok(config)
    }

    /// The parameter sets of one NAL unit type, in record order.
    pub fn units_of_type(&self, nal_type: u8) -> impl Iterator<Item = &Bytes> {
        self.arrays
            .iter()
            .filter(move |a| a.nal_type == nal_type)
            .flat_map(|a| a.units.iter())
    }

    /// The RFC 6381 `CODECS` value for an `hvc1` sample entry (ISO/IEC 14496-15 Annex E.3):
    /// `hvc1.[A-C]<profile>.<compatibility flags, bit-reversed, hex>.<L|H><level>` and the
    /// constraint bytes in hex up to the last non-zero one, e.g. `hvc1.1.6.L93.B0`.
    pub fn codecs_string(&self) -> String {
        let space = match self.general_profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let mut out = format!(
            "hvc1.{space}{}.{:X}.{}{}",
            self.general_profile_idc,
            self.general_profile_compatibility_flags.reverse_bits(),
            if self.general_tier_flag { 'H' } else { 'L' },
            self.general_level_idc
        );
        let constraints = self.general_constraint_indicator_flags.to_be_bytes();
        let bytes = &constraints[2..];
        let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |last| last + 1);
        for byte in &bytes[..used] {
            out.push_str(&format!(".{byte:X}"));
        }
        out
    }

    /// The first SPS, parsed.
    pub fn sps_info(&self) -> Result<HevcSpsInfo, HevcError> {
        HevcSpsInfo::parse(self.units_of_type(nal_type::SPS).next().ok_or(HevcError::NoSps)?)
    }
}

/// The NAL unit type of a HEVC NAL unit (0 for an empty one).
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |header| (header >> 1) & 0x3f)
}

/// What the MP4 sample entry and the API need from a sequence parameter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcSpsInfo {
    pub general_profile_idc: u8,
    pub general_level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    /// Picture width in pixels after the conformance window.
    pub width: u32,
    /// Picture height in pixels after the conformance window.
    pub height: u32,
}

impl HevcSpsInfo {
    /// Parses an SPS NAL unit (2-byte header included, emulation prevention not yet removed).
    pub fn parse(nal: &[u8]) -> Result<Self, HevcError> {
        let rbsp = nal_to_rbsp(nal);
        let mut r = BitReader::new(&rbsp);
        let header = field(r.bits(16), "nal header")?;
        let nal_type = ((header >> 9) & 0x3f) as u8;
        if nal_type != nal_type::SPS {
            return Err(HevcError::NotSps(nal_type));
        }
        field(r.bits(4), "sps_video_parameter_set_id")?;
        let max_sub_layers_minus1 = field(r.bits(3), "sps_max_sub_layers_minus1")?;
        field(r.bit(), "sps_temporal_id_nesting_flag")?;
        let (general_profile_idc, general_level_idc) = profile_tier_level(&mut r, max_sub_layers_minus1)?;
        field(r.ue(), "sps_seq_parameter_set_id")?;
        let chroma_format_idc = field(r.ue(), "chroma_format_idc")?;
        if chroma_format_idc > 3 {
            return Err(HevcError::SpsMalformed {
                field: "chroma_format_idc",
            });
        }
        let mut separate_colour_plane = false;
        if chroma_format_idc == 3 {
            separate_colour_plane = field(r.bit(), "separate_colour_plane_flag")?;
        }
        let full_width = u64::from(field(r.ue(), "pic_width_in_luma_samples")?);
        let full_height = u64::from(field(r.ue(), "pic_height_in_luma_samples")?);
        let mut window = [0u64; 4];
        if field(r.bit(), "conformance_window_flag")? {
            for offset in &mut window {
                *offset = u64::from(field(r.ue(), "conf_win_offset")?);
            }
        }
        let bit_depth_luma = field(r.ue(), "bit_depth_luma_minus8")?.saturating_add(8);
        let bit_depth_chroma = field(r.ue(), "bit_depth_chroma_minus8")?.saturating_add(8);
        let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
        let (sub_width, sub_height) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let width = full_width.checked_sub(sub_width * (window[0] + window[1]));
        let height = full_height.checked_sub(sub_height * (window[2] + window[3]));
        let (Some(width), Some(height)) = (width, height) else {
            return Err(HevcError::SpsMalformed {
                field: "conf_win_offset",
            });
        };
        let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
            return Err(HevcError::SpsMalformed {
                field: "pic_width_in_luma_samples",
            });
        };
        Ok(HevcSpsInfo {
            general_profile_idc,
            general_level_idc,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            width,
            height,
        })
    }
}

/// `profile_tier_level(1, maxNumSubLayersMinus1)` (H.265 §7.3.3); returns the general
/// profile and level.
fn profile_tier_level(r: &mut BitReader<'_>, max_sub_layers_minus1: u32) -> Result<(u8, u8), HevcError> {
    field(r.bits(3), "general_profile_space")?;
    let profile_idc = field(r.bits(5), "general_profile_idc")? as u8;
    field(r.skip(32 + 48), "general_profile_compatibility_flags")?;
    let level_idc = field(r.bits(8), "general_level_idc")? as u8;
    let mut present = Vec::with_capacity(8);
    for _ in 0..max_sub_layers_minus1 {
        let profile = field(r.bit(), "sub_layer_profile_present_flag")?;
        let level = field(r.bit(), "sub_layer_level_present_flag")?;
        present.push((profile, level));
    }
    if max_sub_layers_minus1 > 0 {
        field(r.skip(2 * (8 - max_sub_layers_minus1 as usize)), "reserved_zero_2bits")?;
    }
    for (profile, level) in present {
        if profile {
            field(r.skip(88), "sub_layer_profile")?;
        }
        if level {
            field(r.skip(8), "sub_layer_level_idc")?;
        }
    }
    Ok((profile_idc, level_idc))
}

fn field<T>(value: Option<T>, name: &'static str) -> Result<T, HevcError> {
    value.ok_or(HevcError::SpsMalformed { field: name })
}

#[cfg(test)]
mod tests;
