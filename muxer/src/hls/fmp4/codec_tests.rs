//! fMP4 HLS of the Enhanced RTMP codecs: the init section and segments of AV1 + Opus and
//! VP9 + Opus streams, with the sequence starts ffmpeg 9 sends, read back by ffprobe (which
//! knows `av01`, `vp09` and `Opus`) and, for VP9, by the `mp4` crate (which knows `vp09` but
//! neither `av01` nor `Opus`).

use std::process::Command;

use bytes::{BufMut, Bytes, BytesMut};
use estuary_protocol::flv::tag::{AudioCodec, VideoCodec};
use estuary_protocol::{Codec, MediaKind, Packet};
use serde_json::Value;

use super::*;
use crate::mp4::test_support::{mp4_reader, FFMPEG_AV1C, FFMPEG_OPUS_HEAD, FFMPEG_VPCC, VP9_KEYFRAME};

const VIDEO_FRAMES: u64 = 45; // 3 s at 15 fps, a keyframe each second
const OPUS_FRAMES: u64 = 150; // 3 s of 20 ms frames

fn packet(codec: Codec, dts: u64, body: &[u8]) -> Packet {
    let kind = match codec {
        Codec::Audio(_) => MediaKind::Audio,
        _ => MediaKind::Video,
    };
    // A 5-byte Enhanced RTMP header (its content is not read by the packager).
    let mut payload = BytesMut::new();
    payload.put_slice(&[0x90, 0, 0, 0, 0]);
    payload.put_slice(body);
    let mut p = Packet::new(kind, dts, payload.freeze());
    p.body_offset = 5;
    p.codec = codec;
    p
}

/// A stream as ffmpeg 9 publishes it: the sequence starts, then `VIDEO_FRAMES` frames made
/// by `frame(index, keyframe)` and Opus frames, interleaved by DTS.
fn stream(codec: VideoCodec, record: &[u8], frame: impl Fn(u64, bool) -> Vec<u8>) -> Vec<Packet> {
    let video = Codec::Video(codec);
    let opus = Codec::Audio(AudioCodec::Opus);
    let mut packets = Vec::new();
    if codec == VideoCodec::Av1 {
        // ffmpeg's placeholder before the encoder's record.
        let mut empty = packet(video, 0, &[]);
        empty.seq_header = true;
        packets.push(empty);
    }
    for (codec, record) in [(video, record), (opus, FFMPEG_OPUS_HEAD)] {
        let mut p = packet(codec, 0, record);
        p.seq_header = true;
        packets.push(p);
    }
    let mut frames = Vec::new();
    for i in 0..VIDEO_FRAMES {
        let keyframe = i % 15 == 0;
        let mut p = packet(video, i * 1000 / 15, &frame(i, keyframe));
        p.keyframe = keyframe;
        frames.push(p);
    }
    for i in 0..OPUS_FRAMES {
        frames.push(packet(opus, i * 20, &[0x78; 60]));
    }
    frames.sort_by_key(|p| p.dts);
    packets.extend(frames);
    packets
}

/// The init section followed by every segment, as a player joins them.
fn hls_file(packets: &[Packet]) -> (InitSection, Vec<u8>) {
    let mut segmenter = Fmp4Segmenter::new(Fmp4SegmenterConfig {
        fragment_ms: 1000,
        part_ms: None,
        ..Fmp4SegmenterConfig::default()
    });
    let mut out = Vec::new();
    for p in packets {
        segmenter.push(p).expect("test packets are accepted");
        out.extend(std::iter::from_fn(|| segmenter.poll()));
    }
    segmenter.finish();
    out.extend(std::iter::from_fn(|| segmenter.poll()));
    let mut init = None;
    let mut file = Vec::new();
    for o in out {
        match o {
            Fmp4Output::Init(i) => {
                assert!(init.is_none(), "one init section: {:?}", i.codecs);
                file.extend_from_slice(&i.data);
                init = Some(i);
            }
            Fmp4Output::Segment(s) => {
                assert!(!s.discontinuity, "segment {} is discontinuous", s.sequence);
                file.extend_from_slice(&s.data);
            }
            Fmp4Output::Part(_) => {}
        }
    }
    (init.expect("an init section"), file)
}

/// `ffprobe -show_streams -show_packets` of `file`, as JSON.
fn ffprobe(name: &str, file: &[u8]) -> Value {
    let path = std::env::temp_dir().join(format!("estuary-{}-{name}.mp4", std::process::id()));
    std::fs::write(&path, file).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-show_packets", "-of", "json"])
        .arg(&path)
        .output()
        .expect("ffprobe runs (bash scripts/install-test-deps.sh installs it)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream_of<'a>(probe: &'a Value, codec_type: &str) -> &'a Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == codec_type)
        .unwrap_or_else(|| panic!("no {codec_type} stream: {probe}"))
}

/// Packets of stream `index`: (pts, size).
fn packets_of(probe: &Value, index: u64) -> Vec<(i64, usize)> {
    let field = |p: &Value, k: &str| {
        p[k].as_i64()
            .or_else(|| p[k].as_str()?.parse().ok())
            .unwrap_or_else(|| panic!("packet without {k}: {p}"))
    };
    probe["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["stream_index"] == index)
        .map(|p| (field(p, "pts"), field(p, "size") as usize))
        .collect()
}

/// The Opus track: 48 kHz timescale, a frame every 960 ticks (20 ms).
fn assert_opus(probe: &Value) {
    let audio = stream_of(probe, "audio");
    assert_eq!(audio["codec_name"], "opus", "{audio}");
    assert_eq!(audio["time_base"], "1/48000");
    assert_eq!(
        (audio["sample_rate"].as_str(), audio["channels"].as_i64()),
        (Some("48000"), Some(1))
    );
    let packets = packets_of(probe, audio["index"].as_u64().unwrap());
    assert_eq!(packets.len(), OPUS_FRAMES as usize);
    for (i, (pts, size)) in packets.iter().enumerate() {
        assert_eq!((*pts, *size), (i as i64 * 960, 60), "opus packet {i}");
    }
}

#[test]
fn av1_and_opus_segments_read_back_through_ffprobe() {
    // Each temporal unit as ffmpeg sends it: a temporal delimiter, then (key frames) the
    // sequence header, then a frame OBU.
    let frame = |i: u64, keyframe: bool| {
        let mut f = vec![0x12, 0x00];
        if keyframe {
            f.extend_from_slice(&FFMPEG_AV1C[4..]);
        }
        f.extend_from_slice(&[0x32, 20]);
        f.extend((0..20).map(|b| (i + b) as u8));
        f
    };
    let (init, file) = hls_file(&stream(VideoCodec::Av1, FFMPEG_AV1C, frame));
    assert_eq!(init.codecs, "av01.0.00M.08,Opus");
    assert_eq!((init.width, init.height), (160, 90));
    let probe = ffprobe("av1", &file);
    let video = stream_of(&probe, "video");
    assert_eq!(video["codec_name"], "av1", "{video}");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(160), Some(90))
    );
    let packets = packets_of(&probe, video["index"].as_u64().unwrap());
    assert_eq!(packets.len(), VIDEO_FRAMES as usize);
    // 15 fps at 90 kHz; the samples lost their 2-byte temporal delimiter.
    for (i, (pts, size)) in packets.iter().enumerate() {
        let keyframe = i % 15 == 0;
        assert_eq!(*pts, (i as i64 * 1000 / 15) * 90, "av1 packet {i}");
        assert_eq!(*size, frame(i as u64, keyframe).len() - 2, "av1 packet {i}");
    }
    assert_opus(&probe);
}

#[test]
fn vp9_and_opus_segments_read_back_through_ffprobe_and_the_mp4_crate() {
    let frame = |i: u64, keyframe: bool| {
        let mut f = if keyframe {
            VP9_KEYFRAME.to_vec()
        } else {
            vec![0x86, 0x00, 0x40, 0x92]
        };
        f.extend((0..30).map(|b| (i * 3 + b) as u8));
        f
    };
    let packets = stream(VideoCodec::Vp9, FFMPEG_VPCC, frame);
    let (init, file) = hls_file(&packets);
    assert_eq!(init.codecs, "vp09.00.10.08.01.02.02.02.00,Opus");
    assert_eq!((init.width, init.height), (160, 90));

    let probe = ffprobe("vp9", &file);
    let video = stream_of(&probe, "video");
    assert_eq!(video["codec_name"], "vp9", "{video}");
    assert_eq!(
        (video["width"].as_i64(), video["height"].as_i64()),
        (Some(160), Some(90))
    );
    let sizes: Vec<usize> = packets_of(&probe, video["index"].as_u64().unwrap())
        .iter()
        .map(|p| p.1)
        .collect();
    let sent: Vec<usize> = (0..VIDEO_FRAMES).map(|i| frame(i, i % 15 == 0).len()).collect();
    assert_eq!(sizes, sent);
    assert_opus(&probe);

    let reader = mp4_reader(&file);
    let track = reader.tracks().get(&1).expect("video track 1");
    assert_eq!(track.media_type().unwrap(), mp4::MediaType::VP9);
    assert_eq!((track.width(), track.height()), (160, 90));
    let vp09 = track.trak.mdia.minf.stbl.stsd.vp09.as_ref().unwrap();
    assert_eq!((vp09.vpcc.profile, vp09.vpcc.level, vp09.vpcc.bit_depth), (0, 10, 8));
    assert_eq!(reader.moofs.len(), 3, "a fragment per second");
    let tfdts: Vec<u64> = reader
        .moofs
        .iter()
        .map(|m| m.trafs[0].tfdt.as_ref().unwrap().base_media_decode_time)
        .collect();
    assert_eq!(tfdts, [0, 90_000, 180_000]);
}

#[test]
fn a_vp9_stream_waits_for_a_key_frame_to_learn_its_size() {
    let mut packets = stream(VideoCodec::Vp9, FFMPEG_VPCC, |i, keyframe| {
        let mut f = if keyframe {
            VP9_KEYFRAME.to_vec()
        } else {
            vec![0x86, 0x00, 0x40, 0x92]
        };
        f.push(i as u8);
        f
    });
    // Joined mid-GOP: an inter frame before the first key frame.
    packets.insert(2, packet(Codec::Video(VideoCodec::Vp9), 0, &[0x86, 0x00, 0x40, 0x92]));
    let mut segmenter = Fmp4Segmenter::new(Fmp4SegmenterConfig::default());
    for p in &packets {
        segmenter.push(p).unwrap();
    }
    let init = std::iter::from_fn(|| segmenter.poll())
        .find_map(|o| match o {
            Fmp4Output::Init(i) => Some(i),
            _ => None,
        })
        .expect("an init section");
    assert_eq!((init.width, init.height), (160, 90));
    // The same record again is no new configuration.
    let mut again = packet(Codec::Video(VideoCodec::Vp9), 3000, FFMPEG_VPCC);
    again.seq_header = true;
    segmenter.push(&again).unwrap();
    let mut next = packet(Codec::Video(VideoCodec::Vp9), 3010, &[0x86, 0x00, 0x40, 0x92]);
    next.dts = 3010;
    segmenter.push(&next).unwrap();
    assert_eq!(segmenter.stats().init_sections, 1);
    assert!(!std::iter::from_fn(|| segmenter.poll()).any(|o| matches!(o, Fmp4Output::Init(_))));
}

#[test]
fn an_av1_temporal_delimiter_is_sliced_off_without_a_copy() {
    let track = crate::mp4::VideoTrack::from_sequence_header(VideoCodec::Av1, Bytes::from_static(FFMPEG_AV1C)).unwrap();
    let frame = Bytes::from_static(&[0x12, 0x00, 0x32, 0x01, 0xaa]);
    let sample = track.sample(frame.clone());
    assert_eq!(&sample[..], &[0x32, 0x01, 0xaa]);
    assert_eq!(sample.as_ptr(), frame[2..].as_ptr());
    // No delimiter: the frame as it is.
    assert_eq!(track.sample(sample.clone()), sample);
}
