use bytes::Bytes;

use super::*;
use crate::check::TsChecker;
use crate::mp4::Mp4Index;
use crate::vod::test_support::Builder;
use crate::vod::VodTs;

const T0: u64 = 1_700_000_000_000;

/// `seconds` of 30 fps video (a keyframe every second) and AAC.
fn recording(seconds: usize) -> (Mp4Index, Vec<u8>) {
    Builder::new()
        .video(90_000, 0, &vec![3000; seconds * 30], |i| i % 30 == 0, |_| 0)
        .audio(48_000, 0, seconds * 48_000 / 1024)
        .build_file()
}

fn plan(seconds: usize) -> VodPlan {
    VodPlan::new(&recording(seconds).0, 2000).unwrap()
}

fn summary(segments: &[RangeSegment]) -> Vec<(usize, usize, u64, bool)> {
    segments
        .iter()
        .map(|s| (s.file, s.segment, s.timeline_offset_ms, s.discontinuity))
        .collect()
}

#[test]
fn files_that_join_continue_one_timeline() {
    let (a, b) = (plan(6), plan(4));
    assert_eq!((a.end_ms(), b.end_ms()), (6000, 4000));
    let files = [
        RangeFile { start_ms: T0, plan: &a },
        RangeFile {
            start_ms: T0 + 6000 + 400,
            plan: &b,
        },
    ];
    let segments = plan_range(&files, T0, T0 + 60_000);
    assert_eq!(
        summary(&segments),
        [
            (0, 0, 0, false),
            (0, 1, 0, false),
            (0, 2, 0, false),
            (1, 0, 6000, false),
            (1, 1, 6000, false)
        ]
    );
    assert_eq!(segments[0].program_date_time_ms, Some(T0));
    assert!(segments[1..].iter().all(|s| s.program_date_time_ms.is_none()));
    let entry = segments[3].entry("b-0.ts".to_owned());
    assert_eq!(
        (entry.duration_ms, entry.discontinuity, entry.independent),
        (2000, false, true)
    );
}

#[test]
fn a_gap_a_late_start_or_new_settings_is_a_discontinuity() {
    let (a, b) = (plan(6), plan(4));
    for (late, joins) in [
        (0, true),
        (JOIN_TOLERANCE_MS, true),
        (JOIN_TOLERANCE_MS + 1, false),
        (60_000, false),
    ] {
        let start_b = T0 + 6000 + late;
        let files = [
            RangeFile { start_ms: T0, plan: &a },
            RangeFile {
                start_ms: start_b,
                plan: &b,
            },
        ];
        let segments = plan_range(&files, T0, T0 + 120_000);
        assert_eq!(segments.len(), 5);
        assert_eq!(segments[3].discontinuity, !joins, "{late} ms late");
        // The timeline never goes back, joined or not.
        assert_eq!(segments[3].timeline_offset_ms, 6000);
        assert_eq!(segments[3].program_date_time_ms, (!joins).then_some(start_b));
    }
    // Same times, other codec configuration.
    let (mut index, _) = recording(4);
    index.tracks[1].info.stsd = Bytes::from_static(b"another esds");
    let other = VodPlan::new(&index, 2000).unwrap();
    let files = [
        RangeFile { start_ms: T0, plan: &a },
        RangeFile {
            start_ms: T0 + 6000,
            plan: &other,
        },
    ];
    assert!(plan_range(&files, T0, T0 + 20_000)[3].discontinuity);
}

#[test]
fn the_range_trims_the_first_and_last_files() {
    let (a, b) = (plan(6), plan(6));
    let files = [
        RangeFile { start_ms: T0, plan: &a },
        RangeFile {
            start_ms: T0 + 6000,
            plan: &b,
        },
    ];
    // 3.5 s into the first file to 1 s into the second.
    let segments = plan_range(&files, T0 + 3500, T0 + 7000);
    assert_eq!(
        summary(&segments),
        [(0, 1, 0, false), (0, 2, 0, false), (1, 0, 6000, false)]
    );
    assert_eq!(segments[0].program_date_time_ms, Some(T0 + 2000));
    // Ranges that miss every file.
    assert!(plan_range(&files, T0 - 10_000, T0).is_empty());
    assert!(plan_range(&files, T0 + 12_000, T0 + 20_000).is_empty());
    assert!(plan_range(&files, T0 + 5000, T0 + 5000).is_empty());
    // Only the second file.
    let segments = plan_range(&files, T0 + 6000, T0 + 9000);
    assert_eq!(summary(&segments), [(1, 0, 0, false), (1, 1, 0, false)]);
    assert_eq!(segments[0].program_date_time_ms, Some(T0 + 6000));
}

#[test]
fn overlapping_files_are_trimmed_and_marked() {
    // The second file starts 3 s before the first ends (two recordings of one stream).
    let (a, b) = (plan(6), plan(8));
    let files = [
        RangeFile {
            start_ms: T0 + 3000,
            plan: &b,
        },
        RangeFile { start_ms: T0, plan: &a },
    ];
    let segments = plan_range(&files, T0, T0 + 60_000);
    // The first file whole, then the second from its segment holding 6 s (its 3 s).
    assert_eq!(
        summary(&segments),
        [
            (1, 0, 0, false),
            (1, 1, 0, false),
            (1, 2, 0, false),
            (0, 1, 4000, true),
            (0, 2, 4000, false),
            (0, 3, 4000, false)
        ]
    );
    // A file wholly inside the one before adds nothing.
    let short = plan(2);
    let files = [
        RangeFile { start_ms: T0, plan: &a },
        RangeFile {
            start_ms: T0 + 1000,
            plan: &short,
        },
    ];
    assert_eq!(plan_range(&files, T0, T0 + 60_000).len(), 3);
}

#[test]
fn joined_files_mux_into_one_continuous_stream() {
    let files = [recording(5), recording(3), recording(4)];
    let vods: Vec<VodTs> = files
        .iter()
        .map(|(index, _)| VodTs::new(index.clone(), 2000).unwrap())
        .collect();
    let starts = [T0, T0 + 5000 + 300, T0 + 5300 + 3000 + 10_000];
    let range: Vec<RangeFile<'_>> = vods
        .iter()
        .zip(starts)
        .map(|(vod, start_ms)| RangeFile {
            start_ms,
            plan: vod.plan(),
        })
        .collect();
    let segments = plan_range(&range, T0, T0 + 60_000);
    assert_eq!(segments.iter().filter(|s| s.discontinuity).count(), 1);
    let mut checker = TsChecker::new();
    for (i, s) in segments.iter().enumerate() {
        let bytes = &files[s.file].1;
        let data = vods[s.file]
            .mux_segment(s.segment, s.timeline_offset_ms, |r| {
                Ok(Bytes::copy_from_slice(&bytes[r.offset as usize..r.end() as usize]))
            })
            .unwrap();
        if let Err(errors) = checker.check_segment(&data, i == 0 || s.discontinuity) {
            panic!("segment {i} ({s:?}): {errors:#?}");
        }
    }
}
