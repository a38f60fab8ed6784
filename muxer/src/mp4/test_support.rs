//! Packets and files for the tests of this module.

use std::io::Cursor;

use bytes::{BufMut, BytesMut};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};

use super::writer::{Fmp4Event, Fmp4Writer, Fmp4WriterConfig};

/// OBS 29.0.2's AVC sequence header (High 3.1, 1280x720) and AAC config (44.1 kHz stereo).
pub(crate) const OBS_AVC_RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1c, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01,
    0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb, 0x01, 0x00,
    0x04, 0x68, 0xef, 0xbc, 0xb0,
];
pub(crate) const OBS_AAC_CONFIG: &[u8] = &[0x12, 0x10, 0x56, 0xe5, 0x00];
/// The sequence starts ffmpeg 9 sends for AV1 (libaom, 160x90), VP9 (libvpx, 4:2:0 8 bit)
/// and Opus (libopus, mono), after their FourCC, and the first bytes of its VP9 key frame.
pub(crate) const FFMPEG_AV1C: &[u8] = &[
    0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x03, 0xb4, 0xfd, 0x93, 0x6b, 0xe4, 0x01,
];
pub(crate) const FFMPEG_VPCC: &[u8] = &[1, 0, 0, 0, 0, 0x0a, 0x82, 2, 2, 2, 0, 0];
pub(crate) const FFMPEG_OPUS_HEAD: &[u8] = &[
    b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 1, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0,
];
pub(crate) const VP9_KEYFRAME: &[u8] = &[0x82, 0x49, 0x83, 0x42, 0x00, 0x09, 0xf0, 0x05, 0x96, 0x06, 0x38, 0x24];
/// A 48 kHz mono AAC LC config.
pub(crate) const AAC_48K_MONO: &[u8] = &[0x11, 0x88];

fn packet(kind: MediaKind, dts: u64, header: &[u8], body: &[u8]) -> Packet {
    let mut payload = BytesMut::new();
    payload.put_slice(header);
    payload.put_slice(body);
    let mut packet = Packet::new(kind, dts, payload.freeze());
    packet.body_offset = header.len();
    packet.codec = match kind {
        MediaKind::Video => Codec::Video(VideoCodec::Avc),
        MediaKind::Audio => Codec::Audio(AudioCodec::Aac),
        MediaKind::Script => Codec::None,
    };
    packet
}

pub(crate) fn video_header(record: &[u8]) -> Packet {
    let mut p = packet(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0], record);
    p.seq_header = true;
    p
}

pub(crate) fn audio_header(config: &[u8]) -> Packet {
    let mut p = packet(MediaKind::Audio, 0, &[0xaf, 0], config);
    p.seq_header = true;
    p
}

/// A video frame whose body is one length-prefixed NAL unit of `size` bytes, each byte
/// derived from `dts` so that samples can be told apart.
pub(crate) fn video_frame(dts: u64, cts: i32, keyframe: bool, size: usize) -> Packet {
    let mut body = (size as u32).to_be_bytes().to_vec();
    body.push(if keyframe { 0x65 } else { 0x41 });
    body.extend((1..size).map(|i| (dts as usize + i) as u8));
    let mut p = packet(
        MediaKind::Video,
        dts,
        &[if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0],
        &body,
    );
    p.cts = cts;
    p.keyframe = keyframe;
    p
}

pub(crate) fn audio_frame(dts: u64, size: usize) -> Packet {
    let body: Vec<u8> = (0..size).map(|i| (dts as usize * 7 + i) as u8).collect();
    packet(MediaKind::Audio, dts, &[0xaf, 1], &body)
}

/// `seconds` of 30 fps video (keyframe every `gop` frames, B-frame-like composition offsets)
/// and 44.1 kHz AAC frames, interleaved by dts, after both sequence headers.
pub(crate) fn av_stream(seconds: u64, gop: u64) -> Vec<Packet> {
    let mut packets = vec![video_header(OBS_AVC_RECORD), audio_header(OBS_AAC_CONFIG)];
    let mut frames: Vec<Packet> = Vec::new();
    let video_frames = seconds * 30;
    for i in 0..video_frames {
        let dts = i * 1000 / 30;
        let cts = if i % gop == 0 {
            67
        } else {
            [33, 100, 0][(i % 3) as usize]
        };
        frames.push(video_frame(dts, cts, i % gop == 0, 200 + (i as usize * 37) % 900));
    }
    let audio_frames = seconds * 44100 / 1024;
    for i in 0..audio_frames {
        frames.push(audio_frame(i * 1024 * 1000 / 44100, 100 + (i as usize * 13) % 300));
    }
    frames.sort_by_key(|p| p.dts);
    packets.extend(frames);
    packets
}

/// Every event of a writer fed `packets` and finished.
pub(crate) fn events(config: Fmp4WriterConfig, packets: &[Packet]) -> Vec<Fmp4Event> {
    let mut writer = Fmp4Writer::new(config);
    let mut out = Vec::new();
    for p in packets {
        writer.push(p).expect("test packets are accepted");
        out.extend(std::iter::from_fn(|| writer.poll_event()));
    }
    writer.finish();
    out.extend(std::iter::from_fn(|| writer.poll_event()));
    out
}

/// The file the events of one writer make (the first init segment and every fragment).
pub(crate) fn file_of(events: &[Fmp4Event]) -> Vec<u8> {
    let mut file = Vec::new();
    for event in events {
        match event {
            Fmp4Event::Init(init) => {
                assert!(file.is_empty(), "one file expected");
                file.extend_from_slice(&init.data);
            }
            Fmp4Event::Fragment(f) => file.extend_from_slice(&f.to_bytes()),
        }
    }
    file
}

pub(crate) fn fragmented(packets: &[Packet]) -> Vec<u8> {
    file_of(&events(Fmp4WriterConfig::default(), packets))
}

pub(crate) fn mp4_reader(file: &[u8]) -> mp4::Mp4Reader<Cursor<&[u8]>> {
    mp4::Mp4Reader::read_header(Cursor::new(file), file.len() as u64).expect("the mp4 crate reads it")
}
