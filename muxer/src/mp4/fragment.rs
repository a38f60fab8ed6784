//! One media fragment (ISO/IEC 14496-12 §8.8.4): a `moof` with the fragment's sequence
//! number (`mfhd`) and, per track, a `traf` with `tfhd` (default-base-is-moof), `tfdt` (the
//! decode time of its first sample) and one version-1 `trun` listing every sample's
//! duration, size, flags and signed composition offset; then the `mdat` with the samples,
//! track after track.
//!
//! The sample bytes are not copied: the fragment is the `moof`+`mdat` header followed by the
//! samples' own `Bytes`.

use bytes::Bytes;

use crate::mp4::boxes::{mdat_header, BoxBuf};

/// `sample_depends_on = 2`: an independent (sync) sample.
const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// A sample whose duration is known.
#[derive(Debug, Clone)]
pub(crate) struct FragSample {
    pub(crate) data: Bytes,
    pub(crate) duration: u32,
    pub(crate) cts: i32,
    pub(crate) keyframe: bool,
}

/// One track's samples in a fragment.
pub(crate) struct TrackRun<'a> {
    pub(crate) track_id: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub(crate) base_dts: u64,
    pub(crate) samples: &'a [FragSample],
}

/// The fragment's bytes: `moof` and the `mdat` header in the first part, then each sample.
pub(crate) fn write_fragment(sequence: u32, runs: &[TrackRun<'_>]) -> Vec<Bytes> {
    let mut b = BoxBuf::with_capacity(256 + runs.iter().map(|r| r.samples.len() * 16).sum::<usize>());
    let mut offset_slots = Vec::with_capacity(runs.len());
    b.boxed(b"moof", |b| {
        b.full_box(b"mfhd", 0, 0, |b| b.u32(sequence));
        for run in runs.iter().filter(|r| !r.samples.is_empty()) {
            b.boxed(b"traf", |b| {
                b.full_box(b"tfhd", 0, 0x02_0000, |b| b.u32(run.track_id));
                b.full_box(b"tfdt", 1, 0, |b| b.u64(run.base_dts));
                // data offset, duration, size, flags, composition offset
                b.full_box(b"trun", 1, 0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800, |b| {
                    b.u32(run.samples.len() as u32);
                    offset_slots.push(b.len());
                    b.i32(0);
                    for s in run.samples {
                        b.u32(s.duration);
                        b.u32(s.data.len() as u32);
                        b.u32(if s.keyframe { FLAGS_SYNC } else { FLAGS_NON_SYNC });
                        b.i32(s.cts);
                    }
                });
            });
        }
    });
    let payload: u64 = runs.iter().flat_map(|r| r.samples).map(|s| s.data.len() as u64).sum();
    let header = mdat_header(payload);
    let mut data_offset = (b.len() + header.len()) as u64;
    for (slot, run) in offset_slots.iter().zip(runs.iter().filter(|r| !r.samples.is_empty())) {
        b.patch_u32(*slot, u32::try_from(data_offset).unwrap_or(u32::MAX));
        data_offset += run.samples.iter().map(|s| s.data.len() as u64).sum::<u64>();
    }
    b.bytes(&header);
    let mut parts = Vec::with_capacity(1 + runs.iter().map(|r| r.samples.len()).sum::<usize>());
    parts.push(b.into_inner().freeze());
    parts.extend(runs.iter().flat_map(|r| r.samples).map(|s| s.data.clone()));
    parts
}
