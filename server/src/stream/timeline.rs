//! Timestamp normalisation (DESIGN.md rule 3): every output sees one timeline per stream
//! that starts at 0, never goes backwards per track, survives 32-bit rollover, and continues
//! smoothly across timestamp jumps and publisher reconnects.

use estuary_protocol::MediaKind;

/// Where the timeline resumes after a break: this far past the last output timestamp.
const RESUME_STEP_MS: u64 = 20;

/// Maps publisher timestamps onto the stream's normalised timeline.
#[derive(Debug)]
pub struct Timeline {
    jump_ms: i64,
    /// Input timestamp (extended past 32 bits) of the previous audio/video packet of the
    /// current publisher, or `None` before its first one.
    last_in: Option<i64>,
    /// `out = in + offset` for the current publisher session.
    offset: i64,
    /// Largest output timestamp so far, any track.
    edge: Option<u64>,
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
    pub fn new(jump_ms: u64) -> Self {
        Timeline {
            jump_ms: jump_ms as i64,
            last_in: None,
            offset: 0,
            edge: None,
            last_audio: 0,
            last_video: 0,
            break_pending: false,
        }
    }

    /// A new publisher starts: its first packet continues the timeline where it stopped.
    pub fn begin_publisher(&mut self) {
        self.last_in = None;
        self.break_pending = self.edge.is_some();
    }

    /// The largest timestamp handed out so far.
    pub fn edge(&self) -> u64 {
        self.edge.unwrap_or(0)
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
                // First packet of a publisher: start at 0, or just past the previous one's end.
                let start = self.edge.map_or(0, |e| e + RESUME_STEP_MS);
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
        let mut t = Timeline::new(5000);
        assert_eq!(t.map(Video, 90_000).dts, 0);
        assert_eq!(t.map(Audio, 90_010).dts, 10);
        assert_eq!(t.map(Video, 90_033).dts, 33);
    }

    #[test]
    fn survives_32_bit_rollover() {
        let mut t = Timeline::new(5000);
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
        let mut t = Timeline::new(5000);
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
        let mut t = Timeline::new(5000);
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
        let mut t = Timeline::new(5000);
        t.map(Video, 100);
        t.map(Video, 200);
        assert_eq!(t.map(Video, 150).dts, 100);
    }
}
