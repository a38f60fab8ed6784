//! A strict, incremental FLV reader (Adobe FLV spec v10.1, annex E) for checking what viewers get.
//!
//! Any malformed byte is an error: the tests want to know when the server writes bad FLV.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

use bytes::Bytes;

/// FLV tag types (E.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagKind {
    Audio,
    Video,
    /// Script data (onMetaData). RTMP viewers record the metadata event with an empty payload.
    Script,
}

/// One received media message: an FLV tag, or the equivalent RTMP message.
#[derive(Clone, Debug)]
pub struct Tag {
    pub kind: TagKind,
    /// Milliseconds (the FLV timestamp with its extension byte, or the RTMP timestamp).
    pub timestamp: u32,
    /// The tag body: for audio/video the FLV audio/video tag header and data.
    pub data: Bytes,
    /// When the viewer received it.
    pub arrived: Instant,
}

impl Tag {
    /// A video tag whose frame type is 1 (keyframe), sequence headers included.
    pub fn is_video_keyframe(&self) -> bool {
        self.kind == TagKind::Video && self.data.first().is_some_and(|b| b >> 4 == 1)
    }

    /// An AVC/HEVC decoder configuration record or an AAC AudioSpecificConfig.
    pub fn is_seq_header(&self) -> bool {
        match self.kind {
            TagKind::Video => {
                let codec = self.data.first().map(|b| b & 0x0f);
                // AVC (7) and HEVC (12, common extension): AVCPacketType 0.
                matches!(codec, Some(7) | Some(12)) && self.data.get(1) == Some(&0)
            }
            TagKind::Audio => {
                let format = self.data.first().map(|b| b >> 4);
                format == Some(10) && self.data.get(1) == Some(&0)
            }
            TagKind::Script => false,
        }
    }

    /// An audio or video tag carrying a coded frame (not a sequence header, not end of sequence).
    pub fn is_coded_frame(&self) -> bool {
        match self.kind {
            TagKind::Video => {
                let codec = self.data.first().map(|b| b & 0x0f);
                match codec {
                    Some(7) | Some(12) => self.data.get(1) == Some(&1),
                    Some(_) => self.data.len() > 1,
                    None => false,
                }
            }
            TagKind::Audio => !self.is_seq_header() && self.data.len() > 1,
            TagKind::Script => false,
        }
    }

    /// A coded video frame that is a keyframe.
    pub fn is_coded_keyframe(&self) -> bool {
        self.is_coded_frame() && self.is_video_keyframe()
    }

    /// A script tag whose first AMF0 value is the string `onMetaData`, or the metadata an
    /// RTMP viewer recorded (empty payload).
    pub fn is_metadata(&self) -> bool {
        self.kind == TagKind::Script && (self.data.is_empty() || self.data.starts_with(b"\x02\x00\x0aonMetaData"))
    }

    /// A digest of (kind, timestamp, payload), to compare what different viewers received.
    pub fn digest(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.kind.hash(&mut h);
        self.timestamp.hash(&mut h);
        self.data.hash(&mut h);
        h.finish()
    }
}

/// Incremental FLV parser: feed bytes with [`FlvParser::push`], get tags back.
#[derive(Default)]
pub struct FlvParser {
    buf: Vec<u8>,
    /// Byte 4 of the file header (0x01 video, 0x04 audio, 0x05 both), once read.
    pub header_flags: Option<u8>,
    /// Bytes consumed so far, for error messages.
    offset: u64,
}

impl FlvParser {
    pub fn new() -> FlvParser {
        FlvParser::default()
    }

    /// Adds `bytes` and returns every complete tag; an error describes the first malformed byte.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Tag>, String> {
        self.buf.extend_from_slice(bytes);
        let mut tags = Vec::new();
        let mut pos = 0;
        if self.header_flags.is_none() {
            if self.buf.len() < 13 {
                return Ok(tags);
            }
            let h = &self.buf[..13];
            if &h[..3] != b"FLV" || h[3] != 1 {
                return Err(format!("not an FLV version 1 header: {:02x?}", &h[..9]));
            }
            let data_offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
            if data_offset != 9 {
                return Err(format!("FLV header DataOffset {data_offset}, expected 9"));
            }
            if h[9..13] != [0, 0, 0, 0] {
                return Err(format!("PreviousTagSize0 is {:02x?}, expected 0", &h[9..13]));
            }
            self.header_flags = Some(h[4]);
            pos = 13;
        }
        let now = Instant::now();
        loop {
            let rest = &self.buf[pos..];
            if rest.len() < 11 {
                break;
            }
            let kind = match rest[0] {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                18 => TagKind::Script,
                other => {
                    return Err(format!(
                        "tag at offset {}: type {other} (filter bit or unknown type)",
                        self.offset + pos as u64
                    ))
                }
            };
            let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            let timestamp = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
            if rest[8..11] != [0, 0, 0] {
                return Err(format!(
                    "tag at offset {}: StreamID {:02x?}, expected 0",
                    self.offset + pos as u64,
                    &rest[8..11]
                ));
            }
            if rest.len() < 11 + size + 4 {
                break;
            }
            let data = Bytes::copy_from_slice(&rest[11..11 + size]);
            let p = &rest[11 + size..11 + size + 4];
            let prev = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
            if prev != 11 + size {
                return Err(format!(
                    "tag at offset {}: PreviousTagSize {prev}, expected {}",
                    self.offset + pos as u64,
                    11 + size
                ));
            }
            tags.push(Tag {
                kind,
                timestamp,
                data,
                arrived: now,
            });
            pos += 11 + size + 4;
        }
        self.buf.drain(..pos);
        self.offset += pos as u64;
        Ok(tags)
    }

    /// Bytes of an incomplete tag left over.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Parses a whole FLV file: (header flags, tags). Trailing partial tags are an error.
pub fn parse_file(bytes: &[u8]) -> Result<(u8, Vec<Tag>), String> {
    let mut p = FlvParser::new();
    let tags = p.push(bytes)?;
    let flags = p.header_flags.ok_or("file shorter than an FLV header")?;
    if p.pending() != 0 {
        return Err(format!("{} bytes of a truncated tag at the end", p.pending()));
    }
    Ok((flags, tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(&ts.to_be_bytes()[1..]);
        v.push((ts >> 24) as u8);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
        v
    }

    #[test]
    fn parses_byte_by_byte() {
        let mut file = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        file.extend(tag(9, 0, &[0x17, 0, 0, 0, 0, 1, 2]));
        file.extend(tag(8, 0, &[0xaf, 0, 0x12, 0x10]));
        file.extend(tag(9, 0x0100_0010, &[0x17, 1, 0, 0, 0, 9]));
        file.extend(tag(9, 0x0100_0020, &[0x27, 1, 0, 0, 0, 9]));
        let mut p = FlvParser::new();
        let mut tags = Vec::new();
        for b in &file {
            tags.extend(p.push(&[*b]).unwrap());
        }
        assert_eq!(p.header_flags, Some(5));
        assert_eq!(tags.len(), 4);
        assert!(tags[0].is_seq_header() && tags[0].is_video_keyframe());
        assert!(tags[1].is_seq_header() && tags[1].kind == TagKind::Audio);
        assert!(tags[2].is_coded_keyframe());
        assert_eq!(tags[2].timestamp, 0x0100_0010);
        assert!(tags[3].is_coded_frame() && !tags[3].is_video_keyframe());
        assert_eq!(parse_file(&file).unwrap().1.len(), 4);
    }

    #[test]
    fn rejects_bad_previous_tag_size() {
        let mut file = b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let mut t = tag(9, 0, &[0x17, 1, 0, 0, 0]);
        let n = t.len();
        t[n - 1] ^= 1;
        file.extend(t);
        assert!(FlvParser::new().push(&file).is_err());
    }
}
