//! Round trips through the whole module: packets → fragmented MP4 → index → fast-start MP4
//! → index, with torn files on the way.

use std::io::Cursor;

use estuary_protocol::{MediaKind, Packet};
use proptest::prelude::*;

use super::faststart::write_faststart;
use super::test_support::*;
use super::*;
use crate::MuxError;

/// What a track should hold: the samples of the packets after the first keyframe.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    dts_ms: u64,
    dts: u64,
    cts: i32,
    keyframe: bool,
    bytes: Vec<u8>,
}

fn expected(packets: &[Packet], kind: MediaKind, timescale: u32) -> Vec<Expected> {
    let first_key = packets.iter().position(|p| p.is_video() && p.keyframe).unwrap_or(0);
    packets
        .iter()
        .enumerate()
        .filter(|(i, p)| p.kind == kind && !p.seq_header && *i >= first_key)
        .map(|(_, p)| Expected {
            dts_ms: p.dts,
            dts: (p.dts * u64::from(timescale) + 500) / 1000,
            cts: (i64::from(p.cts) * i64::from(timescale) / 1000) as i32,
            keyframe: p.keyframe || kind == MediaKind::Audio,
            bytes: p.body().to_vec(),
        })
        .collect()
}

/// Checks that `track` of `file` holds exactly `want`, decode times relative to the first.
fn assert_track(file: &[u8], track: &TrackIndex, want: &[Expected]) {
    assert_eq!(track.samples.len(), want.len(), "track {}", track.info.track_id);
    let (first, want_first) = (track.samples[0].dts, want[0].dts);
    for (s, w) in track.samples.iter().zip(want) {
        assert_eq!(s.dts - first, w.dts - want_first);
        assert_eq!((s.cts, s.keyframe, s.size as usize), (w.cts, w.keyframe, w.bytes.len()));
        assert_eq!(
            &file[s.offset as usize..s.offset as usize + s.size as usize],
            &w.bytes[..]
        );
    }
}

fn top_level_boxes(file: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut pos = 0;
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

fn finalise(file: &[u8]) -> (Vec<u8>, FaststartReport) {
    let mut out = Vec::new();
    let report = faststart(&mut Cursor::new(file), &mut out).expect("faststart");
    (out, report)
}

#[test]
fn fragmented_index_holds_every_sample() {
    let packets = av_stream(4, 30);
    let file = fragmented(&packets);
    let index = index_fragmented(&mut Cursor::new(&file)).unwrap();
    assert!(index.fragmented && index.torn.is_none());
    assert_eq!(index.fragments, 4);
    assert_eq!(index.valid_len(), file.len() as u64);
    let video = index.track(MediaKind::Video).unwrap();
    assert_eq!(&video.info.codec, b"avc1");
    assert_eq!(
        (video.info.width, video.info.height, video.info.timescale),
        (1280, 720, 90_000)
    );
    assert_track(&file, video, &expected(&packets, MediaKind::Video, 90_000));
    assert_eq!(video.samples[0].dts, 0);
    let audio = index.track(MediaKind::Audio).unwrap();
    assert_track(&file, audio, &expected(&packets, MediaKind::Audio, 44_100));
    assert!(index_progressive(&mut Cursor::new(&file)).is_err());
}

#[test]
fn faststart_puts_the_moov_first_and_keeps_every_sample() {
    let packets = av_stream(4, 30);
    let (out, report) = finalise(&fragmented(&packets));
    assert_eq!(top_level_boxes(&out), ["ftyp", "moov", "mdat"]);
    assert_eq!(report.bytes_written, out.len() as u64);
    assert!(report.torn.is_none());
    let index = index_progressive(&mut Cursor::new(&out)).unwrap();
    assert!(!index.fragmented);
    let video = index.track(MediaKind::Video).unwrap();
    assert_track(&out, video, &expected(&packets, MediaKind::Video, 90_000));
    let audio = index.track(MediaKind::Audio).unwrap();
    assert_track(&out, audio, &expected(&packets, MediaKind::Audio, 44_100));
    // Audio is presented first, at 0, with no edit list; video's first frame is presented
    // 67 ms in (its composition offset): ffmpeg's empty edit, then the media from 67 ms.
    assert_eq!(video.info.presentation_offset, 0);
    assert_eq!(audio.info.presentation_offset, 0);
    assert_eq!(report.tracks[0].samples, 120);
    assert_eq!(report.tracks[0].keyframes, 4);
    assert_eq!(
        report.duration_ms,
        report.tracks.iter().map(|t| t.duration_ms).max().unwrap()
    );
    assert!((4000..4100).contains(&report.duration_ms), "{}", report.duration_ms);

    let reader = mp4_reader(&out);
    assert_eq!(reader.moov.mvhd.duration, report.duration_ms);
    assert!(reader.moov.mvex.is_none() && reader.moofs.is_empty());
    let video = &reader.tracks()[&1];
    assert_eq!(video.sample_count(), 120);
    let edits = &video
        .trak
        .edts
        .as_ref()
        .expect("video edit list")
        .elst
        .as_ref()
        .unwrap()
        .entries;
    assert_eq!(edits.len(), 2);
    // The mp4 crate reads a version-0 media_time of -1 as u32::MAX.
    assert_eq!(
        (edits[0].segment_duration, edits[0].media_time),
        (67, u64::from(u32::MAX))
    );
    assert_eq!(edits[1].media_time, 67 * 90);
    assert!(reader.tracks()[&2].trak.edts.is_none());
    assert_eq!(
        video.trak.mdia.mdhd.duration,
        video
            .trak
            .mdia
            .minf
            .stbl
            .stts
            .entries
            .iter()
            .map(|e| u64::from(e.sample_count) * u64::from(e.sample_delta))
            .sum::<u64>()
    );
}

#[test]
fn a_later_track_gets_an_empty_edit() {
    let mut packets = av_stream(2, 30);
    // Audio starts about 500 ms after video.
    packets.retain(|p| !(p.is_audio() && !p.seq_header && p.dts < 500));
    let (out, _) = finalise(&fragmented(&packets));
    let index = index_progressive(&mut Cursor::new(&out)).unwrap();
    let audio = index.track(MediaKind::Audio).unwrap();
    // Time 0 is the video's first presentation, 67 ms after its first decode time.
    let first_audio_ms = expected(&packets, MediaKind::Audio, 44_100)[0].dts_ms as i64 - 67;
    let offset_ms = audio.info.presentation_offset * 1000 / 44_100;
    assert!(
        (offset_ms - first_audio_ms).abs() <= 1,
        "{offset_ms} vs {first_audio_ms}"
    );
    let reader = mp4_reader(&out);
    let edits = &reader.tracks()[&2]
        .trak
        .edts
        .as_ref()
        .unwrap()
        .elst
        .as_ref()
        .unwrap()
        .entries;
    assert_eq!((edits[0].media_time, edits[1].media_time), (u64::from(u32::MAX), 0));
    // The video's first frame is at 0: its edit skips its first composition offset.
    let edits = &reader.tracks()[&1]
        .trak
        .edts
        .as_ref()
        .unwrap()
        .elst
        .as_ref()
        .unwrap()
        .entries;
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].media_time, 67 * 90);
}

#[test]
fn co64_round_trips() {
    let packets = av_stream(2, 30);
    let file = fragmented(&packets);
    let index = read_index(&mut Cursor::new(&file)).unwrap();
    let mut out = Vec::new();
    write_faststart(&index, &mut Cursor::new(&file), &mut out, 0).unwrap();
    assert!(out.windows(4).any(|w| w == b"co64"));
    let index = index_progressive(&mut Cursor::new(&out)).unwrap();
    assert_track(
        &out,
        index.track(MediaKind::Video).unwrap(),
        &expected(&packets, MediaKind::Video, 90_000),
    );
    assert_track(
        &out,
        index.track(MediaKind::Audio).unwrap(),
        &expected(&packets, MediaKind::Audio, 44_100),
    );
}

#[test]
fn faststart_of_a_progressive_file_is_the_same_file() {
    let (once, _) = finalise(&fragmented(&av_stream(2, 30)));
    let (twice, _) = finalise(&once);
    assert_eq!(once, twice);
}

#[test]
fn torn_at_every_997th_byte_the_index_is_whole_fragments() {
    let packets = av_stream(3, 15);
    let file = fragmented(&packets);
    let full = index_fragmented(&mut Cursor::new(&file)).unwrap();
    // Where each fragment ends, and how many samples of each track precede that end.
    let mut ends = Vec::new();
    let mut pos = 0;
    for name in top_level_boxes(&file) {
        let size = u32::from_be_bytes([file[pos], file[pos + 1], file[pos + 2], file[pos + 3]]) as u64;
        pos += size as usize;
        if name == "mdat" {
            ends.push(pos as u64);
        }
    }
    for cut in (0..file.len()).step_by(997).chain([file.len() - 1]) {
        let torn = &file[..cut];
        let index = match index_fragmented(&mut Cursor::new(torn)) {
            Ok(index) => index,
            Err(MuxError::Mp4NoMovie { .. }) => {
                assert!(ends.is_empty() || cut < ends[0] as usize);
                continue;
            }
            Err(e) => panic!("cut at {cut}: {e}"),
        };
        let whole = ends.iter().filter(|&&e| e <= cut as u64).count();
        assert_eq!(index.fragments as usize, whole, "cut at {cut}");
        let valid = index.valid_len();
        assert!(valid <= cut as u64);
        assert!(whole == 0 || valid == ends[whole - 1], "cut at {cut}: valid {valid}");
        assert_eq!(
            index.torn.is_some(),
            !ends.contains(&(cut as u64)) && cut as u64 > valid
        );
        for (t, f) in index.tracks.iter().zip(&full.tracks) {
            assert_eq!(t.samples[..], f.samples[..t.samples.len()], "cut at {cut}: a prefix");
            assert!(t.samples.iter().all(|s| s.offset + u64::from(s.size) <= valid));
        }
        if cut % 3 == 0 {
            let mut out = Vec::new();
            match faststart(&mut Cursor::new(torn), &mut out) {
                Ok(report) => assert_eq!(report.torn, index.torn),
                Err(MuxError::Mp4Empty { .. }) => assert_eq!(whole, 0),
                Err(e) => panic!("faststart of cut at {cut}: {e}"),
            }
        }
    }
}

#[test]
fn a_torn_recording_finalises_up_to_its_last_whole_fragment() {
    let packets = av_stream(4, 30);
    let file = fragmented(&packets);
    let cut = file.len() * 3 / 5;
    let (out, report) = finalise(&file[..cut]);
    let torn = report.torn.as_ref().expect("torn tail reported");
    assert_eq!(torn.file_len, cut as u64);
    assert!(matches!(
        torn.reason,
        TornReason::PartialBox { .. } | TornReason::FragmentWithoutData { .. }
    ));
    let index = index_progressive(&mut Cursor::new(&out)).unwrap();
    let video = index.track(MediaKind::Video).unwrap();
    assert_eq!(video.samples.len() % 30, 0, "whole 1-s fragments only");
    let want = expected(&packets, MediaKind::Video, 90_000);
    assert_track(&out, video, &want[..video.samples.len()]);
}

#[test]
fn garbage_after_the_last_fragment_is_dropped() {
    let packets = av_stream(2, 30);
    let file = fragmented(&packets);
    for tail in [vec![0u8; 4096], vec![0xff; 3], b"\x00\x00\x00\x10moof\x00\x00".to_vec()] {
        let mut torn = file.clone();
        torn.extend_from_slice(&tail);
        let index = index_fragmented(&mut Cursor::new(&torn)).unwrap();
        let reason = index.torn.as_ref().unwrap();
        assert_eq!(reason.valid_len, file.len() as u64);
        assert_eq!(index.fragments, 2);
    }
}

#[test]
fn an_empty_recording_has_nothing_to_finalise() {
    let packets = av_stream(1, 30);
    let events = events(Fmp4WriterConfig::default(), &packets[..2]);
    let init = file_of(&events);
    assert!(matches!(
        faststart(&mut Cursor::new(&init), &mut Vec::new()),
        Err(MuxError::Mp4Empty { .. })
    ));
    assert!(matches!(
        faststart(&mut Cursor::new(&init[..init.len() - 1]), &mut Vec::new()),
        Err(MuxError::Mp4NoMovie { .. })
    ));
}

fn arbitrary_stream() -> impl Strategy<Value = Vec<Packet>> {
    // Per video frame: duration (ms), composition offset (ms), keyframe, size; audio frames
    // of an arbitrary rate; arbitrary audio start.
    (
        proptest::collection::vec((1u64..80, 0i32..200, any::<bool>(), 1usize..3000), 1..120),
        proptest::collection::vec((15u64..30, 1usize..800), 0..150),
        0u64..400,
        any::<bool>(),
    )
        .prop_map(|(video, audio, audio_start, with_video)| {
            let mut packets = vec![audio_header(OBS_AAC_CONFIG)];
            let mut frames = Vec::new();
            if with_video {
                packets.insert(0, video_header(OBS_AVC_RECORD));
                let mut dts = 0;
                for (i, &(d, cts, key, size)) in video.iter().enumerate() {
                    frames.push(video_frame(dts, cts, key || i == 0, size));
                    dts += d;
                }
            }
            let mut dts = audio_start;
            for &(d, size) in &audio {
                frames.push(audio_frame(dts, size));
                dts += d;
            }
            frames.sort_by_key(|p| p.dts);
            packets.extend(frames);
            packets
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn faststart_of_fragmented_keeps_every_sample(packets in arbitrary_stream()) {
        let file = fragmented(&packets);
        let mut out = Vec::new();
        let result = faststart(&mut Cursor::new(&file), &mut out);
        let video = expected(&packets, MediaKind::Video, 90_000);
        let audio = expected(&packets, MediaKind::Audio, 44_100);
        if video.is_empty() && audio.is_empty() {
            prop_assert!(result.is_err());
            return Ok(());
        }
        let report = result.unwrap();
        prop_assert_eq!(top_level_boxes(&out), ["ftyp", "moov", "mdat"]);
        let index = index_progressive(&mut Cursor::new(&out)).unwrap();
        for (kind, want) in [(MediaKind::Video, &video), (MediaKind::Audio, &audio)] {
            match index.track(kind) {
                Some(track) => assert_track(&out, track, want),
                None => prop_assert!(want.is_empty(), "{kind:?} missing"),
            }
        }
        // Tracks keep their first presentation times relative to each other, to the
        // millisecond of the movie timescale (rounded down once by the edit, once more back
        // into the track's ticks).
        let starts: Vec<(f64, f64)> = index.tracks.iter().map(|t| {
            let want = if t.info.kind() == Some(MediaKind::Video) { &video } else { &audio };
            let ts = f64::from(t.info.timescale);
            let got = (t.info.presentation_offset + i64::from(t.samples[0].cts.max(0))) as f64 * 1000.0 / ts;
            (got, want[0].dts_ms as f64 + f64::from(want[0].cts.max(0)) * 1000.0 / ts)
        }).collect();
        let zero = starts.iter().map(|s| s.1).fold(f64::MAX, f64::min);
        for (got, want) in starts {
            prop_assert!((got - (want - zero)).abs() <= 2.0, "start {} vs {}", got, want - zero);
        }
        prop_assert_eq!(report.bytes_written, out.len() as u64);
    }

    #[test]
    fn arbitrary_bytes_after_an_init_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600)) {
        let packets = av_stream(1, 30);
        let mut file = file_of(&events(Fmp4WriterConfig::default(), &packets[..2]));
        file.extend_from_slice(&tail);
        let _ = read_index(&mut Cursor::new(&file));
        let _ = faststart(&mut Cursor::new(&file), &mut Vec::new());
    }

    #[test]
    fn corrupted_files_never_panic(index in 0usize..20_000, value in any::<u8>()) {
        let mut file = fragmented(&av_stream(1, 15));
        let i = index % file.len();
        file[i] = value;
        if let Ok(index) = read_index(&mut Cursor::new(&file)) {
            let _ = faststart_indexed(&index, &mut Cursor::new(&file), &mut Vec::new());
        }
        let (mut progressive, _) = finalise(&fragmented(&av_stream(1, 15)));
        let i = index % progressive.len();
        progressive[i] = value;
        if let Ok(index) = read_index(&mut Cursor::new(&progressive)) {
            let _ = faststart_indexed(&index, &mut Cursor::new(&progressive), &mut Vec::new());
        }
    }
}
