//! The VOD timeline: where each sample of a track decodes and plays, on the 90 kHz clock of
//! MPEG-TS, from a file's sample table.
//!
//! A sample plays at `dts + cts + presentation_offset` (the edit list's shift, see
//! [`TrackInfo::presentation_offset`](crate::mp4::TrackInfo::presentation_offset)) and
//! decodes at `dts + presentation_offset - decode_shift`, where `decode_shift` undoes
//! negative composition offsets (`ctts` version 1) so that no sample decodes after it plays.

use crate::mp4::{Sample, TrackInfo};

/// Ticks of the MPEG-TS clock per second.
pub(crate) const TICKS_PER_SECOND: i64 = 90_000;
/// Ticks per millisecond.
pub(crate) const TICKS_PER_MS: i64 = 90;

/// Every VOD segment's timestamps start this far in (plus the timeline offset the caller
/// passes), so that frames decoded before the first one is shown (B-frames) and the PCR,
/// which runs 300 ms behind the decode times, stay above zero.
pub const VOD_TIMESTAMP_BASE_MS: u64 = 10_000;

/// How a track's sample times map onto the 90 kHz clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TrackClock {
    timescale: u32,
    presentation_offset: i64,
    decode_shift: i64,
}

impl TrackClock {
    pub(crate) fn new(info: &TrackInfo, samples: &[Sample]) -> Self {
        let min_cts = samples.iter().map(|s| s.cts).min().unwrap_or(0);
        TrackClock {
            timescale: info.timescale.max(1),
            presentation_offset: info.presentation_offset,
            decode_shift: i64::from(min_cts.min(0)).saturating_neg(),
        }
    }

    /// When the sample is shown, in 90 kHz ticks of the file's movie timeline.
    pub(crate) fn pts(&self, sample: &Sample) -> i64 {
        self.ticks(i128::from(sample.dts) + i128::from(sample.cts) + i128::from(self.presentation_offset))
    }

    /// When the sample is decoded, in 90 kHz ticks; never after [`TrackClock::pts`].
    pub(crate) fn dts(&self, sample: &Sample) -> i64 {
        self.ticks(i128::from(sample.dts) + i128::from(self.presentation_offset) - i128::from(self.decode_shift))
    }

    /// The sample's duration in 90 kHz ticks.
    pub(crate) fn duration(&self, sample: &Sample) -> i64 {
        self.ticks(i128::from(sample.duration))
    }

    /// `value` in the track's timescale on the 90 kHz clock, rounded down.
    fn ticks(&self, value: i128) -> i64 {
        let ticks = (value * i128::from(TICKS_PER_SECOND)).div_euclid(i128::from(self.timescale));
        i64::try_from(ticks).unwrap_or(if ticks < 0 { i64::MIN } else { i64::MAX })
    }
}

/// 90 kHz ticks in milliseconds, rounded to the nearest; negative times count as 0.
pub(crate) fn ms_of_ticks(ticks: i64) -> u64 {
    u64::try_from((ticks.saturating_add(TICKS_PER_MS / 2)).div_euclid(TICKS_PER_MS)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn info(timescale: u32, presentation_offset: i64) -> TrackInfo {
        TrackInfo {
            track_id: 1,
            handler: *b"vide",
            timescale,
            codec: *b"avc1",
            width: 0,
            height: 0,
            language: 0,
            presentation_offset,
            stsd: Bytes::new(),
            hdlr: Bytes::new(),
            media_header: Bytes::new(),
        }
    }

    fn sample(dts: u64, cts: i32) -> Sample {
        Sample {
            offset: 0,
            size: 1,
            dts,
            duration: 1001,
            cts,
            keyframe: true,
        }
    }

    #[test]
    fn edit_list_and_composition_offsets_place_samples() {
        // 30000/1001 fps with two frames of B-frame delay cut by the edit list.
        let samples = [sample(0, 2002), sample(1001, 5005)];
        let clock = TrackClock::new(&info(30_000, -2002), &samples);
        assert_eq!(clock.pts(&samples[0]), 0);
        assert_eq!(clock.dts(&samples[0]), -6006);
        assert_eq!(clock.pts(&samples[1]), 4004 * 3);
        assert_eq!(clock.duration(&samples[0]), 3003);
    }

    #[test]
    fn negative_composition_offsets_shift_decode_times() {
        let samples = [sample(0, 0), sample(1000, -1000), sample(2000, 1000)];
        let clock = TrackClock::new(&info(1000, 0), &samples);
        for s in &samples {
            assert!(clock.dts(s) <= clock.pts(s), "{s:?}");
        }
        assert_eq!(clock.dts(&samples[0]), -90_000);
    }

    #[test]
    fn rounding() {
        let clock = TrackClock::new(&info(44_100, -1024), &[]);
        // AAC priming: the first frame plays 1024/44100 s early, rounded down on the clock.
        assert_eq!(clock.pts(&sample(0, 0)), -2090);
        assert_eq!(ms_of_ticks(-2090), 0);
        assert_eq!(ms_of_ticks(44), 0);
        assert_eq!(ms_of_ticks(45), 1);
        assert_eq!(ms_of_ticks(540_000), 6000);
    }
}
