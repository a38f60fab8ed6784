//! Per-packet framing costs on the fan-out path: RTMP chunk pre-serialisation and FLV tag
//! framing, for typical audio and video payload sizes.

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use estuary_protocol::flv::tag::encode_tag;
use estuary_protocol::media::{MediaKind, Packet};
use estuary_protocol::rtmp::chunker::chunk_message;

/// Payload sizes: an AAC frame, a P-frame and a keyframe of 2.5 Mbps 720p.
const SIZES: [(&str, usize); 3] = [
    ("aac-400B", 400),
    ("p-frame-8KB", 8 * 1024),
    ("keyframe-80KB", 80 * 1024),
];

fn payload(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i * 31) as u8).collect::<Vec<u8>>())
}

fn chunking(c: &mut Criterion) {
    let mut group = c.benchmark_group("rtmp_chunk_message");
    for (name, len) in SIZES {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        for chunk_size in [128u32, 4096, 60_000] {
            group.bench_with_input(BenchmarkId::new(name, chunk_size), &chunk_size, |b, &cs| {
                b.iter(|| chunk_message(8, 9, black_box(123_456), 1, black_box(&data), cs))
            });
        }
    }
    group.finish();

    // Packet::rtmp_chunks: the first call builds, later calls (every other subscriber)
    // only clone the cached Bytes.
    let mut group = c.benchmark_group("packet_rtmp_chunks");
    for (name, len) in SIZES {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("first_call", name), |b| {
            b.iter(|| {
                let p = Packet::new(MediaKind::Video, 40_000, data.clone());
                p.rtmp_chunks(4096)
            })
        });
        let p = Packet::new(MediaKind::Video, 40_000, data.clone());
        let _ = p.rtmp_chunks(4096);
        group.bench_function(BenchmarkId::new("cached", name), |b| {
            b.iter(|| black_box(&p).rtmp_chunks(4096))
        });
    }
    group.finish();
}

fn flv_framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("flv_encode_tag");
    for (name, len) in SIZES {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| encode_tag(MediaKind::Video, black_box(40_000), black_box(&data)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("packet_flv_tag");
    for (name, len) in SIZES {
        let data = payload(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("first_call", name), |b| {
            b.iter(|| {
                let p = Packet::new(MediaKind::Video, 40_000, data.clone());
                p.flv_tag().clone()
            })
        });
        let p = Packet::new(MediaKind::Video, 40_000, data.clone());
        let _ = p.flv_tag();
        group.bench_function(BenchmarkId::new("cached", name), |b| {
            b.iter(|| black_box(&p).flv_tag().clone())
        });
    }
    group.finish();
}

criterion_group!(benches, chunking, flv_framing);
criterion_main!(benches);
