//! The fMP4 packager of a stream (HEVC, AV1, VP9 or Opus under `auto`, or any stream with
//! `hls.variant = "fmp4"`): feeds `muxer`'s fMP4 segmenter and playlist and publishes init
//! sections, LL-HLS parts, segments, the media playlist (full and delta update) and the
//! master playlist into the stream's [`HlsStream`]. Each part is published the moment it is
//! cut, which wakes the requests blocked on it. Life, reconnects and gaps as for MPEG-TS
//! ([`super::ts`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use estuary_muxer::hls::master::{bit_rate, master_playlist, Variant};
use estuary_muxer::hls::{
    Fmp4Output, Fmp4Segmenter, Fmp4SegmenterConfig, LivePlaylist, LivePlaylistConfig, PartEntry, PlaylistEntry,
    PlaylistUris,
};
use estuary_protocol::Packet;
use tracing::{debug, info, warn};

use super::hook::SegmentHook;
use super::names::HlsFile;
use super::store::{HlsStream, Update};
use crate::config::HlsConfig;
use crate::hooks::HookSubject;
use crate::outputs::Output;
use crate::stream::StreamKey;

/// The media playlist's file name beside the master playlist `{stream}.m3u8`.
pub fn media_playlist_name(stream: &str) -> String {
    format!("{stream}.media.m3u8")
}

pub struct Fmp4Packaging {
    key: StreamKey,
    hook: SegmentHook,
    out: Arc<HlsStream>,
    segmenter: Fmp4Segmenter,
    playlist: LivePlaylist,
    uris: Uris,
    low_latency: bool,
    tail: usize,
    linger: Duration,
    errors_logged: u32,
    /// The master playlist's variant, once an init section came.
    variant: Option<Variant>,
    forced_cut_logged: bool,
}

/// URIs of one packaging run's files, the stream percent-encoded.
struct Uris {
    stream: String,
    instance: String,
}

impl PlaylistUris for Uris {
    fn segment(&self, sequence: u64) -> String {
        HlsFile::Segment(sequence).uri(&self.stream, &self.instance)
    }
    fn part(&self, sequence: u64, index: u32) -> String {
        HlsFile::Part(sequence, index).uri(&self.stream, &self.instance)
    }
    fn init(&self, id: u64) -> String {
        HlsFile::Init(id).uri(&self.stream, &self.instance)
    }
}

impl Fmp4Packaging {
    pub fn new(hls: &HlsConfig, hook: SegmentHook, out: Arc<HlsStream>, key: &StreamKey) -> Fmp4Packaging {
        let part_ms = hls.low_latency.then_some(hls.part_ms);
        info!(stream = %key, low_latency = hls.low_latency, "hls packaging as fmp4");
        Fmp4Packaging {
            key: key.clone(),
            hook,
            segmenter: Fmp4Segmenter::new(Fmp4SegmenterConfig {
                fragment_ms: hls.fragment_ms,
                max_segment_ms: hls.max_segment_ms,
                part_ms,
                first_sequence: 0,
            }),
            playlist: LivePlaylist::new(LivePlaylistConfig {
                fragment_ms: hls.fragment_ms,
                window_segments: hls.window_segments,
                part_target_ms: part_ms,
            }),
            uris: Uris {
                stream: key.name.clone(),
                instance: out.instance.clone(),
            },
            out,
            low_latency: hls.low_latency,
            tail: hls.tail_segments,
            linger: Duration::from_millis(hls.dispose_ms),
            errors_logged: 0,
            variant: None,
            forced_cut_logged: false,
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.segmenter.poll() {
            match output {
                Fmp4Output::Init(init) => {
                    let variant = Variant {
                        uri: media_playlist_name(&crate::percent::encode_path_segment(&self.key.name)),
                        codecs: init.codecs.clone(),
                        bandwidth: self.variant.as_ref().map_or(0, |v| v.bandwidth),
                        resolution: (init.width > 0).then_some((init.width, init.height)),
                    };
                    info!(stream = %self.key, codecs = %init.codecs, id = init.id, "hls init section");
                    self.out
                        .publish_init(init.id, init.data, Bytes::from(master_playlist(&variant)));
                    self.variant = Some(variant);
                }
                Fmp4Output::Part(part) => {
                    self.playlist.push_part(
                        part.sequence,
                        PartEntry {
                            duration_ms: part.duration_ms,
                            independent: part.independent,
                        },
                    );
                    self.publish(None, Some((part.sequence, part.index, part.data)));
                    crate::metrics::hls_part(&self.key.app);
                }
                Fmp4Output::Segment(segment) => {
                    if let Err(e) = self.playlist.push_entry(PlaylistEntry::from(&segment)) {
                        warn!(stream = %self.key, cause = %e, "hls segment not added");
                        continue;
                    }
                    self.note_forced_cut(&segment);
                    self.update_bandwidth(segment.data.len(), segment.duration_ms);
                    let (sequence, duration_ms) = (segment.sequence, segment.duration_ms);
                    self.publish(Some((sequence, segment.data)), None);
                    debug!(stream = %self.key, sequence, duration_ms, "hls fmp4 segment");
                    crate::metrics::hls_segment(&self.key.app);
                    let file = HlsFile::Segment(sequence).name(&self.key.name, &self.out.instance);
                    let uri = self.uris.segment(sequence);
                    self.hook.segment(file, uri, sequence, duration_ms);
                }
            }
        }
    }

    fn note_forced_cut(&mut self, segment: &estuary_muxer::hls::Fmp4Segment) {
        if segment.independent {
            return;
        }
        crate::metrics::hls_forced_cut(&self.key.app);
        if !self.forced_cut_logged {
            self.forced_cut_logged = true;
            warn!(
                stream = %self.key,
                sequence = segment.sequence,
                target_secs = segment.target_duration_secs,
                "hls segment cut without a keyframe: the encoder's keyframe interval is longer than the target duration (set it to hls.fragment_ms)"
            );
        }
    }

    /// Raises the master playlist's `BANDWIDTH` to the peak segment bit rate.
    fn update_bandwidth(&mut self, bytes: usize, duration_ms: u64) {
        let rate = bit_rate(bytes, duration_ms);
        if let Some(variant) = self.variant.as_mut().filter(|v| rate > v.bandwidth) {
            variant.bandwidth = rate;
            self.out.set_master(Bytes::from(master_playlist(variant)));
        }
    }

    fn publish(&self, segment: Option<(u64, Bytes)>, part: Option<(u64, u32, Bytes)>) {
        let listed = !self.playlist.is_empty();
        let playlist = if listed {
            self.playlist.render_with(&self.uris, false)
        } else {
            Bytes::new()
        };
        let delta = (listed && self.low_latency)
            .then(|| self.playlist.render_with(&self.uris, true))
            .filter(|delta| *delta != playlist);
        self.out.publish_update(Update {
            segment,
            part,
            playlist,
            delta,
            progress: self.playlist.progress(),
            target_duration_secs: self.playlist.target_duration_secs(),
            keep: self.playlist.entries().len() + self.tail,
        });
    }

    fn close_segment(&mut self) {
        self.segmenter.finish();
        self.drain();
    }
}

impl Output for Fmp4Packaging {
    fn source_changed(&mut self, source: Option<&HookSubject>) {
        self.hook.source_changed(source);
    }

    fn packet(&mut self, packet: &Arc<Packet>) {
        if let Err(e) = self.segmenter.push(packet) {
            if self.errors_logged < 5 {
                self.errors_logged += 1;
                warn!(stream = %self.key, cause = %e, "hls fmp4 packager dropped a packet");
            }
        }
        self.drain();
    }

    fn gap(&mut self) {
        warn!(stream = %self.key, "hls packager fell behind the stream; the playlist continues after a discontinuity");
        self.close_segment();
    }

    fn source_gone(&mut self) {
        self.close_segment();
    }

    fn end(&mut self) {
        self.close_segment();
        self.playlist.end();
        self.out.end(self.playlist.render_with(&self.uris, false), self.linger);
        info!(stream = %self.key, "hls playlist ended");
    }
}
