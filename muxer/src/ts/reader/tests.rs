use proptest::prelude::*;

use super::*;
use crate::{HlsSegmenter, HlsSegmenterConfig};
use bytes::Bytes;
use estuary_protocol::MediaKind;

/// A few seconds of AVC + AAC packaged by our segmenter.
fn segment_bytes() -> Vec<u8> {
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    // A minimal AVC record (baseline 320x240 SPS from x264) and AAC-LC 44.1 kHz stereo.
    let sps = [
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
        0x03, 0xc8, 0xf1, 0x42, 0xa4, 0x80,
    ];
    let pps = [0x68, 0xcb, 0x83, 0xcb, 0x20];
    let mut record = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x0d, 0xff, 0xe1, 0, sps.len() as u8];
    record.extend_from_slice(&sps);
    record.extend_from_slice(&[1, 0, pps.len() as u8]);
    record.extend_from_slice(&pps);
    let mut packets = vec![
        Packet::from_flv_body(MediaKind::Video, 0, Bytes::from(record)).unwrap(),
        Packet::from_flv_body(MediaKind::Audio, 0, Bytes::from_static(&[0xaf, 0, 0x12, 0x10])).unwrap(),
    ];
    for i in 0..100u32 {
        let key = i % 25 == 0;
        let nal: &[u8] = if key {
            &[0x65, 0x88, 0x84, 0x21]
        } else {
            &[0x41, 0x9a, 0x02, 0x03]
        };
        let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, nal.len() as u8];
        body.extend_from_slice(nal);
        packets.push(Packet::from_flv_body(MediaKind::Video, i * 40, Bytes::from(body)).unwrap());
        packets.push(
            Packet::from_flv_body(
                MediaKind::Audio,
                i * 40,
                Bytes::from_static(&[0xaf, 1, 0x21, 0x10, 0x04]),
            )
            .unwrap(),
        );
    }
    let mut out = Vec::new();
    for p in &packets {
        segmenter.push(p).unwrap();
    }
    segmenter.finish();
    while let Some(s) = segmenter.poll_segment() {
        out.extend_from_slice(&s.data);
    }
    out
}

fn drain(reader: &mut TsReader) -> Vec<Packet> {
    std::iter::from_fn(|| reader.next_packet()).collect()
}

#[test]
fn garbage_between_packets_is_skipped_and_reading_resumes() {
    let ts = segment_bytes();
    let mut clean = TsReader::new(TsReaderLimits::default());
    clean.push(&ts);
    clean.flush();
    let clean = drain(&mut clean);
    assert_eq!(clean.iter().filter(|p| p.is_video() && !p.seq_header).count(), 100);

    let mut damaged = ts.clone();
    // Noise without a sync byte in the middle of the stream, at a packet boundary.
    let at = 188 * 40;
    damaged.splice(at..at, [0x00u8, 0x11, 0x22].iter().copied());
    let mut reader = TsReader::new(TsReaderLimits::default());
    reader.push(&damaged);
    reader.flush();
    let read = drain(&mut reader);
    assert!(reader.skipped() > 0);
    assert!(read.len() >= clean.len() - 4, "{} of {}", read.len(), clean.len());
}

#[test]
fn a_pes_over_the_limit_is_dropped() {
    let ts = segment_bytes();
    let mut reader = TsReader::new(TsReaderLimits { max_pes_bytes: 8 });
    reader.push(&ts);
    reader.flush();
    assert!(drain(&mut reader).iter().all(|p| !p.is_video()));
    assert!(reader.last_problem().is_some_and(|p| p.contains("limit")));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000), cut in 0usize..3000) {
        let mut reader = TsReader::new(TsReaderLimits::default());
        let cut = cut.min(data.len());
        reader.push(&data[..cut]);
        reader.discontinuity();
        reader.push(&data[cut..]);
        reader.flush();
        let _ = drain(&mut reader);
    }

    #[test]
    fn damaged_segments_never_panic(flips in proptest::collection::vec((0usize..20_000, any::<u8>()), 1..40)) {
        let mut ts = segment_bytes();
        for (at, byte) in flips {
            let len = ts.len();
            ts[at % len] = byte;
        }
        let mut reader = TsReader::new(TsReaderLimits::default());
        reader.push(&ts);
        reader.flush();
        let _ = drain(&mut reader);
    }
}

#[test]
fn each_track_keeps_rising_when_a_break_puts_it_a_little_before_the_other() {
    let ts = segment_bytes();
    let mut reader = TsReader::new(TsReaderLimits::default());
    let mut out = Vec::new();
    for _ in 0..3 {
        reader.push(&ts);
        reader.discontinuity();
        out.extend(drain(&mut reader));
    }
    for video in [true, false] {
        let dts: Vec<u64> = out
            .iter()
            .filter(|p| p.is_video() == video && !p.seq_header)
            .map(|p| p.dts)
            .collect();
        assert!(dts.windows(2).all(|w| w[1] > w[0]), "video {video}: {dts:?}");
    }
}
