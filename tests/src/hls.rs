//! HLS from the outside: fetch playlists and segments like a player does, walk a live
//! playlist checking every segment (with `estuary_muxer::check` plus the rules a checker of
//! one segment cannot see: where segments are cut, the window, the names), and a recording
//! HTTP proxy that shows what a browser player fetched.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use estuary_muxer::check::{PlaylistChecker, PlaylistReport, SegmentContext, TsChecker};
use estuary_muxer::ts::pes::parse_pes_header;
use estuary_muxer::ts::psi::{parse_pat, parse_pmt};
use estuary_muxer::ts::{pcr_from_adaptation_field, PAT_PID, STREAM_TYPE_AAC_ADTS, STREAM_TYPE_H264, TS_PACKET_LEN};
use estuary_protocol::codec::avc::{annexb_nal_units, nal_type, nal_unit_type, SpsInfo};

use crate::http::{get, is_timeout, split_url, ResponseHead};

/// Content type of a playlist (RFC 8216 §4).
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Content type of an MPEG-TS segment.
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// The bound on one HTTP exchange with the server.
pub const FETCH_LIMIT: Duration = Duration::from_secs(10);
/// 90 kHz ticks per millisecond.
const TICKS_PER_MS: u64 = 90;
/// PTS/DTS are 33-bit.
const TS_MASK: u64 = (1 << 33) - 1;

/// `GET url` within [`FETCH_LIMIT`].
pub fn fetch(url: &str) -> Result<(ResponseHead, Vec<u8>), String> {
    get(url, FETCH_LIMIT)
}

/// `HEAD url` (with an `Origin` header, like `GET`): the response head and how many bytes
/// came after it (a HEAD response must have none).
pub fn head(url: &str) -> Result<(ResponseHead, usize), String> {
    let (host, path) = split_url(url);
    let mut stream = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("set_read_timeout: {e}"))?;
    let req = format!(
        "HEAD {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: estuary-tests\r\nAccept: */*\r\n\
         Origin: http://example.test\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("send request: {e}"))?;
    let deadline = Instant::now() + FETCH_LIMIT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the server closes (Connection: close), so bytes after the head are seen.
    loop {
        if Instant::now() >= deadline {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {
                // Head complete and nothing more for a while: done.
                if find(&buf, b"\r\n\r\n").is_some() {
                    break;
                }
            }
            Err(e) => return Err(format!("HEAD {url}: read: {e}")),
        }
    }
    let end = find(&buf, b"\r\n\r\n").ok_or_else(|| format!("HEAD {url}: no complete response head in {buf:?}"))?;
    let parsed = ResponseHead::parse(&buf[..end + 4])?;
    Ok((parsed, buf.len() - end - 4))
}

/// The URL of `uri` as listed in the playlist at `playlist_url` (relative or absolute).
pub fn resolve(playlist_url: &str, uri: &str) -> String {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return uri.to_string();
    }
    let (host, path) = split_url(playlist_url);
    if uri.starts_with('/') {
        return format!("http://{host}{uri}");
    }
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("http://{host}{dir}{uri}")
}

/// `(stream, instance, sequence)` of a segment URI or path `…/{stream}-{instance}-{seq}.ts`,
/// ignoring a query string (the server adds `?session=…`).
pub fn segment_name_parts(uri: &str) -> Option<(String, String, u64)> {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let name = path.rsplit('/').next().unwrap_or_default();
    let rest = name.strip_suffix(".ts")?;
    let (rest, seq) = rest.rsplit_once('-')?;
    let (stream, instance) = rest.rsplit_once('-')?;
    Some((stream.to_string(), instance.to_string(), seq.parse().ok()?))
}

/// Seconds of `max-age` in a Cache-Control value.
pub fn max_age(cache_control: &str) -> Option<u64> {
    cache_control
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse().ok())
}

/// One H.264 access unit as read back from a segment.
#[derive(Clone, Debug)]
pub struct VideoAu {
    /// DTS, 90 kHz.
    pub dts: u64,
    pub nal_types: Vec<u8>,
}

impl VideoAu {
    pub fn is_idr(&self) -> bool {
        self.nal_types.contains(&nal_type::IDR_SLICE)
    }
}

/// What a segment carries, read with a plain TS demuxer (framing is checked by `TsChecker`).
#[derive(Clone, Debug, Default)]
pub struct SegmentMedia {
    pub pcr_pid: Option<u16>,
    pub video_pid: Option<u16>,
    pub audio_pid: Option<u16>,
    /// PIDs that carried a PCR.
    pub pcr_carriers: Vec<u16>,
    /// PID of the first elementary-stream PES of the segment.
    pub first_es_pid: Option<u16>,
    pub video: Vec<VideoAu>,
    pub audio_pes: usize,
    /// The picture size from the first SPS.
    pub video_size: Option<(u32, u32)>,
}

impl SegmentMedia {
    /// Demuxes `data` (whole 188-byte packets).
    pub fn read(data: &[u8]) -> Result<SegmentMedia, String> {
        let mut media = SegmentMedia::default();
        let mut pmt_pid = None;
        let mut open: HashMap<u16, Vec<u8>> = HashMap::new();
        for packet in data.chunks_exact(TS_PACKET_LEN) {
            let pid = u16::from_be_bytes([packet[1], packet[2]]) & 0x1fff;
            let unit_start = packet[1] & 0x40 != 0;
            let control = (packet[3] >> 4) & 0x03;
            let mut start = 4;
            if control & 0x02 != 0 {
                start = 5 + usize::from(packet[4]);
                if pcr_from_adaptation_field(packet).is_some() && !media.pcr_carriers.contains(&pid) {
                    media.pcr_carriers.push(pid);
                }
            }
            if control & 0x01 == 0 || start >= TS_PACKET_LEN {
                continue;
            }
            let payload = &packet[start..];
            if pid == PAT_PID || Some(pid) == pmt_pid {
                let pointer = usize::from(payload[0]);
                let section = payload.get(1 + pointer..).ok_or("bad pointer field")?;
                if pid == PAT_PID {
                    pmt_pid = Some(parse_pat(section)?);
                } else {
                    let pmt = parse_pmt(section)?;
                    media.pcr_pid = Some(pmt.pcr_pid);
                    for s in &pmt.streams {
                        match s.stream_type {
                            STREAM_TYPE_H264 => media.video_pid = Some(s.pid),
                            STREAM_TYPE_AAC_ADTS => media.audio_pid = Some(s.pid),
                            _ => {}
                        }
                    }
                }
                continue;
            }
            if Some(pid) != media.video_pid && Some(pid) != media.audio_pid {
                continue;
            }
            if unit_start {
                media.first_es_pid.get_or_insert(pid);
                if let Some(done) = open.remove(&pid) {
                    media.finish_pes(pid, &done)?;
                }
                open.insert(pid, payload.to_vec());
            } else if let Some(pes) = open.get_mut(&pid) {
                pes.extend_from_slice(payload);
            }
        }
        let mut rest: Vec<_> = open.into_iter().collect();
        rest.sort_by_key(|(pid, _)| *pid);
        for (pid, pes) in rest {
            media.finish_pes(pid, &pes)?;
        }
        Ok(media)
    }

    fn finish_pes(&mut self, pid: u16, pes: &[u8]) -> Result<(), String> {
        if Some(pid) == self.audio_pid {
            self.audio_pes += 1;
            return Ok(());
        }
        let header = parse_pes_header(pes)?;
        let dts = header.dts.or(header.pts).ok_or("video pes without pts")?;
        let es = pes.get(header.payload_offset..).unwrap_or_default();
        let nal_types = annexb_nal_units(es).map(nal_unit_type).collect();
        if self.video_size.is_none() {
            if let Some(sps) = annexb_nal_units(es).find(|n| nal_unit_type(n) == nal_type::SPS) {
                let info = SpsInfo::parse(sps).map_err(|e| format!("sps: {e}"))?;
                self.video_size = Some((info.width, info.height));
            }
        }
        self.video.push(VideoAu { dts, nal_types });
        Ok(())
    }

    /// Whether the first video access unit is an IDR (true without video).
    pub fn starts_with_idr(&self) -> bool {
        self.video_pid.is_none() || self.video.first().is_some_and(VideoAu::is_idr)
    }

    /// Item-1 rules that `TsChecker` does not cover: PCR on the video PID, the segment starts
    /// with the video keyframe, and every IDR access unit carries AUD, SPS and PPS before its
    /// first slice. A segment after a forced cut (`independent` false) starts with whatever
    /// video frame came.
    pub fn rule_violations(&self, independent: bool) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(video_pid) = self.video_pid else {
            return errors;
        };
        if self.pcr_pid != Some(video_pid) {
            errors.push(format!(
                "PCR_PID is {:?}, not the video pid {video_pid:#x}",
                self.pcr_pid
            ));
        }
        if !self.pcr_carriers.contains(&video_pid) {
            errors.push(format!(
                "no PCR on the video pid {video_pid:#x} (PCR seen on {:?})",
                self.pcr_carriers
            ));
        }
        if independent && self.first_es_pid != Some(video_pid) {
            errors.push(format!(
                "the first PES is on pid {:?}, not the video pid: the segment does not start \
                 with its keyframe",
                self.first_es_pid
            ));
        }
        if independent && !self.video.first().is_some_and(VideoAu::is_idr) {
            errors.push(format!(
                "the first video access unit is not an IDR: {:?}",
                self.video.first()
            ));
        }
        for (i, au) in self.video.iter().enumerate().filter(|(_, au)| au.is_idr()) {
            let types = &au.nal_types;
            let idr_at = types.iter().position(|&t| t == nal_type::IDR_SLICE);
            let before = &types[..idr_at.unwrap_or(0)];
            let ok = types.first() == Some(&nal_type::ACCESS_UNIT_DELIMITER)
                && before.contains(&nal_type::SPS)
                && before.contains(&nal_type::PPS);
            if !ok {
                errors.push(format!(
                    "idr access unit #{i} needs AUD first and SPS, PPS before the slice: nal \
                     types {types:?}"
                ));
            }
        }
        errors
    }

    /// DTS of the video keyframes, 90 kHz.
    pub fn keyframe_dts(&self) -> Vec<u64> {
        self.video.iter().filter(|au| au.is_idr()).map(|au| au.dts).collect()
    }
}

/// `b - a` on the 33-bit clock.
pub fn ts_diff(a: u64, b: u64) -> u64 {
    b.wrapping_sub(a) & TS_MASK
}

/// One segment the walker fetched and checked.
#[derive(Clone, Debug)]
pub struct WalkedSegment {
    pub sequence: u64,
    pub uri: String,
    pub duration_secs: f32,
    pub discontinuity: bool,
    pub program_date_time_ms: Option<i64>,
    pub bytes: usize,
    pub video_size: Option<(u32, u32)>,
    /// DTS (90 kHz) of the first video access unit.
    pub first_video_dts: Option<u64>,
    pub keyframes: usize,
    /// Its first video access unit is an IDR (true without video).
    pub starts_with_idr: bool,
}

/// What the walker expects of the stream.
#[derive(Clone, Debug)]
pub struct WalkRules {
    /// The server's `hls.fragment_ms`.
    pub fragment_ms: u64,
    /// The server's `hls.window_segments`.
    pub window_segments: usize,
    pub expect_video: bool,
    pub expect_audio: bool,
    /// The encoder's keyframe interval is longer than the target duration: segments may
    /// start without a keyframe (forced cuts), but only while the playlist does not claim
    /// `EXT-X-INDEPENDENT-SEGMENTS`.
    pub forced_cuts: bool,
}

/// What one poll saw.
#[derive(Debug)]
pub enum Polled {
    /// The playlist answered 404.
    NotFound,
    /// A playlist (checked; problems are in [`HlsWalker::errors`]).
    Playlist(Option<PlaylistReport>),
}

/// Follows one live playlist: checks every fetch of it with `PlaylistChecker` and the rules
/// below, fetches each new segment once and checks it with `TsChecker` (carrying continuity
/// across segments) and [`SegmentMedia::rule_violations`], and checks where each segment was
/// cut. Violations accumulate in `errors`.
pub struct HlsWalker {
    pub url: String,
    rules: WalkRules,
    playlist_checker: PlaylistChecker,
    ts_checker: TsChecker,
    pub segments: Vec<WalkedSegment>,
    pub errors: Vec<String>,
    /// Every fetch that parsed, in order.
    pub reports: Vec<PlaylistReport>,
    /// The first body with `EXT-X-ENDLIST`; later fetches must equal it.
    pub ended_body: Option<Vec<u8>>,
    instance: Option<String>,
}

impl HlsWalker {
    pub fn new(url: &str, rules: WalkRules) -> HlsWalker {
        HlsWalker {
            url: url.to_string(),
            rules,
            playlist_checker: PlaylistChecker::new(),
            ts_checker: TsChecker::new(),
            segments: Vec::new(),
            errors: Vec::new(),
            reports: Vec::new(),
            ended_body: None,
            instance: None,
        }
    }

    fn error(&mut self, e: String) {
        if self.errors.len() < 200 {
            self.errors.push(e);
        }
    }

    /// Fetches the playlist once and walks the segments it lists that were not walked yet.
    /// `Err` only for transport failures.
    pub fn poll(&mut self) -> Result<Polled, String> {
        let (head, body) = fetch(&self.url)?;
        if head.status == 404 {
            return Ok(Polled::NotFound);
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if head.status != 200 {
            self.error(format!("playlist answered {}: {text}", head.status));
            return Ok(Polled::Playlist(None));
        }
        if head.header("content-type") != Some(PLAYLIST_TYPE) {
            self.error(format!("playlist content-type {:?}", head.header("content-type")));
        }
        if let Some(ended) = &self.ended_body {
            if *ended != body {
                let was = String::from_utf8_lossy(ended).into_owned();
                self.error(format!("an ended playlist changed:\n{was}\n--- became ---\n{text}"));
            }
        }
        let report = match self.playlist_checker.check(&body) {
            Ok(report) => report,
            Err(errors) => {
                for e in errors {
                    self.error(format!("playlist: {e}\n{text}"));
                }
                return Ok(Polled::Playlist(None));
            }
        };
        if report.ended && self.ended_body.is_none() {
            self.ended_body = Some(body.clone());
        }
        self.check_playlist_rules(&report, &text);
        self.walk_new_segments(&report);
        self.check_independence(&report, &text);
        self.reports.push(report.clone());
        Ok(Polled::Playlist(Some(report)))
    }

    fn check_playlist_rules(&mut self, report: &PlaylistReport, text: &str) {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut last_pdt = None;
        for s in &report.segments {
            match s.program_date_time_ms {
                None => self.error(format!(
                    "segment {} has no EXT-X-PROGRAM-DATE-TIME:\n{text}",
                    s.sequence
                )),
                Some(pdt) => {
                    if (pdt - now_ms).abs() > 3_600_000 {
                        self.error(format!(
                            "segment {} EXT-X-PROGRAM-DATE-TIME {pdt} ms is more than an hour \
                             from the clock ({now_ms} ms)",
                            s.sequence
                        ));
                    }
                    if last_pdt.is_some_and(|last| pdt <= last) {
                        self.error(format!(
                            "segment {} EXT-X-PROGRAM-DATE-TIME does not increase:\n{text}",
                            s.sequence
                        ));
                    }
                    last_pdt = Some(pdt);
                }
            }
            // `{stream}-{instance}-{sequence}.ts`: the name carries the media sequence number.
            let name = s.uri.as_str();
            match segment_name_parts(name) {
                Some((_, instance, seq)) => {
                    if seq != s.sequence {
                        self.error(format!(
                            "segment {} is named {name}: EXT-X-MEDIA-SEQUENCE does not match \
                             the segments listed:\n{text}",
                            s.sequence
                        ));
                    }
                    let known = self.instance.get_or_insert_with(|| instance.clone());
                    if *known != instance {
                        let known = known.clone();
                        self.error(format!(
                            "segment {name}: the instance changed from {known} within one \
                             playlist"
                        ));
                    }
                }
                None => self.error(format!("segment uri {} is not stream-instance-seq.ts", s.uri)),
            }
        }
        // The window: `window_segments`, more only while needed to cover three target
        // durations (RFC 8216 §6.2.2).
        let listed = report.segments.len();
        if listed > self.rules.window_segments {
            let without_first: f64 = report.segments[1..].iter().map(|s| f64::from(s.duration_secs)).sum();
            if without_first >= 3.0 * report.target_duration_secs as f64 {
                self.error(format!(
                    "playlist lists {listed} segments, window is {}:\n{text}",
                    self.rules.window_segments
                ));
            }
        }
        if report.media_sequence > 0 && listed < self.rules.window_segments && !report.ended {
            self.error(format!(
                "segments were removed but only {listed} are listed (window {}):\n{text}",
                self.rules.window_segments
            ));
        }
    }

    /// `EXT-X-INDEPENDENT-SEGMENTS` (Apple 9.11) exactly while every listed segment starts
    /// with an IDR.
    fn check_independence(&mut self, report: &PlaylistReport, text: &str) {
        let starts: Vec<(u64, bool)> = report
            .segments
            .iter()
            .filter_map(|listed| {
                let walked = self.segments.iter().rev().find(|w| w.sequence == listed.sequence)?;
                Some((listed.sequence, walked.starts_with_idr))
            })
            .collect();
        let dependent: Vec<u64> = starts.iter().filter(|(_, idr)| !idr).map(|(seq, _)| *seq).collect();
        if report.independent_segments && !dependent.is_empty() {
            self.error(format!(
                "playlist claims EXT-X-INDEPENDENT-SEGMENTS but segments {dependent:?} do not start with an IDR:\n{text}"
            ));
        }
        let all_known = starts.len() == report.segments.len() && !starts.is_empty();
        if !report.independent_segments && all_known && dependent.is_empty() {
            self.error(format!(
                "every listed segment starts with an IDR but the playlist has no EXT-X-INDEPENDENT-SEGMENTS:\n{text}"
            ));
        }
    }

    fn walk_new_segments(&mut self, report: &PlaylistReport) {
        let last_walked = self.segments.last().map(|s| s.sequence);
        for listed in &report.segments {
            let url = resolve(&self.url, &listed.uri);
            if last_walked.is_some_and(|last| listed.sequence <= last) {
                // Walked already: it must still be served while it is listed.
                match head(&url) {
                    Ok((h, _)) if h.status == 200 => {}
                    Ok((h, _)) => self.error(format!(
                        "segment {} is listed but HEAD answers {}",
                        listed.sequence, h.status
                    )),
                    Err(e) => self.error(e),
                }
                continue;
            }
            if let Some(prev) = self.segments.last() {
                if listed.sequence != prev.sequence + 1 {
                    let prev = prev.sequence;
                    self.error(format!(
                        "walker missed segments {}..{} (polled too slowly?)",
                        prev + 1,
                        listed.sequence
                    ));
                }
            }
            let (head, data) = match fetch(&url) {
                Ok(r) => r,
                Err(e) => return self.error(e),
            };
            if head.status != 200 {
                self.error(format!(
                    "segment {} is listed but GET answers {}",
                    listed.sequence, head.status
                ));
                continue;
            }
            if head.header("content-type") != Some(SEGMENT_TYPE) {
                self.error(format!(
                    "segment {} content-type {:?}",
                    listed.sequence,
                    head.header("content-type")
                ));
            }
            let fresh = self.segments.is_empty() || listed.discontinuity;
            let at = format!("segment {} ({})", listed.sequence, listed.uri);
            let media = match SegmentMedia::read(&data) {
                Ok(m) => m,
                Err(e) => {
                    self.error(format!("{at}: {e}"));
                    SegmentMedia::default()
                }
            };
            let starts_with_idr = media.starts_with_idr();
            let independent = starts_with_idr || !self.rules.forced_cuts;
            let context = SegmentContext {
                discontinuity: fresh,
                independent,
            };
            match self.ts_checker.check(&data, context) {
                Ok(r) => {
                    if self.rules.expect_video && (!r.has_video || r.video_frames == 0) {
                        self.error(format!("{at}: no video ({r:?})"));
                    }
                    if self.rules.expect_audio && (!r.has_audio || r.audio_frames == 0) {
                        self.error(format!("{at}: no ADTS audio ({r:?})"));
                    }
                }
                Err(errors) => {
                    for e in errors.into_iter().take(10) {
                        self.error(format!("{at}: {e}"));
                    }
                }
            }
            if self.rules.expect_video {
                for e in media.rule_violations(independent) {
                    self.error(format!("{at}: {e}"));
                }
            }
            let keyframes = media.keyframe_dts();
            let first_video_dts = media.video.first().map(|au| au.dts);
            self.check_cut(listed, &keyframes, first_video_dts, starts_with_idr);
            self.segments.push(WalkedSegment {
                sequence: listed.sequence,
                uri: listed.uri.clone(),
                duration_secs: listed.duration_secs,
                discontinuity: listed.discontinuity,
                program_date_time_ms: listed.program_date_time_ms,
                bytes: data.len(),
                video_size: media.video_size,
                first_video_dts,
                keyframes: keyframes.len(),
                starts_with_idr,
            });
        }
    }

    /// Segments are cut at the first keyframe at or after `fragment_ms`: no keyframe inside a
    /// segment that far from its start, and (without a discontinuity between them) the next
    /// segment starts that far or further (unless it starts without a keyframe: a forced cut).
    /// `EXTINF` is the distance between the starts.
    fn check_cut(
        &mut self,
        listed: &estuary_muxer::check::PlaylistSegment,
        keyframes: &[u64],
        first_dts: Option<u64>,
        starts_with_idr: bool,
    ) {
        let fragment = self.rules.fragment_ms * TICKS_PER_MS;
        let at = format!("segment {}", listed.sequence);
        if let Some(start) = first_dts {
            for &k in keyframes.iter().skip(1) {
                if ts_diff(start, k) >= fragment {
                    self.error(format!(
                        "{at}: keyframe at +{} ms inside the segment; it should have been cut \
                         there (fragment {} ms)",
                        ts_diff(start, k) / TICKS_PER_MS,
                        self.rules.fragment_ms
                    ));
                }
            }
        }
        let Some(prev) = self.segments.last().cloned() else {
            return;
        };
        if listed.discontinuity || prev.sequence + 1 != listed.sequence {
            return;
        }
        if let (Some(a), Some(b)) = (prev.first_video_dts, first_dts) {
            let ms = ts_diff(a, b) as f64 / TICKS_PER_MS as f64;
            if ms < self.rules.fragment_ms as f64 && starts_with_idr {
                self.error(format!(
                    "segment {} was cut after {ms} ms, before the fragment duration {} ms",
                    prev.sequence, self.rules.fragment_ms
                ));
            }
            let extinf_ms = f64::from(prev.duration_secs) * 1000.0;
            if (extinf_ms - ms).abs() > 5.0 {
                self.error(format!(
                    "segment {} EXTINF is {extinf_ms} ms but the next segment starts {ms} ms \
                     after it",
                    prev.sequence
                ));
            }
        }
    }
}

/// One request a [`RecordingProxy`] forwarded.
#[derive(Clone, Debug)]
pub struct Proxied {
    pub path: String,
    pub status: u16,
    /// The body, for playlists.
    pub playlist: Option<String>,
}

/// An HTTP proxy on 127.0.0.1 in front of the server that records what a player fetched.
/// Response heads are passed on as they are (CORS included); each connection serves one
/// request.
pub struct RecordingProxy {
    pub port: u16,
    pub log: Arc<Mutex<Vec<Proxied>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingProxy {
    /// Proxies to `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l, up) = (stop.clone(), log.clone(), upstream.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (l, up) = (l.clone(), up.clone());
                        std::thread::spawn(move || proxy_one(conn, &up, &l));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        RecordingProxy {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Proxied> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy_one(mut conn: TcpStream, upstream: &str, log: &Mutex<Vec<Proxied>>) {
    conn.set_nonblocking(false).ok();
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while find(&buf, b"\r\n\r\n").is_none() && buf.len() < 16384 {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request = String::from_utf8_lossy(&buf).into_owned();
    let mut words = request.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or("/"));
    let (head, body) = match get(&format!("http://{upstream}{path}"), FETCH_LIMIT) {
        Ok(r) => r,
        Err(e) => {
            let _ = conn
                .write_all(format!("HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\n\r\n{e}", e.len()).as_bytes());
            return;
        }
    };
    let mut out = format!("HTTP/1.1 {} Proxied\r\n", head.status);
    for (n, v) in &head.headers {
        if !matches!(
            n.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "keep-alive"
        ) {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    out.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let _ = conn.write_all(out.as_bytes());
    if method != "HEAD" {
        let _ = conn.write_all(&body);
    }
    let playlist = path
        .split('?')
        .next()
        .is_some_and(|p| p.ends_with(".m3u8"))
        .then(|| String::from_utf8_lossy(&body).into_owned());
    log.lock().unwrap_or_else(|e| e.into_inner()).push(Proxied {
        path: path.to_string(),
        status: head.status,
        playlist,
    });
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
