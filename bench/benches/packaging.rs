//! Packaging and fan-out micro-benchmarks (issue 4, item 3).
//!
//! TODO(bench): these need the parts being built now and are stubs until they land:
//! - TS muxer throughput (MB/s) over a 720p H.264 + AAC GOP — `estuary_muxer::ts` writer;
//! - HLS playlist rendering for a 6-segment live window — `estuary_muxer::hls` playlist;
//! - fan-out of one packet to 1,000 subscribers — the server hub's stream/subscriber ring
//!   (allocations per packet must stay flat as subscribers grow).
//!
//! Each should follow `framing.rs`: realistic payload sizes, `Throughput::Bytes`, and the
//! cached-vs-first-call split where a format is serialised once per packet.

use criterion::{criterion_group, criterion_main, Criterion};

fn todo_stubs(c: &mut Criterion) {
    // A placeholder so `cargo bench -p estuary-bench` runs; replace with the real benches.
    c.bench_function("todo_packaging_placeholder", |b| b.iter(|| criterion::black_box(0u64)));
}

criterion_group!(benches, todo_stubs);
criterion_main!(benches);
