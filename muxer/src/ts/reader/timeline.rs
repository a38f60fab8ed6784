//! 33-bit 90 kHz PES clocks → one millisecond timeline that only moves on.
//!
//! The clock wraps every 2^33 ticks (26.5 hours); each timestamp is unwrapped against the
//! last. A break — an HLS discontinuity, or a step the source did not announce that is more
//! than [`MAX_STEP_MS`] forward or [`MAX_BACK_MS`] back — re-anchors the clock so the next
//! PES lands [`BREAK_GAP_MS`] after the latest one out. The timeline starts at
//! [`START_MS`], so a track a little behind the first PES still has room before it.

/// Where a PES sits on the output timeline, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub dts_ms: u64,
    /// `pts - dts` in milliseconds.
    pub cts_ms: i32,
    /// The first PES after a break of the timeline.
    pub discontinuity: bool,
}

const WRAP: i64 = 1 << 33;
/// Forward steps longer than this are a break.
pub const MAX_STEP_MS: i64 = 10_000;
/// Backward steps longer than this are a break (audio and B-frames sit a little behind).
pub const MAX_BACK_MS: i64 = 5_000;
/// Where the first PES after a break lands, after the latest one before it.
pub const BREAK_GAP_MS: i64 = 40;
/// The first PES's timestamp.
pub const START_MS: i64 = 1_000;

#[derive(Default)]
pub struct Timeline {
    /// The last raw DTS (90 kHz) and its unwrapped value.
    last: Option<(i64, i64)>,
    /// Added to an unwrapped millisecond time to place it on the output.
    offset_ms: i64,
    /// The latest output DTS so far.
    latest_ms: Option<i64>,
    break_pending: bool,
    /// The next stamp is the first after a rebase.
    announce: bool,
}

impl Timeline {
    /// A break whose first timestamps are not known in advance: the next PES carries on
    /// after the latest (the reader uses [`rebase`](Self::rebase); tests use this).
    #[cfg(test)]
    pub fn discontinuity(&mut self) {
        self.break_pending = true;
    }

    /// Starts a new timeline (after a discontinuity) from each track's first DTS (90 kHz)
    /// after the break and its last output DTS before it: every track goes on at least
    /// [`BREAK_GAP_MS`] after its own last packet, and after the latest of all, so the
    /// tracks keep their offset to each other.
    pub fn rebase(&mut self, firsts: &[(u64, Option<u64>)]) {
        let Some(&(anchor, _)) = firsts.first() else {
            self.break_pending = true;
            return;
        };
        let anchor = (anchor & (WRAP as u64 - 1)) as i64;
        let Some(latest) = self.latest_ms else {
            self.break_pending = false;
            return;
        };
        let offset = firsts
            .iter()
            .map(|&(raw, last)| {
                let raw = (raw & (WRAP as u64 - 1)) as i64;
                let mut step = (raw - anchor).rem_euclid(WRAP);
                if step > WRAP / 2 {
                    step -= WRAP;
                }
                let floor = last.map_or(latest, |l| i64::try_from(l).unwrap_or(latest)).max(latest);
                floor + BREAK_GAP_MS - (anchor + step).div_euclid(90)
            })
            .max()
            .unwrap_or(0);
        self.offset_ms = offset;
        self.last = Some((anchor, anchor));
        self.break_pending = false;
        self.announce = true;
    }

    /// Places a PES with these 90 kHz timestamps; `None` if it would land before 0.
    pub fn map(&mut self, dts: u64, pts: u64) -> Option<Stamp> {
        let raw = (dts & (WRAP as u64 - 1)) as i64;
        let unwrapped = match self.last {
            Some((last_raw, last)) if !self.break_pending => {
                let mut step = (raw - last_raw).rem_euclid(WRAP);
                if step > WRAP / 2 {
                    step -= WRAP;
                }
                last + step
            }
            _ => raw,
        };
        let ms = unwrapped.div_euclid(90);
        let placed = ms + self.offset_ms;
        let broke = match self.latest_ms {
            None => {
                self.offset_ms = START_MS - ms;
                false
            }
            Some(latest) => {
                let jumped = placed > latest + MAX_STEP_MS || placed < latest - MAX_BACK_MS;
                if self.break_pending || jumped {
                    self.offset_ms = latest + BREAK_GAP_MS - ms;
                    true
                } else {
                    false
                }
            }
        };
        self.break_pending = false;
        let broke = broke || std::mem::take(&mut self.announce);
        self.last = Some((raw, unwrapped));
        let dts_ms = ms + self.offset_ms;
        if dts_ms < 0 {
            return None;
        }
        self.latest_ms = Some(self.latest_ms.map_or(dts_ms, |l| l.max(dts_ms)));
        let mut cts = ((pts & (WRAP as u64 - 1)) as i64 - raw).rem_euclid(WRAP);
        if cts > WRAP / 2 {
            cts -= WRAP;
        }
        Some(Stamp {
            dts_ms: dts_ms as u64,
            cts_ms: i32::try_from(cts.div_euclid(90)).unwrap_or(0),
            discontinuity: broke,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_the_start_and_follows_the_clock() {
        let mut t = Timeline::default();
        let a = t.map(900_000, 903_600).unwrap();
        assert_eq!((a.dts_ms, a.cts_ms, a.discontinuity), (1000, 40, false));
        assert_eq!(t.map(903_600, 903_600).unwrap().dts_ms, 1040);
        // Audio a little behind the video is fine.
        assert_eq!(t.map(891_000, 891_000).unwrap().dts_ms, 900);
    }

    #[test]
    fn the_33_bit_wrap_is_unwrapped() {
        let mut t = Timeline::default();
        let top = (1u64 << 33) - 900;
        assert_eq!(t.map(top, top).unwrap().dts_ms, 1000);
        let after = t.map(2700, 2700).unwrap();
        assert_eq!((after.dts_ms, after.discontinuity), (1040, false));
    }

    #[test]
    fn a_discontinuity_or_a_jump_carries_on_after_the_latest() {
        let mut t = Timeline::default();
        t.map(90_000, 90_000).unwrap();
        t.discontinuity();
        let next = t.map(9_000_000, 9_000_000).unwrap();
        assert_eq!((next.dts_ms, next.discontinuity), (1040, true));
        // An unannounced step back of a minute.
        let back = t.map(3_600_000, 3_600_000).unwrap();
        assert_eq!((back.dts_ms, back.discontinuity), (1080, true));
        assert_eq!(t.map(3_603_600, 3_603_600).unwrap().dts_ms, 1120);
    }
}
