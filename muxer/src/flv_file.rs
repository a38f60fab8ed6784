//! FLV files: the recorder's FLV format. Packets in, the bytes of one `.flv` file out.
//!
//! A file starts at the first video keyframe (or, for a stream without video, at its first
//! audio frame) with the FLV header, the metadata and the sequence headers seen so far, all
//! at timestamp 0; every tag after that carries its packet's time since that start. A later
//! sequence header (the encoder changed its settings) is written where it comes, as FLV
//! allows. An FLV file is readable up to its last whole tag, so a crash loses only what was
//! not yet written.

use bytes::{BufMut, Bytes, BytesMut};
use estuary_protocol::flv::tag::{file_header, tag_header};
use estuary_protocol::{MediaKind, Packet};

/// With no video sequence header seen, audio arriving for this long makes the file
/// audio-only (as the HLS segmenter decides).
const AUDIO_ONLY_AFTER_MS: u64 = 1000;

/// Writes one FLV file.
#[derive(Debug, Default)]
pub struct FlvFileWriter {
    metadata: Option<Bytes>,
    video_header: Option<Bytes>,
    audio_header: Option<Bytes>,
    /// Stream time of the file's first tag, once the file started.
    start_dts: Option<u64>,
    /// First audio frame seen while waiting for video.
    audio_since: Option<u64>,
    /// Stream time of the last tag written.
    last_dts: u64,
}

impl FlvFileWriter {
    pub fn new() -> Self {
        FlvFileWriter::default()
    }

    /// Whether the file has started (its header is written).
    pub fn started(&self) -> bool {
        self.start_dts.is_some()
    }

    /// Milliseconds of stream time written so far.
    pub fn duration_ms(&self) -> u64 {
        self.start_dts.map_or(0, |start| self.last_dts.saturating_sub(start))
    }

    /// Feeds a packet; the returned bytes are appended to the file (nothing while it waits
    /// for its first keyframe).
    pub fn push(&mut self, packet: &Packet) -> Bytes {
        let Some(start) = self.start_dts else {
            return self.before_start(packet);
        };
        let mut out = BytesMut::new();
        self.tag(&mut out, packet, start);
        out.freeze()
    }

    fn before_start(&mut self, packet: &Packet) -> Bytes {
        match packet.kind {
            MediaKind::Script => self.metadata = Some(packet.payload.clone()),
            MediaKind::Video if packet.seq_header => self.video_header = Some(packet.payload.clone()),
            MediaKind::Audio if packet.seq_header => self.audio_header = Some(packet.payload.clone()),
            MediaKind::Video if packet.keyframe && self.video_header.is_some() => return self.start(packet),
            MediaKind::Audio if self.video_header.is_none() && self.audio_header.is_some() => {
                let since = *self.audio_since.get_or_insert(packet.dts);
                if packet.dts.saturating_sub(since) >= AUDIO_ONLY_AFTER_MS {
                    return self.start(packet);
                }
            }
            _ => {}
        }
        Bytes::new()
    }

    /// Starts the file with `packet`: header, metadata, sequence headers, the packet.
    fn start(&mut self, packet: &Packet) -> Bytes {
        let start = packet.dts;
        self.start_dts = Some(start);
        let mut out = BytesMut::new();
        out.put_slice(&file_header(self.audio_header.is_some(), self.video_header.is_some()));
        let headers = [
            (MediaKind::Script, &self.metadata),
            (MediaKind::Video, &self.video_header),
            (MediaKind::Audio, &self.audio_header),
        ];
        for (kind, payload) in headers {
            if let Some(payload) = payload {
                put_tag(&mut out, kind, 0, payload);
            }
        }
        self.tag(&mut out, packet, start);
        out.freeze()
    }

    fn tag(&mut self, out: &mut BytesMut, packet: &Packet, start: u64) {
        let dts = packet.dts.max(start);
        self.last_dts = self.last_dts.max(dts);
        // FLV time is 32-bit milliseconds: a file longer than 49 days wraps, as players expect.
        put_tag(out, packet.kind, (dts - start) as u32, &packet.payload);
    }
}

fn put_tag(out: &mut BytesMut, kind: MediaKind, timestamp: u32, payload: &[u8]) {
    out.put_slice(&tag_header(kind, timestamp, payload.len()));
    out.put_slice(payload);
    out.put_u32(payload.len() as u32 + 11);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(dts: u64, keyframe: bool) -> Packet {
        let body = if keyframe {
            [0x17u8, 1, 0, 0, 0, 0xaa]
        } else {
            [0x27, 1, 0, 0, 0, 0xbb]
        };
        let mut p = Packet::from_flv_body(MediaKind::Video, 0, Bytes::copy_from_slice(&body)).unwrap();
        p.dts = dts;
        p
    }

    fn header(kind: MediaKind) -> Packet {
        let body: &[u8] = match kind {
            MediaKind::Video => &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f],
            _ => &[0xaf, 0, 0x12, 0x10],
        };
        Packet::from_flv_body(kind, 0, Bytes::copy_from_slice(body)).unwrap()
    }

    fn audio(dts: u64) -> Packet {
        let mut p = Packet::from_flv_body(MediaKind::Audio, 0, Bytes::from_static(&[0xaf, 1, 0x21])).unwrap();
        p.dts = dts;
        p
    }

    /// (type, timestamp, payload) of every tag, checking the framing.
    fn tags(file: &[u8]) -> (u8, Vec<(u8, u32, Vec<u8>)>) {
        assert_eq!(&file[..3], b"FLV");
        let flags = file[4];
        let mut rest = &file[13..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            let ts = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
            out.push((rest[0], ts, rest[11..11 + size].to_vec()));
            let prev = u32::from_be_bytes(rest[11 + size..15 + size].try_into().unwrap());
            assert_eq!(prev as usize, size + 11);
            rest = &rest[15 + size..];
        }
        (flags, out)
    }

    #[test]
    fn a_file_starts_at_a_keyframe_with_its_headers_at_zero() {
        let mut w = FlvFileWriter::new();
        let mut file = Vec::new();
        file.extend_from_slice(&w.push(&header(MediaKind::Video)));
        file.extend_from_slice(&w.push(&header(MediaKind::Audio)));
        file.extend_from_slice(&w.push(&video(1000, false))); // no keyframe yet: dropped
        file.extend_from_slice(&w.push(&audio(1010)));
        assert!(file.is_empty() && !w.started());
        file.extend_from_slice(&w.push(&video(1040, true)));
        file.extend_from_slice(&w.push(&audio(1050)));
        file.extend_from_slice(&w.push(&video(1080, false)));
        let (flags, tags) = tags(&file);
        assert_eq!(flags, 0b101, "audio and video");
        let summary: Vec<(u8, u32)> = tags.iter().map(|(k, t, _)| (*k, *t)).collect();
        assert_eq!(summary, vec![(9, 0), (8, 0), (9, 0), (8, 10), (9, 40)]);
        assert_eq!(w.duration_ms(), 40);
    }

    #[test]
    fn an_audio_only_stream_starts_after_a_second_of_audio() {
        let mut w = FlvFileWriter::new();
        let mut file = Vec::new();
        file.extend_from_slice(&w.push(&header(MediaKind::Audio)));
        for i in 0..60 {
            file.extend_from_slice(&w.push(&audio(i * 23)));
        }
        let (flags, tags) = tags(&file);
        assert_eq!(flags, 0b100, "audio only");
        assert_eq!(tags[0].0, 8, "the sequence header first");
        assert!(tags.len() > 10);
    }
}
