//! Opus as carried by Enhanced RTMP (FourCC `Opus`) and MP4: the identification header
//! `OpusHead` (RFC 7845 §5.1) that ffmpeg and OBS send as the sequence start, the same fields
//! in the big-endian `dOps` box of MP4 ("Encapsulation of Opus in ISOBMFF" §4.3.2), and
//! conversion between them.

/// Why an Opus configuration could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpusError {
    /// `len` and `need` count the bytes after the `OpusHead` magic, when it is there.
    #[error("opus header is {len} bytes, expected at least {need}")]
    TooShort { len: usize, need: usize },
    #[error("opus header has version {0}, expected major version 0")]
    BadVersion(u8),
    #[error("opus header has {0} output channels")]
    NoChannels(u8),
    #[error("opus header with channel mapping family {family} has {streams} streams, {coupled} coupled, for {channels} channels")]
    BadMapping {
        family: u8,
        streams: u8,
        coupled: u8,
        channels: u8,
    },
}

/// A parsed Opus identification header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    /// Samples (at 48 kHz) to discard from the decoder's output at the start.
    pub pre_skip: u16,
    /// The encoder's input rate, for information only: Opus always decodes at 48 kHz.
    pub input_sample_rate: u32,
    /// Output gain in Q7.8 dB.
    pub output_gain: i16,
    pub channel_mapping_family: u8,
    /// Stream count, coupled count and the channel mapping, for family ≠ 0.
    pub mapping: Option<(u8, u8, Vec<u8>)>,
}

const MAGIC: &[u8; 8] = b"OpusHead";

impl OpusHead {
    /// Parses an `OpusHead` packet (little-endian, magic included), or else a `dOps` box
    /// body (big-endian, version 0), whichever `data` is.
    pub fn parse(data: &[u8]) -> Result<Self, OpusError> {
        match data.strip_prefix(MAGIC) {
            Some(rest) => Self::parse_fields(rest, u16::from_le_bytes, u32::from_le_bytes),
            None => Self::parse_fields(data, u16::from_be_bytes, u32::from_be_bytes),
        }
    }

    fn parse_fields(d: &[u8], u16_of: fn([u8; 2]) -> u16, u32_of: fn([u8; 4]) -> u32) -> Result<Self, OpusError> {
        if d.len() < 11 {
            return Err(OpusError::TooShort { len: d.len(), need: 11 });
        }
        // OpusHead's version is 1 (major 0 in the high nibble); dOps's is 0.
        if d[0] >> 4 != 0 {
            return Err(OpusError::BadVersion(d[0]));
        }
        let channels = d[1];
        if channels == 0 {
            return Err(OpusError::NoChannels(channels));
        }
        let mut head = OpusHead {
            channels,
            pre_skip: u16_of([d[2], d[3]]),
            input_sample_rate: u32_of([d[4], d[5], d[6], d[7]]),
            output_gain: u16_of([d[8], d[9]]) as i16,
            channel_mapping_family: d[10],
            mapping: None,
        };
        if head.channel_mapping_family == 0 {
            if channels > 2 {
                return Err(OpusError::BadMapping {
                    family: 0,
                    streams: 1,
                    coupled: channels - 1,
                    channels,
                });
            }
            return Ok(head);
        }
        let need = 13 + usize::from(channels);
        if d.len() < need {
            return Err(OpusError::TooShort { len: d.len(), need });
        }
        let (streams, coupled) = (d[11], d[12]);
        if streams == 0 || coupled > streams || u16::from(streams) + u16::from(coupled) > 255 {
            return Err(OpusError::BadMapping {
                family: head.channel_mapping_family,
                streams,
                coupled,
                channels,
            });
        }
        head.mapping = Some((streams, coupled, d[13..need].to_vec()));
        Ok(head)
    }

    /// The RFC 6381 `CODECS` value for Opus in MP4.
    pub fn codecs_string(&self) -> &'static str {
        "Opus"
    }

    /// The `dOps` box body (version 0, big-endian fields), for an MP4 `Opus` sample entry.
    pub fn dops_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(11 + self.mapping.as_ref().map_or(0, |m| 2 + m.2.len()));
        out.push(0);
        out.push(self.channels);
        out.extend_from_slice(&self.pre_skip.to_be_bytes());
        out.extend_from_slice(&self.input_sample_rate.to_be_bytes());
        out.extend_from_slice(&self.output_gain.to_be_bytes());
        out.push(self.channel_mapping_family);
        if let Some((streams, coupled, table)) = &self.mapping {
            out.push(*streams);
            out.push(*coupled);
            out.extend_from_slice(table);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence start ffmpeg 9 (libopus, mono 48 kHz) sends, after its FourCC.
    const FFMPEG_OPUS_HEAD: [u8; 19] = [
        b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 1, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parses_ffmpeg_opus_head_and_writes_dops() {
        let h = OpusHead::parse(&FFMPEG_OPUS_HEAD).unwrap();
        assert_eq!((h.channels, h.pre_skip, h.input_sample_rate), (1, 312, 48_000));
        assert_eq!(
            (h.output_gain, h.channel_mapping_family, h.mapping.clone()),
            (0, 0, None)
        );
        let dops = h.dops_body();
        assert_eq!(dops, [0, 1, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]);
        assert_eq!(OpusHead::parse(&dops), Ok(h));
    }

    #[test]
    fn surround_mapping_round_trips() {
        let mut head = FFMPEG_OPUS_HEAD.to_vec();
        head[9] = 6;
        head[18] = 1;
        head.extend_from_slice(&[4, 2, 0, 4, 1, 2, 3, 5]);
        let h = OpusHead::parse(&head).unwrap();
        assert_eq!(h.mapping, Some((4, 2, vec![0, 4, 1, 2, 3, 5])));
        assert_eq!(OpusHead::parse(&h.dops_body()), Ok(h));
    }

    #[test]
    fn bad_headers_are_errors() {
        assert_eq!(
            OpusHead::parse(&FFMPEG_OPUS_HEAD[..12]),
            Err(OpusError::TooShort { len: 4, need: 11 })
        );
        let mut v2 = FFMPEG_OPUS_HEAD;
        v2[8] = 0x21;
        assert_eq!(OpusHead::parse(&v2), Err(OpusError::BadVersion(0x21)));
        let mut none = FFMPEG_OPUS_HEAD;
        none[9] = 0;
        assert_eq!(OpusHead::parse(&none), Err(OpusError::NoChannels(0)));
        let mut family1 = FFMPEG_OPUS_HEAD.to_vec();
        family1[18] = 1;
        family1.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(OpusHead::parse(&family1), Err(OpusError::BadMapping { .. })));
    }
}
