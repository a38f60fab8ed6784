//! Per-viewer measurements and their aggregation into the report.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sei::split_id;
use crate::table::SendTable;

/// A video gap longer than this is a stall.
pub const STALL_NS: u64 = 1_000_000_000;

/// The kinds of viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViewerKind {
    Rtmp,
    HttpFlv,
    Hls,
}

impl ViewerKind {
    pub fn label(self) -> &'static str {
        match self {
            ViewerKind::Rtmp => "RTMP",
            ViewerKind::HttpFlv => "HTTP-FLV",
            ViewerKind::Hls => "HLS",
        }
    }
}

/// What one viewer saw.
#[derive(Debug, Clone)]
pub struct ViewerStats {
    pub kind: ViewerKind,
    pub publisher: usize,
    /// When the TCP connect started (ns, realtime).
    pub connect_ns: u64,
    /// When the play request went out; frames sent before it are the initial burst.
    pub join_ns: u64,
    pub connected: bool,
    /// Why the viewer failed to start, or stopped before the end.
    pub error: Option<String>,
    /// Whether the error came after playback had started (a drop, not a failed start).
    pub dropped: bool,
    pub first_key_ns: Option<u64>,
    /// Send-to-receive latency of each frame sent after `join_ns`, in microseconds.
    pub latencies_us: Vec<u32>,
    pub frames: u64,
    /// Frames with no SEI of ours (or one from another publisher).
    pub unmatched: u64,
    pub duplicates: u64,
    pub missing: u64,
    pub last_seq: Option<u64>,
    pub last_video_ns: Option<u64>,
    pub stalls: u32,
    pub stall_ns: u64,
    pub bytes: u64,
    /// HLS: (segment sequence, segment listed in the playlist minus its closing keyframe
    /// sent, in microseconds), as this viewer saw it (its polling interval included).
    pub playlist_latencies_us: Vec<(u64, u32)>,
    pub segments: u64,
}

impl ViewerStats {
    pub fn new(kind: ViewerKind, publisher: usize) -> Self {
        ViewerStats {
            kind,
            publisher,
            connect_ns: 0,
            join_ns: 0,
            connected: false,
            error: None,
            dropped: false,
            first_key_ns: None,
            latencies_us: Vec::new(),
            frames: 0,
            unmatched: 0,
            duplicates: 0,
            missing: 0,
            last_seq: None,
            last_video_ns: None,
            stalls: 0,
            stall_ns: 0,
            bytes: 0,
            playlist_latencies_us: Vec::new(),
            segments: 0,
        }
    }

    pub fn fail(&mut self, why: impl Into<String>) {
        if self.error.is_none() {
            self.dropped = self.first_key_ns.is_some();
            self.error = Some(why.into());
        }
    }

    /// Accounts one received video frame carrying frame id `id` (if found), received at
    /// `recv_ns`. `keyframe` is what the tag header says (None: look it up in the table).
    /// `stall_check` is false for HLS, whose frames arrive a segment at a time.
    pub fn on_video(
        &mut self,
        id: Option<u64>,
        keyframe: Option<bool>,
        recv_ns: u64,
        table: &SendTable,
        stall_check: bool,
    ) {
        let Some((publisher, seq)) = id.map(split_id) else {
            self.unmatched += 1;
            return;
        };
        if publisher != self.publisher {
            self.unmatched += 1;
            return;
        }
        let sent = table.get(seq);
        let keyframe = keyframe.or(sent.map(|s| s.keyframe)).unwrap_or(false);
        if self.first_key_ns.is_none() {
            if !keyframe {
                return; // a decoder could not start here
            }
            self.first_key_ns = Some(recv_ns);
        }
        match self.last_seq {
            Some(last) if seq <= last => {
                self.duplicates += 1;
                return;
            }
            Some(last) => self.missing += seq - last - 1,
            None => {}
        }
        self.last_seq = Some(seq);
        self.frames += 1;
        if stall_check {
            if let Some(prev) = self.last_video_ns {
                let gap = recv_ns.saturating_sub(prev);
                if gap > STALL_NS {
                    self.stalls += 1;
                    self.stall_ns += gap;
                }
            }
        }
        self.last_video_ns = Some(recv_ns);
        if let Some(sent) = sent {
            if sent.ns >= self.join_ns {
                let us = recv_ns.saturating_sub(sent.ns) / 1000;
                self.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
            }
        }
    }

    /// Accounts the end of the run: frames sent up to `sent` (exclusive) that never came are
    /// missing, and a viewer silent for over a second before publishing ended at `end_ns`
    /// stalled.
    pub fn finish(&mut self, sent: u64, end_ns: u64, tail: bool) {
        if let Some(last) = self.last_seq {
            if tail && sent > last + 1 {
                self.missing += sent - last - 1;
            }
        }
        if tail {
            if let Some(prev) = self.last_video_ns {
                let gap = end_ns.saturating_sub(prev);
                if gap > STALL_NS && self.error.is_none() {
                    self.stalls += 1;
                    self.stall_ns += gap;
                }
            }
        }
    }
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Percentiles of a distribution, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dist {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

impl Dist {
    pub fn from_us(mut values: Vec<u32>) -> Dist {
        values.sort_unstable();
        let ms = |v: Option<u32>| v.map(|us| f64::from(us) / 1000.0);
        Dist {
            count: values.len(),
            p50_ms: ms(percentile(&values, 50.0)),
            p95_ms: ms(percentile(&values, 95.0)),
            p99_ms: ms(percentile(&values, 99.0)),
            max_ms: ms(values.last().copied()),
        }
    }
}

/// Aggregate of one kind of viewer.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    pub kind: ViewerKind,
    pub viewers: usize,
    pub connected: usize,
    pub failed: usize,
    /// Viewers that started and were then cut off before the end.
    pub dropped: usize,
    /// Error text → number of viewers.
    pub reasons: BTreeMap<String, usize>,
    /// Connect to first keyframe.
    pub startup: Dist,
    /// Send to receive, frames sent after the viewer joined.
    pub latency: Dist,
    pub frames_received: u64,
    pub frames_missing: u64,
    pub frames_unmatched: u64,
    pub frames_duplicate: u64,
    pub stalls: u64,
    pub stall_seconds: f64,
    pub bytes: u64,
    /// Bytes over the publishing part of the window, all viewers of the kind together.
    pub mbps: f64,
    /// HLS only: closing keyframe sent → segment listed in the playlist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playlist_latency: Option<Dist>,
    /// HLS only: per segment, the earliest any viewer saw it listed (closing keyframe sent →
    /// listed). With many viewers polling out of phase this is the server's own delay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playlist_latency_first_viewer: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<u64>,
}

impl KindReport {
    pub fn build(kind: ViewerKind, viewers: &[ViewerStats], window_secs: f64) -> KindReport {
        let mine: Vec<&ViewerStats> = viewers.iter().filter(|v| v.kind == kind).collect();
        let mut reasons = BTreeMap::new();
        for v in &mine {
            let why = match (&v.error, v.connected, v.first_key_ns) {
                (Some(e), _, _) => e.clone(),
                (None, false, _) => "still starting at the end (not connected)".to_string(),
                (None, true, None) => "connected, but no keyframe by the end".to_string(),
                (None, true, Some(_)) => continue,
            };
            *reasons.entry(why).or_insert(0) += 1;
        }
        let startup: Vec<u32> = mine
            .iter()
            .filter_map(|v| {
                v.first_key_ns
                    .map(|k| (k.saturating_sub(v.connect_ns) / 1000).min(u64::from(u32::MAX)) as u32)
            })
            .collect();
        let latency: Vec<u32> = mine.iter().flat_map(|v| v.latencies_us.iter().copied()).collect();
        let bytes: u64 = mine.iter().map(|v| v.bytes).sum();
        let playlist: Vec<u32> = mine
            .iter()
            .flat_map(|v| v.playlist_latencies_us.iter().map(|(_, us)| *us))
            .collect();
        // The first viewer to see a segment listed: with many viewers polling out of phase,
        // this measures the server (segment complete -> listed), not the polling interval.
        let mut earliest: BTreeMap<(usize, u64), u32> = BTreeMap::new();
        for v in &mine {
            for (seq, us) in &v.playlist_latencies_us {
                let e = earliest.entry((v.publisher, *seq)).or_insert(*us);
                *e = (*e).min(*us);
            }
        }
        let earliest: Vec<u32> = earliest.into_values().collect();
        KindReport {
            kind,
            viewers: mine.len(),
            connected: mine.iter().filter(|v| v.first_key_ns.is_some()).count(),
            failed: mine.iter().filter(|v| v.first_key_ns.is_none()).count(),
            dropped: mine.iter().filter(|v| v.dropped).count(),
            reasons,
            startup: Dist::from_us(startup),
            latency: Dist::from_us(latency),
            frames_received: mine.iter().map(|v| v.frames).sum(),
            frames_missing: mine.iter().map(|v| v.missing).sum(),
            frames_unmatched: mine.iter().map(|v| v.unmatched).sum(),
            frames_duplicate: mine.iter().map(|v| v.duplicates).sum(),
            stalls: mine.iter().map(|v| u64::from(v.stalls)).sum(),
            stall_seconds: mine.iter().map(|v| v.stall_ns as f64 / 1e9).sum(),
            bytes,
            mbps: if window_secs > 0.0 {
                bytes as f64 * 8.0 / 1e6 / window_secs
            } else {
                0.0
            },
            playlist_latency: (kind == ViewerKind::Hls).then(|| Dist::from_us(playlist)),
            playlist_latency_first_viewer: (kind == ViewerKind::Hls).then(|| Dist::from_us(earliest)),
            segments: (kind == ViewerKind::Hls).then(|| mine.iter().map(|v| v.segments).sum()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sei::frame_id;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7u32], 99.0), Some(7));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        let d = Dist::from_us(vec![3000, 1000, 2000]);
        assert_eq!(d.p50_ms, Some(2.0));
        assert_eq!(d.max_ms, Some(3.0));
    }

    #[test]
    fn gaps_duplicates_stalls_and_burst() {
        let t = SendTable::new(16);
        for seq in 0..10 {
            t.record(seq, 1_000_000_000 + seq * 100_000_000, seq % 5 == 0);
        }
        let mut v = ViewerStats::new(ViewerKind::Rtmp, 0);
        v.join_ns = 1_150_000_000;
        let id = |s| Some(frame_id(0, s));
        v.on_video(id(1), Some(false), 1_200_000_000, &t, true); // before first keyframe: ignored
        assert_eq!(v.frames, 0);
        v.on_video(id(0), Some(true), 1_200_000_000, &t, true); // burst: no latency
        v.on_video(id(2), Some(false), 1_250_000_000, &t, true); // frame 1 missing
        v.on_video(id(2), Some(false), 1_260_000_000, &t, true); // duplicate
        v.on_video(id(3), Some(false), 2_400_000_000, &t, true); // stall (1.15 s gap)
        v.on_video(Some(frame_id(1, 4)), None, 2_400_000_000, &t, true); // other publisher
        assert_eq!(
            (v.frames, v.missing, v.duplicates, v.stalls, v.unmatched),
            (3, 1, 1, 1, 1)
        );
        assert_eq!(v.latencies_us, vec![50_000, 1_100_000]);
        v.finish(10, 2_500_000_000, true);
        assert_eq!(v.missing, 1 + 6);
    }
}
