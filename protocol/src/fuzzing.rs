//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer). Not part of the API:
//! hidden from the docs, and free to change with the targets.
//!
//! Each function hands arbitrary bytes to one parser the way Estuary does with a peer's bytes,
//! and must return, whatever the bytes, without panicking (a panic is what the fuzzer reports).
//! A few also check a property every input must keep (a chunk stream reads the same however
//! TCP splits it; an ADTS header reads back as written). The fuzz targets are one line each
//! around these, and the tests below replay the committed seeds (`fuzz/seeds/<target>/`) and
//! every input the fuzzer ever crashed on (`fuzz/regressions/<target>/`) through them, so CI
//! exercises both on the stable toolchain.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use crate::codec::aac::{parse_adts_header, AudioSpecificConfig};
use crate::codec::av1::{obus, Av1Config};
use crate::codec::avc::{annexb_nal_units, avcc_to_annexb, nal_units, AvcDecoderConfig, SpsInfo};
use crate::codec::hevc::{HevcDecoderConfig, HevcSpsInfo};
use crate::codec::opus::OpusHead;
use crate::codec::vp9::Vp9Config;
use crate::flv::tag::{AudioCodec, VideoCodec};
use crate::media::{Codec, MediaKind, Packet};
use crate::rtmp::amf_guard;
use crate::rtmp::chunk::{ChunkError, ChunkLimits, ChunkReader, RawMessage};
use crate::rtmp::chunker::chunk_message;
use crate::rtmp::session::{ServerSession, SessionConfig, SessionEvent, MAX_AMF_DEPTH};
use rml_rtmp::rml_amf0::{self, Amf0Value};

/// Limits small enough that the fuzzer reaches them (the server's defaults are larger).
fn fuzz_limits() -> ChunkLimits {
    ChunkLimits {
        max_message_bytes: 256 * 1024,
        ..ChunkLimits::default()
    }
}

/// `rtmp_chunk`: the bytes after the handshake, through the chunk reader. The first byte
/// picks the size of the reads the bytes arrive in (1 to 64); the messages and the error must
/// be the same as when everything arrives at once.
pub fn rtmp_chunk(data: &[u8]) {
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let whole = read_messages(stream, stream.len().max(1));
    let split = read_messages(stream, usize::from(step % 64) + 1);
    assert_eq!(whole, split, "the messages depend on how the bytes were split");
}

/// Reads `stream` arriving `step` bytes at a time; the messages, and the error that ended it.
fn read_messages(stream: &[u8], step: usize) -> (Vec<RawMessage>, Option<ChunkError>) {
    let mut reader = ChunkReader::new(fuzz_limits());
    let mut buf = BytesMut::new();
    let mut messages = Vec::new();
    for piece in stream.chunks(step) {
        buf.extend_from_slice(piece);
        loop {
            match reader.read(&mut buf) {
                Ok(Some(msg)) => {
                    // Abort: what the session does with it.
                    if msg.type_id == 2 && msg.payload.len() >= 4 {
                        let p = &msg.payload;
                        reader.abort(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                    }
                    messages.push(msg);
                }
                Ok(None) => break,
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}

/// `amf0_command`: one message body through the server session. The first byte picks the
/// message type (mostly AMF0 command 20, also data 18, AMF3 command 17, User Control 4 and
/// Window Acknowledgement Size 5); the rest is its payload, chunked as a peer would send it.
/// Every decision the session asks for is answered, so replies are serialised too. The
/// payload is also checked as AMF0: the depth walk must not see less nesting than the parser
/// builds.
pub fn amf0_command(data: &[u8]) {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    amf_depth_is_not_underestimated(payload);
    let type_id = [20, 20, 20, 18, 18, 17, 4, 5][usize::from(selector & 7)];
    let accept = selector & 0x80 == 0;
    let mut session = ServerSession::new(SessionConfig {
        limits: fuzz_limits(),
        out_chunk_size: 4096,
    });
    let chunks = chunk_message(3, type_id, 0, 1, payload, 128);
    let mut buf = BytesMut::from(&chunks[..]);
    let Ok(events) = session.handle_input(&mut buf, chunks.len()) else {
        return;
    };
    for event in events {
        let _ = match event {
            SessionEvent::Connect(_) if accept => session.accept_connect(),
            SessionEvent::Connect(info) => session.reject_connect(&info.app),
            SessionEvent::Publish { stream_id, stream } if accept => session.accept_publish(stream_id, &stream.name),
            SessionEvent::Play { stream_id, stream } if accept => session
                .accept_play(stream_id, &stream.name)
                .and_then(|()| session.send_play_end(stream_id, &stream.name)),
            SessionEvent::Publish { stream_id, stream } | SessionEvent::Play { stream_id, stream } => {
                session.reject_play(stream_id, "NetStream.Play.Failed", &stream.query)
            }
            _ => Ok(()),
        };
    }
    let _ = session.take_outbound();
}

/// The depth walk run before `rml_amf0` (whose recursion a deep message would overflow) must
/// see at least the nesting the parser builds, or a peer could hide nesting from it.
fn amf_depth_is_not_underestimated(payload: &[u8]) {
    let walked = amf_guard::max_depth(payload, MAX_AMF_DEPTH);
    if walked > MAX_AMF_DEPTH {
        return;
    }
    if let Ok(values) = rml_amf0::deserialize(&mut &payload[..]) {
        let built = values.iter().map(amf_depth).max().unwrap_or(0);
        assert!(built <= walked, "rml_amf0 built nesting {built}, the walk saw {walked}");
    }
}

fn amf_depth(value: &Amf0Value) -> usize {
    match value {
        Amf0Value::Object(map) => 1 + map.values().map(amf_depth).max().unwrap_or(0),
        Amf0Value::StrictArray(values) => 1 + values.iter().map(amf_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// `flv_tag`: an FLV file (`FLV` signature: every tag in it), or else one tag body whose kind
/// the first byte picks; each body goes where the server sends a publisher's tag: the tag
/// header parser, then the codec record or the NAL unit walk, then the framing for viewers.
pub fn flv_tag(data: &[u8]) {
    if data.starts_with(b"FLV") {
        for (kind, timestamp, body) in flv_file_tags(data) {
            tag_body(kind, timestamp, body);
        }
    } else if let Some((&selector, body)) = data.split_first() {
        let kind = [MediaKind::Video, MediaKind::Audio, MediaKind::Script][usize::from(selector % 3)];
        tag_body(kind, 0, body);
    }
}

/// The audio, video and script tags of an FLV file, up to the first one that does not fit.
fn flv_file_tags(data: &[u8]) -> Vec<(MediaKind, u32, &[u8])> {
    let mut tags = Vec::new();
    let Some(offset) = data.get(5..9) else {
        return tags;
    };
    // DataOffset, then PreviousTagSize0.
    let mut pos = u32::from_be_bytes([offset[0], offset[1], offset[2], offset[3]]) as usize + 4;
    while let Some(head) = data.get(pos..pos + 11) {
        let len = (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
        let timestamp = u32::from_be_bytes([head[7], head[4], head[5], head[6]]);
        let Some(body) = data.get(pos + 11..pos + 11 + len) else {
            break;
        };
        let kind = match head[0] & 0x1f {
            8 => Some(MediaKind::Audio),
            9 => Some(MediaKind::Video),
            18 => Some(MediaKind::Script),
            _ => None,
        };
        if let Some(kind) = kind {
            tags.push((kind, timestamp, body));
        }
        pos += 11 + len + 4;
    }
    tags
}

fn tag_body(kind: MediaKind, timestamp: u32, body: &[u8]) {
    let Ok(packets) = Packet::from_flv_message(kind, timestamp, Bytes::copy_from_slice(body)) else {
        return;
    };
    for packet in packets {
        packet_body(&packet);
    }
}

/// One packet of a tag: its codec data where a packager reads it, then its framing.
fn packet_body(packet: &Packet) {
    // A rewritten Multitrack or ModEx packet is a plain tag of its track: it parses again
    // as the same thing.
    if let Ok(again) = Packet::from_flv_body(packet.kind, 0, packet.payload.clone()) {
        assert_eq!(
            (again.codec, again.seq_header, again.keyframe, again.no_frame, again.cts),
            (
                packet.codec,
                packet.seq_header,
                packet.keyframe,
                packet.no_frame,
                packet.cts
            ),
            "a plain tag does not read back as the packet it was made from"
        );
        assert_eq!(again.body(), packet.body());
    }
    let _ = packet.pts();
    let data = packet.body();
    match packet.codec {
        Codec::Video(VideoCodec::Avc) if packet.seq_header => {
            if let Ok(config) = AvcDecoderConfig::parse(&data) {
                avc_config(&config);
            }
        }
        Codec::Video(VideoCodec::Hevc) if packet.seq_header => {
            if let Ok(config) = HevcDecoderConfig::parse(&data) {
                let _ = config.sps_info();
            }
        }
        Codec::Video(VideoCodec::Av1) if !packet.seq_header => {
            let _ = obus(&data, 0).count();
        }
        Codec::Video(VideoCodec::Avc | VideoCodec::Hevc) if !packet.no_frame => {
            let mut annexb = BytesMut::new();
            let _ = avcc_to_annexb(&data, 4, &mut annexb);
        }
        Codec::Audio(AudioCodec::Aac) if packet.seq_header => {
            if let Ok(config) = AudioSpecificConfig::parse(&data) {
                adts_round_trip(&config, data.len());
            }
        }
        _ => {}
    }
    let _ = packet.flv_tag();
    let _ = packet.rtmp_chunks(4096);
}

/// `codec_config`: the same bytes as an AVC, HEVC, AAC, AV1, VP9 and Opus configuration
/// record, as an AVC and HEVC sequence parameter set, as an ADTS header, and as AVCC and
/// Annex-B NAL units.
pub fn codec_config(data: &[u8]) {
    if let Ok(config) = AvcDecoderConfig::parse(data) {
        avc_config(&config);
        for length_size in 1..=4 {
            let _ = nal_units(data, length_size).count();
        }
    }
    if let Ok(sps) = SpsInfo::parse(data) {
        let _ = (sps.profile_name(), sps.level_name());
    }
    if let Ok(config) = HevcDecoderConfig::parse(data) {
        let _ = config.sps_info();
    }
    let _ = HevcSpsInfo::parse(data);
    if let Ok(config) = AudioSpecificConfig::parse(data) {
        let _ = (config.codec_string(), config.samples_per_frame());
        adts_round_trip(&config, data.len());
    }
    let _ = parse_adts_header(data);
    let _ = annexb_nal_units(data).count();
    if let Ok(config) = HevcDecoderConfig::parse(data) {
        let _ = config.codecs_string();
    }
    if let Ok(config) = Av1Config::parse(data) {
        let _ = (config.codecs_string(), config.bit_depth());
    }
    if let Ok(config) = Vp9Config::parse(data) {
        let _ = config.codecs_string();
        // VP9 carries no codec initialization data (its size must be 0): a record that
        // claims some is read, and what we write leaves it out.
        assert_eq!(
            Vp9Config::parse(&config.vpcc_body()),
            Ok(Vp9Config {
                codec_init_data_len: 0,
                ..config
            }),
            "a vpcC we wrote reads back"
        );
    }
    if let Ok(head) = OpusHead::parse(data) {
        let dops = head.dops_body();
        assert_eq!(OpusHead::parse(&dops), Ok(head), "a dOps we wrote reads back");
    }
}

fn avc_config(config: &AvcDecoderConfig) {
    let _ = config.codec_string();
    if let Ok(sps) = config.sps_info() {
        let _ = (sps.profile_name(), sps.level_name());
    }
}

/// An ADTS header made from a config reads back as that config.
fn adts_round_trip(config: &AudioSpecificConfig, frame_len: usize) {
    let Ok(header) = config.adts_header(frame_len) else {
        return;
    };
    let parsed = parse_adts_header(&header);
    assert!(parsed.is_ok(), "an ADTS header we wrote does not parse: {parsed:?}");
    let Ok(parsed) = parsed else { return };
    assert_eq!(parsed.profile + 1, config.object_type);
    assert_eq!(parsed.sampling_frequency_index, config.sampling_frequency_index);
    assert_eq!(parsed.channel_config, config.channel_config);
    assert_eq!(parsed.frame_len, frame_len + 7);
}

/// Every committed input of fuzz target `target`: its seeds (`fuzz/seeds/<target>/`) and
/// the inputs it once crashed on (`fuzz/regressions/<target>/`), sorted by path. For the
/// replay tests of each crate.
pub fn committed_inputs(target: &str) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = Vec::new();
    for dir in ["seeds", "regressions"] {
        let dir = fuzz.join(dir).join(target);
        if !dir.exists() {
            continue;
        }
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_file() && path.extension() != Some(OsStr::new("md")) {
                let bytes = std::fs::read(&path)?;
                inputs.push((path, bytes));
            }
        }
    }
    inputs.sort();
    Ok(inputs)
}

/// Runs every committed input of `target` through `entry`; the paths of those that panic,
/// and how many ran.
pub fn replay(target: &str, entry: fn(&[u8])) -> std::io::Result<(Vec<PathBuf>, usize)> {
    let inputs = committed_inputs(target)?;
    let panicked = inputs
        .iter()
        .filter(|(_, bytes)| std::panic::catch_unwind(|| entry(bytes)).is_err())
        .map(|(path, _)| path.clone())
        .collect();
    Ok((panicked, inputs.len()))
}

#[cfg(test)]
mod tests {
    /// Replays `target`'s seeds and regressions; there must be seeds, and none may panic.
    fn replay(target: &str, entry: fn(&[u8])) {
        let (panicked, count) = super::replay(target, entry).unwrap();
        assert!(count > 0, "no committed inputs for fuzz target {target}");
        assert!(panicked.is_empty(), "{target}: these inputs panic: {panicked:?}");
    }

    #[test]
    fn rtmp_chunk_corpus_replays() {
        replay("rtmp_chunk", super::rtmp_chunk);
    }

    #[test]
    fn amf0_command_corpus_replays() {
        replay("amf0_command", super::amf0_command);
    }

    #[test]
    fn flv_tag_corpus_replays() {
        replay("flv_tag", super::flv_tag);
    }

    #[test]
    fn codec_config_corpus_replays() {
        replay("codec_config", super::codec_config);
    }
}
