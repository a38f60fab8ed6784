//! Configuration: one TOML file, every key optional with a documented default
//! (`conf/estuary.toml` lists them all). Unknown keys and wrong types are refused when the
//! file is read; [`Config::validate`] reports every remaining problem at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::admission::acl::{AclConfig, AclOverride, ResolvedAcl};
use crate::admission::signing::{ResolvedSign, SignConfig, SignOverride};
use crate::hooks::{HooksConfig, HooksOverride};
use crate::recordings::schedule::ScheduleSpec;

mod cluster;
mod edge;
mod forward;
mod hls;
mod limits;
mod record;
pub mod server;
mod sources;

pub use cluster::ClusterConfig;
pub use edge::EdgeConfig;
pub use forward::{ForwardConfig, ForwardOverride};
pub use hls::{HlsOverride, HlsVariant};
pub use limits::{IpRange, LimitsConfig};
pub use record::{RecordConfig, RecordOverride, RecordPlan};
pub use server::ServerConfig;
pub use sources::{PullConfig, SourceProtocol, SourceSpec};

/// Largest `stream.timeline_start_ms`: 2^40 ms (34 years), far past the 2^32 wrap it is
/// for, and far from where a 64-bit millisecond clock could overflow.
const MAX_TIMELINE_START_MS: u64 = 1 << 40;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub rtmp: RtmpConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub stream: StreamConfig,
    pub play: PlayConfig,
    pub hls: HlsConfig,
    pub hooks: HooksConfig,
    pub api: ApiConfig,
    pub record: RecordConfig,
    /// Signed URLs for publishing and playing (`[sign.publish]`, `[sign.play]`).
    pub sign: SignConfig,
    /// Address and referer access lists.
    pub acl: AclConfig,
    /// The origin cluster's stream directory (`[cluster]`).
    pub cluster: ClusterConfig,
    /// Upstream RTMP servers every stream is pushed to, and the limits of each push.
    pub forward: ForwardConfig,
    /// Per-application settings, `[apps.NAME]`.
    pub apps: BTreeMap<String, AppConfig>,
    /// Who this server is to the backends (`server_id`).
    pub server: ServerConfig,
    // Pulled sources (issue 14).
    /// Live sources pulled from RTMP or HLS URLs (`[[sources]]`).
    pub sources: Vec<SourceSpec>,
    /// Deadlines, byte caps and retry pace of pulled sources (`[pull]`).
    pub pull: PullConfig,
    // Edge mode (issue 15).
    /// Origins this node pulls the streams it does not have from (`[edge]`).
    pub edge: EdgeConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpConfig {
    /// Address the RTMP listener binds.
    pub listen: String,
    /// Chunk size of everything the server sends (players' media included).
    pub out_chunk_size: u32,
    /// A publisher that has sent nothing for this long can be replaced by a new publisher
    /// on the same stream key (the half-dead connection an OBS reconnect leaves behind).
    pub publisher_idle_timeout_ms: u64,
    /// A client that has not finished the handshake, `connect` and `publish` or `play` in
    /// this time after it connected (or after it stopped publishing) is dropped: the
    /// pre-connect idle deadline.
    pub handshake_timeout_ms: u64,
    /// A publisher that sends nothing for this long is disconnected.
    pub publisher_timeout_ms: u64,
    // Deadlines (issue 12): a peer that stops reading cannot hold its task.
    /// Longest a write of the server's own RTMP messages (answers, acks, pings, refusals) may
    /// wait for the peer's socket; a peer that accepts no bytes for this long (it stopped
    /// reading) is disconnected. Players' media has `play.slow_disconnect_ms`.
    pub write_timeout_ms: u64,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            listen: "0.0.0.0:1935".into(),
            out_chunk_size: 4096,
            publisher_idle_timeout_ms: 2000,
            handshake_timeout_ms: 10_000,
            publisher_timeout_ms: 20_000,
            write_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the HTTP listener (HTTP-FLV, HLS, API, metrics) binds.
    pub listen: String,
    /// Value of `Access-Control-Allow-Origin` on media responses; empty turns CORS off.
    pub cors_allow_origin: String,
    /// A connection must send a whole request head within this time of connecting (or of
    /// its previous response, on a kept-alive connection); else it is closed: the HTTP
    /// pre-request idle deadline.
    pub header_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "0.0.0.0:8080".into(),
            cors_allow_origin: "*".into(),
            header_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Keep the packets since the last keyframe so viewers start at once.
    pub gop_cache: bool,
    /// Most packets the GOP cache holds; a longer GOP is not cached (no-keyframe guard).
    pub gop_cache_max_packets: usize,
    /// Packets each stream's fan-out ring holds; a viewer further behind loses packets and
    /// skips to the next keyframe.
    pub queue_packets: usize,
    /// A timestamp step larger than this (either direction) is a jump: the timeline is
    /// re-based to continue smoothly and outputs are told of a discontinuity.
    pub timestamp_jump_ms: u64,
    /// Audio arriving between video frames is held (up to this much stream time) and fanned
    /// out together with the next video frame, so viewers wake and write once per frame
    /// instead of once per packet. Video is never held; 0 sends every packet at once.
    pub audio_hold_ms: u64,
    /// Gather this much stream time of packets before fanning them out (SRS's merged
    /// writes): fewer, larger writes per viewer and less server CPU, for exactly that much
    /// added latency. 0 (the default) sends every video frame at once.
    pub merge_write_ms: u64,
    /// A source started on demand for a stream's viewers (an edge or pull) is stopped this
    /// long after its last viewer left, unless a viewer comes back.
    pub on_demand_close_after_ms: u64,
    /// Characters a stream (or app) name may have besides ASCII letters and digits.
    pub name_extra_chars: String,
    /// Longest stream (or app) name, in bytes.
    pub name_max_bytes: usize,
    /// A source (an RTMP publisher) that sends no audio or video for this long, whatever
    /// else it sends (pings, acks, metadata), is ended like an unpublish: its viewers are
    /// told and its key is free again.
    pub no_media_timeout_ms: u64,
    // Byte budgets of one stream (issue 12); packets count their payload plus ~200 bytes.
    /// Most bytes the GOP cache holds; a longer GOP is dropped from the cache until the next
    /// keyframe (joining viewers then wait for it).
    pub gop_cache_max_bytes: usize,
    /// Packets held back by `audio_hold_ms` or `merge_write_ms` are fanned out at once when
    /// they reach this many bytes (frozen timestamps would otherwise hold them forever).
    pub hold_max_bytes: usize,
    /// Most bytes the fan-out ring keeps for its slowest reader; past it the oldest entries
    /// are released and a reader that had not read them skips to the next keyframe.
    pub ring_max_bytes: usize,
    /// Where every stream's normalised timeline starts, in ms (0: outputs start at 0).
    /// RTMP and FLV carry 32-bit ms timestamps that wrap 49.7 days into a stream; a value
    /// just under 2^32 (4294967296) makes a new stream cross that wrap within seconds, to
    /// check players, CDNs and the server's own outputs before a long-running event.
    pub timeline_start_ms: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            gop_cache: true,
            gop_cache_max_packets: 4096,
            queue_packets: 256,
            timestamp_jump_ms: 5000,
            audio_hold_ms: 50,
            merge_write_ms: 0,
            on_demand_close_after_ms: 10_000,
            name_extra_chars: "-_.".into(),
            name_max_bytes: 128,
            no_media_timeout_ms: 10_000,
            // A 10-s GOP of a 20 Mbps 4K stream is ~25 MB.
            gop_cache_max_bytes: 32 * 1024 * 1024,
            // merge_write_ms at its maximum (1 s) of a 20 Mbps stream is ~2.5 MB.
            hold_max_bytes: 4 * 1024 * 1024,
            // ~13 s of a 20 Mbps stream, more than play.max_lag_ms lets a viewer fall behind.
            ring_max_bytes: 32 * 1024 * 1024,
            timeline_start_ms: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlayConfig {
    /// A viewer that arrives before the publisher (or stays after it left) waits this long
    /// for one before it is closed.
    pub wait_for_publisher_ms: u64,
    /// How far (in stream time) a viewer may lag behind the live edge before it skips to
    /// the next keyframe.
    pub max_lag_ms: u64,
    /// A viewer still behind (or whose socket accepts nothing) after this long is
    /// disconnected.
    pub slow_disconnect_ms: u64,
    /// Kernel send buffer of each connection (`SO_SNDBUF`), bounding what can sit unsent in
    /// the kernel for one viewer; 0 keeps the kernel's auto-tuning (which lets up to 4 MB,
    /// seconds of video, pile up before the lag policy notices a slow viewer).
    pub send_buffer_bytes: usize,
}

impl Default for PlayConfig {
    fn default() -> Self {
        PlayConfig {
            wait_for_publisher_ms: 10_000,
            max_lag_ms: 3000,
            slow_disconnect_ms: 10_000,
            send_buffer_bytes: 262_144,
        }
    }
}

/// `[api]`: the HTTP API (`/api/v1/...`) and viewer accounting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve `/api/v1/...`; `/metrics`, `/healthz` and `/readyz` are always served.
    pub enabled: bool,
    /// When not empty, API (and `/metrics`) requests need `Authorization: Bearer TOKEN`,
    /// from anywhere. When empty, the API and `/metrics` answer this host only.
    pub token: String,
    /// A token that opens `/metrics` alone (for a Prometheus that should not kick clients).
    pub metrics_token: String,
    /// An address of its own for the API and `/metrics` (e.g. a private interface); when
    /// set, the public HTTP port serves neither, and this one serves them to whoever reaches
    /// it (with the token, if one is set).
    pub listen: String,
    /// Browser origins allowed to call the API (`Access-Control-Allow-Origin` echoes them);
    /// no wildcard.
    pub cors_origins: Vec<String>,
    /// An HLS playback session with no playlist or segment request for this long stops
    /// counting as a viewer.
    pub hls_session_idle_ms: u64,
    /// SRS compatibility for SRS's web console and SRS API clients: JSONP (`?callback=NAME`
    /// answers `NAME(json)`; `&method=DELETE` kicks), the API token accepted as `?token=`
    /// (JSONP cannot send a header), and SRS's own errors answered with HTTP 200 and SRS's
    /// code, as SRS answers them. Opens a cross-origin read and a cross-site write (see
    /// README "HTTP API").
    pub srs_compat: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            token: String::new(),
            metrics_token: String::new(),
            listen: String::new(),
            cors_origins: Vec::new(),
            hls_session_idle_ms: 30_000,
            srs_compat: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    /// Package every live stream as HLS at `/{app}/{stream}.m3u8`.
    pub enabled: bool,
    /// A segment is cut at the first keyframe at or after this long.
    pub fragment_ms: u64,
    /// Segments listed in the live playlist (Apple asks for at least 6).
    pub window_segments: usize,
    /// Segments that left the playlist but are still served, for clients that read an
    /// older playlist.
    pub tail_segments: usize,
    /// No segment lasts longer than this: one that would, for want of a keyframe, is cut at
    /// a frame that is not one (and the playlist drops `EXT-X-INDEPENDENT-SEGMENTS` while it
    /// is listed). Also caps `EXT-X-TARGETDURATION` at `ceil(max_segment_ms / 1000)` s.
    pub max_segment_ms: u64,
    /// After the publisher leaves, the playlist stays live this long for a reconnect (which
    /// continues it after an `EXT-X-DISCONTINUITY`); then it gets `EXT-X-ENDLIST`.
    pub reconnect_window_ms: u64,
    /// An ended playlist and its segments are served this long, then removed.
    pub dispose_ms: u64,
    /// A segment that reaches this many bytes is cut before the next packet, keyframe or not
    /// (byte budget of the open segment: frozen timestamps never reach `max_segment_ms`).
    pub max_segment_bytes: usize,
    // fMP4 HLS and LL-HLS (issue 16).
    /// Segment format: `ts`, `fmp4`, or `auto` (H.264 + AAC get MPEG-TS, other codecs fMP4).
    pub variant: HlsVariant,
    /// LL-HLS on fMP4 streams (parts, blocking playlist reload, preload hints, delta
    /// updates); MPEG-TS playlists are never low-latency.
    pub low_latency: bool,
    /// LL-HLS part target in ms (`EXT-X-PART-INF:PART-TARGET`), 100..=2000 and at most half
    /// of `fragment_ms`; `PART-HOLD-BACK`, where players start, is three of these.
    pub part_ms: u64,
    // Past one machine (issue 15 item 3; `servers/http/hls/cdn.rs`, `owner_fetch.rs`).
    /// CDN mode: playlists and segment URIs carry nothing per viewer (no `?session=`), every
    /// answer may be kept by a shared cache, and the origin checks only its access list (the
    /// cache's address); signed URLs and `on_play` are the CDN edge's to check.
    pub cdn: bool,
    /// A node asked for the HLS of a stream another node of the cluster owns fetches it from
    /// the owner within this long (connect, request and body), else answers 502.
    pub owner_fetch_timeout_ms: u64,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            enabled: true,
            fragment_ms: 2000,
            window_segments: 6,
            tail_segments: 3,
            max_segment_ms: 60_000,
            reconnect_window_ms: 10_000,
            dispose_ms: 30_000,
            // A 10-s GOP of a 20 Mbps 4K stream is ~27 MB of MPEG-TS.
            max_segment_bytes: 64 * 1024 * 1024,
            variant: HlsVariant::Auto,
            low_latency: true,
            part_ms: 300,
            cdn: false,
            owner_fetch_timeout_ms: 5000,
        }
    }
}

impl HlsConfig {
    /// The `[hls]` settings of app `app`: its `[apps.NAME.hls]` keys over the global ones.
    pub fn for_app(config: &Config, app: &str) -> HlsConfig {
        let mut hls = config.hls.clone();
        if let Some(over) = config.apps.get(app).map(|a| &a.hls) {
            hls.variant = over.variant.unwrap_or(hls.variant);
            hls.low_latency = over.low_latency.unwrap_or(hls.low_latency);
        }
        hls
    }
}

/// `[apps.NAME]`: settings that apply to one application.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// Overrides keys of the global `[hooks]` for this app.
    pub hooks: HooksOverride,
    /// Overrides keys of the global `[record]` for this app.
    pub record: RecordOverride,
    /// Replaces the global `[sign.publish]` or `[sign.play]` for this app.
    pub sign: SignOverride,
    /// Overrides keys of the global `[acl]` for this app.
    pub acl: AclOverride,
    /// Overrides `variant` and `low_latency` of the global `[hls]` for this app.
    pub hls: HlsOverride,
    /// Replaces the global `[forward] urls` for this app.
    pub forward: ForwardOverride,
}

impl SignConfig {
    /// The signed-URL rules of app `app`: its `[apps.NAME.sign]` tables over the global ones.
    pub fn for_app(config: &Config, app: &str) -> ResolvedSign {
        config.sign.resolve(config.apps.get(app).map(|a| &a.sign))
    }
}

impl AclConfig {
    /// The access lists of app `app`, parsed: its `[apps.NAME.acl]` keys over the global
    /// ones. Cannot fail on a config that passed [`Config::validate`]; resolve every app's at
    /// start-up and refuse to start on an error.
    pub fn for_app(config: &Config, app: &str) -> Result<ResolvedAcl, Vec<String>> {
        match config.apps.get(app) {
            Some(own) => config.acl.resolve(Some(&own.acl)).compile(&format!("apps.{app}.acl")),
            None => config.acl.compile("acl"),
        }
    }
}

impl ForwardConfig {
    /// The upstream URL templates of app `app`: its `[apps.NAME.forward] urls` if set, else
    /// the global ones.
    pub fn urls_for_app<'a>(config: &'a Config, app: &str) -> &'a [String] {
        match config.apps.get(app).and_then(|a| a.forward.urls.as_ref()) {
            Some(own) => own,
            None => &config.forward.urls,
        }
    }
}

impl RecordConfig {
    /// The `[record]` settings of app `app`: its `[apps.NAME.record]` keys over the global
    /// ones, and its schedules.
    pub fn for_app(config: &Config, app: &str) -> RecordConfig {
        let over = config.apps.get(app).map(|a| &a.record);
        config.record.resolve(app, over)
    }

    /// Every schedule the config file declares, each naming its app: what the recorder
    /// hands to `Catalogue::replace_config_schedules` at start-up. An app that sets its own
    /// `schedules` replaces the global ones naming it.
    pub fn config_schedules(config: &Config) -> Vec<ScheduleSpec> {
        let overridden = |app: &str| config.apps.get(app).is_some_and(|a| a.record.schedules.is_some());
        let global = config.record.schedules.iter().filter(|s| !overridden(&s.app)).cloned();
        let own = config
            .apps
            .iter()
            .filter(|(_, a)| a.record.schedules.is_some())
            .flat_map(|(name, _)| RecordConfig::for_app(config, name).schedules);
        global.chain(own).collect()
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {}", .problems.join("; "))]
    Invalid { path: String, problems: Vec<String> },
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|problems| ConfigError::Invalid { path: shown, problems })?;
        Ok(config)
    }

    /// Every problem with the values, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        for (key, value) in [("rtmp.listen", &self.rtmp.listen), ("http.listen", &self.http.listen)] {
            if value.parse::<SocketAddr>().is_err() {
                problems.push(format!("{key} = {value:?} is not an address like 0.0.0.0:1935"));
            }
        }
        let chunk = self.rtmp.out_chunk_size;
        if !(128..=65536).contains(&chunk) {
            problems.push(format!("rtmp.out_chunk_size = {chunk} must be between 128 and 65536"));
        }
        problems.extend(self.limits.validate());
        problems.extend(self.validate_deadlines());
        problems.extend(self.cluster.validate());
        problems.extend(self.edge.validate());
        if self.stream.queue_packets < 16 {
            problems.push(format!(
                "stream.queue_packets = {} must be at least 16",
                self.stream.queue_packets
            ));
        }
        if self.hls.fragment_ms < 500 || self.hls.fragment_ms > 30_000 {
            problems.push(format!(
                "hls.fragment_ms = {} must be between 500 and 30000",
                self.hls.fragment_ms
            ));
        }
        if self.hls.window_segments < 3 {
            problems.push(format!(
                "hls.window_segments = {} must be at least 3",
                self.hls.window_segments
            ));
        }
        if !(100..=60_000).contains(&self.hls.owner_fetch_timeout_ms) {
            problems.push(format!(
                "hls.owner_fetch_timeout_ms = {} must be between 100 and 60000",
                self.hls.owner_fetch_timeout_ms
            ));
        }
        if self.hls.max_segment_ms < self.hls.fragment_ms {
            problems.push("hls.max_segment_ms must not be less than hls.fragment_ms".into());
        }
        if !hls::PART_MS_RANGE.contains(&self.hls.part_ms) || self.hls.part_ms * 2 > self.hls.fragment_ms {
            problems.push(format!(
                "hls.part_ms = {} must be between 100 and 2000 and at most half of hls.fragment_ms",
                self.hls.part_ms
            ));
        }
        if self.stream.name_extra_chars.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || !c.is_ascii()
                || matches!(c, '/' | '\\' | '?' | '#' | '%' | '"' | '&' | '=')
        }) {
            problems.push(format!(
                "stream.name_extra_chars = {:?} may hold only printable ASCII marks that are safe in paths, URLs and logs (not / \\ ? # % \" & =)",
                self.stream.name_extra_chars
            ));
        }
        if !(1..=1024).contains(&self.stream.name_max_bytes) {
            problems.push(format!(
                "stream.name_max_bytes = {} must be between 1 and 1024",
                self.stream.name_max_bytes
            ));
        }
        if self.stream.timeline_start_ms > MAX_TIMELINE_START_MS {
            problems.push(format!(
                "stream.timeline_start_ms = {} must be at most {MAX_TIMELINE_START_MS} (2^40 ms, 34 years)",
                self.stream.timeline_start_ms
            ));
        }
        if self.stream.merge_write_ms > 1000 {
            problems.push(format!(
                "stream.merge_write_ms = {} must be at most 1000",
                self.stream.merge_write_ms
            ));
        }
        problems.extend(self.budget_problems());
        if self.api.hls_session_idle_ms < 1000 {
            problems.push(format!(
                "api.hls_session_idle_ms = {} must be at least 1000",
                self.api.hls_session_idle_ms
            ));
        }
        for (key, token) in [
            ("api.token", &self.api.token),
            ("api.metrics_token", &self.api.metrics_token),
        ] {
            if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(format!("{key} must not contain spaces or control characters"));
            }
        }
        if !self.api.listen.is_empty() && self.api.listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "api.listen = {:?} is not an address like 127.0.0.1:8081",
                self.api.listen
            ));
        }
        for origin in &self.api.cors_origins {
            if origin == "*" || origin.contains(['\r', '\n']) || !origin.contains("://") {
                problems.push(format!(
                    "api.cors_origins: {origin:?} must be an origin like https://console.example.com (no wildcard)"
                ));
            }
        }
        if let Err(e) = self.hooks.validate() {
            problems.push(e.to_string());
        }
        problems.extend(self.record.validate());
        problems.extend(self.server.validate());
        problems.extend(self.pull.validate());
        for (i, source) in self.sources.iter().enumerate() {
            problems.extend(source.problems(&format!("sources[{i}]")));
        }
        problems.extend(sources::duplicate_streams(&self.sources));
        problems.extend(self.sign.validate());
        problems.extend(self.acl.validate());
        problems.extend(self.forward.validate());
        for (name, app) in &self.apps {
            problems.extend(app.forward.validate(name));
            if let Err(e) = app.hooks.validate(name) {
                problems.push(e.to_string());
            }
            problems.extend(app.record.validate(name));
            problems.extend(app.sign.validate(name));
            if app.sign != SignOverride::default() {
                let resolved = SignConfig::for_app(self, name);
                problems.extend(resolved.shared_key_problem(&format!("apps.{name}.sign")));
            }
            problems.extend(app.acl.validate(name));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

impl Config {
    /// The deadlines' ranges: none may be 0 (a deadline that never fires is the bug they
    /// fix) and none longer than an hour.
    fn validate_deadlines(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("rtmp.handshake_timeout_ms", self.rtmp.handshake_timeout_ms),
            ("rtmp.publisher_timeout_ms", self.rtmp.publisher_timeout_ms),
            ("rtmp.write_timeout_ms", self.rtmp.write_timeout_ms),
            ("http.header_timeout_ms", self.http.header_timeout_ms),
            ("stream.no_media_timeout_ms", self.stream.no_media_timeout_ms),
            ("play.slow_disconnect_ms", self.play.slow_disconnect_ms),
        ] {
            if !(100..=3_600_000).contains(&value) {
                problems.push(format!("{key} = {value} must be between 100 and 3600000"));
            }
        }
        problems
    }

    /// Problems with the stream and HLS byte budgets, each naming its key.
    fn budget_problems(&self) -> Vec<String> {
        const MIB: usize = 1024 * 1024;
        const GIB: usize = 1024 * MIB;
        let stream = &self.stream;
        [
            (
                "stream.gop_cache_max_bytes",
                stream.gop_cache_max_bytes,
                64 * 1024,
                4 * GIB,
            ),
            ("stream.hold_max_bytes", stream.hold_max_bytes, 4096, 64 * MIB),
            ("stream.ring_max_bytes", stream.ring_max_bytes, MIB, 4 * GIB),
            ("hls.max_segment_bytes", self.hls.max_segment_bytes, 64 * 1024, GIB),
        ]
        .into_iter()
        .filter(|(_, value, min, max)| !(*min..=*max).contains(value))
        .map(|(key, value, min, max)| format!("{key} = {value} must be between {min} and {max}"))
        .collect()
    }
}

#[cfg(test)]
mod admission_tests;
#[cfg(test)]
mod hls_tests;
#[cfg(test)]
mod record_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.rtmp.listen, "0.0.0.0:1935");
        assert_eq!(c.http.listen, "0.0.0.0:8080");
    }

    #[test]
    fn unknown_key_and_wrong_type_are_refused_with_the_key() {
        let e = toml::from_str::<Config>("[rtmp]\nlisten_addr = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen_addr"), "{e}");
        let e = toml::from_str::<Config>("[play]\nmax_lag_ms = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_lag_ms"), "{e}");
    }

    #[test]
    fn bad_values_are_all_reported() {
        let c: Config = toml::from_str("[rtmp]\nlisten = \"nowhere\"\nout_chunk_size = 1\n").unwrap();
        let problems = c.validate().unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("rtmp.listen"));
    }

    #[test]
    fn deadlines_cannot_be_turned_off() {
        let c: Config = toml::from_str(
            "[rtmp]\nwrite_timeout_ms = 0\nhandshake_timeout_ms = 0\n[http]\nheader_timeout_ms = 0\n\
             [stream]\nno_media_timeout_ms = 0\n[play]\nslow_disconnect_ms = 0\n",
        )
        .unwrap();
        let problems = c.validate().unwrap_err();
        for key in [
            "rtmp.write_timeout_ms",
            "rtmp.handshake_timeout_ms",
            "http.header_timeout_ms",
            "stream.no_media_timeout_ms",
            "play.slow_disconnect_ms",
        ] {
            assert!(problems.iter().any(|p| p.contains(key)), "{key}: {problems:?}");
        }
    }

    #[test]
    fn byte_budgets_are_validated_with_their_key() {
        let c: Config = toml::from_str("[stream]\nring_max_bytes = 10\n[hls]\nmax_segment_bytes = 0\n").unwrap();
        let problems = c.validate().unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with("stream.ring_max_bytes = 10")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("hls.max_segment_bytes = 0")),
            "{problems:?}"
        );
    }

    #[test]
    fn example_config_parses_and_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/estuary.toml");
        Config::load(&path).unwrap();
    }
}
