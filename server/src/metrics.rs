//! Prometheus metrics: every name as a constant, the recorder, and the `/metrics` text.
//!
//! Counters and histograms go through the `metrics` facade into
//! `metrics-exporter-prometheus`'s recorder; hot paths keep the [`metrics::Counter`] handle
//! they got once per connection or subscriber, so a packet costs one atomic add and no label
//! lookup. Gauges that describe the current state (streams, clients by kind, per-stream
//! viewers and bitrates, process CPU and memory) are not kept in the recorder: `/metrics`
//! computes them from the paths and the client registry at scrape time and appends them to
//! the recorder's text ([`rendered`]; `servers/http/metrics.rs`). A stream's series are
//! therefore gone from the first scrape after the stream ended, with no idle timeout to tune.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Gauge: streams a source has started on (live, or with viewers or outputs waiting for it
/// to come back); a key only viewers asked for is not counted.
pub const STREAMS: &str = "estuary_streams";
/// Gauge: streams with a publisher.
pub const STREAMS_LIVE: &str = "estuary_streams_live";
/// Gauge `{kind}`: connected clients; kind is `rtmp-idle`, `publisher`, `rtmp-play`,
/// `flv-play` or `hls-play`.
pub const CLIENTS: &str = "estuary_clients";
/// Counter `{protocol}`: connections accepted; protocol is `rtmp` or `http`.
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "estuary_connections_accepted_total";
/// Counter `{protocol, reason}`: clients refused; protocol is `rtmp`, `http`, `http_flv` or
/// `hls`; reason is `max_connections`, `per_ip` (`limits.max_connections_per_ip`), `rate`
/// (`limits.max_new_connections_per_ip_per_sec`), `table_full` (`limits.max_tracked_ips`),
/// `max_streams`, `max_viewers`, `hls_sessions`, `bad_token` (an HLS session token that does
/// not verify), `kicked`, `hook`, `busy` (the stream has an active publisher), `bad_name`,
/// `not_found` or `auth`.
pub const CONNECTIONS_REJECTED_TOTAL: &str = "estuary_connections_rejected_total";
/// Counter `{protocol}`: bytes received from clients; protocol is `rtmp`.
pub const BYTES_RECEIVED_TOTAL: &str = "estuary_bytes_received_total";
/// Counter `{protocol}`: bytes sent to clients; protocol is `rtmp`, `http_flv` or `hls`.
pub const BYTES_SENT_TOTAL: &str = "estuary_bytes_sent_total";
/// Counter `{reason}`: audio/video packets a viewer did not get; reason is `lag` (behind the
/// live edge, skipped to the next keyframe) or `overflow` (lapped by the stream's ring).
pub const FRAMES_DROPPED_TOTAL: &str = "estuary_frames_dropped_total";
/// Counter `{reason}`: viewers disconnected by the server; reason is `slow` or `kicked`.
pub const VIEWERS_DISCONNECTED_TOTAL: &str = "estuary_viewers_disconnected_total";
/// Counter `{app}`: HLS segments produced (incremented by the HLS packager).
pub const HLS_SEGMENTS_TOTAL: &str = "estuary_hls_segments_total";
/// Counter `{app}`: HLS segments cut without a keyframe, because the encoder's keyframe
/// interval outgrew the playlist's target duration (or `hls.max_segment_ms`); the playlist
/// drops `EXT-X-INDEPENDENT-SEGMENTS` while such a segment is listed.
pub const HLS_FORCED_CUTS_TOTAL: &str = "estuary_hls_forced_cuts_total";
// LL-HLS (issue 16).
/// Counter `{app}`: LL-HLS parts produced.
pub const HLS_PARTS_TOTAL: &str = "estuary_hls_parts_total";
/// Gauge: LL-HLS requests waiting now (blocking playlist reloads, preload hints).
pub const HLS_BLOCKED_REQUESTS: &str = "estuary_hls_blocked_requests";
// HLS past one machine (issue 15 item 3).
/// Counter `{kind}`: HLS requests this node answered, `kind` `playlist` or `segment`, from
/// viewers, caches and peers alike: behind a cache, what the origin really serves.
pub const HLS_REQUESTS_TOTAL: &str = "estuary_hls_requests_total";
/// Counter `{kind, result}`: HLS fetched from the stream's owner for a viewer of this node;
/// `result` `ok`, `not_found`, `failed` (unreachable, timeout, too large, bad answer).
pub const HLS_OWNER_FETCHES_TOTAL: &str = "estuary_hls_owner_fetches_total";
/// Gauge `{app, stream, protocol}`: viewers of one stream; protocol is `rtmp`, `flv`, `hls`.
pub const STREAM_VIEWERS: &str = "estuary_stream_viewers";
/// Gauge `{app, stream, direction}`: a stream's bitrate over the last 30 s in kbit/s;
/// direction `in` is the publisher's, `out` is the sum of its viewers'.
pub const STREAM_KBPS: &str = "estuary_stream_kbps";
/// Counter: CPU time of the process (user + system), in seconds.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "estuary_process_cpu_seconds_total";
/// Gauge: resident memory of the process, in bytes.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "estuary_process_resident_memory_bytes";
/// Gauge: seconds since the server started.
pub const UPTIME_SECONDS: &str = "estuary_uptime_seconds";
/// Gauge: recordings being written now.
pub const RECORDINGS_ACTIVE: &str = "estuary_recordings_active";
// Pulled sources (issue 14).
/// Gauge `{protocol, state}`: pulled sources; protocol is `rtmp` or `hls`, state is
/// `online`, `offline` (tried and failing, or an on-demand source nobody watches) or
/// `inactive`.
pub const SOURCES: &str = "estuary_sources";
/// Counter `{protocol}`: tries of pulled sources that failed or ended (each is retried).
pub const SOURCE_FAILURES_TOTAL: &str = "estuary_source_failures_total";
// Edge mode (issue 15).
/// Counter: edge pulls (from an origin or a stream's owner) that failed or ended; each is
/// followed by the next origin.
pub const EDGE_PULL_FAILURES_TOTAL: &str = "estuary_edge_pull_failures_total";
/// Counter: bytes the recorder wrote to recording files.
pub const RECORDING_BYTES_TOTAL: &str = "estuary_recording_bytes_total";
/// Counter: recording fragments synced to disk (what a crash cannot lose).
pub const RECORDING_FRAGMENTS_TOTAL: &str = "estuary_recording_fragments_total";
/// Counter `{reason}`: recordings that failed or were refused; reason is `slow_disk`,
/// `disk_full`, `disk_floor`, `io`, `codec` or `empty`.
pub const RECORDING_FAILURES_TOTAL: &str = "estuary_recording_failures_total";
/// Counter `{kind}`: times an output (e.g. `hls`) fell a whole ring behind its stream and
/// lost packets (it resumes at the next keyframe, after a discontinuity).
pub const OUTPUT_GAPS_TOTAL: &str = "estuary_output_gaps_total";
// Deadlines (issue 12).
/// Counter `{protocol, deadline}`: connections the server closed because a deadline passed;
/// protocol is `rtmp` or `http`; deadline is `write` (the peer accepted no bytes: it stopped
/// reading), `not_started` (no publish or play within `rtmp.handshake_timeout_ms`),
/// `no_media` (a publisher without audio or video for `stream.no_media_timeout_ms`) or
/// `silent` (nothing at all for `rtmp.publisher_timeout_ms`). Slow HTTP-FLV and RTMP viewers
/// are counted in `estuary_viewers_disconnected_total{reason="slow"}`.
pub const CONNECTIONS_TIMED_OUT_TOTAL: &str = "estuary_connections_timed_out_total";
// Byte budgets (issue 12).
/// Counter `{budget}`: times a byte budget was reached and the server did what it documents
/// instead of growing: `gop_cache` (the GOP is dropped from the cache until the next
/// keyframe), `hold` (held packets fanned out early), `ring` (the ring's oldest entries
/// released; a reader behind them skips), `hls_segment` (the open segment is cut), `message`,
/// `chunk_streams`, `pre_connect` (the RTMP connection is closed).
pub const BUDGET_EXCEEDED_TOTAL: &str = "estuary_budget_exceeded_total";
// Enhanced RTMP multitrack (issue 16).
/// Gauge `{app, stream, kind}`: tracks a stream's publisher sends; kind is `video` or
/// `audio`. A Multitrack publisher (OBS Enhanced Broadcasting, ffmpeg ≥ 8) counts its tracks
/// ≥ 1 here too; viewers get track 0.
pub const STREAM_TRACKS: &str = "estuary_stream_tracks";
/// Counter `{kind}`: packets of Multitrack tracks ≥ 1 received and kept apart from track 0
/// (they have no viewers yet); kind is `video` or `audio`.
pub const EXTRA_TRACK_PACKETS_TOTAL: &str = "estuary_extra_track_packets_total";

// Forwards (issue 14): the recorder's counters; the per-forward gauges are computed at
// scrape time from `Context::forwards` (`servers/http/metrics.rs`).
/// Counter: bytes sent to upstream RTMP servers by forwards.
pub const FORWARD_BYTES_TOTAL: &str = "estuary_forward_bytes_total";
/// Counter `{reason}`: forward publishes that failed (each is retried with backoff); reason
/// is `connect`, `start_timeout`, `refused`, `stalled` (no bytes accepted for
/// `forward.write_timeout_ms`), `closed` or `protocol`.
pub const FORWARD_FAILURES_TOTAL: &str = "estuary_forward_failures_total";
/// Counter: audio/video frames an upstream did not get because its queue reached
/// `forward.max_queue_bytes` (it skipped to the next keyframe).
pub const FORWARD_FRAMES_DROPPED_TOTAL: &str = "estuary_forward_frames_dropped_total";
/// Gauge `{phase}`: forwards by phase: `connecting`, `connected`, `retrying`, `waiting` (added
/// by API for a stream that is not live).
pub const FORWARDS: &str = "estuary_forwards";
/// Gauge `{app, stream, forward, upstream}`: 1 while the forward publishes to its upstream;
/// `forward` is its id in `/api/v1/forwards`, `upstream` the upstream's `host:port` (never its
/// stream name or query, which may be a publish key).
pub const FORWARD_UP: &str = "estuary_forward_up";
/// Gauge `{app, stream, forward, upstream}`: what a forward sends, kbit/s over the last 2 s.
pub const FORWARD_KBPS: &str = "estuary_forward_kbps";

// Leaks show here first (the soak scenario, `bench/src/soak/`, checks both return to their
// idle values after every client left); computed at scrape time.
/// Gauge: tokio tasks alive in the server's runtime (every connection, viewer, output,
/// timer and hook delivery task).
pub const TASKS: &str = "estuary_tasks";
/// Gauge: connection, output and recorder tasks, the ones shutdown waits for.
pub const TRACKED_TASKS: &str = "estuary_tracked_tasks";

/// Bucket bounds of the hook latency histogram, in seconds.
const HOOK_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder, once. Later calls
/// (a second server in the same process) share it. `None` if another recorder was installed
/// first; `/metrics` then shows only the scrape-time gauges.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(crate::hooks::HOOK_DURATION_SECONDS.into()), &HOOK_BUCKETS);
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(cause = %e, "prometheus buckets refused");
                    PrometheusBuilder::new()
                }
            };
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(cause = %e, "metrics recorder not installed; /metrics shows gauges only");
                    None
                }
            }
        })
        .clone()
}

/// HELP lines for the recorder's series.
fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(CONNECTIONS_ACCEPTED_TOTAL, "Connections accepted, by protocol.");
    describe_counter!(
        SOURCE_FAILURES_TOTAL,
        "Tries of pulled sources that failed or ended, by protocol."
    );
    describe_counter!(
        EDGE_PULL_FAILURES_TOTAL,
        "Edge pulls from an origin or a stream's owner that failed or ended."
    );
    describe_counter!(CONNECTIONS_REJECTED_TOTAL, "Clients refused, by protocol and reason.");
    describe_counter!(
        BYTES_RECEIVED_TOTAL,
        Unit::Bytes,
        "Bytes received from clients, by protocol."
    );
    describe_counter!(BYTES_SENT_TOTAL, Unit::Bytes, "Bytes sent to clients, by protocol.");
    describe_counter!(
        FRAMES_DROPPED_TOTAL,
        "Audio/video packets viewers did not get, by reason."
    );
    describe_counter!(
        VIEWERS_DISCONNECTED_TOTAL,
        "Viewers disconnected by the server, by reason."
    );
    describe_counter!(HLS_SEGMENTS_TOTAL, "HLS segments produced, by app.");
    describe_counter!(HLS_PARTS_TOTAL, "LL-HLS parts produced, by app.");
    metrics::describe_gauge!(
        HLS_BLOCKED_REQUESTS,
        "LL-HLS requests waiting for a part (blocking playlist reloads, preload hints)."
    );
    describe_counter!(
        HLS_FORCED_CUTS_TOTAL,
        "HLS segments cut without a keyframe (keyframe interval above the target duration), by app."
    );
    describe_counter!(
        HLS_REQUESTS_TOTAL,
        "HLS requests answered, by kind (playlist, segment)."
    );
    describe_counter!(
        HLS_OWNER_FETCHES_TOTAL,
        "HLS playlists and segments fetched from the stream's owner node, by kind and result."
    );
    describe_counter!(RECORDING_BYTES_TOTAL, Unit::Bytes, "Bytes written to recording files.");
    describe_counter!(RECORDING_FRAGMENTS_TOTAL, "Recording fragments synced to disk.");
    describe_counter!(RECORDING_FAILURES_TOTAL, "Recordings failed or refused, by reason.");
    describe_counter!(
        OUTPUT_GAPS_TOTAL,
        "Times an output fell a whole ring behind its stream, by kind."
    );
    describe_counter!(
        CONNECTIONS_TIMED_OUT_TOTAL,
        "Connections closed because a deadline passed, by protocol and deadline."
    );
    describe_counter!(
        BUDGET_EXCEEDED_TOTAL,
        "Times a byte budget was reached (and not exceeded), by budget."
    );
    describe_counter!(
        EXTRA_TRACK_PACKETS_TOTAL,
        "Packets of Multitrack tracks >= 1 kept apart from track 0, by kind."
    );
    describe_counter!(
        FORWARD_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes sent to upstream RTMP servers by forwards."
    );
    describe_counter!(
        FORWARD_FAILURES_TOTAL,
        "Forward publishes that failed (and were retried), by reason."
    );
    describe_counter!(
        FORWARD_FRAMES_DROPPED_TOTAL,
        "Frames an upstream did not get because its queue was full."
    );
    describe_counter!(crate::hooks::HOOK_CALLS_TOTAL, "Hook HTTP calls, by hook and result.");
    describe_histogram!(
        crate::hooks::HOOK_DURATION_SECONDS,
        Unit::Seconds,
        "Hook HTTP call latency, by hook."
    );
    describe_counter!(
        crate::hooks::HOOK_DECISIONS_TOTAL,
        "Hook decisions, by hook and decision."
    );
    describe_counter!(
        crate::hooks::HOOK_UNDELIVERED_TOTAL,
        "Hook notifications never delivered, by hook and reason."
    );
    describe_counter!(
        crate::cluster::REDIS_ERRORS_TOTAL,
        "Cluster directory (Redis) commands that failed or timed out, by operation."
    );
    describe_counter!(
        crate::cluster::CLAIMS_LOST_TOTAL,
        "Stream claims this node found taken by another node at renewal (its local source was ended)."
    );
}

/// Counts a refused client.
pub fn rejected(protocol: &'static str, reason: &'static str) {
    metrics::counter!(CONNECTIONS_REJECTED_TOTAL, "protocol" => protocol, "reason" => reason).increment(1);
}

/// Counts a viewer cut off by the slow-viewer policy.
pub fn viewer_too_slow() {
    metrics::counter!(VIEWERS_DISCONNECTED_TOTAL, "reason" => "slow").increment(1);
}

/// Counts a connection closed because its `deadline` passed (see
/// [`CONNECTIONS_TIMED_OUT_TOTAL`]).
pub fn timed_out(protocol: &'static str, deadline: &'static str) {
    metrics::counter!(CONNECTIONS_TIMED_OUT_TOTAL, "protocol" => protocol, "deadline" => deadline).increment(1);
}

/// Counts an accepted connection.
pub fn accepted(protocol: &'static str) {
    metrics::counter!(CONNECTIONS_ACCEPTED_TOTAL, "protocol" => protocol).increment(1);
}

/// The handle a connection keeps for its sent bytes.
pub fn bytes_sent(protocol: &'static str) -> metrics::Counter {
    metrics::counter!(BYTES_SENT_TOTAL, "protocol" => protocol)
}

/// The handle a connection keeps for its received bytes.
pub fn bytes_received(protocol: &'static str) -> metrics::Counter {
    metrics::counter!(BYTES_RECEIVED_TOTAL, "protocol" => protocol)
}

/// Counts one HLS segment of `app` (for the HLS packager).
pub fn hls_segment(app: &str) {
    metrics::counter!(HLS_SEGMENTS_TOTAL, "app" => app.to_string()).increment(1);
}

/// Counts an LL-HLS part of `app`.
pub fn hls_part(app: &str) {
    metrics::counter!(HLS_PARTS_TOTAL, "app" => app.to_string()).increment(1);
}

/// Counts one LL-HLS request waiting for a part while it lives.
pub struct HlsBlockedGuard(());

impl HlsBlockedGuard {
    pub fn new() -> Self {
        metrics::gauge!(HLS_BLOCKED_REQUESTS).increment(1.0);
        HlsBlockedGuard(())
    }
}

impl Default for HlsBlockedGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for HlsBlockedGuard {
    fn drop(&mut self) {
        metrics::gauge!(HLS_BLOCKED_REQUESTS).decrement(1.0);
    }
}

/// Counts an HLS segment of `app` cut without a keyframe.
pub fn hls_forced_cut(app: &str) {
    metrics::counter!(HLS_FORCED_CUTS_TOTAL, "app" => app.to_string()).increment(1);
}

/// Counts bytes written to a recording file.
pub fn recording_bytes(n: u64) {
    metrics::counter!(RECORDING_BYTES_TOTAL).increment(n);
}

/// Counts a recording fragment synced to disk.
pub fn recording_fragment() {
    metrics::counter!(RECORDING_FRAGMENTS_TOTAL).increment(1);
}

/// Counts a recording that failed or was refused.
pub fn recording_failed(reason: &'static str) {
    metrics::counter!(RECORDING_FAILURES_TOTAL, "reason" => reason).increment(1);
}

/// Counts an output that lost packets.
pub fn output_gap(kind: &'static str) {
    metrics::counter!(OUTPUT_GAPS_TOTAL, "kind" => kind).increment(1);
}

/// Counts a byte budget reached (see [`BUDGET_EXCEEDED_TOTAL`] for the names).
pub fn budget_exceeded(budget: &'static str) {
    metrics::counter!(BUDGET_EXCEEDED_TOTAL, "budget" => budget).increment(1);
}

/// Counts a packet of a Multitrack track ≥ 1.
pub fn extra_track_packet(kind: estuary_protocol::MediaKind) {
    let kind = if kind == estuary_protocol::MediaKind::Audio {
        "audio"
    } else {
        "video"
    };
    metrics::counter!(EXTRA_TRACK_PACKETS_TOTAL, "kind" => kind).increment(1);
}

/// The counter of bytes sent to upstreams; a forward keeps the handle.
pub fn forward_bytes() -> metrics::Counter {
    metrics::counter!(FORWARD_BYTES_TOTAL)
}

/// Counts a failed forward publish.
pub fn forward_failed(reason: &'static str) {
    metrics::counter!(FORWARD_FAILURES_TOTAL, "reason" => reason).increment(1);
}

/// Counts frames an upstream skipped.
pub fn forward_frames_dropped(n: u64) {
    metrics::counter!(FORWARD_FRAMES_DROPPED_TOTAL).increment(n);
}

/// The recorder's series in Prometheus text, if the recorder is installed.
pub fn rendered() -> String {
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| h.render())
        .unwrap_or_default()
}
