use bytes::Bytes;

use super::*;
use crate::check::PlaylistChecker;
use crate::hls::{LivePlaylist, LivePlaylistConfig, PartEntry, PlaylistEntry, PlaylistUris};
use crate::mp4::test_support::*;

fn run(config: Fmp4SegmenterConfig, packets: &[Packet]) -> Vec<Fmp4Output> {
    let mut segmenter = Fmp4Segmenter::new(config);
    let mut out = Vec::new();
    for p in packets {
        segmenter.push(p).expect("test packets are accepted");
        out.extend(std::iter::from_fn(|| segmenter.poll()));
    }
    segmenter.finish();
    out.extend(std::iter::from_fn(|| segmenter.poll()));
    out
}

fn segments(out: &[Fmp4Output]) -> Vec<&Fmp4Segment> {
    out.iter()
        .filter_map(|o| match o {
            Fmp4Output::Segment(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn parts(out: &[Fmp4Output]) -> Vec<&Part> {
    out.iter()
        .filter_map(|o| match o {
            Fmp4Output::Part(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn segments_start_at_keyframes_and_parts_never_outgrow_the_part_target() {
    // 10 s at 30 fps, a keyframe every 2 s.
    let out = run(Fmp4SegmenterConfig::default(), &av_stream(10, 60));
    let segments = segments(&out);
    let parts = parts(&out);
    assert_eq!(segments.len(), 5);
    for (i, s) in segments.iter().enumerate() {
        assert_eq!(s.sequence, i as u64);
        assert!(s.independent && !s.discontinuity);
        assert_eq!(s.target_duration_secs, 3);
        assert_eq!(s.start_dts, i as u64 * 2000);
        let mine: Vec<&&Part> = parts.iter().filter(|p| p.sequence == s.sequence).collect();
        assert!(mine.len() >= 6, "a 2 s segment in parts of at most 300 ms");
        let joined: Vec<u8> = mine.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(Bytes::from(joined), s.data, "a segment is its parts back to back");
        assert_eq!(mine.iter().map(|p| p.duration_ms).sum::<u64>(), s.duration_ms);
        for (j, p) in mine.iter().enumerate() {
            assert_eq!(p.index as usize, j);
            assert_eq!(p.independent, j == 0, "only the keyframe part is independent");
            assert!(p.duration_ms <= 300, "part of {} ms", p.duration_ms);
            // RFC 8216bis §4.4.4.9: at least 85% of the target, but for the last of a segment.
            if j + 1 < mine.len() {
                assert!(p.duration_ms * 100 >= 85 * 300, "part of {} ms", p.duration_ms);
            }
        }
    }
}

#[test]
fn without_low_latency_a_segment_is_one_fragment() {
    let config = Fmp4SegmenterConfig {
        part_ms: None,
        ..Fmp4SegmenterConfig::default()
    };
    let out = run(config, &av_stream(6, 60));
    assert!(parts(&out).is_empty());
    let segments = segments(&out);
    assert_eq!(segments.len(), 3);
    for s in segments {
        let reader_input = [init_of(&out).data.to_vec(), s.data.to_vec()].concat();
        assert_eq!(mp4_reader(&reader_input).moofs.len(), 1);
    }
}

fn init_of(out: &[Fmp4Output]) -> &InitSection {
    out.iter()
        .find_map(|o| match o {
            Fmp4Output::Init(i) => Some(i),
            _ => None,
        })
        .expect("an init section")
}

#[test]
fn init_and_segments_read_back_through_the_mp4_crate_with_tfdt_running_on() {
    let packets = av_stream(8, 60);
    let out = run(Fmp4SegmenterConfig::default(), &packets);
    let init = init_of(&out);
    assert_eq!(init.codecs, "avc1.64001f,mp4a.40.2");
    assert_eq!((init.width, init.height), (1280, 720));
    let mut file = init.data.to_vec();
    for s in segments(&out) {
        file.extend_from_slice(&s.data);
    }
    let reader = mp4_reader(&file);
    assert_eq!(reader.moofs.len(), parts(&out).len(), "one moof per part");
    let mut ends = [None::<u64>; 3];
    let mut samples = [0usize; 3];
    for moof in &reader.moofs {
        for traf in &moof.trafs {
            let id = traf.tfhd.track_id as usize;
            let tfdt = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time;
            if let Some(end) = ends[id] {
                assert_eq!(tfdt, end, "track {id}: tfdt continues across parts and segments");
            }
            let trun = traf.trun.as_ref().expect("trun");
            samples[id] += trun.sample_count as usize;
            ends[id] = Some(tfdt + trun.sample_durations.iter().map(|d| u64::from(*d)).sum::<u64>());
        }
    }
    let video = packets.iter().filter(|p| p.is_video() && !p.seq_header).count();
    let audio = packets.iter().filter(|p| p.is_audio() && !p.seq_header).count();
    assert_eq!((samples[1], samples[2]), (video, audio), "every frame once");
}

#[test]
fn a_new_sequence_header_brings_a_new_init_section_and_a_discontinuity() {
    let mut packets = av_stream(4, 60);
    let mut other = OBS_AVC_RECORD.to_vec();
    other[2] = 0x40; // another constraint flag: another configuration
    let mut header = video_header(&other);
    header.dts = 4000;
    packets.push(header);
    for i in 0..60u64 {
        packets.push(video_frame(4000 + i * 1000 / 30, 0, i % 30 == 0, 300));
    }
    let out = run(Fmp4SegmenterConfig::default(), &packets);
    let inits: Vec<&InitSection> = out
        .iter()
        .filter_map(|o| match o {
            Fmp4Output::Init(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(inits.len(), 2);
    assert_eq!(inits[1].id, 1);
    assert_eq!(inits[1].codecs, "avc1.64401f,mp4a.40.2");
    let segments = segments(&out);
    let first_new = segments
        .iter()
        .position(|s| s.init_id == 1)
        .expect("a segment of the new init");
    assert!(segments[first_new].discontinuity);
    assert!(segments[first_new].independent);
    assert!(segments[..first_new].iter().all(|s| s.init_id == 0 && !s.discontinuity));
    assert!(segments[first_new + 1..].iter().all(|s| !s.discontinuity));
}

struct Names;

impl PlaylistUris for Names {
    fn segment(&self, sequence: u64) -> String {
        format!("s-{sequence}.m4s")
    }
    fn part(&self, sequence: u64, index: u32) -> String {
        format!("s-{sequence}.{index}.m4s")
    }
    fn init(&self, id: u64) -> String {
        format!("init-{id}.mp4")
    }
}

#[test]
fn the_ll_playlist_of_a_live_stream_passes_the_checker_at_every_part() {
    let out = run(Fmp4SegmenterConfig::default(), &av_stream(30, 60));
    let mut playlist = LivePlaylist::new(LivePlaylistConfig {
        fragment_ms: 2000,
        window_segments: 12,
        part_target_ms: Some(300),
    });
    let (mut full, mut delta) = (PlaylistChecker::new(), PlaylistChecker::new());
    let mut skipped_some = false;
    for o in &out {
        match o {
            Fmp4Output::Init(_) => continue,
            Fmp4Output::Part(p) => playlist.push_part(
                p.sequence,
                PartEntry {
                    duration_ms: p.duration_ms,
                    independent: p.independent,
                },
            ),
            Fmp4Output::Segment(s) => {
                playlist.push_entry(PlaylistEntry::from(s)).unwrap();
            }
        }
        if playlist.is_empty() {
            continue;
        }
        let text = playlist.render_with(&Names, false);
        let report = full
            .check(&text)
            .unwrap_or_else(|e| panic!("{e:?}\n{}", String::from_utf8_lossy(&text)));
        let ll = report.low_latency.expect("LL tags");
        assert_eq!(ll.part_target_ms, 300);
        assert_eq!(ll.part_hold_back_ms, 900);
        let text = playlist.render_with(&Names, true);
        let report = delta
            .check(&text)
            .unwrap_or_else(|e| panic!("{e:?}\n{}", String::from_utf8_lossy(&text)));
        skipped_some |= report.low_latency.is_some_and(|ll| ll.skipped_segments > 0);
    }
    assert!(
        skipped_some,
        "a 24-s window has segments older than CAN-SKIP-UNTIL (18 s)"
    );
}
