//! The human summary of a report.

use std::fmt::Write;

use crate::run::Report;
use crate::stats::Dist;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}

fn dist3(d: &Dist) -> String {
    format!("{}/{}/{}", ms(d.p50_ms), ms(d.p95_ms), ms(d.max_ms))
}

/// Renders the report as a few plain-text tables.
pub fn human(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} ==  clip {:.1} s loop, {:.0} fps, {:.2} Mbps; measured {:.1} s after {:.1} s warm-up",
        r.label, r.clip.loop_secs, r.clip.fps, r.clip.mbps, r.window_secs, r.warmup_secs
    );
    let p = &r.publishers;
    let _ = writeln!(
        out,
        "publishers: {}/{} started, {} video frames, {:.1} MB sent, worst pacing lateness {:.1} ms",
        p.started,
        p.count,
        p.video_frames,
        p.bytes as f64 / 1e6,
        p.max_late_ms
    );
    for (why, n) in &p.reasons {
        let _ = writeln!(out, "  publisher error x{n}: {why}");
    }
    let _ = writeln!(
        out,
        "{:<9} {:>7} {:>6} {:>5} {:>16} {:>20} {:>9} {:>8} {:>6} {:>9}",
        "viewers",
        "ok/all",
        "failed",
        "drop",
        "startup p50/95/max",
        "latency p50/95/99/max",
        "frames",
        "missing",
        "stalls",
        "Mbps"
    );
    for k in &r.viewers {
        let lat = format!(
            "{}/{}/{}/{}",
            ms(k.latency.p50_ms),
            ms(k.latency.p95_ms),
            ms(k.latency.p99_ms),
            ms(k.latency.max_ms)
        );
        let _ = writeln!(
            out,
            "{:<9} {:>7} {:>6} {:>5} {:>16} {:>20} {:>9} {:>8} {:>6} {:>9.1}",
            k.kind.label(),
            format!("{}/{}", k.connected, k.viewers),
            k.failed,
            k.dropped,
            dist3(&k.startup),
            lat,
            k.frames_received,
            k.frames_missing,
            k.stalls,
            k.mbps
        );
        if let Some(pl) = &k.playlist_latency {
            let _ = writeln!(
                out,
                "          HLS playlist latency (closing keyframe sent -> listed) p50/95/max: {} ms over {} segments",
                dist3(pl),
                pl.count
            );
        }
        if let Some(pl) = &k.playlist_latency_first_viewer {
            let _ = writeln!(
                out,
                "          ... first viewer to see each segment listed p50/95/max: {} ms over {} segments",
                dist3(pl),
                pl.count
            );
        }
        if k.frames_unmatched > 0 || k.frames_duplicate > 0 {
            let _ = writeln!(
                out,
                "          {} frames without our tag, {} duplicates",
                k.frames_unmatched, k.frames_duplicate
            );
        }
        for (why, n) in &k.reasons {
            let _ = writeln!(out, "          x{n}: {why}");
        }
    }
    let _ = writeln!(
        out,
        "delivered {:.1} MB to viewers; bench used {:.2} CPU s; times in ms; {}",
        r.bytes_delivered as f64 / 1e6,
        r.bench_cpu_seconds,
        r.receive_timestamps
    );
    if let Some(s) = &r.server {
        let per_gb = s
            .cpu_seconds_per_gb
            .map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        let _ = writeln!(
            out,
            "server pid {}: {:.2} CPU s ({:.0}% of a core), {} CPU s/GB, peak RSS {:.1} MB (VmHWM {:.1} MB)",
            s.pid,
            s.cpu_seconds,
            s.cpu_utilisation * 100.0,
            per_gb,
            s.peak_rss_mb,
            s.vm_hwm_mb
        );
        if let Some(e) = &s.error {
            let _ = writeln!(out, "  server sampling: {e}");
        }
    }
    out
}
