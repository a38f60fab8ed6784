//! The MPEG-TS reader against real streams: the OBS capture packaged by our own segmenter
//! and read back (a round trip), and files ffmpeg writes with libx264, libx265 and AAC.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::obs_packets;
use estuary_muxer::ts::{TsReader, TsReaderLimits};
use estuary_muxer::{HlsSegmenter, HlsSegmenterConfig};
use estuary_protocol::codec::{AudioSpecificConfig, AvcDecoderConfig, HevcDecoderConfig};
use estuary_protocol::{MediaKind, Packet};

fn read_all(chunks: &[&[u8]], split: usize) -> (Vec<Packet>, u64) {
    let mut reader = TsReader::new(TsReaderLimits::default());
    let mut out = Vec::new();
    for chunk in chunks {
        for piece in chunk.chunks(split) {
            reader.push(piece);
            while let Some(p) = reader.next_packet() {
                out.push(p);
            }
        }
    }
    reader.flush();
    while let Some(p) = reader.next_packet() {
        out.push(p);
    }
    (out, reader.skipped())
}

/// NAL unit types of an AVCC frame body.
fn avc_nal_types(body: &[u8]) -> Vec<u8> {
    estuary_protocol::codec::avc::nal_units(body, 4)
        .map(|n| n.expect("avcc")[0] & 0x1f)
        .collect()
}

#[test]
fn obs_capture_round_trips_through_our_writer_and_reader() {
    let Some(packets) = obs_packets() else { return };
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let mut segments = Vec::new();
    for packet in &packets {
        segmenter.push(packet).expect("obs packets are accepted");
        while let Some(s) = segmenter.poll_segment() {
            segments.push(s.data);
        }
    }
    segmenter.finish();
    while let Some(s) = segmenter.poll_segment() {
        segments.push(s.data);
    }
    let chunks: Vec<&[u8]> = segments.iter().map(|s| &s[..]).collect();
    // Whole segments, and the same bytes in odd pieces, read the same.
    let (read, skipped) = read_all(&chunks, usize::MAX);
    let (pieces, _) = read_all(&chunks, 1000);
    assert_eq!(skipped, 0);
    assert_eq!(read.len(), pieces.len());

    let original = |kind| {
        packets
            .iter()
            .filter(move |p: &&Packet| p.kind == kind && !p.seq_header)
    };
    let back = |kind| read.iter().filter(move |p: &&Packet| p.kind == kind && !p.seq_header);

    // Video: the same frames, keyframes, spacing and composition offsets; the body is the
    // original's NAL units less the parameter sets, delimiters and filler the reader moves
    // into the sequence header or drops.
    let (v0, v1): (Vec<_>, Vec<_>) = (original(MediaKind::Video).collect(), back(MediaKind::Video).collect());
    assert_eq!(v0.len(), v1.len(), "video frames");
    for (a, b) in v0.iter().zip(&v1) {
        assert_eq!((a.keyframe, a.cts), (b.keyframe, b.cts));
        assert_eq!(b.dts - v1[0].dts, a.dts - v0[0].dts);
        let kept: Vec<u8> = avc_nal_types(&a.body())
            .into_iter()
            .filter(|t| ![7, 8, 9, 12].contains(t))
            .collect();
        assert_eq!(avc_nal_types(&b.body()), kept);
    }
    let config_in = packets.iter().find(|p| p.is_video() && p.seq_header).unwrap();
    let config_out = read.iter().find(|p| p.is_video() && p.seq_header).unwrap();
    let (a, b) = (
        AvcDecoderConfig::parse(&config_in.body()).unwrap(),
        AvcDecoderConfig::parse(&config_out.body()).unwrap(),
    );
    assert_eq!((a.sps, a.pps), (b.sps, b.pps));
    assert!(read[0].seq_header || read[1].seq_header, "sequence headers come first");

    // Audio: the same raw frames, byte for byte, at the same spacing (to the millisecond),
    // and the same configuration (ObS's 5-byte form comes back as the 2-byte one).
    let (a0, a1): (Vec<_>, Vec<_>) = (original(MediaKind::Audio).collect(), back(MediaKind::Audio).collect());
    assert_eq!(a0.len(), a1.len(), "audio frames");
    for (a, b) in a0.iter().zip(&a1) {
        assert_eq!(a.body(), b.body());
        let (da, db) = (a.dts - a0[0].dts, b.dts - a1[0].dts);
        assert!(da.abs_diff(db) <= 1, "audio at {da} ms came back at {db} ms");
    }
    let asc = |p: &Packet| AudioSpecificConfig::parse(&p.body()).unwrap();
    let (a, b) = (
        asc(packets.iter().find(|p| p.is_audio() && p.seq_header).unwrap()),
        asc(read.iter().find(|p| p.is_audio() && p.seq_header).unwrap()),
    );
    assert_eq!(
        (a.object_type, a.sampling_frequency, a.channel_config),
        (b.object_type, b.sampling_frequency, b.channel_config)
    );
}

/// Writes `seconds` of test pattern and tone as MPEG-TS with ffmpeg; `None` (and a note) if
/// ffmpeg is not installed.
fn ffmpeg_ts(name: &str, video_codec: &str, seconds: u32) -> Option<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x240:rate=25:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:sample_rate=48000:duration={seconds}"))
        .args(["-c:v", video_codec, "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"])
        .args(["-x265-params", "log-level=error", "-c:a", "aac", "-f", "mpegts"])
        .arg(&file)
        .status();
    match status {
        Ok(s) if s.success() => Some(std::fs::read(&file).expect("ffmpeg wrote the file")),
        Ok(s) => panic!("ffmpeg {video_codec} failed: {s}"),
        Err(e) => {
            eprintln!("ffmpeg not run ({e}); skipped");
            None
        }
    }
}

fn check_ffmpeg_stream(read: &[Packet], seconds: u64) {
    let video: Vec<_> = read.iter().filter(|p| p.is_video() && !p.seq_header).collect();
    let audio: Vec<_> = read.iter().filter(|p| p.is_audio() && !p.seq_header).collect();
    assert_eq!(video.len() as u64, 25 * seconds, "every frame");
    assert!(video[0].keyframe);
    assert_eq!(video.iter().filter(|p| p.keyframe).count() as u64, seconds);
    // 48 kHz AAC: 1024 samples a frame; ffmpeg adds a frame of priming.
    let frames = audio.len() as u64;
    assert!(
        (seconds * 48_000 / 1024..=seconds * 48_000 / 1024 + 2).contains(&frames),
        "{frames} audio frames"
    );
    for track in [&video, &audio] {
        assert!(track.windows(2).all(|w| w[1].dts > w[0].dts), "dts rises");
    }
    // B-frames: some frames are shown after they are decoded.
    assert!(video.iter().any(|p| p.cts > 0));
    assert!(
        read.iter().position(|p| p.is_video() && p.seq_header)
            < read.iter().position(|p| p.is_video() && !p.seq_header)
    );
}

#[test]
fn an_h264_aac_file_ffmpeg_writes_is_read_whole() {
    let Some(ts) = ffmpeg_ts("reader-h264.ts", "libx264", 4) else {
        return;
    };
    let (read, skipped) = read_all(&[&ts], 188 * 7 + 5);
    assert_eq!(skipped, 0);
    check_ffmpeg_stream(&read, 4);
    let config = read.iter().find(|p| p.is_video() && p.seq_header).unwrap();
    let sps = AvcDecoderConfig::parse(&config.body()).unwrap().sps_info().unwrap();
    assert_eq!((sps.width, sps.height), (320, 240));
}

#[test]
fn an_h265_aac_file_ffmpeg_writes_is_read_whole() {
    let Some(ts) = ffmpeg_ts("reader-h265.ts", "libx265", 4) else {
        return;
    };
    let (read, skipped) = read_all(&[&ts], 4096);
    assert_eq!(skipped, 0);
    check_ffmpeg_stream(&read, 4);
    let config = read.iter().find(|p| p.is_video() && p.seq_header).unwrap();
    let record = HevcDecoderConfig::parse(&config.body()).unwrap();
    let sps = record.sps_info().unwrap();
    assert_eq!((sps.width, sps.height, sps.general_profile_idc), (320, 240, 1));
}

#[test]
fn two_files_across_a_discontinuity_make_one_rising_timeline() {
    let Some(ts) = ffmpeg_ts("reader-disc.ts", "libx264", 2) else {
        return;
    };
    let mut reader = TsReader::new(TsReaderLimits::default());
    let mut out = Vec::new();
    for _ in 0..2 {
        reader.push(&ts);
        reader.discontinuity();
        while let Some(p) = reader.next_packet() {
            out.push(p);
        }
    }
    let video: Vec<_> = out.iter().filter(|p| p.is_video() && !p.seq_header).collect();
    assert_eq!(video.len(), 100);
    assert!(
        video.windows(2).all(|w| w[1].dts > w[0].dts),
        "dts rises across the break"
    );
    let step = video[50].dts - video[49].dts;
    assert!(step <= 300, "the second file follows the first closely ({step} ms)");
    // No frame squeezed against its neighbour at the break (a coarse time base would merge
    // them): every step is at least most of a 25 fps frame, for both tracks.
    assert!(video.windows(2).all(|w| w[1].dts - w[0].dts >= 30), "video steps");
    let audio: Vec<_> = out.iter().filter(|p| p.is_audio() && !p.seq_header).collect();
    assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts >= 15), "audio steps");
}
