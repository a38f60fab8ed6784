use std::io;

use estuary_protocol::codec::avc::{annexb_nal_units, nal_unit_type};

use super::*;
use crate::check::TsChecker;
use crate::ts::pes::parse_pes_header;
use crate::ts::{AUDIO_PID, PAT_PID, PMT_PID, VIDEO_PID};
use crate::vod::test_support::{stsd, Builder};

/// Composition offsets of an IBBP stream with closed GOPs of `gop` frames, one frame of
/// delay: I first, then groups of a P (shown last) and two Bs.
fn ibbp(frames: usize, gop: usize, frame: i32) -> Vec<i32> {
    let mut pts = vec![0; frames];
    for start in (0..frames).step_by(gop) {
        let end = (start + gop).min(frames);
        pts[start] = start;
        let mut i = start + 1;
        while i < end {
            let group = 3.min(end - i);
            pts[i] = i + group - 1;
            for k in 1..group {
                pts[i + k] = i + k - 1;
            }
            i += group;
        }
    }
    pts.iter()
        .enumerate()
        .map(|(i, &p)| (p as i32 - i as i32 + 1) * frame)
        .collect()
}

/// 30 fps with B-frames, a keyframe every second, and AAC with its priming cut by the edit
/// list (so the timeline starts 23 ms before the video).
fn file(seconds: usize) -> (Mp4Index, Vec<u8>) {
    let cts = ibbp(seconds * 30, 30, 3000);
    Builder::new()
        .video(90_000, -3000, &vec![3000; seconds * 30], |i| i % 30 == 0, |i| cts[i])
        .audio(44_100, -1024, seconds * 44_100 / 1024)
        .build_file()
}

fn read_from(file: &[u8]) -> impl FnMut(ByteRange) -> io::Result<Bytes> + '_ {
    move |range| {
        let start = range.offset as usize;
        Ok(Bytes::copy_from_slice(&file[start..start + range.len as usize]))
    }
}

fn pid(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[1], packet[2]]) & 0x1fff
}

#[test]
fn consecutive_segments_pass_the_checker_as_one_stream() {
    let (index, bytes) = file(20);
    let vod = VodTs::new(index, 4000).unwrap();
    assert_eq!(vod.plan().len(), 5);
    assert_eq!(vod.codecs(), "avc1.64001F,mp4a.40.2");
    let mut checker = TsChecker::new();
    let mut frames = (0, 0);
    for segment in vod.plan().segments() {
        let data = vod.mux_segment(segment.number, 0, read_from(&bytes)).unwrap();
        let report = checker
            .check_segment(&data, segment.number == 0)
            .unwrap_or_else(|e| panic!("segment {}: {e:#?}", segment.number));
        assert!(report.has_video && report.has_audio);
        assert_eq!(report.video_frames, segment.video.len());
        frames.0 += report.video_frames;
        frames.1 += report.audio_frames;
        // The first PES plays at the segment's start on the 10 s base.
        let first_pts = report.first_pts.unwrap();
        let start = (VOD_TIMESTAMP_BASE_MS + segment.start_ms) * 90;
        assert!(first_pts.abs_diff(start) <= 90, "{first_pts} vs {start}");
        // Every PID's counter starts at 0 and ends at 15.
        for wanted in [PAT_PID, PMT_PID, VIDEO_PID, AUDIO_PID] {
            let counters: Vec<u8> = data
                .chunks(188)
                .filter(|p| pid(p) == wanted && p[3] & 0x10 != 0)
                .map(|p| p[3] & 0x0f)
                .collect();
            assert_eq!(counters.first(), Some(&0), "pid {wanted:#x}");
            assert_eq!(counters.last(), Some(&15), "pid {wanted:#x}");
        }
    }
    assert_eq!(frames, (600, 20 * 44_100 / 1024));
}

#[test]
fn keyframes_carry_parameter_sets_and_timestamps_follow_the_samples() {
    let (index, bytes) = file(4);
    let vod = VodTs::new(index, 2000).unwrap();
    let data = vod.mux_segment(1, 0, read_from(&bytes)).unwrap();
    // The first video PES: AUD, SPS, PPS, IDR; DTS a frame before PTS.
    let first = data
        .chunks(188)
        .find(|p| pid(p) == VIDEO_PID && p[1] & 0x40 != 0)
        .unwrap();
    let payload = &first[5 + usize::from(first[4])..];
    let header = parse_pes_header(payload).unwrap();
    let start = (VOD_TIMESTAMP_BASE_MS * 90) as i64 + 2090; // the timeline starts with the audio
    assert_eq!(header.pts, Some((start + 180_000) as u64));
    assert_eq!(header.dts, Some((start + 180_000 - 3000) as u64));
    let types: Vec<u8> = annexb_nal_units(&payload[header.payload_offset..])
        .map(nal_unit_type)
        .take(4)
        .collect();
    assert_eq!(types, [9, 7, 8, 5]);
}

#[test]
fn the_timeline_offset_moves_every_timestamp() {
    let (index, bytes) = file(4);
    let vod = VodTs::new(index, 2000).unwrap();
    let plain = crate::check::check_segment(&vod.mux_segment(1, 0, read_from(&bytes)).unwrap()).unwrap();
    let moved = crate::check::check_segment(&vod.mux_segment(1, 3_600_000, read_from(&bytes)).unwrap()).unwrap();
    assert_eq!(moved.first_pts.unwrap() - plain.first_pts.unwrap(), 3_600_000 * 90);
    assert_eq!(moved.last_dts.unwrap() - plain.last_dts.unwrap(), 3_600_000 * 90);
}

#[test]
fn ranges_are_coalesced_and_the_bytes_are_checked() {
    let (index, bytes) = file(6);
    let vod = VodTs::new(index, 2000).unwrap();
    // The builder writes all video, then all audio: two reads per segment.
    let ranges = vod.segment_ranges(1).unwrap();
    assert_eq!(ranges.len(), 2);
    let data: Vec<Bytes> = ranges.iter().map(|r| read_from(&bytes)(*r).unwrap()).collect();
    assert_eq!(
        vod.mux_segment_from(1, 0, &data).unwrap(),
        vod.mux_segment(1, 0, read_from(&bytes)).unwrap()
    );
    assert!(matches!(
        vod.mux_segment_from(1, 0, &data[..1]),
        Err(MuxError::VodSegmentData { segment: 1, .. })
    ));
    let short = [data[0].slice(1..), data[1].clone()];
    assert!(matches!(
        vod.mux_segment_from(1, 0, &short),
        Err(MuxError::VodSegmentData { segment: 1, .. })
    ));
    let failed = vod.mux_segment(2, 0, |_| {
        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short file"))
    });
    assert!(matches!(
        failed,
        Err(MuxError::VodRead {
            segment: 2,
            kind: io::ErrorKind::UnexpectedEof,
            ..
        })
    ));
    assert_eq!(
        vod.segment_ranges(3),
        Err(MuxError::VodNoSegment {
            segment: 3,
            segments: 3
        })
    );
}

#[test]
fn a_corrupt_sample_is_named() {
    let (index, mut bytes) = file(2);
    let sample = index.tracks[0].samples[31];
    bytes[sample.offset as usize] = 0xff; // a NAL length far past the sample
    let vod = VodTs::new(index, 1000).unwrap();
    match vod.mux_segment(1, 0, read_from(&bytes)) {
        Err(MuxError::VodSample {
            track_id: 1,
            sample: 31,
            offset,
            ..
        }) => assert_eq!(offset, sample.offset),
        other => panic!("{other:?}"),
    }
}

#[test]
fn audio_only_and_video_only_files() {
    let (index, bytes) = Builder::new().audio(48_000, 0, 1000).build_file();
    let vod = VodTs::new(index, 6000).unwrap();
    assert_eq!(vod.codecs(), "mp4a.40.2");
    let mut checker = TsChecker::new();
    for segment in vod.plan().segments() {
        let data = vod.mux_segment(segment.number, 0, read_from(&bytes)).unwrap();
        let report = checker.check_segment(&data, segment.number == 0).unwrap();
        assert!(!report.has_video && report.pcr_count > 0);
        assert_eq!(report.audio_frames, segment.audio.len());
    }
    let (index, bytes) = Builder::new()
        .video(90_000, 0, &[3000; 90], |i| i % 30 == 0, |_| 0)
        .build_file();
    let vod = VodTs::new(index, 1000).unwrap();
    let mut checker = TsChecker::new();
    for segment in vod.plan().segments() {
        let data = vod.mux_segment(segment.number, 0, read_from(&bytes)).unwrap();
        checker.check_segment(&data, segment.number == 0).unwrap();
    }
}

#[test]
fn hevc_is_refused_with_its_name() {
    let mut index = file(2).0;
    index.tracks[0].info.codec = *b"hvc1";
    index.tracks[0].info.stsd = stsd(b"hvc1", 78, &[]);
    match VodTs::new(index, 6000) {
        Err(MuxError::VodUnsupportedCodec { track_id: 1, codec }) => assert_eq!(codec, "hvc1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_vod_serves_every_thread() {
    fn shared<T: Send + Sync>() {}
    shared::<VodTs>();
}

#[test]
fn oversized_segments_are_refused() {
    let (mut index, _) = file(2);
    for s in &mut index.tracks[0].samples {
        s.size = 16 << 20;
    }
    index.file_len = u64::MAX;
    let vod = VodTs::new(index, 6000).unwrap();
    assert!(matches!(
        vod.segment_ranges(0),
        Err(MuxError::VodSegmentTooLarge { segment: 0, .. })
    ));
    // A million tiny samples in one segment.
    let mut index = Builder::new().video(90_000, 0, &[1], |_| true, |_| 0).build();
    let first = index.tracks[0].samples[0];
    index.tracks[0].samples = (0..1_000_000)
        .map(|i| Sample {
            offset: first.offset + i,
            size: 1,
            dts: i,
            keyframe: i == 0,
            ..first
        })
        .collect();
    let vod = VodTs::new(index, 6000).unwrap();
    assert!(matches!(
        vod.segment_ranges(0),
        Err(MuxError::VodSegmentTooLarge { segment: 0, .. })
    ));
}
