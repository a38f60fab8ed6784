//! Recording with real encoders' bytes, checked by ffprobe and ffmpeg:
//!
//! - the OBS 29.0.2 capture (x264 with B-frames, AAC) written as a fragmented MP4, finalised
//!   into a fast-start MP4, and a copy torn mid-fragment finalised too;
//! - a libx265 HEVC + AAC clip made by ffmpeg, read back with our progressive index, turned
//!   into packets (Enhanced RTMP tags), recorded and finalised the same way.
//!
//! ffprobe must name the codecs and the right duration, `ffmpeg -v error -i FILE -f null -`
//! must print nothing, and the finished files must have their `moov` before their `mdat`.
//! The files are left in the target directory for a look. Skipped, saying so, only when
//! ffprobe is not installed.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::obs_packets;
use estuary_muxer::mp4::{
    faststart, index_fragmented, index_progressive, FaststartReport, Fmp4Event, Fmp4Writer, Fmp4WriterConfig, Mp4Index,
    TrackIndex,
};
use estuary_protocol::{MediaKind, Packet};

fn tools_present() -> bool {
    let ok = Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: ffprobe is not installed (apt-get install ffmpeg); the mp4 files were not checked");
    }
    ok
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mp4-recording");
    std::fs::create_dir_all(&dir).expect("create the output folder");
    dir
}

/// Codec names and the format duration ffprobe reports.
fn ffprobe(path: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name:format=duration"])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let codecs = text
        .lines()
        .filter_map(|l| l.strip_prefix("codec_name="))
        .map(str::to_owned)
        .collect();
    let duration = text
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration from ffprobe for {}: {text}", path.display()));
    (codecs, duration)
}

/// Decodes the whole file; ffmpeg must have nothing to say.
fn ffmpeg_decodes_cleanly(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.is_empty(),
        "ffmpeg on {}:\n{said}",
        path.display()
    );
}

fn top_level_boxes(file: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= file.len() {
        let size = u32::from_be_bytes([file[pos], file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        names.push(String::from_utf8_lossy(&file[pos + 4..pos + 8]).into_owned());
        if size < 8 {
            break;
        }
        pos += size;
    }
    names
}

/// Records `packets` into one fragmented MP4.
fn record(packets: &[Packet]) -> Vec<u8> {
    let mut writer = Fmp4Writer::new(Fmp4WriterConfig::default());
    let mut file = Vec::new();
    let mut inits = 0;
    let mut take = |writer: &mut Fmp4Writer, file: &mut Vec<u8>| {
        while let Some(event) = writer.poll_event() {
            match event {
                Fmp4Event::Init(init) => {
                    inits += 1;
                    file.extend_from_slice(&init.data);
                }
                Fmp4Event::Fragment(fragment) => {
                    for part in &fragment.parts {
                        file.extend_from_slice(part);
                    }
                }
            }
        }
    };
    for packet in packets {
        writer.push(packet).expect("the packets are accepted");
        take(&mut writer, &mut file);
    }
    writer.finish();
    take(&mut writer, &mut file);
    assert_eq!(inits, 1, "one configuration, one file");
    file
}

fn finalise(file: &[u8], path: &Path) -> (Vec<u8>, FaststartReport) {
    let mut out = Vec::new();
    let report = faststart(&mut Cursor::new(file), &mut out).expect("faststart");
    std::fs::write(path, &out).expect("write the finished file");
    assert_eq!(top_level_boxes(&out), ["ftyp", "moov", "mdat"], "{}", path.display());
    (out, report)
}

/// Checks a file with ffprobe and ffmpeg: its codecs, and a duration within `tolerance`
/// seconds of `expected`.
fn check_with_ffmpeg(path: &Path, codecs: &[&str], expected: f64, tolerance: f64) -> f64 {
    let (found, duration) = ffprobe(path);
    assert_eq!(found, codecs, "{}", path.display());
    assert!(
        (duration - expected).abs() <= tolerance,
        "{}: ffprobe says {duration} s, expected {expected} ± {tolerance}",
        path.display()
    );
    ffmpeg_decodes_cleanly(path);
    eprintln!("{}: {found:?}, {duration} s", path.display());
    duration
}

#[test]
fn obs_capture_records_and_finalises_for_ffprobe() {
    let Some(packets) = obs_packets() else { return };
    if !tools_present() {
        return;
    }
    let dir = out_dir();
    let fragmented = record(&packets);
    let fragmented_path = dir.join("obs.fragmented.mp4");
    std::fs::write(&fragmented_path, &fragmented).expect("write the recording");

    // What went in: from the first keyframe to the end of the last video frame. OBS keys
    // every 2 s: a GOP is the tolerance.
    let first_key = packets
        .iter()
        .find(|p| p.is_video() && p.keyframe)
        .map(|p| p.dts)
        .unwrap();
    let last_video = packets.iter().filter(|p| p.is_video()).map(|p| p.dts).max().unwrap();
    let expected = (last_video + 33 - first_key) as f64 / 1000.0;
    let index = index_fragmented(&mut Cursor::new(&fragmented)).unwrap();
    assert!(index.torn.is_none());
    assert!(index.fragments >= 4, "{} fragments", index.fragments);

    check_with_ffmpeg(&fragmented_path, &["h264", "aac"], expected, 2.0);
    let finished_path = dir.join("obs.mp4");
    let (finished, report) = finalise(&fragmented, &finished_path);
    let duration = check_with_ffmpeg(&finished_path, &["h264", "aac"], expected, 2.0);
    assert!(
        (report.duration_ms as f64 / 1000.0 - duration).abs() < 0.05,
        "{report:?}"
    );
    let finished_index = index_progressive(&mut Cursor::new(&finished)).unwrap();
    same_samples(&index, &fragmented, &finished_index, &finished);

    // Torn mid-fragment, as a crash leaves it.
    let cut = fragmented.len() * 2 / 3;
    let torn_path = dir.join("obs.torn.mp4");
    let (_, torn_report) = finalise(&fragmented[..cut], &torn_path);
    let torn = torn_report.torn.as_ref().expect("the torn tail is reported");
    assert!(torn.valid_len < cut as u64);
    let torn_duration = check_with_ffmpeg(
        &torn_path,
        &["h264", "aac"],
        torn_report.duration_ms as f64 / 1000.0,
        0.05,
    );
    assert!(
        torn_duration > 1.0 && torn_duration + 1.0 < duration,
        "{torn_duration} of {duration}"
    );
}

/// Every sample of `a` is in `b` with the same bytes, timing and flags.
fn same_samples(a: &Mp4Index, a_file: &[u8], b: &Mp4Index, b_file: &[u8]) {
    assert_eq!(a.tracks.len(), b.tracks.len());
    for (ta, tb) in a.tracks.iter().zip(&b.tracks) {
        assert_eq!(ta.samples.len(), tb.samples.len());
        let (a0, b0) = (ta.samples[0].dts, tb.samples[0].dts);
        for (sa, sb) in ta.samples.iter().zip(&tb.samples) {
            assert_eq!(
                (sa.dts - a0, sa.cts, sa.keyframe, sa.size),
                (sb.dts - b0, sb.cts, sb.keyframe, sb.size)
            );
            let range = |s: &estuary_muxer::mp4::Sample| s.offset as usize..(s.offset + u64::from(s.size)) as usize;
            assert_eq!(&a_file[range(sa)], &b_file[range(sb)]);
        }
    }
}

fn libx265_present() -> bool {
    let out = Command::new("ffmpeg").args(["-hide_banner", "-encoders"]).output();
    let ok = out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libx265"));
    if !ok {
        eprintln!("SKIPPED: ffmpeg has no libx265; the HEVC recording was not checked");
    }
    ok
}

/// The first box of type `fourcc` inside `data` (a sample entry), found by walking boxes
/// from `start`.
fn find_box<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> &'a [u8] {
    let at = data
        .windows(4)
        .position(|w| w == fourcc)
        .expect("box in the sample entry");
    let size = u32::from_be_bytes([data[at - 4], data[at - 3], data[at - 2], data[at - 1]]) as usize;
    &data[at + 4..at - 4 + size]
}

/// The AudioSpecificConfig inside an `esds` payload (ES_Descriptor → DecoderConfig →
/// DecoderSpecificInfo).
fn asc_of(esds: &[u8]) -> Bytes {
    let mut pos = 4; // version, flags
    let read_descriptor = |pos: &mut usize| -> (u8, usize) {
        let tag = esds[*pos];
        *pos += 1;
        let mut len = 0usize;
        loop {
            let b = esds[*pos];
            *pos += 1;
            len = (len << 7) | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        (tag, len)
    };
    assert_eq!(read_descriptor(&mut pos).0, 3);
    pos += 3; // ES_ID, flags
    assert_eq!(read_descriptor(&mut pos).0, 4);
    pos += 13;
    let (tag, len) = read_descriptor(&mut pos);
    assert_eq!(tag, 5);
    Bytes::copy_from_slice(&esds[pos..pos + len])
}

/// The packets an Enhanced RTMP publisher would send for `track`: the sequence header, then
/// every sample, on the movie timeline (ms, shifted by `zero_ms`).
fn packets_of(file: &[u8], track: &TrackIndex, zero_ms: i64) -> Vec<(i64, Packet)> {
    let ts = i64::from(track.info.timescale);
    let ms = |ticks: i64| ticks * 1000 / ts;
    let mut out = Vec::new();
    let kind = track.info.kind().unwrap();
    let header = match kind {
        MediaKind::Video => {
            let mut tag = vec![0x90];
            tag.extend_from_slice(b"hvc1");
            tag.extend_from_slice(find_box(&track.info.stsd, b"hvcC"));
            tag
        }
        _ => {
            let mut tag = vec![0xaf, 0];
            tag.extend_from_slice(&asc_of(find_box(&track.info.stsd, b"esds")));
            tag
        }
    };
    out.push((-1, Packet::from_flv_body(kind, 0, Bytes::from(header)).unwrap()));
    for s in &track.samples {
        let dts = ms(s.dts as i64 + track.info.presentation_offset) - zero_ms;
        let data = &file[s.offset as usize..(s.offset + u64::from(s.size)) as usize];
        let mut tag = match kind {
            MediaKind::Video => {
                let mut tag = vec![0x80 | if s.keyframe { 0x10 } else { 0x20 } | 1];
                tag.extend_from_slice(b"hvc1");
                tag.extend_from_slice(&ms(i64::from(s.cts)).to_be_bytes()[5..]);
                tag
            }
            _ => vec![0xaf, 1],
        };
        tag.extend_from_slice(data);
        let packet = Packet::from_flv_body(kind, dts.max(0) as u32, Bytes::from(tag)).unwrap();
        out.push((dts, packet));
    }
    out
}

#[test]
fn hevc_from_libx265_records_and_finalises_for_ffprobe() {
    if !tools_present() || !libx265_present() {
        return;
    }
    let dir = out_dir();
    let source = dir.join("x265-source.mp4");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "3", "-c:v", "libx265", "-preset", "ultrafast"])
        .args([
            "-x265-params",
            "log-level=error:keyint=25:bframes=3",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&source)
        .output()
        .expect("run ffmpeg");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let source_bytes = std::fs::read(&source).unwrap();
    let index = index_progressive(&mut Cursor::new(&source_bytes)).unwrap();
    let video = index.track(MediaKind::Video).unwrap();
    assert!(
        matches!(&video.info.codec, b"hev1" | b"hvc1"),
        "{}",
        video.info.codec_name()
    );
    let zero_ms = index
        .tracks
        .iter()
        .map(|t| (t.samples[0].dts as i64 + t.info.presentation_offset) * 1000 / i64::from(t.info.timescale))
        .min()
        .unwrap();
    let mut packets: Vec<(i64, Packet)> = index
        .tracks
        .iter()
        .flat_map(|t| packets_of(&source_bytes, t, zero_ms))
        .collect();
    packets.sort_by_key(|(dts, _)| *dts);
    let packets: Vec<Packet> = packets.into_iter().map(|(_, p)| p).collect();

    let fragmented = record(&packets);
    let fragmented_path = dir.join("x265.fragmented.mp4");
    std::fs::write(&fragmented_path, &fragmented).unwrap();
    check_with_ffmpeg(&fragmented_path, &["hevc", "aac"], 3.0, 0.2);
    let finished_path = dir.join("x265.mp4");
    let (finished, report) = finalise(&fragmented, &finished_path);
    check_with_ffmpeg(&finished_path, &["hevc", "aac"], 3.0, 0.2);
    let finished_index = index_progressive(&mut Cursor::new(&finished)).unwrap();
    let out_video = finished_index.track(MediaKind::Video).unwrap();
    assert_eq!(&out_video.info.codec, b"hvc1");
    assert_eq!((out_video.info.width, out_video.info.height), (320, 240));
    assert_eq!(out_video.samples.len(), video.samples.len());
    assert_eq!(report.tracks[0].samples, 75);
}
