use bytes::{BufMut, Bytes, BytesMut};
use estuary_protocol::codec::avc::annexb_nals_to_avcc;
use estuary_protocol::{Codec, MediaKind, Packet};
use proptest::prelude::*;

use super::*;
use crate::check::{PlaylistChecker, SegmentContext, TsChecker};
use crate::hls::{LivePlaylist, LivePlaylistConfig};

/// OBS 29.0.2's AVC sequence header (High 3.1, 1280x720) and AAC config.
const OBS_AVC_RECORD: &[u8] = &[
    0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x1c, 0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01,
    0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x18, 0xcb, 0x01, 0x00,
    0x04, 0x68, 0xef, 0xbc, 0xb0,
];
const OBS_AAC_CONFIG: &[u8] = &[0x12, 0x10, 0x56, 0xe5, 0x00];
const ARRIVAL_BASE_MS: u64 = 1_700_000_000_000;

fn packet(kind: MediaKind, dts: u64, header: &[u8], body: &[u8]) -> Packet {
    let mut payload = BytesMut::new();
    payload.put_slice(header);
    payload.put_slice(body);
    let mut packet = Packet::new(kind, dts, payload.freeze());
    packet.body_offset = header.len();
    packet.arrival_ms = ARRIVAL_BASE_MS + dts;
    packet.codec = match kind {
        MediaKind::Video => Codec::Video(VideoCodec::Avc),
        MediaKind::Audio => Codec::Audio(AudioCodec::Aac),
        MediaKind::Script => Codec::None,
    };
    packet
}

fn video_header(record: &[u8]) -> Packet {
    let mut p = packet(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0], record);
    p.seq_header = true;
    p.keyframe = true;
    p
}

fn audio_header(config: &[u8]) -> Packet {
    let mut p = packet(MediaKind::Audio, 0, &[0xaf, 0], config);
    p.seq_header = true;
    p
}

fn video_frame(dts: u64, keyframe: bool, size: usize) -> Packet {
    let slice: Vec<u8> = std::iter::once(if keyframe { 0x65 } else { 0x41 })
        .chain((1..size).map(|i| i as u8))
        .collect();
    let frame = annexb_nals_to_avcc([&[0x06u8, 5, 1, 0x80][..], &slice[..]]);
    let mut p = packet(
        MediaKind::Video,
        dts,
        &[if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 66],
        &frame,
    );
    p.cts = 66;
    p.keyframe = keyframe;
    p
}

fn audio_frame(dts: u64, size: usize) -> Packet {
    let raw: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
    packet(MediaKind::Audio, dts, &[0xaf, 1], &raw)
}

/// Video at 30 fps with a keyframe every `gop_ms`, and AAC at 44.1 kHz, for `duration_ms`.
fn av_stream(duration_ms: u64, gop_ms: u64) -> Vec<Packet> {
    let mut packets = vec![audio_header(OBS_AAC_CONFIG), video_header(OBS_AVC_RECORD)];
    let (mut audio_index, mut frame) = (0u64, 0u64);
    loop {
        let (audio, video) = (audio_dts(audio_index), frame * 100 / 3);
        if audio >= duration_ms && video >= duration_ms {
            return packets;
        }
        if audio <= video && audio < duration_ms || video >= duration_ms {
            packets.push(audio_frame(audio, 300));
            audio_index += 1;
        } else {
            packets.push(video_frame(
                video,
                video % gop_ms == 0,
                2000 + (frame as usize % 7) * 100,
            ));
            frame += 1;
        }
    }
}

fn audio_dts(index: u64) -> u64 {
    index * 10240 / 441
}

fn run(segmenter: &mut HlsSegmenter, packets: &[Packet]) -> Vec<Segment> {
    let mut out = Vec::new();
    for p in packets {
        segmenter.push(p).unwrap();
        out.extend(std::iter::from_fn(|| segmenter.poll_segment()));
    }
    segmenter.finish();
    out.extend(std::iter::from_fn(|| segmenter.poll_segment()));
    out
}

fn check_all(segments: &[Segment]) {
    let mut checker = TsChecker::new();
    for (i, segment) in segments.iter().enumerate() {
        if let Err(errors) = checker.check_segment(&segment.data, i == 0 || segment.discontinuity) {
            panic!("segment {}: {errors:#?}", segment.sequence);
        }
    }
}

#[test]
fn cuts_at_the_first_keyframe_at_or_after_the_fragment() {
    // Keyframes every 1500 ms: cuts at 3000 and 6000 (the first at or after 2000 ms).
    let packets = av_stream(7000, 1500);
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let segments = run(&mut segmenter, &packets);
    let starts: Vec<u64> = segments.iter().map(|s| s.start_dts).collect();
    assert_eq!(starts, vec![0, 3000, 6000]);
    assert_eq!(segments[0].duration_ms, 3000);
    assert_eq!(segments[1].duration_ms, 3000);
    assert!(segments.iter().all(|s| !s.discontinuity));
    assert_eq!(segments.iter().map(|s| s.sequence).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(segments[1].program_date_time_ms, ARRIVAL_BASE_MS + 3000);
    check_all(&segments);
    let report = crate::check::check_segment(&segments[0].data).unwrap();
    assert!(report.has_video && report.has_audio);
    assert_eq!(report.video_frames, 90);
    // The audio frame at 0 ms came before the keyframe and was dropped; the next is at 23 ms.
    assert_eq!(report.first_pts, Some(2070));
}

/// A stream whose clock passes 2^32 ms (49.7 days live, where the 33-bit 90 kHz clock also
/// wraps): segments are cut and timed as anywhere else, with no discontinuity, and their
/// PTS/DTS/PCR wrap as MPEG-TS defines, which the checker follows.
#[test]
fn segments_carry_on_across_the_33_bit_wrap() {
    const START: u64 = (1 << 32) - 3000;
    let mut packets = av_stream(9000, 1500);
    for p in &mut packets {
        if !p.seq_header {
            p.dts += START;
        }
    }
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let segments = run(&mut segmenter, &packets);
    let starts: Vec<u64> = segments.iter().map(|s| s.start_dts - START).collect();
    assert_eq!(starts, vec![0, 3000, 6000]);
    assert!(segments.iter().all(|s| !s.discontinuity));
    assert_eq!((segments[0].duration_ms, segments[1].duration_ms), (3000, 3000));
    check_all(&segments);
    // The second segment starts at 2^32 ms exactly, 0 on the wrapped 90 kHz clock.
    let wrapped = crate::check::check_segment(&segments[1].data).unwrap();
    assert!(
        wrapped.first_pts.is_some_and(|pts| pts < 100 * 90),
        "{:?}",
        wrapped.first_pts
    );
}

#[test]
fn packets_before_the_first_keyframe_are_dropped() {
    let mut packets = av_stream(4000, 2000);
    // Start mid-GOP: remove the first keyframe.
    let first_key = packets.iter().position(|p| p.keyframe && !p.seq_header).unwrap();
    packets.remove(first_key);
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let segments = run(&mut segmenter, &packets);
    assert_eq!(segments[0].start_dts, 2000);
    assert!(segmenter.stats().dropped_packets > 100);
    check_all(&segments);
}

#[test]
fn audio_only_streams_are_cut_by_duration() {
    let mut packets = vec![audio_header(&[0x12, 0x10])];
    packets.extend((0..600).map(|i| audio_frame(audio_dts(i), 200)));
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let segments = run(&mut segmenter, &packets);
    assert!(segments.len() >= 5);
    assert!(segments[0].start_dts >= 1000, "waits for video before going audio-only");
    for s in &segments[..segments.len() - 1] {
        assert!((1985..2030).contains(&s.duration_ms), "{}", s.duration_ms);
    }
    check_all(&segments);
    let report = crate::check::check_segment(&segments[1].data).unwrap();
    assert!(report.has_audio && !report.has_video);
    assert!(report.pcr_count > 0);
}

/// Every segment passes the checker (which holds the PCR to 100 ms) and its PCRs come at
/// most 100 ms apart: the largest interval seen, in ms.
fn max_pcr_interval_ms(segments: &[Segment]) -> u64 {
    check_all(segments);
    let worst = segments
        .iter()
        .map(|s| crate::check::check_segment(&s.data).map_or(u64::MAX, |r| r.max_pcr_interval))
        .max()
        .unwrap();
    worst / crate::ts::TICKS_PER_MS
}

#[test]
fn low_frame_rates_keep_the_pcr_within_100_ms() {
    // 2 fps video alone, and 5 fps video with 44.1 kHz AAC: the PCR rides on video.
    for (fps, with_audio) in [(2u64, false), (5, true)] {
        let mut packets = vec![video_header(OBS_AVC_RECORD)];
        if with_audio {
            packets.insert(0, audio_header(OBS_AAC_CONFIG));
        }
        let (mut frame, mut audio) = (0u64, 0u64);
        while frame * 1000 / fps < 9000 {
            let dts = frame * 1000 / fps;
            while with_audio && audio_dts(audio) < dts {
                packets.push(audio_frame(audio_dts(audio), 300));
                audio += 1;
            }
            packets.push(video_frame(dts, frame % (2 * fps) == 0, 3000));
            frame += 1;
        }
        let segments = run(&mut HlsSegmenter::new(HlsSegmenterConfig::default()), &packets);
        assert!(segments.len() >= 4);
        let worst = max_pcr_interval_ms(&segments);
        assert!((90..=100).contains(&worst), "{fps} fps: {worst} ms");
    }
}

#[test]
fn audio_only_at_16_khz_keeps_the_pcr_within_100_ms() {
    // AAC LC 16 kHz mono: 64 ms frames, four to a PES, 256 ms between PES headers.
    let mut packets = vec![audio_header(&[0x14, 0x08])];
    packets.extend((0..200).map(|i| audio_frame(i * 64, 150)));
    let segments = run(&mut HlsSegmenter::new(HlsSegmenterConfig::default()), &packets);
    assert!(segments.len() >= 4);
    let report = crate::check::check_segment(&segments[1].data).unwrap();
    assert!(report.has_audio && !report.has_video);
    let worst = max_pcr_interval_ms(&segments);
    assert!((90..=100).contains(&worst), "{worst} ms");
}

/// Video alone at `fps` with a keyframe every `gop_ms` (and at 0), for `duration_ms`.
fn video_stream(fps: u64, gop_ms: u64, duration_ms: u64) -> Vec<Packet> {
    let mut packets = vec![video_header(OBS_AVC_RECORD)];
    let mut frame = 0;
    while frame * 1000 / fps < duration_ms {
        let dts = frame * 1000 / fps;
        packets.push(video_frame(dts, dts.is_multiple_of(gop_ms), 1500));
        frame += 1;
    }
    packets
}

/// Checks the segments in order, each as what it claims to be, and that none outlasts the
/// target duration (RFC 8216 §4.3.3.1).
fn check_timing(segments: &[Segment]) {
    let target = segments[0].target_duration_secs;
    let mut checker = TsChecker::new();
    for segment in segments {
        assert_eq!(segment.target_duration_secs, target);
        assert!(
            rounded_secs(segment.duration_ms) <= target,
            "segment {} lasts {} ms, target {target} s",
            segment.sequence,
            segment.duration_ms
        );
        let context = SegmentContext {
            discontinuity: segment.sequence == 0 || segment.discontinuity,
            independent: segment.independent,
        };
        let report = checker
            .check(&segment.data, context)
            .unwrap_or_else(|e| panic!("segment {}: {e:#?}", segment.sequence));
        assert_eq!(
            report.starts_with_idr, segment.independent,
            "segment {}",
            segment.sequence
        );
    }
}

#[test]
fn obs_default_ten_second_gops_set_the_target_and_stay_whole() {
    // OBS's automatic keyframe interval, 250 frames, at 25 fps: a keyframe every 10 s.
    let segments = run(
        &mut HlsSegmenter::new(HlsSegmenterConfig::default()),
        &video_stream(25, 10_000, 45_000),
    );
    assert_eq!(segments[0].target_duration_secs, 11);
    let durations: Vec<u64> = segments.iter().map(|s| s.duration_ms).collect();
    assert_eq!(&durations[..4], &[10_000; 4]);
    assert!(segments.iter().all(|s| s.independent));
    check_timing(&segments);
}

#[test]
fn a_gop_longer_than_max_segment_is_cut_without_a_keyframe_within_the_target() {
    // 5 fps, a keyframe every 10 s, segments of at most 4 s.
    let config = HlsSegmenterConfig {
        max_segment_ms: 4000,
        ..HlsSegmenterConfig::default()
    };
    let mut segmenter = HlsSegmenter::new(config);
    let segments = run(&mut segmenter, &video_stream(5, 10_000, 30_000));
    let cuts: Vec<(u64, u64, bool)> = segments
        .iter()
        .map(|s| (s.start_dts, s.duration_ms, s.independent))
        .collect();
    assert_eq!(
        &cuts[..6],
        &[
            (0, 4000, true),
            (4000, 4000, false),
            (8000, 2000, false),
            (10_000, 4000, true),
            (14_000, 4000, false),
            (18_000, 2000, false),
        ]
    );
    assert_eq!(segments[0].target_duration_secs, 4);
    assert!(segments.iter().all(|s| !s.discontinuity));
    assert_eq!(segmenter.stats().forced_cuts, 6);
    check_timing(&segments);
}

#[test]
fn a_short_first_gop_fixes_a_short_target_that_later_long_gops_keep() {
    // 30 fps: one 2-s GOP, then 9-s GOPs. The target is fixed at 3 s by the first segment;
    // the long GOPs are cut at the last frame that rounds to 3 s.
    let mut packets = vec![video_header(OBS_AVC_RECORD)];
    for frame in 0..900u64 {
        let dts = frame * 100 / 3;
        let keyframe = dts == 0 || (dts >= 2000 && (dts - 2000) % 9000 == 0);
        packets.push(video_frame(dts, keyframe, 1500));
    }
    let segments = run(&mut HlsSegmenter::new(HlsSegmenterConfig::default()), &packets);
    assert_eq!(segments[0].target_duration_secs, 3);
    assert_eq!((segments[1].start_dts, segments[1].independent), (2000, true));
    assert!(segments.iter().any(|s| !s.independent));
    assert!(segments.iter().all(|s| s.duration_ms <= 3499));
    check_timing(&segments);
}

#[test]
fn a_stalled_stream_closes_the_segment_and_continues_discontinuous() {
    // 30 fps, keyframes every 2 s; after 5 s the video stalls for 8 s, then goes on.
    let mut packets = video_stream(30, 2000, 5000);
    packets.extend(
        video_stream(30, 2000, 6000)
            .into_iter()
            .skip(1)
            .map(|mut p| {
                p.dts += 13_000;
                p.keyframe = false;
                p
            })
            .map(|p| video_frame(p.dts, false, 1500)),
    );
    let segments = run(&mut HlsSegmenter::new(HlsSegmenterConfig::default()), &packets);
    assert_eq!(segments[0].target_duration_secs, 3);
    let stalled = segments.iter().position(|s| s.start_dts == 13_000).unwrap();
    assert!(segments[stalled].discontinuity && !segments[stalled].independent);
    let before = &segments[stalled - 1];
    // It ends where its last frame (at 4966 ms) ends, not where the stream resumed.
    assert_eq!(before.start_dts, 4000);
    assert!((990..=1010).contains(&before.duration_ms), "{}", before.duration_ms);
    check_timing(&segments);
}

#[test]
fn video_silent_while_audio_runs_on_ends_the_segment_within_the_target() {
    // 30 fps A/V with 2-s GOPs; the video stops at 3 s for 10 s while audio goes on.
    let packets: Vec<Packet> = av_stream(20_000, 2000)
        .into_iter()
        .filter(|p| p.kind != MediaKind::Video || p.seq_header || !(3000..13_000).contains(&p.dts))
        .collect();
    let segments = run(&mut HlsSegmenter::new(HlsSegmenterConfig::default()), &packets);
    assert_eq!(segments[0].target_duration_secs, 3);
    let resumed = segments.iter().position(|s| s.start_dts == 14_000).unwrap();
    assert!(segments[resumed].discontinuity && segments[resumed].independent);
    assert_eq!(segments[resumed - 1].start_dts, 2000);
    check_timing(&segments);
}

#[test]
fn a_discontinuity_closes_the_segment_and_waits_for_a_keyframe() {
    let mut packets = av_stream(5000, 1000);
    let mut after: Vec<Packet> = av_stream(5000, 1000).into_iter().skip(2).collect();
    // The publisher came back: timeline continues at 5500, first a non-keyframe.
    for p in &mut after {
        p.dts += 5500;
        p.arrival_ms += 9000;
    }
    after[0].discontinuity = true;
    let key = after.iter().position(|p| p.keyframe).unwrap();
    after.remove(key);
    packets.extend(after);
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let segments = run(&mut segmenter, &packets);
    let flags: Vec<(u64, bool)> = segments.iter().map(|s| (s.start_dts, s.discontinuity)).collect();
    assert_eq!(
        flags,
        vec![(0, false), (2000, false), (4000, false), (6500, true), (8500, false)]
    );
    // The segment cut by the discontinuity ends where its last frame ends.
    assert!(
        (1000..1100).contains(&segments[2].duration_ms),
        "{}",
        segments[2].duration_ms
    );
    check_all(&segments);
}

#[test]
fn a_new_sequence_header_starts_a_discontinuous_segment() {
    let mut packets = av_stream(3000, 1000);
    let mut changed = OBS_AVC_RECORD.to_vec();
    changed[3] = 0x28; // level 4.0
    let mut header = video_header(&changed);
    header.dts = 3000;
    packets.push(header);
    packets.extend(av_stream(3000, 1000).into_iter().skip(2).map(|mut p| {
        p.dts += 3000;
        p
    }));
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let segments = run(&mut segmenter, &packets);
    let flags: Vec<(u64, bool)> = segments.iter().map(|s| (s.start_dts, s.discontinuity)).collect();
    assert_eq!(flags, vec![(0, false), (2000, false), (3000, true), (5000, false)]);
    assert_eq!(segmenter.video_config().unwrap().level_idc, 0x28);
    check_all(&segments);
}

#[test]
fn finish_flushes_the_partial_segment() {
    let packets = av_stream(2500, 2000);
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let segments = run(&mut segmenter, &packets);
    assert_eq!(segments.len(), 2);
    assert!(
        (500..560).contains(&segments[1].duration_ms),
        "{}",
        segments[1].duration_ms
    );
    check_all(&segments);
    // Packets after finish continue the sequence, discontinuous.
    let more: Vec<Packet> = av_stream(1000, 1000)
        .into_iter()
        .skip(2)
        .map(|mut p| {
            p.dts += 2600;
            p
        })
        .collect();
    let after = run(&mut segmenter, &more);
    assert_eq!((after[0].sequence, after[0].discontinuity), (2, true));
}

#[test]
fn bad_packets_are_rejected_without_side_effects() {
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    assert_eq!(
        segmenter.push(&video_frame(0, true, 100)),
        Err(MuxError::VideoBeforeSequenceHeader)
    );
    assert_eq!(
        segmenter.push(&audio_frame(0, 100)),
        Err(MuxError::AudioBeforeSequenceHeader)
    );
    let short = packet(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0], &[1, 0x64, 0]);
    let mut short = short;
    short.seq_header = true;
    let err = segmenter.push(&short).unwrap_err();
    assert_eq!(
        err.to_string(),
        "video sequence header rejected: avc decoder configuration is 3 bytes, expected at least 7"
    );
    assert_eq!(err.reason(), "video_sequence_header");
    segmenter.push(&video_header(OBS_AVC_RECORD)).unwrap();
    let mut truncated = video_frame(0, true, 100);
    truncated.payload = truncated.payload.slice(..truncated.payload.len() - 1);
    assert!(matches!(segmenter.push(&truncated), Err(MuxError::VideoFrame(_))));
    let mut hevc = video_frame(0, true, 100);
    hevc.codec = Codec::Video(VideoCodec::Hevc);
    assert_eq!(
        segmenter.push(&hevc),
        Err(MuxError::UnsupportedVideoCodec(VideoCodec::Hevc))
    );
    assert!(segmenter.poll_segment().is_none());
    segmenter.finish();
    assert!(segmenter.poll_segment().is_none());
}

#[test]
fn keyframe_frames_with_parameter_sets_pass_the_checker() {
    let config = AvcDecoderConfig::parse(OBS_AVC_RECORD).unwrap();
    let frame = annexb_nals_to_avcc([&config.sps[0][..], &config.pps[0][..], &[0x65, 1, 2, 3][..]]);
    let mut p = packet(MediaKind::Video, 0, &[0x17, 1, 0, 0, 0], &frame);
    p.keyframe = true;
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    segmenter.push(&video_header(OBS_AVC_RECORD)).unwrap();
    segmenter.push(&p).unwrap();
    segmenter.finish();
    let segment = segmenter.poll_segment().unwrap();
    let report = crate::check::check_segment(&segment.data).unwrap();
    assert_eq!(report.video_frames, 1);
    assert!(!report.has_audio);
    let sps_count = segment.data.windows(5).filter(|w| w == &[0, 0, 0, 1, 0x67]).count();
    assert_eq!(sps_count, 1, "the frame's own SPS is not duplicated");
}

#[test]
fn segment_data_is_whole_packets_with_tables_first() {
    let packets = av_stream(2100, 1000);
    let segments = run(&mut HlsSegmenter::new(HlsSegmenterConfig::default()), &packets);
    for segment in &segments {
        assert_eq!(segment.data.len() % 188, 0);
        assert_eq!(
            &segment.data[..4],
            &[0x47, 0x40, 0x00, 0x10 | (segment.sequence as u8 & 0x0f)]
        );
        let _: &Bytes = &segment.data;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_gop_patterns_make_valid_segments(
        gops in proptest::collection::vec((1u64..90, 1usize..6000), 1..12),
        fragment_ms in 500u64..4000,
        max_extra_ms in 0u64..5000,
        with_audio in any::<bool>(),
    ) {
        let max_segment_ms = fragment_ms + max_extra_ms;
        let mut packets = vec![video_header(OBS_AVC_RECORD)];
        if with_audio {
            packets.insert(0, audio_header(OBS_AAC_CONFIG));
        }
        let mut frame = 0u64;
        let mut next_audio = 0u64;
        for (gop_frames, size) in &gops {
            for i in 0..*gop_frames {
                let dts = frame * 40;
                while with_audio && audio_dts(next_audio) <= dts {
                    packets.push(audio_frame(audio_dts(next_audio), 1 + (next_audio as usize * 37) % 900));
                    next_audio += 1;
                }
                packets.push(video_frame(dts, i == 0, 1 + (size + i as usize * 13) % 6000));
                frame += 1;
            }
        }
        let config = HlsSegmenterConfig { fragment_ms, max_segment_ms, ..Default::default() };
        let segments = run(&mut HlsSegmenter::new(config), &packets);
        prop_assert!(!segments.is_empty());
        let target = segments[0].target_duration_secs;
        let mut checker = TsChecker::new();
        let mut playlist = LivePlaylist::new(LivePlaylistConfig { fragment_ms, window_segments: 6, part_target_ms: None });
        let mut playlist_checker = PlaylistChecker::new();
        let mut expected_start = 0;
        for (i, segment) in segments.iter().enumerate() {
            prop_assert_eq!(segment.sequence, i as u64);
            prop_assert_eq!(segment.start_dts, expected_start);
            prop_assert!(!segment.discontinuity);
            expected_start = segment.start_dts + segment.duration_ms;
            // RFC 8216 §4.3.3.1, with a target that never changes (§6.2.1).
            prop_assert_eq!(segment.target_duration_secs, target);
            prop_assert!(segment.duration_ms <= max_segment_ms);
            prop_assert!(rounded_secs(segment.duration_ms) <= target, "{} ms, target {} s", segment.duration_ms, target);
            if i + 1 < segments.len() {
                // Half a frame (20 ms) of slack for timestamp rounding.
                prop_assert!(segment.duration_ms + 20 >= fragment_ms.min(max_segment_ms - 40));
            }
            let context = SegmentContext { discontinuity: i == 0, independent: segment.independent };
            let result = checker.check(&segment.data, context);
            prop_assert!(result.is_ok(), "segment {}: {:?}", i, result);
            prop_assert_eq!(result.unwrap().starts_with_idr, segment.independent);
            playlist.push_segment(segment).unwrap();
            let listed = playlist_checker.check(&playlist.render(|seq| format!("{seq}.ts"))).unwrap();
            let all_independent = segments[listed.media_sequence as usize..=i].iter().all(|s| s.independent);
            prop_assert_eq!(listed.independent_segments, all_independent);
        }
    }
}

#[test]
fn frozen_timestamps_cut_the_segment_at_its_byte_budget() {
    // Every packet at dts 1000: no duration is ever reached, so only the byte budget ends a
    // segment. 600 frames of ~2 KB (with audio between) against a 64 KiB budget.
    let budget = 64 * 1024;
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig {
        max_segment_bytes: budget,
        ..HlsSegmenterConfig::default()
    });
    let mut packets = vec![audio_header(OBS_AAC_CONFIG), video_header(OBS_AVC_RECORD)];
    for i in 0..600 {
        packets.push(video_frame(1000, i % 100 == 0, 2000));
        packets.push(audio_frame(1000, 300));
    }
    let segments = run(&mut segmenter, &packets);
    assert!(segments.len() >= 600 * 2000 / budget, "{} segments", segments.len());
    for s in &segments {
        assert!(
            s.data.len() <= budget,
            "segment {} is {} bytes",
            s.sequence,
            s.data.len()
        );
        assert!(!s.discontinuity, "a byte cut is no discontinuity");
    }
    assert_eq!(segmenter.stats().byte_cuts, segments.len() as u64 - 1);
    // Nothing was lost to the cuts: every frame starts a video PES in some segment. (The
    // checker would refuse these segments for their frozen DTS, the input's fault.)
    let video_pes_starts = |data: &[u8]| {
        data.chunks(188)
            .filter(|p| p[1] & 0x40 != 0 && (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == 0x100)
            .count()
    };
    let frames: usize = segments.iter().map(|s| video_pes_starts(&s.data)).sum();
    assert_eq!(frames, 600);
}
