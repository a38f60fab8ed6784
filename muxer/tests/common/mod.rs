//! Test helpers shared by the integration tests: the OBS capture decoded into packets.
//!
//! The capture lives in `shared/fixtures` beside the repository (see
//! `/work/shared/fixtures/README.md`); `ESTUARY_FIXTURES_DIR` points elsewhere.

use std::path::PathBuf;

use bytes::BytesMut;
use estuary_protocol::flv::{parse_audio_header, parse_video_header};
use estuary_protocol::rtmp::chunk::{ChunkLimits, ChunkReader};
use estuary_protocol::{Codec, MediaKind, Packet};

const HANDSHAKE_LEN: usize = 1 + 1536 + 1536;
const CAPTURE: &str = "obs-29.0.2-publish.c2s.bin";

pub fn obs_packets() -> Option<Vec<Packet>> {
    let dir = std::env::var_os("ESTUARY_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    // The capture sits in shared/ beside the repository, here and in CI: a missing capture
    // is a broken checkout, not a reason to skip.
    let bytes = std::fs::read(dir.join(CAPTURE)).unwrap_or_else(|e| panic!("{CAPTURE} in {}: {e}", dir.display()));
    let mut buf = BytesMut::from(&bytes[HANDSHAKE_LEN..]);
    let mut reader = ChunkReader::new(ChunkLimits::default());
    let mut packets = Vec::new();
    while let Some(message) = reader.read(&mut buf).expect("the capture is valid rtmp") {
        let kind = match message.type_id {
            8 => MediaKind::Audio,
            9 => MediaKind::Video,
            _ => continue,
        };
        let mut packet = Packet::new(kind, u64::from(message.timestamp), message.payload.clone());
        packet.arrival_ms = 1_700_000_000_000 + packet.dts;
        if kind == MediaKind::Video {
            let header = parse_video_header(&message.payload).expect("obs video tag");
            packet.codec = Codec::Video(header.codec);
            packet.keyframe = header.keyframe;
            packet.seq_header = header.seq_header;
            packet.cts = header.cts;
            packet.body_offset = header.header_len;
        } else {
            let header = parse_audio_header(&message.payload).expect("obs audio tag");
            packet.codec = Codec::Audio(header.codec);
            packet.seq_header = header.seq_header;
            packet.body_offset = header.header_len;
        }
        packets.push(packet);
    }
    Some(packets)
}
