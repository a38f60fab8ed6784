//! AV1 as carried by Enhanced RTMP (FourCC `av01`) and MP4: the
//! `AV1CodecConfigurationRecord` (`av1C`, AV1 Codec ISO Media File Format Binding §2.3) of a
//! sequence start, its configuration OBUs, and the maximum frame size from the sequence
//! header OBU among them (AV1 spec §5.5) that an `av01` sample entry needs.
//!
//! Frames are a sequence of low-overhead OBUs (AV1 §5.2), carried as they are.

use super::bits::BitReader;

/// OBU types (AV1 §6.2.2) a packager cares about.
pub mod obu_type {
    pub const SEQUENCE_HEADER: u8 = 1;
    pub const TEMPORAL_DELIMITER: u8 = 2;
    pub const METADATA: u8 = 5;
}

/// Why AV1 data could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Av1Error {
    #[error("av1 codec configuration is {len} bytes, expected at least 4")]
    ConfigTooShort { len: usize },
    #[error("av1 codec configuration has marker {marker} and version {version}, expected 1 and 1")]
    BadVersion { marker: u8, version: u8 },
    #[error("av1 configuration obu at byte {offset}: {what}")]
    BadObu { offset: usize, what: &'static str },
    #[error("av1 sequence header obu is truncated or malformed at {field}")]
    SequenceHeaderMalformed { field: &'static str },
}

/// A parsed `AV1CodecConfigurationRecord`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1Config {
    pub seq_profile: u8,
    pub seq_level_idx_0: u8,
    /// `seq_tier_0`: false for the Main tier, true for High.
    pub seq_tier_0: bool,
    pub high_bitdepth: bool,
    pub twelve_bit: bool,
    pub monochrome: bool,
    pub chroma_subsampling_x: bool,
    pub chroma_subsampling_y: bool,
    pub chroma_sample_position: u8,
    /// `initial_presentation_delay_minus_one + 1`, when present.
    pub initial_presentation_delay: Option<u8>,
    /// The OBU types of the `configOBUs`, in order.
    pub config_obu_types: Vec<u8>,
    /// `max_frame_width_minus_1 + 1` and `max_frame_height_minus_1 + 1` of the sequence
    /// header OBU, when the record carries one.
    pub max_frame_size: Option<(u32, u32)>,
}

impl Av1Config {
    /// Parses an `av1C` body (the 4 fixed bytes, then the configuration OBUs).
    pub fn parse(record: &[u8]) -> Result<Self, Av1Error> {
        if record.len() < 4 {
            return Err(Av1Error::ConfigTooShort { len: record.len() });
        }
        let (marker, version) = (record[0] >> 7, record[0] & 0x7f);
        if marker != 1 || version != 1 {
            return Err(Av1Error::BadVersion { marker, version });
        }
        let mut config = Av1Config {
            seq_profile: record[1] >> 5,
            seq_level_idx_0: record[1] & 0x1f,
            seq_tier_0: record[2] & 0x80 != 0,
            high_bitdepth: record[2] & 0x40 != 0,
            twelve_bit: record[2] & 0x20 != 0,
            monochrome: record[2] & 0x10 != 0,
            chroma_subsampling_x: record[2] & 0x08 != 0,
            chroma_subsampling_y: record[2] & 0x04 != 0,
            chroma_sample_position: record[2] & 0x03,
            initial_presentation_delay: (record[3] & 0x10 != 0).then_some((record[3] & 0x0f) + 1),
            config_obu_types: Vec::new(),
            max_frame_size: None,
        };
        for obu in obus(&record[4..], 4) {
            let obu = obu?;
            config.config_obu_types.push(obu.obu_type);
            if obu.obu_type == obu_type::SEQUENCE_HEADER && config.max_frame_size.is_none() {
                config.max_frame_size = Some(max_frame_size(obu.payload)?);
            }
        }
        Ok(config)
    }

    /// Bits per sample: 8, 10 or 12.
    pub fn bit_depth(&self) -> u8 {
        match (self.high_bitdepth, self.twelve_bit) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        }
    }

    /// The RFC 6381 `CODECS` value (AV1 ISOBMFF binding, "Codecs Parameter String"), short
    /// form: `av01.P.LLT.DD`, e.g. `av01.0.04M.08`.
    pub fn codecs_string(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.seq_profile,
            self.seq_level_idx_0,
            if self.seq_tier_0 { 'H' } else { 'M' },
            self.bit_depth()
        )
    }
}

/// One OBU of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Obu<'a> {
    pub obu_type: u8,
    /// The OBU's payload (after its header, extension and size).
    pub payload: &'a [u8],
}

/// The OBUs of `data` in low-overhead format; `base` is the offset of `data` in what the
/// errors report. An OBU without a size field runs to the end.
pub fn obus(data: &[u8], base: usize) -> impl Iterator<Item = Result<Obu<'_>, Av1Error>> + '_ {
    let mut pos = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= data.len() {
            return None;
        }
        let result = read_obu(data, &mut pos, base);
        failed = result.is_err();
        Some(result)
    })
}

fn read_obu<'a>(data: &'a [u8], pos: &mut usize, base: usize) -> Result<Obu<'a>, Av1Error> {
    let offset = base + *pos;
    let bad = |what| Av1Error::BadObu { offset, what };
    let header = data[*pos];
    if header & 0x80 != 0 {
        return Err(bad("obu_forbidden_bit is set"));
    }
    let obu_type = (header >> 3) & 0x0f;
    let mut at = *pos + 1 + usize::from(header & 0x04 != 0);
    let end = if header & 0x02 != 0 {
        let (size, len) = leb128(data.get(at..).unwrap_or_default()).ok_or(bad("obu_size is truncated"))?;
        at += len;
        at.checked_add(size)
            .filter(|&end| end <= data.len())
            .ok_or(bad("obu_size runs past the end"))?
    } else {
        data.len()
    };
    if at > end {
        return Err(bad("obu header runs past the end"));
    }
    *pos = end;
    Ok(Obu {
        obu_type,
        payload: &data[at..end],
    })
}

/// `leb128()` (AV1 §4.10.5): the value and how many bytes it took (at most 8).
fn leb128(data: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, i + 1));
        }
    }
    None
}

/// The maximum frame size of a `sequence_header_obu` (AV1 §5.5.1).
fn max_frame_size(payload: &[u8]) -> Result<(u32, u32), Av1Error> {
    let mut r = BitReader::new(payload);
    field(r.bits(3), "seq_profile")?;
    field(r.bit(), "still_picture")?;
    let reduced_still_picture_header = field(r.bit(), "reduced_still_picture_header")?;
    if reduced_still_picture_header {
        field(r.bits(5), "seq_level_idx")?;
    } else {
        let mut buffer_delay_length = 0;
        let timing_info_present = field(r.bit(), "timing_info_present_flag")?;
        let mut decoder_model_info_present = false;
        if timing_info_present {
            field(r.skip(64), "timing_info")?;
            if field(r.bit(), "equal_picture_interval")? {
                uvlc(&mut r)?;
            }
            decoder_model_info_present = field(r.bit(), "decoder_model_info_present_flag")?;
            if decoder_model_info_present {
                buffer_delay_length = field(r.bits(5), "buffer_delay_length_minus_1")? as usize + 1;
                field(r.skip(32 + 5 + 5), "decoder_model_info")?;
            }
        }
        let initial_display_delay_present = field(r.bit(), "initial_display_delay_present_flag")?;
        let operating_points = field(r.bits(5), "operating_points_cnt_minus_1")? + 1;
        for _ in 0..operating_points {
            field(r.skip(12), "operating_point_idc")?;
            let level = field(r.bits(5), "seq_level_idx")?;
            if level > 7 {
                field(r.skip(1), "seq_tier")?;
            }
            if decoder_model_info_present && field(r.bit(), "decoder_model_present_for_this_op")? {
                field(r.skip(2 * buffer_delay_length + 1), "operating_parameters_info")?;
            }
            if initial_display_delay_present && field(r.bit(), "initial_display_delay_present_for_this_op")? {
                field(r.skip(4), "initial_display_delay_minus_1")?;
            }
        }
    }
    let width_bits = field(r.bits(4), "frame_width_bits_minus_1")? + 1;
    let height_bits = field(r.bits(4), "frame_height_bits_minus_1")? + 1;
    let width = field(r.bits(width_bits), "max_frame_width_minus_1")?;
    let height = field(r.bits(height_bits), "max_frame_height_minus_1")?;
    Ok((width.saturating_add(1), height.saturating_add(1)))
}

/// `uvlc()` (AV1 §4.10.3); values of 32 or more leading zeros are rejected.
fn uvlc(r: &mut BitReader<'_>) -> Result<u32, Av1Error> {
    let mut leading_zeros = 0;
    while !field(r.bit(), "uvlc")? {
        leading_zeros += 1;
        if leading_zeros >= 32 {
            return Err(Av1Error::SequenceHeaderMalformed { field: "uvlc" });
        }
    }
    let value = field(r.bits(leading_zeros), "uvlc")?;
    Ok(value.saturating_add((1u32 << leading_zeros) - 1))
}

fn field<T>(value: Option<T>, name: &'static str) -> Result<T, Av1Error> {
    value.ok_or(Av1Error::SequenceHeaderMalformed { field: name })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `av1C` ffmpeg 9 (libaom, 160x90) sends in its second sequence start.
    const FFMPEG_AV1C: [u8; 16] = [
        0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0x6b, 0xe4, 0x01,
    ];

    #[test]
    fn parses_ffmpeg_av1c_with_its_sequence_header() {
        let c = Av1Config::parse(&FFMPEG_AV1C).unwrap();
        assert_eq!((c.seq_profile, c.seq_level_idx_0, c.seq_tier_0), (0, 0, false));
        assert!(c.chroma_subsampling_x && c.chroma_subsampling_y);
        assert_eq!(c.bit_depth(), 8);
        assert_eq!(c.config_obu_types, vec![obu_type::SEQUENCE_HEADER]);
        assert_eq!(c.max_frame_size, Some((160, 90)));
        assert_eq!(c.codecs_string(), "av01.0.00M.08");
    }

    #[test]
    fn bad_records_are_errors() {
        assert_eq!(Av1Config::parse(&[0x81, 0]), Err(Av1Error::ConfigTooShort { len: 2 }));
        assert_eq!(
            Av1Config::parse(&[0x01, 0, 0, 0]),
            Err(Av1Error::BadVersion { marker: 0, version: 1 })
        );
        // An OBU whose size runs past the end.
        let mut record = FFMPEG_AV1C.to_vec();
        record[5] = 0x7f;
        assert!(matches!(
            Av1Config::parse(&record),
            Err(Av1Error::BadObu { offset: 4, .. })
        ));
        // A sequence header cut short.
        let mut record = FFMPEG_AV1C[..8].to_vec();
        record[5] = 2;
        assert!(matches!(
            Av1Config::parse(&record),
            Err(Av1Error::SequenceHeaderMalformed { .. })
        ));
    }

    #[test]
    fn high_tier_ten_bit_codecs_string() {
        let c = Av1Config::parse(&[0x81, (1 << 5) | 13, 0x80 | 0x40, 0]).unwrap();
        assert_eq!(c.codecs_string(), "av01.1.13H.10");
        assert_eq!(c.max_frame_size, None);
    }
}
