use mp4::{MediaType, TrackType};

use super::*;
use crate::mp4::test_support::*;

fn inits(events: &[Fmp4Event]) -> Vec<&InitSegment> {
    events
        .iter()
        .filter_map(|e| match e {
            Fmp4Event::Init(i) => Some(i),
            _ => None,
        })
        .collect()
}

fn fragments(events: &[Fmp4Event]) -> Vec<&Fragment> {
    events
        .iter()
        .filter_map(|e| match e {
            Fmp4Event::Fragment(f) => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn init_segment_is_read_by_the_mp4_crate() {
    let events = events(Fmp4WriterConfig::default(), &av_stream(1, 30)[..2]);
    let init = inits(&events)[0];
    assert!(init.restart.is_none());
    let reader = mp4_reader(&init.data);
    assert_eq!(reader.major_brand().to_string(), "iso6");
    assert_eq!(reader.moov.mvhd.timescale, 1000);
    assert_eq!(reader.moov.mvhd.duration, 0);
    let mvex = reader.moov.mvex.as_ref().expect("mvex");
    assert_eq!(mvex.trex.track_id, 2, "the mp4 crate keeps the last trex");
    let video = reader.tracks().get(&1).expect("video track 1");
    assert_eq!(video.track_type().unwrap(), TrackType::Video);
    assert_eq!(video.media_type().unwrap(), MediaType::H264);
    assert_eq!((video.width(), video.height()), (1280, 720));
    assert_eq!(video.timescale(), 90_000);
    assert_eq!(video.trak.tkhd.duration, 0);
    assert_eq!(video.trak.mdia.mdhd.duration, 0);
    let avc1 = video.trak.mdia.minf.stbl.stsd.avc1.as_ref().expect("avc1");
    assert_eq!(avc1.avcc.sequence_parameter_sets[0].bytes, &OBS_AVC_RECORD[8..36]);
    assert_eq!(avc1.avcc.picture_parameter_sets[0].bytes, &OBS_AVC_RECORD[39..]);
    let audio = reader.tracks().get(&2).expect("audio track 2");
    assert_eq!(audio.media_type().unwrap(), MediaType::AAC);
    assert_eq!(audio.timescale(), 44_100);
    assert_eq!(audio.sample_freq_index().unwrap().freq(), 44_100);
    assert_eq!(audio.channel_config().unwrap() as u8, 2);
    let mp4a = audio.trak.mdia.minf.stbl.stsd.mp4a.as_ref().expect("mp4a");
    let esds = mp4a.esds.as_ref().expect("esds");
    assert_eq!(esds.es_desc.dec_config.object_type_indication, 0x40);
}

#[test]
fn fragments_list_the_packets_in_their_truns() {
    let packets = av_stream(5, 30);
    let events = events(Fmp4WriterConfig::default(), &packets);
    let file = file_of(&events);
    let reader = mp4_reader(&file);
    let frags = fragments(&events);
    assert_eq!(reader.moofs.len(), frags.len());
    // Cut at every keyframe (1 s GOP, 1 s fragments), the last one at finish().
    assert_eq!(frags.len(), 5);
    for (i, f) in frags.iter().enumerate() {
        assert_eq!(f.sequence as usize, i + 1);
        assert!(f.starts_with_keyframe);
        assert_eq!(f.start_ms, i as u64 * 1000);
    }

    let video: Vec<&Packet> = packets.iter().filter(|p| p.is_video() && !p.seq_header).collect();
    let audio: Vec<&Packet> = packets.iter().filter(|p| p.is_audio() && !p.seq_header).collect();
    let mut next_video = 0;
    let mut next_audio = 0;
    let mut video_time = None;
    let mut audio_time = None;
    for moof in &reader.moofs {
        for traf in &moof.trafs {
            let trun = traf.trun.as_ref().expect("trun");
            let tfdt = traf.tfdt.as_ref().expect("tfdt").base_media_decode_time;
            let (sent, next, time, ticks_per_ms) = if traf.tfhd.track_id == 1 {
                (&video, &mut next_video, &mut video_time, 90.0)
            } else {
                (&audio, &mut next_audio, &mut audio_time, 44.1)
            };
            // tfdt continues where the previous fragment of the track ended.
            if let Some(end) = *time {
                assert_eq!(tfdt, end, "track {}", traf.tfhd.track_id);
            }
            let mut dts = tfdt;
            for i in 0..trun.sample_count as usize {
                let p = sent[*next];
                *next += 1;
                assert_eq!(trun.sample_sizes[i] as usize, p.body().len());
                assert_eq!(dts, (p.dts as f64 * ticks_per_ms).round() as u64);
                assert_eq!(trun.sample_cts[i] as i32, (f64::from(p.cts) * ticks_per_ms) as i32);
                let sync = trun.sample_flags[i] & 0x0001_0000 == 0;
                assert_eq!(sync, p.keyframe || p.is_audio());
                if let Some(next) = sent.get(*next) {
                    assert_eq!(
                        trun.sample_durations[i] as u64,
                        (next.dts as f64 * ticks_per_ms).round() as u64 - dts
                    );
                }
                dts += u64::from(trun.sample_durations[i]);
            }
            *time = Some(dts);
        }
    }
    assert_eq!(
        (next_video, next_audio),
        (video.len(), audio.len()),
        "every sample written once"
    );
}

#[test]
fn the_mdat_holds_the_packet_bodies_at_the_trun_offsets() {
    let packets = av_stream(2, 30);
    let file = fragmented(&packets);
    let reader = mp4_reader(&file);
    let bodies: Vec<Bytes> = packets
        .iter()
        .filter(|p| p.is_video() && !p.seq_header)
        .map(|p| p.body())
        .collect();
    let mut moof_offsets = Vec::new();
    let mut pos = 0;
    while pos + 8 <= file.len() {
        let size = u32::from_be_bytes([file[pos], file[pos + 1], file[pos + 2], file[pos + 3]]) as usize;
        if &file[pos + 4..pos + 8] == b"moof" {
            moof_offsets.push(pos);
        }
        pos += size;
    }
    let mut i = 0;
    for (moof, offset) in reader.moofs.iter().zip(moof_offsets) {
        let traf = moof.trafs.iter().find(|t| t.tfhd.track_id == 1).unwrap();
        let trun = traf.trun.as_ref().unwrap();
        let mut at = offset + trun.data_offset.unwrap() as usize;
        for &size in &trun.sample_sizes {
            assert_eq!(&file[at..at + size as usize], &bodies[i][..]);
            at += size as usize;
            i += 1;
        }
    }
    assert_eq!(i, bodies.len());
}

#[test]
fn frames_before_the_first_keyframe_are_dropped() {
    let mut packets = vec![video_header(OBS_AVC_RECORD), audio_header(OBS_AAC_CONFIG)];
    packets.push(video_frame(0, 0, false, 50));
    packets.push(audio_frame(10, 20));
    packets.push(video_frame(33, 0, true, 50));
    packets.push(audio_frame(40, 20));
    packets.push(video_frame(66, 0, false, 50));
    let mut writer = Fmp4Writer::new(Fmp4WriterConfig::default());
    for p in &packets {
        writer.push(p).unwrap();
    }
    writer.finish();
    assert_eq!(writer.stats().dropped_packets, 2);
    assert_eq!(writer.stats().samples, 3);
    let events: Vec<Fmp4Event> = std::iter::from_fn(|| writer.poll_event()).collect();
    let f = fragments(&events)[0];
    assert_eq!(f.start_ms, 33);
    let file = file_of(&events);
    let reader = mp4_reader(&file);
    let video = &reader.moofs[0].trafs[0];
    assert_eq!(video.tfdt.as_ref().unwrap().base_media_decode_time, 33 * 90);
    // The last sample of each track gets the track's average duration at finish().
    assert_eq!(video.trun.as_ref().unwrap().sample_durations, [33 * 90, 33 * 90]);
}

#[test]
fn long_gops_cut_at_the_keyframe_after_the_fragment_duration() {
    let packets = av_stream(7, 75); // a keyframe every 2.5 s
    let events = events(Fmp4WriterConfig::default(), &packets);
    let starts: Vec<u64> = fragments(&events).iter().map(|f| f.start_ms).collect();
    assert_eq!(starts, [0, 2500, 5000]);
    let durations: Vec<u64> = fragments(&events).iter().map(|f| f.duration_ms).collect();
    assert_eq!(&durations[..2], [2500, 2500]);
}

#[test]
fn no_keyframe_for_too_long_forces_a_cut() {
    let mut packets = vec![video_header(OBS_AVC_RECORD)];
    for i in 0..400u64 {
        packets.push(video_frame(i * 40, 0, i == 0, 30));
    }
    let config = Fmp4WriterConfig {
        max_fragment_ms: 5000,
        ..Fmp4WriterConfig::default()
    };
    let mut writer = Fmp4Writer::new(config);
    for p in &packets {
        writer.push(p).unwrap();
    }
    writer.finish();
    let events: Vec<Fmp4Event> = std::iter::from_fn(|| writer.poll_event()).collect();
    let frags = fragments(&events);
    assert_eq!(
        frags.iter().map(|f| f.start_ms).collect::<Vec<_>>(),
        [0, 5000, 10000, 15000]
    );
    assert!(frags[0].starts_with_keyframe && !frags[1].starts_with_keyframe);
    assert_eq!(writer.stats().forced_cuts, 3);
}

#[test]
fn audio_only_streams_start_after_the_wait_and_cut_by_time() {
    let mut packets = vec![audio_header(AAC_48K_MONO)];
    for i in 0..200u64 {
        packets.push(audio_frame(i * 64 / 3, 100)); // 21.333 ms frames
    }
    let events = events(Fmp4WriterConfig::default(), &packets);
    let init = inits(&events);
    assert_eq!(init.len(), 1);
    assert!(init[0].video.is_none());
    let reader = mp4_reader(&init[0].data);
    assert_eq!(reader.tracks().len(), 1);
    assert_eq!(reader.tracks()[&1].timescale(), 48_000);
    let frags = fragments(&events);
    assert_eq!(frags.len(), 5);
    assert_eq!(frags[0].start_ms, 0);
    assert!(frags[1].start_ms >= 1000 && frags[1].start_ms < 1022);
    let samples: u32 = mp4_reader(&file_of(&events))
        .moofs
        .iter()
        .map(|m| m.trafs[0].trun.as_ref().unwrap().sample_count)
        .sum();
    assert_eq!(samples, 200, "the frames of the wait are kept");
}

#[test]
fn video_only_streams_work() {
    let packets: Vec<Packet> = av_stream(3, 30).into_iter().filter(|p| p.is_video()).collect();
    let events = events(Fmp4WriterConfig::default(), &packets);
    assert!(inits(&events)[0].audio.is_none());
    let file = file_of(&events);
    let reader = mp4_reader(&file);
    assert_eq!(reader.tracks().len(), 1);
    let samples: u32 = reader
        .moofs
        .iter()
        .map(|m| m.trafs[0].trun.as_ref().unwrap().sample_count)
        .sum();
    assert_eq!(samples, 90);
}

#[test]
fn a_new_sequence_header_starts_a_new_file() {
    let mut packets = av_stream(2, 30);
    // The same headers again (a reconnecting publisher): nothing happens.
    packets.push(video_header(OBS_AVC_RECORD));
    packets.push(audio_header(OBS_AAC_CONFIG));
    packets.push(audio_header(AAC_48K_MONO));
    packets.push(video_frame(2100, 0, true, 100));
    packets.push(audio_frame(2100, 10));
    packets.push(video_frame(2133, 0, false, 100));
    let events = events(Fmp4WriterConfig::default(), &packets);
    let init = inits(&events);
    assert_eq!(init.len(), 2);
    assert_eq!(init[1].restart, Some(RestartReason::AudioConfigChanged));
    assert_eq!(init[1].audio.as_ref().unwrap().sample_rate, 48_000);
    // The new file's events come after its init; its fragments count from 1 again.
    let split = events
        .iter()
        .position(|e| matches!(e, Fmp4Event::Init(i) if i.restart.is_some()))
        .unwrap();
    let first_file = file_of(&events[..split]);
    let second_file = file_of(&events[split..]);
    assert_eq!(mp4_reader(&first_file).moofs.len(), 2);
    let second = mp4_reader(&second_file);
    assert_eq!(second.moofs.len(), 1);
    assert_eq!(second.moofs[0].mfhd.sequence_number, 1);
    assert_eq!(second.tracks()[&2].timescale(), 48_000);
}

#[test]
fn a_track_after_a_single_track_start_starts_a_new_file() {
    let mut packets = vec![video_header(OBS_AVC_RECORD)];
    for i in 0..60u64 {
        packets.push(video_frame(i * 33, 0, i % 30 == 0, 50));
    }
    packets.push(audio_header(OBS_AAC_CONFIG));
    packets.push(video_frame(60 * 33, 0, true, 50));
    let events = events(Fmp4WriterConfig::default(), &packets);
    let init = inits(&events);
    assert_eq!(init.len(), 2);
    assert!(init[0].audio.is_none());
    assert_eq!(init[1].restart, Some(RestartReason::TrackAdded(MediaKind::Audio)));
    assert!(init[1].audio.is_some() && init[1].video.is_some());
}

#[test]
fn unsupported_codecs_and_frames_without_config_are_refused() {
    let mut writer = Fmp4Writer::new(Fmp4WriterConfig::default());
    let mut mp3 = audio_frame(0, 10);
    mp3.codec = Codec::Audio(AudioCodec::Mp3);
    assert_eq!(
        writer.push(&mp3),
        Err(MuxError::Mp4UnsupportedCodec(Codec::Audio(AudioCodec::Mp3)))
    );
    assert_eq!(
        writer.push(&video_frame(0, 0, true, 10)),
        Err(MuxError::VideoBeforeSequenceHeader)
    );
    assert_eq!(
        writer.push(&audio_frame(0, 10)),
        Err(MuxError::AudioBeforeSequenceHeader)
    );
    assert!(matches!(
        writer.push(&video_header(&OBS_AVC_RECORD[..10])),
        Err(MuxError::VideoSequenceHeader(_))
    ));
    assert!(writer.poll_event().is_none());
}

/// An end of sequence, Enhanced RTMP metadata or a command frame carries no picture: the
/// file has the same samples with and without them.
#[test]
fn packets_without_a_frame_add_no_sample() {
    let plain = av_stream(2, 30);
    let mut with_signals = Vec::new();
    for (i, p) in av_stream(2, 30).into_iter().enumerate() {
        let dts = p.dts;
        with_signals.push(p);
        if i % 10 == 5 {
            let mut signal = video_frame(dts, 0, false, 20);
            signal.no_frame = true;
            with_signals.push(signal);
        }
    }
    let samples = |packets: &[Packet]| {
        let file = file_of(&events(Fmp4WriterConfig::default(), packets));
        let reader = mp4_reader(&file);
        reader
            .moofs
            .iter()
            .flat_map(|m| m.trafs.iter())
            .map(|t| t.trun.as_ref().map_or(0, |r| r.sample_count))
            .sum::<u32>()
    };
    assert_eq!(samples(&with_signals), samples(&plain));
}
