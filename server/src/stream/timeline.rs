//! Timestamp normalisation (DESIGN.md rule 3): every output sees one timeline per stream
//! that starts at `[stream] timeline_start_ms` (0 by default), never goes backwards per
//! track, survives 32-bit rollover, and continues smoothly across timestamp jumps and
//! publisher reconnects.
//!
//! Publishers send 32-bit millisecond timestamps that wrap every 2³² ms (49.7 days); the
//! timeline unwraps them into a 64-bit clock, so outputs with wider clocks (HLS's 33-bit
//! 90 kHz, MP4's 64-bit `tfdt`) never see the wrap, and the 32-bit outputs (RTMP, FLV) write
//! this clock modulo 2³² (see `estuary_protocol::media::wire_timestamp`), which is the wrap
//! their players expect.

use estuary_protocol::MediaKind;

/// Where the timeline resumes after a break: this far past the last output timestamp.
const RESUME_STEP_MS: u64 = 20;

/// Maps publisher timestamps onto the stream's normalised timeline.
#[derive(Debug)]
pub struct Timeline {
    jump_ms: i64,
    /// Where the first publisher's first packet lands.
    start_ms: u64,
    /// Input timestamp (extended past 32 bits) of the previous audio/video packet of the
    /// current publisher, or `None` before its first one.
    last_in: Option<i64>,
    /// `out = in + offset` for the current publisher session.
    offset: i64,
    /// Largest output timestamp so far, any track.
    edge: Option<u64>,
    /// Last output timestamp of each track (the track's own clock; `start_ms` before its
    /// first packet).
    last_audio: u64,
    last_video: u64,
    /// The next mapped packet starts after a break (new publisher or jump).
    break_pending: bool,
}

/// A mapped timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    pub dts: u64,
    /// First packet after a break in the timeline.
    pub discontinuity: bool,
}

impl Timeline {
    /// A timeline that starts at `start_ms` and treats a step larger than `jump_ms` as a
    /// jump.
    pub fn new(jump_ms: u64, start_ms: u64) -> Self {
        Timeline {
            jump_ms: i64::try_from(jump_ms).unwrap_or(i64::MAX),
            start_ms,
            last_in: None,
            offset: 0,
            edge: None,
            last_audio: start_ms,
            last_video: start_ms,
            break_pending: false,
        }
    }

    /// A new publisher starts: its first packet continues the timeline where it stopped.
    pub fn begin_publisher(&mut self) {
        self.last_in = None;
        self.break_pending = self.edge.is_some();
    }

    /// The largest timestamp handed out so far, any track.
    pub fn edge(&self) -> u64 {
        self.edge.unwrap_or(self.start_ms)
    }

    /// The last timestamp handed out on `kind`'s track: that track's live edge. Script data
    /// has no track of its own and follows the timeline's edge.
    pub fn track_edge(&self, kind: MediaKind) -> u64 {
        match kind {
            MediaKind::Audio => self.last_audio,
            MediaKind::Video => self.last_video,
            MediaKind::Script => self.edge(),
        }
    }

    /// Maps one packet's 32-bit timestamp.
    pub fn map(&mut self, kind: MediaKind, raw: u32) -> Mapped {
        if kind == MediaKind::Script {
            // Metadata carries timestamp 0 whenever it is sent; it belongs at the live edge.
            return Mapped {
                dts: self.edge(),
                discontinuity: false,
            };
        }
        let input = match self.last_in {
            // Step from the previous packet, wrapping at 32 bits (rollover after 49 days).
            Some(prev) => prev + i64::from(raw.wrapping_sub(prev as u32) as i32),
            None => i64::from(raw),
        };
        let mut discontinuity = false;
        match self.last_in {
            None => {
                // First packet of a publisher: start at the start, or just past the previous
                // one's end.
                let start = self.edge.map_or(self.start_ms, |e| e + RESUME_STEP_MS);
                self.offset = start as i64 - input;
                discontinuity = self.break_pending;
            }
            Some(prev) if (input - prev).abs() > self.jump_ms => {
                self.offset = (self.edge() + RESUME_STEP_MS) as i64 - input;
                discontinuity = true;
            }
            Some(_) => {}
        }
        self.break_pending = false;
        self.last_in = Some(input);

        let mut dts = (input + self.offset).max(0) as u64;
        let last = if kind == MediaKind::Audio {
            &mut self.last_audio
        } else {
            &mut self.last_video
        };
        if dts < *last {
            dts = *last; // never backwards within a track
        }
        *last = dts;
        self.edge = Some(self.edge.map_or(dts, |e| e.max(dts)));
        Mapped { dts, discontinuity }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MediaKind::{Audio, Video};

    #[test]
    fn starts_at_zero_and_follows_steps() {
        let mut t = Timeline::new(5000, 0);
        assert_eq!(t.map(Video, 90_000).dts, 0);
        assert_eq!(t.map(Audio, 90_010).dts, 10);
        assert_eq!(t.map(Video, 90_033).dts, 33);
    }

    #[test]
    fn survives_32_bit_rollover() {
        let mut t = Timeline::new(5000, 0);
        t.map(Video, u32::MAX - 20);
        let m = t.map(Video, 12);
        assert_eq!(
            m,
            Mapped {
                dts: 33,
                discontinuity: false
            }
        );
    }

    #[test]
    fn jump_is_rebased_and_flagged() {
        let mut t = Timeline::new(5000, 0);
        t.map(Video, 1000);
        t.map(Video, 1033);
        let m = t.map(Video, 500_000);
        assert_eq!(
            m,
            Mapped {
                dts: 33 + RESUME_STEP_MS,
                discontinuity: true
            }
        );
        assert_eq!(t.map(Video, 500_033).dts, 33 + RESUME_STEP_MS + 33);
        let back = t.map(Video, 10);
        assert!(back.discontinuity && back.dts > 86);
    }

    #[test]
    fn new_publisher_continues_monotonic() {
        let mut t = Timeline::new(5000, 0);
        t.map(Video, 0);
        t.map(Video, 4000);
        t.begin_publisher();
        let m = t.map(Video, 0);
        assert_eq!(
            m,
            Mapped {
                dts: 4000 + RESUME_STEP_MS,
                discontinuity: true
            }
        );
        assert_eq!(t.map(Audio, 23).dts, 4043);
    }

    #[test]
    fn track_never_goes_backwards() {
        let mut t = Timeline::new(5000, 0);
        t.map(Video, 100);
        t.map(Video, 200);
        assert_eq!(t.map(Video, 150).dts, 100);
    }

    /// 2³² ms: where a publisher's 32-bit timestamps wrap.
    const WRAP: u64 = 1 << 32;

    /// A publisher that starts 10 s before its 32-bit clock wraps and crosses the wrap:
    /// interleaved audio (23 ms) and video (40 ms) come out continuous and monotonic on a
    /// 64-bit clock, with no discontinuity flagged.
    #[test]
    fn publisher_crossing_its_32_bit_wrap_stays_continuous() {
        let first = WRAP - 10_000;
        let mut t = Timeline::new(5000, 0);
        let mut events: Vec<(u64, MediaKind)> = (0..500).map(|i| (i * 40, Video)).collect();
        events.extend((0..870).map(|i| (i * 23, Audio)));
        events.sort_by_key(|(at, kind)| (*at, *kind == Audio));
        let mut last = std::collections::HashMap::new();
        for (at, kind) in events {
            let raw = (first + at) as u32; // what the publisher sends: wraps at 2^32
            let m = t.map(kind, raw);
            assert!(!m.discontinuity, "no break at input {raw}");
            assert_eq!(m.dts, at, "{kind:?} at {at} ms maps to its time since the start");
            if let Some(prev) = last.insert(kind, m.dts) {
                assert!(m.dts > prev, "{kind:?} monotonic: {prev} then {}", m.dts);
            }
        }
        assert!(t.edge() > 10_000, "the run crossed the publisher's wrap");
    }

    /// With the timeline started just before 2³² ms, the output clock itself crosses 2³²
    /// (what a stream live for 49.7 days reaches): it keeps counting in 64 bits; the 32-bit
    /// outputs wrap it when they write it.
    #[test]
    fn output_clock_counts_past_2_32() {
        let mut t = Timeline::new(5000, WRAP - 100);
        let dts: Vec<u64> = (0..10).map(|i| t.map(Video, i * 40).dts).collect();
        let expected: Vec<u64> = (0..10).map(|i| WRAP - 100 + i * 40).collect();
        assert_eq!(dts, expected);
        assert_eq!(t.edge(), WRAP + 260);
        // A reconnect continues past the edge, still in 64 bits.
        t.begin_publisher();
        let m = t.map(Video, 7);
        assert_eq!(m.dts, WRAP + 260 + RESUME_STEP_MS);
        assert!(m.discontinuity);
    }

    /// Each track's live edge is its own last timestamp: audio running ahead of video does
    /// not move the video track's edge.
    #[test]
    fn track_edges_follow_their_own_track() {
        let mut t = Timeline::new(5000, 0);
        t.map(Video, 0);
        t.map(Audio, 3000); // audio stamped 3 s ahead of video
        t.map(Video, 40);
        assert_eq!(t.track_edge(Video), 40);
        assert_eq!(t.track_edge(Audio), 3000);
        assert_eq!(t.edge(), 3000);
        assert_eq!(t.track_edge(MediaKind::Script), 3000);
    }
}
