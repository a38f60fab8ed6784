use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::vod::test_support::Builder;

/// 30 fps on a 90 kHz timescale, a keyframe every `gop` frames, `seconds` long, with AAC.
fn steady(gop: usize, seconds: usize) -> Mp4Index {
    Builder::new()
        .video(90_000, 0, &vec![3000; seconds * 30], |i| i % gop == 0, |_| 0)
        .audio(44_100, 0, seconds * 44_100 / 1024)
        .build()
}

fn video_samples(index: &Mp4Index) -> &[Sample] {
    &index.track(MediaKind::Video).unwrap().samples
}

/// The rules every plan keeps: segments follow each other on the timeline, the sample
/// ranges partition the tracks (video from its first keyframe), every segment starts with
/// a keyframe, and each cut is the first keyframe far enough from the previous one.
fn check_plan(index: &Mp4Index, plan: &VodPlan) {
    assert!(!plan.is_empty());
    let video = index
        .tracks
        .iter()
        .find(|t| t.info.handler == *b"vide" && !t.samples.is_empty());
    let audio = index
        .tracks
        .iter()
        .find(|t| t.info.handler == *b"soun" && !t.samples.is_empty());
    let first_key = video.map_or(0, |v| v.samples.iter().position(|s| s.keyframe).unwrap());
    let (mut video_at, mut audio_at) = (first_key, 0);
    for (i, segment) in plan.segments().iter().enumerate() {
        assert_eq!(segment.number, i);
        assert!(segment.end_ms > segment.start_ms, "{segment:?}");
        if let Some(next) = plan.segment(i + 1) {
            assert_eq!(segment.end_ms, next.start_ms);
        }
        assert_eq!(segment.video.start, video_at, "{segment:?}");
        assert_eq!(segment.audio.start, audio_at, "{segment:?}");
        video_at = segment.video.end;
        audio_at = segment.audio.end;
        assert!(segment.keyframe_start);
        if let Some(v) = video {
            assert!(v.samples[segment.video.start].keyframe, "{segment:?}");
        }
    }
    assert_eq!(video_at, video.map_or(0, |v| v.samples.len()));
    assert_eq!(audio_at, audio.map_or(0, |a| a.samples.len()));
    assert!(plan.independent());
    assert_eq!(&VodPlan::new(index, plan.target_ms()).unwrap(), plan, "deterministic");
}

#[test]
fn cuts_at_the_first_keyframe_at_or_after_the_target() {
    // Keyframes every 2 s; a 6 s target cuts at 0, 6, 12, 18.
    let index = steady(60, 20);
    let plan = VodPlan::new(&index, 6000).unwrap();
    check_plan(&index, &plan);
    let starts: Vec<u64> = plan.segments().iter().map(|s| s.start_ms).collect();
    assert_eq!(starts, [0, 6000, 12_000, 18_000]);
    assert_eq!(plan.end_ms(), 20_000);
    assert_eq!(plan.segment(1).unwrap().video, 180..360);
    // Keyframes every 4 s: the next one at or after 6 s is at 8 s.
    let index = steady(120, 20);
    let plan = VodPlan::new(&index, 6000).unwrap();
    check_plan(&index, &plan);
    let starts: Vec<u64> = plan.segments().iter().map(|s| s.start_ms).collect();
    assert_eq!(starts, [0, 8000, 16_000]);
    // A target below the GOP: one segment per GOP; above the file: one segment.
    let plan = VodPlan::new(&index, 1000).unwrap();
    assert_eq!(plan.len(), 5);
    assert_eq!(VodPlan::new(&index, u64::MAX).unwrap().len(), 1);
    assert_eq!(VodPlan::new(&index, 0).unwrap().len(), 5);
}

#[test]
fn half_a_frame_of_slack_absorbs_millisecond_rounding() {
    // OBS at 30 fps in milliseconds: frames of 33 and 34 ms, keyframes 1999 ms apart.
    let mut durations: Vec<u32> = (0..600).map(|i| if i % 3 == 2 { 34 } else { 33 }).collect();
    for gop in durations.chunks_mut(60) {
        gop[59] -= 1;
    }
    let index = Builder::new()
        .video(1000, 0, &durations, |i| i % 60 == 0, |_| 0)
        .build();
    let keys: Vec<u64> = video_samples(&index)
        .iter()
        .filter(|s| s.keyframe)
        .map(|s| s.dts)
        .collect();
    assert_eq!(&keys[..4], &[0, 1999, 3998, 5997]);
    let plan = VodPlan::new(&index, 6000).unwrap();
    check_plan(&index, &plan);
    assert_eq!(plan.segment(1).unwrap().start_ms, 5997);
}

#[test]
fn edit_lists_place_the_timeline() {
    // A frame of composition delay removed by the video's edit list, and AAC priming of
    // 1024 samples cut by the audio's: the audio plays 23 ms before the movie's start, so
    // the timeline starts there.
    let index = Builder::new()
        .video(90_000, -3000, &[3000; 300], |i| i % 60 == 0, |_| 3000)
        .audio(44_100, -1024, 430)
        .build();
    let plan = VodPlan::new(&index, 4000).unwrap();
    check_plan(&index, &plan);
    assert_eq!(plan.start_ms(), 0);
    // The video starts 23.2 ms into the timeline.
    assert_eq!(plan.origin(), -2090);
    let starts: Vec<u64> = plan.segments().iter().map(|s| s.start_ms).collect();
    assert_eq!(starts, [0, 4023, 8023]);
    assert_eq!(plan.end_ms(), 10_023);
}

#[test]
fn audio_goes_to_the_segment_it_plays_in() {
    let index = steady(60, 10);
    let plan = VodPlan::new(&index, 2000).unwrap();
    check_plan(&index, &plan);
    let audio = &index.track(MediaKind::Audio).unwrap().samples;
    for segment in plan.segments() {
        for s in &audio[segment.audio.clone()] {
            let ms = s.dts * 1000 / 44_100;
            assert!(
                ms >= segment.start_ms.saturating_sub(1) && ms < segment.end_ms || segment.number + 1 == plan.len(),
                "{ms} in {segment:?}"
            );
        }
    }
    // AAC frame 86 plays at 1.9969 s and 87 at 2.0201 s.
    assert_eq!(plan.segment(1).unwrap().audio.start, 87);
}

#[test]
fn audio_only_files_are_cut_by_time() {
    let index = Builder::new().audio(48_000, 0, 1000).build();
    let plan = VodPlan::new(&index, 6000).unwrap();
    check_plan(&index, &plan);
    assert!(!plan.has_video() && plan.has_audio());
    // 6 s of 21.33 ms frames: the cut at frame 281 (5.9947 s, within half a frame).
    let starts: Vec<u64> = plan.segments().iter().map(|s| s.start_ms).collect();
    assert_eq!(starts, [0, 5995, 11_989, 17_984]);
    assert_eq!(plan.segment(1).unwrap().audio, 281..562);
    assert_eq!(plan.end_ms(), 21_333);
}

#[test]
fn video_before_the_first_keyframe_is_left_out() {
    let index = Builder::new()
        .video(90_000, 0, &[3000; 100], |i| i == 10 || i == 70, |_| 0)
        .build();
    let plan = VodPlan::new(&index, 1000).unwrap();
    check_plan(&index, &plan);
    assert_eq!(plan.segment(0).unwrap().video, 10..70);
    assert_eq!(plan.start_ms(), 333);
}

#[test]
fn window_edges() {
    let index = steady(60, 20);
    let plan = VodPlan::new(&index, 6000).unwrap();
    let numbers = |from, to| plan.window(from, to).iter().map(|s| s.number).collect::<Vec<_>>();
    assert_eq!(numbers(0, 1), [0]);
    assert_eq!(numbers(0, 6000), [0]);
    assert_eq!(numbers(0, 6001), [0, 1]);
    assert_eq!(numbers(5999, 6000), [0]);
    assert_eq!(numbers(6000, 6001), [1]);
    assert_eq!(numbers(7000, 13_000), [1, 2]);
    assert_eq!(numbers(0, u64::MAX), [0, 1, 2, 3]);
    assert_eq!(numbers(19_999, 30_000), [3]);
    assert_eq!(numbers(20_000, 30_000), Vec::<usize>::new());
    assert_eq!(numbers(5000, 5000), Vec::<usize>::new());
    assert_eq!(numbers(9000, 3000), Vec::<usize>::new());
}

#[test]
fn files_that_cannot_be_planned() {
    assert_eq!(
        VodPlan::new(&Builder::new().build(), 6000),
        Err(MuxError::VodNothingToPlay)
    );
    let no_keys = Builder::new().video(90_000, 0, &[3000; 10], |_| false, |_| 0).build();
    assert_eq!(
        VodPlan::new(&no_keys, 6000),
        Err(MuxError::VodNoKeyframe { track_id: 1 })
    );
    // A composition offset of a minute cut by the edit list: the first frame would decode a
    // minute before the timeline starts.
    let far = Builder::new()
        .video(1000, -60_000, &[40; 10], |_| true, |_| 60_000)
        .build();
    assert!(matches!(
        VodPlan::new(&far, 6000),
        Err(MuxError::VodTimestamp { track_id: 1, .. })
    ));
    // An empty video track next to audio: audio only.
    let empty_video = Builder::new()
        .video(90_000, 0, &[], |_| true, |_| 0)
        .audio(44_100, 0, 100)
        .build();
    assert!(!VodPlan::new(&empty_video, 6000).unwrap().has_video());
}

#[test]
fn same_format_compares_sample_entries() {
    let a = VodPlan::new(&steady(60, 4), 6000).unwrap();
    let b = VodPlan::new(&steady(30, 8), 6000).unwrap();
    assert!(a.same_format(&b));
    let audio_only = VodPlan::new(&Builder::new().audio(44_100, 0, 100).build(), 6000).unwrap();
    assert!(!a.same_format(&audio_only));
    let mut other = steady(60, 4);
    other.tracks[0].info.stsd = Bytes::from_static(b"other");
    assert!(!a.same_format(&VodPlan::new(&other, 6000).unwrap()));
}

proptest! {
    #[test]
    fn any_keyframe_pattern_makes_a_sound_plan(
        gops in proptest::collection::vec(1usize..200, 1..20),
        frame in prop_oneof![Just(3000u32), Just(3003), Just(1500), Just(3600)],
        target_ms in 1u64..15_000,
        lead in 0usize..5,
        audio_frames in 0usize..2000,
    ) {
        let mut keys = vec![false; lead];
        for gop in &gops {
            keys.push(true);
            keys.extend(std::iter::repeat_n(false, gop - 1));
        }
        let durations = vec![frame; keys.len()];
        let index = Builder::new()
            .video(90_000, 0, &durations, |i| keys[i], |i| if i % 2 == 1 { 2 * frame as i32 } else { frame as i32 })
            .audio(48_000, 0, audio_frames)
            .build();
        let plan = VodPlan::new(&index, target_ms).unwrap();
        check_plan(&index, &plan);
        // Each cut is the first keyframe far enough on.
        let samples = video_samples(&index);
        let half = i64::from(frame) / 2;
        let target = target_ms as i64 * 90;
        for pair in plan.segments().windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let at = |i: usize| samples[i].dts as i64 + i64::from(samples[i].cts);
            for (i, sample) in samples.iter().enumerate().take(b.video.start).skip(a.video.start + 1) {
                prop_assert!(!sample.keyframe || at(i) - at(a.video.start) + half < target);
            }
            prop_assert!(at(b.video.start) - at(a.video.start) + half >= target);
        }
    }
}
