//! One track's queue in the fragmented-MP4 writer: a sample's duration is the distance to
//! the next sample of its track, so the last sample is held until its successor arrives, and
//! the samples whose duration is known wait for the fragment to be cut. Decode times are in
//! the track's timescale, converted from the stream's milliseconds once per sample, so
//! `tfdt` plus the durations always lands on the next fragment's `tfdt`.

use bytes::Bytes;
use estuary_protocol::MediaKind;

use crate::mp4::fragment::FragSample;

/// A frame taken from a packet: the codec data is a slice of the packet's payload.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) kind: MediaKind,
    pub(crate) dts_ms: u64,
    pub(crate) cts_ms: i32,
    pub(crate) keyframe: bool,
    pub(crate) data: Bytes,
}

/// The last sample of a track, waiting for the next one to know its duration.
#[derive(Debug)]
struct Held {
    dts: u64,
    cts: i32,
    keyframe: bool,
    data: Bytes,
}

/// A track of the open file: its samples of the open fragment whose duration is known, and
/// the last one, held until the next arrives.
#[derive(Debug)]
pub(crate) struct TrackQueue {
    pub(crate) id: u32,
    pub(crate) timescale: u32,
    held: Option<Held>,
    /// Samples of the open fragment whose duration is known.
    pub(crate) ready: Vec<FragSample>,
    /// Decode time of the first ready sample.
    pub(crate) ready_dts: u64,
    durations: u64,
    samples: u64,
    /// Duration given to the last sample when no other is known.
    default_duration: u32,
}

impl TrackQueue {
    pub(crate) fn new(id: u32, timescale: u32, default_duration: u32) -> Self {
        TrackQueue {
            id,
            timescale,
            held: None,
            ready: Vec::new(),
            ready_dts: 0,
            durations: 0,
            samples: 0,
            default_duration,
        }
    }

    fn ticks(&self, ms: u64) -> u64 {
        ((u128::from(ms) * u128::from(self.timescale) + 500) / 1000) as u64
    }

    fn cts_ticks(&self, ms: i32) -> i32 {
        let ticks = (i128::from(ms) * i128::from(self.timescale)) / 1000;
        i32::try_from(ticks).unwrap_or(if ms < 0 { i32::MIN } else { i32::MAX })
    }

    /// Adds a sample; the held one, now of known duration, becomes ready.
    pub(crate) fn push(&mut self, frame: &Frame) {
        let mut dts = self.ticks(frame.dts_ms);
        if let Some(held) = self.held.take() {
            // The stream's timeline is monotonic; a step back is clamped to a 0 duration.
            dts = dts.max(held.dts);
            let duration = dts - held.dts;
            self.release(held, duration);
        }
        self.held = Some(Held {
            dts,
            cts: self.cts_ticks(frame.cts_ms),
            keyframe: frame.keyframe,
            data: frame.data.clone(),
        });
    }

    /// Gives the held sample the average duration so far.
    pub(crate) fn release_held(&mut self) {
        if let Some(held) = self.held.take() {
            let average = self
                .durations
                .checked_div(self.samples)
                .unwrap_or(u64::from(self.default_duration));
            self.release(held, average);
        }
    }

    fn release(&mut self, held: Held, duration: u64) {
        if self.ready.is_empty() {
            self.ready_dts = held.dts;
        }
        let duration = u32::try_from(duration).unwrap_or(u32::MAX);
        self.durations += u64::from(duration);
        self.samples += 1;
        self.ready.push(FragSample {
            data: held.data,
            duration,
            cts: held.cts,
            keyframe: held.keyframe,
        });
    }
}
