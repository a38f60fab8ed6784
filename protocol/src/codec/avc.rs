//! H.264 as carried by RTMP/FLV: the `AVCDecoderConfigurationRecord` of a sequence header
//! (ISO/IEC 14496-15 §5.3.3.1.2), AVCC length-prefixed NAL units in frames, their Annex-B
//! byte-stream form (ITU-T H.264 Annex B) and the sequence parameter set (H.264
//! §7.3.2.1.1, VUI Annex E.1.1) for the picture size, profile, level and frame rate.

use bytes::{BufMut, Bytes, BytesMut};

use super::bits::{nal_to_rbsp, BitReader};

/// Annex-B start code written before every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// NAL unit types (H.264 Table 7-1) that packagers care about.
pub mod nal_type {
    pub const NON_IDR_SLICE: u8 = 1;
    pub const IDR_SLICE: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const ACCESS_UNIT_DELIMITER: u8 = 9;
    pub const FILLER_DATA: u8 = 12;
}

/// Why H.264 data could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AvcError {
    #[error("avc decoder configuration is {len} bytes, expected at least {need}")]
    ConfigTooShort { len: usize, need: usize },
    #[error("avc decoder configuration {kind} #{index} declares {declared} bytes but only {left} remain")]
    ConfigTruncated {
        kind: &'static str,
        index: usize,
        declared: usize,
        left: usize,
    },
    #[error("avc decoder configuration has no sequence parameter set")]
    NoSps,
    #[error("avc nal unit length size is {0} bytes, expected 1 to 4")]
    InvalidLengthSize(u8),
    #[error("avc frame nal unit #{index} declares {declared} bytes but only {left} remain")]
    NaluTruncated { index: usize, declared: usize, left: usize },
    #[error("avc sequence parameter set has nal unit type {0}, expected 7")]
    NotSps(u8),
    #[error("avc sequence parameter set is truncated or malformed at {field}")]
    SpsMalformed { field: &'static str },
}

/// A parsed `AVCDecoderConfigurationRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    pub version: u8,
    pub profile_idc: u8,
    pub profile_compatibility: u8,
    pub level_idc: u8,
    /// Bytes in each NAL unit length prefix of the frames (1, 2 or 4; 3 is tolerated).
    pub nalu_length_size: u8,
    /// Sequence parameter sets, NAL header included.
    pub sps: Vec<Bytes>,
    /// Picture parameter sets, NAL header included.
    pub pps: Vec<Bytes>,
}

impl AvcDecoderConfig {
    /// Parses a record. The High-profile extension (chroma format, bit depths, SPS
    /// extensions) is ignored, and may be absent: OBS omits it.
    pub fn parse(record: &[u8]) -> Result<Self, AvcError> {
        const HEADER: usize = 6;
        if record.len() < HEADER + 1 {
            return Err(AvcError::ConfigTooShort {
                len: record.len(),
                need: HEADER + 1,
            });
        }
        let nalu_length_size = (record[4] & 0x03) + 1;
        let sps_count = usize::from(record[5] & 0x1f);
        let mut pos = HEADER;
        let sps = read_parameter_sets(record, &mut pos, sps_count, "sps")?;
        let pps_count = match record.get(pos) {
            Some(&count) => usize::from(count),
            None => {
                return Err(AvcError::ConfigTooShort {
                    len: record.len(),
                    need: pos + 1,
                })
            }
        };
        pos += 1;
        let pps = read_parameter_sets(record, &mut pos, pps_count, "pps")?;
        Ok(AvcDecoderConfig {
            version: record[0],
            profile_idc: record[1],
            profile_compatibility: record[2],
            level_idc: record[3],
            nalu_length_size,
            sps,
            pps,
        })
    }

    /// The first SPS, parsed.
    pub fn sps_info(&self) -> Result<SpsInfo, AvcError> {
        SpsInfo::parse(self.sps.first().ok_or(AvcError::NoSps)?)
    }

    /// The RFC 6381 codec string, e.g. `avc1.64001F` (for HLS `CODECS`).
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02X}{:02X}{:02X}",
            self.profile_idc, self.profile_compatibility, self.level_idc
        )
    }
}

fn read_parameter_sets(
    record: &[u8],
    pos: &mut usize,
    count: usize,
    kind: &'static str,
) -> Result<Vec<Bytes>, AvcError> {
    let mut sets = Vec::with_capacity(count);
    for index in 0..count {
        let len_bytes = record.get(*pos..*pos + 2).ok_or(AvcError::ConfigTooShort {
            len: record.len(),
            need: *pos + 2,
        })?;
        let declared = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        *pos += 2;
        let left = record.len() - *pos;
        let set = record.get(*pos..*pos + declared).ok_or(AvcError::ConfigTruncated {
            kind,
            index,
            declared,
            left,
        })?;
        sets.push(Bytes::copy_from_slice(set));
        *pos += declared;
    }
    Ok(sets)
}

/// The NAL unit type of a NAL unit (0, "unspecified", for an empty one).
pub fn nal_unit_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |header| header & 0x1f)
}

/// Iterates the NAL units of an AVCC frame whose length prefixes are `length_size` bytes.
/// Stops after the first error.
pub fn nal_units(frame: &[u8], length_size: u8) -> NalUnits<'_> {
    NalUnits {
        rest: frame,
        length_size,
        index: 0,
        failed: false,
    }
}

/// Iterator returned by [`nal_units`].
pub struct NalUnits<'a> {
    rest: &'a [u8],
    length_size: u8,
    index: usize,
    failed: bool,
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = Result<&'a [u8], AvcError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let size = usize::from(self.length_size);
        if !(1..=4).contains(&size) {
            self.failed = true;
            return Some(Err(AvcError::InvalidLengthSize(self.length_size)));
        }
        let index = self.index;
        self.index += 1;
        let Some(prefix) = self.rest.get(..size) else {
            self.failed = true;
            return Some(Err(AvcError::NaluTruncated {
                index,
                declared: size,
                left: self.rest.len(),
            }));
        };
        let declared = prefix.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let body = &self.rest[size..];
        match body.get(..declared) {
            Some(nal) => {
                self.rest = &body[declared..];
                Some(Ok(nal))
            }
            None => {
                self.failed = true;
                Some(Err(AvcError::NaluTruncated {
                    index,
                    declared,
                    left: body.len(),
                }))
            }
        }
    }
}

/// Appends the NAL units of an AVCC frame to `out` in Annex-B form (4-byte start codes).
/// The frame is validated first, so on error `out` is unchanged.
pub fn avcc_to_annexb(frame: &[u8], length_size: u8, out: &mut BytesMut) -> Result<(), AvcError> {
    let mut total = 0;
    for nal in nal_units(frame, length_size) {
        total += START_CODE.len() + nal?.len();
    }
    out.reserve(total);
    for nal in nal_units(frame, length_size).flatten() {
        out.put_slice(&START_CODE);
        out.put_slice(nal);
    }
    Ok(())
}

/// Iterates the NAL units of an Annex-B byte stream (3- or 4-byte start codes); bytes
/// before the first start code are skipped. Trailing zero bytes of a NAL are kept.
pub fn annexb_nal_units(stream: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&next| {
            // The next start code begins 3 bytes earlier, 4 with a leading zero byte.
            let end = next - 3;
            if end > 0 && stream[end - 1] == 0 {
                end - 1
            } else {
                end
            }
        })
        .chain(std::iter::once(stream.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .map(move |(start, end)| &stream[start..end.max(start)])
}

/// What the API and the packagers need from a sequence parameter set.
#[derive(Debug, Clone, PartialEq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    /// Picture width in pixels after cropping.
    pub width: u32,
    /// Picture height in pixels after cropping.
    pub height: u32,
    /// Frames per second from the VUI timing information, when present and sane.
    pub frame_rate: Option<f64>,
}

/// Profiles whose SPS carries chroma format and bit depth (H.264 §7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

impl SpsInfo {
    /// Parses an SPS NAL unit (header byte included, emulation prevention not yet removed).
    pub fn parse(nal: &[u8]) -> Result<Self, AvcError> {
        let rbsp = nal_to_rbsp(nal);
        let mut r = BitReader::new(&rbsp);
        let header = field(r.bits(8), "nal header")?;
        if header & 0x1f != u32::from(nal_type::SPS) {
            return Err(AvcError::NotSps((header & 0x1f) as u8));
        }
        let profile_idc = field(r.bits(8), "profile_idc")? as u8;
        let constraint_flags = field(r.bits(8), "constraint flags")? as u8;
        let level_idc = field(r.bits(8), "level_idc")? as u8;
        field(r.ue(), "seq_parameter_set_id")?;
        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8;
        if HIGH_PROFILES.contains(&profile_idc) {
            chroma_format_idc = field(r.ue(), "chroma_format_idc")?;
            if chroma_format_idc == 3 {
                separate_colour_plane = field(r.bit(), "separate_colour_plane_flag")?;
            }
            bit_depth_luma = field(r.ue(), "bit_depth_luma_minus8")?.saturating_add(8);
            field(r.ue(), "bit_depth_chroma_minus8")?;
            field(r.bit(), "qpprime_y_zero_transform_bypass_flag")?;
            if field(r.bit(), "seq_scaling_matrix_present_flag")? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if field(r.bit(), "seq_scaling_list_present_flag")? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        field(r.ue(), "log2_max_frame_num_minus4")?;
        match field(r.ue(), "pic_order_cnt_type")? {
            0 => {
                field(r.ue(), "log2_max_pic_order_cnt_lsb_minus4")?;
            }
            1 => {
                field(r.bit(), "delta_pic_order_always_zero_flag")?;
                field(r.se(), "offset_for_non_ref_pic")?;
                field(r.se(), "offset_for_top_to_bottom_field")?;
                let cycle = field(r.ue(), "num_ref_frames_in_pic_order_cnt_cycle")?;
                if cycle > 255 {
                    return Err(AvcError::SpsMalformed {
                        field: "num_ref_frames_in_pic_order_cnt_cycle",
                    });
                }
                for _ in 0..cycle {
                    field(r.se(), "offset_for_ref_frame")?;
                }
            }
            _ => {}
        }
        field(r.ue(), "max_num_ref_frames")?;
        field(r.bit(), "gaps_in_frame_num_value_allowed_flag")?;
        let width_mbs = u64::from(field(r.ue(), "pic_width_in_mbs_minus1")?) + 1;
        let height_map_units = u64::from(field(r.ue(), "pic_height_in_map_units_minus1")?) + 1;
        let frame_mbs_only = field(r.bit(), "frame_mbs_only_flag")?;
        if !frame_mbs_only {
            field(r.bit(), "mb_adaptive_frame_field_flag")?;
        }
        field(r.bit(), "direct_8x8_inference_flag")?;
        let mut crop = [0u64; 4];
        if field(r.bit(), "frame_cropping_flag")? {
            for c in &mut crop {
                *c = u64::from(field(r.ue(), "frame_crop_offset")?);
            }
        }
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
        let (crop_unit_x, crop_unit_y) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let full_width = width_mbs * 16;
        let full_height = height_map_units * 16 * field_factor;
        let width = full_width.checked_sub(crop_unit_x * (crop[0] + crop[1]));
        let height = full_height.checked_sub(crop_unit_y * (crop[2] + crop[3]));
        let (Some(width), Some(height)) = (width, height) else {
            return Err(AvcError::SpsMalformed {
                field: "frame_crop_offset",
            });
        };
        let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
            return Err(AvcError::SpsMalformed {
                field: "pic_width_in_mbs_minus1",
            });
        };
        let frame_rate = if field(r.bit(), "vui_parameters_present_flag").unwrap_or(false) {
            // A truncated VUI costs only the frame rate, never the whole SPS.
            vui_frame_rate(&mut r)
        } else {
            None
        };
        Ok(SpsInfo {
            profile_idc,
            constraint_flags,
            level_idc,
            chroma_format_idc,
            bit_depth_luma,
            width,
            height,
            frame_rate,
        })
    }

    /// The profile's name, as shown by the HTTP API ("High", "Main", "Baseline", ...).
    pub fn profile_name(&self) -> &'static str {
        match self.profile_idc {
            66 if self.constraint_flags & 0x40 != 0 => "Constrained Baseline",
            66 => "Baseline",
            77 => "Main",
            88 => "Extended",
            100 => "High",
            110 => "High 10",
            122 => "High 4:2:2",
            244 => "High 4:4:4 Predictive",
            44 => "CAVLC 4:4:4 Intra",
            _ => "Other",
        }
    }

    /// The level as written in specs and by ffprobe ("3.1"; "1b" for level 1b).
    pub fn level_name(&self) -> String {
        if self.level_idc == 11 && self.constraint_flags & 0x10 != 0 && self.profile_idc == 66 {
            return "1b".to_owned();
        }
        format!("{}.{}", self.level_idc / 10, self.level_idc % 10)
    }
}

fn field<T>(value: Option<T>, name: &'static str) -> Result<T, AvcError> {
    value.ok_or(AvcError::SpsMalformed { field: name })
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), AvcError> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = i64::from(field(r.se(), "delta_scale")?);
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Reads the VUI up to `timing_info` and returns `time_scale / (2 × num_units_in_tick)`.
fn vui_frame_rate(r: &mut BitReader<'_>) -> Option<f64> {
    if r.bit()? {
        // aspect_ratio_idc 255 = Extended_SAR: 16-bit width and height follow.
        if r.bits(8)? == 255 {
            r.skip(32)?;
        }
    }
    if r.bit()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.bit()? {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.bit()? {
            r.skip(24)?; // colour_primaries, transfer_characteristics, matrix_coefficients
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?;
    }
    if !r.bit()? {
        return None;
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    if num_units_in_tick == 0 || time_scale == 0 {
        return None;
    }
    let rate = f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick));
    (rate <= 1000.0).then_some(rate)
}

/// Writes `nals` as an AVCC frame with 4-byte length prefixes (test and tooling helper).
pub fn annexb_nals_to_avcc<'a>(nals: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    for nal in nals {
        out.put_u32(nal.len() as u32);
        out.put_slice(nal);
    }
    out.freeze()
}

#[cfg(test)]
mod tests;
