//! `/metrics`: Prometheus text format 0.0.4. The recorder's counters and histograms, then
//! the gauges of the current state, computed at scrape time from the paths and the client
//! registry (names and meanings in `crate::metrics`).

use std::fmt::Write as _;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;

use super::response::Body;
use crate::clients::{per_stream, ClientKind};
use crate::context::Context;
use crate::metrics::STREAM_TRACKS;
use crate::metrics::{
    CLIENTS, PROCESS_CPU_SECONDS_TOTAL, PROCESS_RESIDENT_MEMORY_BYTES, RECORDINGS_ACTIVE, STREAMS, STREAMS_LIVE,
    STREAM_KBPS, STREAM_VIEWERS, TASKS, TRACKED_TASKS, UPTIME_SECONDS,
};

/// Answers `GET /metrics`.
pub fn serve(ctx: &Context) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(render(ctx))).boxed());
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// The whole `/metrics` text: the recorder's series, then the scrape-time gauges.
fn render(ctx: &Context) -> String {
    let mut out = crate::metrics::rendered();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    render_state(ctx, &mut out);
    out
}

fn gauge_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value (Prometheus text format: backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render_state(ctx: &Context, out: &mut String) {
    let paths = ctx.paths.listed();
    let live = paths.iter().filter(|p| p.is_live()).count();
    gauge_header(
        out,
        STREAMS,
        "gauge",
        "Streams a source has started on (live, or waiting for it to come back).",
    );
    let _ = writeln!(out, "{STREAMS} {}", paths.len());
    gauge_header(out, STREAMS_LIVE, "gauge", "Streams with a publisher.");
    let _ = writeln!(out, "{STREAMS_LIVE} {live}");

    let clients = ctx.clients.list();
    gauge_header(out, CLIENTS, "gauge", "Connected clients by kind.");
    for kind in ClientKind::ALL {
        let n = clients.iter().filter(|c| c.kind() == kind).count();
        let _ = writeln!(out, "{CLIENTS}{{kind=\"{}\"}} {n}", kind.as_str());
    }

    let per_stream = per_stream(&clients);
    gauge_header(out, STREAM_VIEWERS, "gauge", "Viewers of one stream by protocol.");
    for p in &paths {
        let usage = per_stream.get(&p.key).cloned().unwrap_or_default();
        let (app, name) = (label(&p.key.app), label(&p.key.name));
        for (protocol, n) in [("rtmp", usage.rtmp), ("flv", usage.flv), ("hls", usage.hls)] {
            let _ = writeln!(
                out,
                "{STREAM_VIEWERS}{{app=\"{app}\",stream=\"{name}\",protocol=\"{protocol}\"}} {n}"
            );
        }
    }
    gauge_header(
        out,
        STREAM_KBPS,
        "gauge",
        "Bitrate of one stream over the last 30 s, kbit/s.",
    );
    for p in &paths {
        let usage = per_stream.get(&p.key).cloned().unwrap_or_default();
        let (app, name) = (label(&p.key.app), label(&p.key.name));
        let _ = writeln!(
            out,
            "{STREAM_KBPS}{{app=\"{app}\",stream=\"{name}\",direction=\"in\"}} {}",
            usage.recv_kbps
        );
        let _ = writeln!(
            out,
            "{STREAM_KBPS}{{app=\"{app}\",stream=\"{name}\",direction=\"out\"}} {}",
            usage.send_kbps
        );
    }

    // Enhanced RTMP multitrack (issue 16).
    gauge_header(
        out,
        STREAM_TRACKS,
        "gauge",
        "Tracks a stream's publisher sends, by kind (Multitrack tracks >= 1 included).",
    );
    for p in &paths {
        let (video, audio) = p.stream().track_counts();
        let (app, name) = (label(&p.key.app), label(&p.key.name));
        for (kind, n) in [("video", video), ("audio", audio)] {
            let _ = writeln!(
                out,
                "{STREAM_TRACKS}{{app=\"{app}\",stream=\"{name}\",kind=\"{kind}\"}} {n}"
            );
        }
    }

    gauge_header(out, RECORDINGS_ACTIVE, "gauge", "Recordings being written now.");
    let active = ctx.recordings.as_ref().map_or(0, |r| r.active_count());
    let _ = writeln!(out, "{RECORDINGS_ACTIVE} {active}");
    render_forwards(ctx, out);

    // Pulled sources (issue 14).
    gauge_header(
        out,
        crate::metrics::SOURCES,
        "gauge",
        "Pulled sources, by protocol and state.",
    );
    for ((protocol, state), n) in ctx.sources.counts() {
        let _ = writeln!(
            out,
            "{}{{protocol=\"{protocol}\",state=\"{state}\"}} {n}",
            crate::metrics::SOURCES
        );
    }

    let proc = crate::sysinfo::process();
    gauge_header(
        out,
        PROCESS_CPU_SECONDS_TOTAL,
        "counter",
        "CPU time of the process, seconds.",
    );
    let _ = writeln!(out, "{PROCESS_CPU_SECONDS_TOTAL} {}", proc.cpu_seconds);
    gauge_header(
        out,
        PROCESS_RESIDENT_MEMORY_BYTES,
        "gauge",
        "Resident memory of the process, bytes.",
    );
    let _ = writeln!(out, "{PROCESS_RESIDENT_MEMORY_BYTES} {}", proc.rss_bytes);
    gauge_header(out, UPTIME_SECONDS, "gauge", "Seconds since the server started.");
    let _ = writeln!(out, "{UPTIME_SECONDS} {}", ctx.started.elapsed().as_secs_f64());

    // `/metrics` is served inside the runtime; outside one (never, today) the gauge says 0.
    let alive = tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks());
    gauge_header(out, TASKS, "gauge", "Tokio tasks alive in the server's runtime.");
    let _ = writeln!(out, "{TASKS} {alive}");
    gauge_header(
        out,
        TRACKED_TASKS,
        "gauge",
        "Connection, output and recorder tasks (the ones shutdown waits for).",
    );
    let tracked = ctx.tasks.len() + ctx.recorders.len();
    let _ = writeln!(out, "{TRACKED_TASKS} {tracked}");
}

/// The forwards' gauges (issue 14). Labels name the local stream, the forward's id and the
/// upstream's `host:port`: never the upstream's stream name or query (a publish key).
fn render_forwards(ctx: &Context, out: &mut String) {
    use crate::metrics::{FORWARDS, FORWARD_KBPS, FORWARD_UP};
    use crate::outputs::forward::Phase;
    let forwards = ctx.forwards.list();
    gauge_header(out, FORWARDS, "gauge", "Forwards to upstream RTMP servers, by phase.");
    for phase in ["connecting", "connected", "retrying", "waiting"] {
        let n = forwards
            .iter()
            .filter(|f| f.phase.map_or("waiting", Phase::as_str) == phase)
            .count();
        let _ = writeln!(out, "{FORWARDS}{{phase=\"{phase}\"}} {n}");
    }
    let running: Vec<_> = forwards.iter().filter(|f| f.phase.is_some()).collect();
    for (name, help) in [
        (FORWARD_UP, "1 while a forward publishes to its upstream."),
        (FORWARD_KBPS, "What a forward sends, kbit/s over the last 2 s."),
    ] {
        gauge_header(out, name, "gauge", help);
        for f in &running {
            let value = if name == FORWARD_UP {
                u64::from(f.phase == Some(Phase::Connected))
            } else {
                f.kbps
            };
            let _ = writeln!(
                out,
                "{name}{{app=\"{}\",stream=\"{}\",forward=\"{}\",upstream=\"{}\"}} {value}",
                label(&f.key.app),
                label(&f.key.name),
                f.id,
                label(&f.upstream)
            );
        }
    }
}
