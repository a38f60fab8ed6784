//! Packaging and fan-out micro-benchmarks (issue 4, item 3), on real encoder bytes: the OBS
//! 29 capture in `shared/fixtures` (720p30 x264 2.5 Mbps + AAC), read through our chunk
//! reader.
//!
//! - `ts_mux`: the HLS segmenter (MPEG-TS writer) over the whole capture, in MB/s of input;
//! - `playlist_render`: rendering a 6-segment live playlist;
//! - `fan_out`: one packet published to a stream with 1, 100 and 1,000 subscribers and read
//!   by each of them (the stream's ring: the cost per subscriber must stay flat, and no payload
//!   is copied).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use estuary::stream::{Stream, StreamKey, Subscriber};
use estuary::Config;
use estuary_muxer::{HlsSegmenter, HlsSegmenterConfig, LivePlaylist, LivePlaylistConfig};
use estuary_protocol::rtmp::chunk::{ChunkLimits, ChunkReader};
use estuary_protocol::{MediaKind, Packet};
use tokio_util::sync::CancellationToken;

/// The OBS capture's media messages as (kind, timestamp, payload).
fn obs_messages() -> Vec<(MediaKind, u32, Bytes)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/obs-29.0.2-publish.c2s.bin");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = BytesMut::from(&bytes[1 + 1536 + 1536..]);
    let mut reader = ChunkReader::new(ChunkLimits::default());
    let mut out = Vec::new();
    while let Ok(Some(m)) = reader.read(&mut buf) {
        let kind = match m.type_id {
            8 => MediaKind::Audio,
            9 => MediaKind::Video,
            _ => continue,
        };
        out.push((kind, m.timestamp, m.payload));
    }
    out
}

fn packets(messages: &[(MediaKind, u32, Bytes)]) -> Vec<Packet> {
    messages
        .iter()
        .filter_map(|(k, ts, p)| Packet::from_flv_body(*k, *ts, p.clone()).ok())
        .collect()
}

/// Segments the packets; returns the bytes of MPEG-TS produced.
fn mux_all(packets: &[Packet]) -> usize {
    let mut segmenter = HlsSegmenter::new(HlsSegmenterConfig::default());
    let mut out = 0usize;
    for p in packets {
        let _ = segmenter.push(p);
        while let Some(s) = segmenter.poll_segment() {
            out += s.data.len();
        }
    }
    segmenter.finish();
    while let Some(s) = segmenter.poll_segment() {
        out += s.data.len();
    }
    out
}

fn ts_mux(c: &mut Criterion) {
    let messages = obs_messages();
    let bytes: usize = messages.iter().map(|m| m.2.len()).sum();
    let produced = mux_all(&packets(&messages));
    assert!(
        produced > bytes / 2,
        "the segmenter produced {produced} bytes from {bytes}: not a real run"
    );
    let mut group = c.benchmark_group("ts_mux");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.bench_function("obs_capture_10s", |b| {
        b.iter_batched(
            || packets(&messages),
            |packets| black_box(mux_all(&packets)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn playlist_render(c: &mut Criterion) {
    let mut playlist = LivePlaylist::new(LivePlaylistConfig::default());
    for sequence in 0..20u64 {
        let entry = estuary_muxer::hls::PlaylistEntry {
            sequence,
            duration_ms: 2000,
            discontinuity: sequence == 12,
            independent: true,
            program_date_time_ms: 1_795_000_000_000 + sequence * 2000,
            target_duration_secs: 3,
            init: None,
        };
        playlist.push_entry(entry).expect("consecutive");
    }
    c.bench_function("playlist_render_6_segments", |b| {
        b.iter(|| black_box(&playlist).render(|seq| format!("cam-65a1f-{seq}.ts")))
    });
}

fn fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let payload = Bytes::from(vec![0x27u8; 11_000]); // a 2.5 Mbps P-frame
    let mut group = c.benchmark_group("fan_out_one_packet");
    for subscribers in [1usize, 100, 1000] {
        let config = Config::default();
        let stream = Arc::new(Stream::new(StreamKey::new("live", "bench"), &config.stream));
        stream.claim(1, CancellationToken::new()).expect("claim");
        let mut viewers: Vec<_> = (0..subscribers)
            .map(|_| Subscriber::new(Arc::clone(&stream), &config.play))
            .collect();
        let mut ts = 0u32;
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(BenchmarkId::from_parameter(subscribers), &subscribers, |b, _| {
            b.iter(|| {
                ts += 33;
                let mut body = BytesMut::from(&[0x27u8, 1, 0, 0, 0][..]);
                body.extend_from_slice(&payload[..]);
                let packet = Packet::from_flv_body(MediaKind::Video, ts, body.freeze()).expect("valid tag");
                stream.publish(1, packet);
                for v in &mut viewers {
                    while let Some(p) = v.try_recv() {
                        black_box(p.map(|p| p.rtmp_chunks(4096).len()).ok());
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ts_mux, playlist_render, fan_out);
criterion_main!(benches);
