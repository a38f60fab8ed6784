//! AAC as carried by RTMP/FLV: the `AudioSpecificConfig` of a sequence header (ISO/IEC
//! 14496-3 §1.6.2.1, including the backward-compatible SBR/PS sync extension of §1.6.5 that
//! OBS writes), and the ADTS header (ISO/IEC 14496-3 §1.A.2.2) that MPEG-TS carries before
//! each raw AAC frame (ISO/IEC 13818-1 stream_type 0x0f).

use super::bits::BitReader;

/// Sampling frequencies by `samplingFrequencyIndex` (ISO/IEC 14496-3 Table 1.18).
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;

/// Largest ADTS frame (13-bit `frame_length`, header included).
pub const ADTS_MAX_FRAME_LEN: usize = 0x1fff;

const SYNC_EXTENSION_SBR: u32 = 0x2b7;
const SYNC_EXTENSION_PS: u32 = 0x548;
const OBJECT_TYPE_SBR: u8 = 5;
const OBJECT_TYPE_PS: u8 = 29;

/// Why AAC data could not be understood or framed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AacError {
    #[error("aac audio specific config is {len} bytes, expected at least 2")]
    ConfigTooShort { len: usize },
    #[error("aac audio specific config is truncated at {field}")]
    ConfigTruncated { field: &'static str },
    #[error("aac audio specific config has reserved sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    #[error("adts cannot carry aac object type {0}, only 1 to 4")]
    AdtsObjectType(u8),
    #[error("adts cannot carry the explicit sampling frequency {0} Hz")]
    AdtsExplicitFrequency(u32),
    #[error("adts cannot carry channel configuration {0}")]
    AdtsChannelConfig(u8),
    #[error("aac frame of {len} bytes is too long for adts (at most {max} bytes)")]
    AdtsFrameTooLong { len: usize, max: usize },
    #[error("adts header is {len} bytes, expected at least 7")]
    AdtsTooShort { len: usize },
    #[error("adts header has no sync word (starts with {0:02x} {1:02x})")]
    AdtsNoSync(u8, u8),
}

/// A parsed `AudioSpecificConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The core audio object type (2 = AAC LC), after resolving explicit SBR/PS signalling.
    pub object_type: u8,
    /// The core sampling frequency index; 15 means an explicit frequency.
    pub sampling_frequency_index: u8,
    /// The core sampling frequency in Hz.
    pub sampling_frequency: u32,
    /// Channel configuration (0 = defined in the stream, 1–7 per Table 1.19).
    pub channel_config: u8,
    /// Spectral band replication signalled (HE-AAC).
    pub sbr: bool,
    /// Parametric stereo signalled (HE-AAC v2).
    pub ps: bool,
}

impl AudioSpecificConfig {
    /// Parses the 2-byte form and longer ones (OBS sends the 5 bytes `12 10 56 e5 00`: AAC LC
    /// with a sync extension saying no SBR).
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        if data.len() < 2 {
            return Err(AacError::ConfigTooShort { len: data.len() });
        }
        let mut r = BitReader::new(data);
        let mut object_type = read_object_type(&mut r)?;
        let (sampling_frequency_index, sampling_frequency) = read_frequency(&mut r)?;
        let channel_config = bits(&mut r, 4, "channelConfiguration")? as u8;
        let mut sbr = false;
        let mut ps = false;
        if object_type == OBJECT_TYPE_SBR || object_type == OBJECT_TYPE_PS {
            // Explicit hierarchical signalling: the extension frequency, then the core type.
            sbr = true;
            ps = object_type == OBJECT_TYPE_PS;
            read_frequency(&mut r)?;
            object_type = read_object_type(&mut r)?;
        } else if matches!(object_type, 1..=4 | 6 | 7 | 17 | 19..=23) && channel_config != 0 {
            // GASpecificConfig without program config element, then the sync extension.
            if read_ga_specific_config(&mut r, object_type).is_some() {
                // The extension's own frequency is the output rate; ADTS wants the core one.
                if let Some(ext) = read_sync_extension(&mut r) {
                    sbr = ext.sbr;
                    ps = ext.ps;
                }
            }
        }
        Ok(AudioSpecificConfig {
            object_type,
            sampling_frequency_index,
            sampling_frequency,
            channel_config,
            sbr,
            ps,
        })
    }

    /// The RFC 6381 codec string: `mp4a.40.2` for AAC LC, `.5` with SBR, `.29` with PS.
    pub fn codec_string(&self) -> String {
        let signalled = if self.ps {
            OBJECT_TYPE_PS
        } else if self.sbr {
            OBJECT_TYPE_SBR
        } else {
            self.object_type
        };
        format!("mp4a.40.{signalled}")
    }

    /// Samples per channel in one AAC frame of the core codec (1024, or 960 would need the
    /// frameLengthFlag; live encoders use 1024).
    pub fn samples_per_frame(&self) -> u32 {
        1024
    }

    /// The 7-byte ADTS header (MPEG-4, no CRC) for a raw AAC frame of `frame_len` bytes.
    pub fn adts_header(&self, frame_len: usize) -> Result<[u8; ADTS_HEADER_LEN], AacError> {
        if !(1..=4).contains(&self.object_type) {
            return Err(AacError::AdtsObjectType(self.object_type));
        }
        if self.sampling_frequency_index > 12 {
            return Err(AacError::AdtsExplicitFrequency(self.sampling_frequency));
        }
        if self.channel_config > 7 {
            return Err(AacError::AdtsChannelConfig(self.channel_config));
        }
        let total = frame_len + ADTS_HEADER_LEN;
        if total > ADTS_MAX_FRAME_LEN {
            return Err(AacError::AdtsFrameTooLong {
                len: frame_len,
                max: ADTS_MAX_FRAME_LEN - ADTS_HEADER_LEN,
            });
        }
        let profile = self.object_type - 1;
        let sfi = self.sampling_frequency_index;
        let channels = self.channel_config;
        let total = total as u16;
        Ok([
            0xff,
            0xf1, // sync, MPEG-4, layer 0, protection_absent
            (profile << 6) | (sfi << 2) | (channels >> 2),
            ((channels & 3) << 6) | ((total >> 11) as u8 & 0x03),
            (total >> 3) as u8,
            (((total & 7) as u8) << 5) | 0x1f, // buffer fullness 0x7ff: variable rate
            0xfc,                              // and one raw data block
        ])
    }
}

/// The fields of an ADTS header, as read back by verifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// `profile_ObjectType`: the audio object type minus one.
    pub profile: u8,
    pub sampling_frequency_index: u8,
    pub channel_config: u8,
    /// Length of the whole ADTS frame, header included.
    pub frame_len: usize,
    pub protection_absent: bool,
}

/// Parses an ADTS header at the start of `data`.
pub fn parse_adts_header(data: &[u8]) -> Result<AdtsHeader, AacError> {
    if data.len() < ADTS_HEADER_LEN {
        return Err(AacError::AdtsTooShort { len: data.len() });
    }
    if data[0] != 0xff || data[1] & 0xf0 != 0xf0 {
        return Err(AacError::AdtsNoSync(data[0], data[1]));
    }
    Ok(AdtsHeader {
        profile: data[2] >> 6,
        sampling_frequency_index: (data[2] >> 2) & 0x0f,
        channel_config: ((data[2] & 1) << 2) | (data[3] >> 6),
        frame_len: (usize::from(data[3] & 3) << 11) | (usize::from(data[4]) << 3) | usize::from(data[5] >> 5),
        protection_absent: data[1] & 1 == 1,
    })
}

fn bits(r: &mut BitReader<'_>, n: u32, field: &'static str) -> Result<u32, AacError> {
    r.bits(n).ok_or(AacError::ConfigTruncated { field })
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, AacError> {
    let object_type = bits(r, 5, "audioObjectType")?;
    if object_type == 31 {
        return Ok(32 + bits(r, 6, "audioObjectTypeExt")? as u8);
    }
    Ok(object_type as u8)
}

fn read_frequency(r: &mut BitReader<'_>) -> Result<(u8, u32), AacError> {
    let index = bits(r, 4, "samplingFrequencyIndex")? as u8;
    match index {
        15 => Ok((15, bits(r, 24, "samplingFrequency")?)),
        13 | 14 => Err(AacError::ReservedFrequencyIndex(index)),
        _ => Ok((index, SAMPLING_FREQUENCIES[usize::from(index)])),
    }
}

fn read_ga_specific_config(r: &mut BitReader<'_>, object_type: u8) -> Option<()> {
    r.skip(1)?; // frameLengthFlag
    if r.bit()? {
        r.skip(14)?; // coreCoderDelay
    }
    let extension_flag = r.bit()?;
    if matches!(object_type, 6 | 20) {
        r.skip(3)?; // layerNr
    }
    if extension_flag {
        // Only error-resilient types carry more here; they do not appear over RTMP.
        return None;
    }
    Some(())
}

struct SyncExtension {
    sbr: bool,
    ps: bool,
}

/// The backward-compatible extension after the GASpecificConfig (§1.6.5.2).
fn read_sync_extension(r: &mut BitReader<'_>) -> Option<SyncExtension> {
    if r.bits_left() < 16 || r.bits(11)? != SYNC_EXTENSION_SBR {
        return None;
    }
    let mut ext = SyncExtension { sbr: false, ps: false };
    if r.bits(5)? as u8 != OBJECT_TYPE_SBR {
        return Some(ext);
    }
    ext.sbr = r.bit()?;
    if ext.sbr {
        read_frequency(r).ok()?;
        if r.bits_left() >= 12 && r.bits(11)? == SYNC_EXTENSION_PS {
            ext.ps = r.bit()?;
        }
    }
    Some(ext)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_the_two_byte_form() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        assert_eq!(asc.object_type, 2);
        assert_eq!(asc.sampling_frequency_index, 4);
        assert_eq!(asc.sampling_frequency, 44100);
        assert_eq!(asc.channel_config, 2);
        assert!(!asc.sbr);
        assert_eq!(asc.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn parses_the_obs_five_byte_form() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(
            (asc.object_type, asc.sampling_frequency, asc.channel_config),
            (2, 44100, 2)
        );
        assert!(!asc.sbr && !asc.ps);
    }

    #[test]
    fn parses_explicit_he_aac() {
        // object type 5, 24 kHz core, stereo, extension 48 kHz, core AAC LC.
        let asc = AudioSpecificConfig::parse(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert!(asc.sbr);
        assert_eq!(asc.object_type, 2);
        assert_eq!(asc.sampling_frequency, 24000);
        assert_eq!(asc.codec_string(), "mp4a.40.5");
    }

    #[test]
    fn errors_name_the_object() {
        let err = AudioSpecificConfig::parse(&[0x12]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "aac audio specific config is 1 bytes, expected at least 2"
        );
        let err = AudioSpecificConfig::parse(&[0x16, 0x90]).unwrap_err();
        assert_eq!(err, AacError::ReservedFrequencyIndex(13));
    }

    #[test]
    fn adts_header_round_trips() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10]).unwrap();
        let header = asc.adts_header(371).unwrap();
        assert_eq!(&header[..2], &[0xff, 0xf1]);
        let back = parse_adts_header(&header).unwrap();
        assert_eq!(back.profile, 1);
        assert_eq!(back.sampling_frequency_index, 4);
        assert_eq!(back.channel_config, 2);
        assert_eq!(back.frame_len, 371 + 7);
        assert!(back.protection_absent);
        assert_eq!(
            asc.adts_header(8185).unwrap_err().to_string(),
            "aac frame of 8185 bytes is too long for adts (at most 8184 bytes)"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(asc) = AudioSpecificConfig::parse(&data) {
                let _ = asc.adts_header(data.len());
                let _ = asc.codec_string();
            }
            let _ = parse_adts_header(&data);
        }

        #[test]
        fn adts_frame_length_round_trips(len in 0usize..8185, sfi in 0u8..13, ch in 1u8..8) {
            let asc = AudioSpecificConfig {
                object_type: 2, sampling_frequency_index: sfi,
                sampling_frequency: SAMPLING_FREQUENCIES[usize::from(sfi)],
                channel_config: ch, sbr: false, ps: false,
            };
            let back = parse_adts_header(&asc.adts_header(len).unwrap()).unwrap();
            prop_assert_eq!(back.frame_len, len + 7);
            prop_assert_eq!(back.sampling_frequency_index, sfi);
            prop_assert_eq!(back.channel_config, ch);
        }
    }
}
