//! One HLS packager per live stream: a hub subscriber that feeds `muxer`'s segmenter and
//! playlist and publishes what they produce into the [`HlsStore`].
//!
//! Its life: it starts with the first publisher. When the publisher leaves, the open segment
//! is closed at once; a publisher that comes back within `reconnect_window_ms` continues the
//! same playlist after an `EXT-X-DISCONTINUITY`; otherwise the playlist gets
//! `EXT-X-ENDLIST`, is served for `dispose_ms`, and is removed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use estuary_muxer::{HlsSegmenter, HlsSegmenterConfig, LivePlaylist, LivePlaylistConfig, Segment};
use estuary_protocol::Packet;
use tracing::{debug, info, warn, Instrument};

use super::store::HlsStream;
use crate::context::Context;
use crate::hooks::{ClientInfo, HlsSegmentInfo, NotifyEvent, StreamInfo};
use crate::hub::{StreamKey, Subscriber, SubscriberEnd};

/// Starts the packager of `key` unless one is running.
pub fn ensure_running(ctx: &Arc<Context>, key: &StreamKey) {
    if !ctx.config.hls.enabled || !ctx.hls_packagers.insert(key.clone()) {
        return;
    }
    let task_ctx = Arc::clone(ctx);
    let task_key = key.clone();
    let span = tracing::info_span!("hls", stream = %key);
    ctx.tasks
        .spawn(async move { run(&task_ctx, &task_key).await }.instrument(span));
}

/// Segment file name: `{stream}-{instance}-{sequence}.ts`, beside the playlist.
pub fn segment_name(stream: &str, instance: &str, sequence: u64) -> String {
    format!("{stream}-{instance}-{sequence}.ts")
}

/// Splits a segment file name into (stream, instance, sequence).
pub fn parse_segment_name(file: &str) -> Option<(&str, &str, u64)> {
    let rest = file.strip_suffix(".ts")?;
    let (rest, seq) = rest.rsplit_once('-')?;
    let (stream, instance) = rest.rsplit_once('-')?;
    Some((stream, instance, seq.parse().ok()?))
}

struct Packaging {
    key: StreamKey,
    out: Arc<HlsStream>,
    segmenter: HlsSegmenter,
    playlist: LivePlaylist,
    /// Segments still served after they left the playlist (`hls.tail_segments`).
    tail: usize,
    errors_logged: u32,
}

impl Packaging {
    fn new(ctx: &Context, key: &StreamKey) -> Packaging {
        let hls = &ctx.config.hls;
        let instance = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let out = Arc::new(HlsStream::new(format!("{instance:x}")));
        ctx.hls.insert(key.clone(), Arc::clone(&out));
        Packaging {
            key: key.clone(),
            out,
            segmenter: HlsSegmenter::new(HlsSegmenterConfig {
                fragment_ms: hls.fragment_ms,
                max_segment_ms: hls.max_segment_ms,
                ..HlsSegmenterConfig::default()
            }),
            playlist: LivePlaylist::new(LivePlaylistConfig {
                fragment_ms: hls.fragment_ms,
                window_segments: hls.window_segments,
            }),
            tail: hls.tail_segments,
            errors_logged: 0,
        }
    }

    fn render(&self) -> bytes::Bytes {
        let (stream, instance) = (self.key.name.as_str(), self.out.instance.as_str());
        self.playlist.render(|seq| segment_name(stream, instance, seq))
    }

    fn push(&mut self, ctx: &Context, packet: &Packet) {
        if let Err(e) = self.segmenter.push(packet) {
            // Once per kind of trouble is enough for the log; metrics count every one.
            if self.errors_logged < 5 {
                self.errors_logged += 1;
                warn!(cause = %e, "hls packager dropped a packet");
            }
        }
        self.drain(ctx);
    }

    fn drain(&mut self, ctx: &Context) {
        while let Some(segment) = self.segmenter.poll_segment() {
            self.add(ctx, segment);
        }
    }

    fn add(&mut self, ctx: &Context, segment: Segment) {
        match self.playlist.push_segment(&segment) {
            Ok(added) => {
                if added.oversize {
                    crate::metrics::hls_oversize_segment(&self.key.app);
                    warn!(
                        sequence = segment.sequence,
                        duration_ms = segment.duration_ms,
                        target_secs = self.playlist.target_duration_secs(),
                        "hls segment longer than the target duration (encoder keyframe interval above hls.fragment_ms?)"
                    );
                }
            }
            Err(e) => return warn!(cause = %e, "hls segment not added"),
        }
        let playlist = self.render();
        let (sequence, duration_ms) = (segment.sequence, segment.duration_ms);
        // The playlist may list more than window_segments (it covers three target durations,
        // RFC 8216 §6.2.2): keep everything it lists, plus the tail.
        let keep = self.playlist.entries().len() + self.tail;
        self.out.publish(
            sequence,
            segment.data,
            playlist,
            self.playlist.target_duration_secs(),
            keep,
        );
        debug!(sequence, duration_ms, "hls segment");
        crate::metrics::hls_segment(&self.key.app);
        self.notify(ctx, sequence, duration_ms);
    }

    fn notify(&self, ctx: &Context, sequence: u64, duration_ms: u64) {
        let (app, name) = (&self.key.app, &self.key.name);
        let file = segment_name(name, &self.out.instance, sequence);
        let client = ClientInfo::new("hls", "127.0.0.1", app.clone());
        let stream = StreamInfo {
            stream: name.clone(),
            param: String::new(),
            stream_id: self.key.to_string(),
        };
        let segment = HlsSegmentInfo {
            duration: duration_ms as f64 / 1000.0,
            cwd: String::new(),
            file: format!("/{app}/{file}"),
            url: file,
            m3u8: format!("/{app}/{name}.m3u8"),
            m3u8_url: format!("/{app}/{name}.m3u8"),
            seq_no: sequence,
        };
        ctx.hooks.notify(&NotifyEvent::Hls {
            client,
            stream,
            segment,
        });
    }

    /// The publisher left: close the open segment.
    fn flush(&mut self, ctx: &Context) {
        self.segmenter.finish();
        self.drain(ctx);
    }

    fn end(&mut self) {
        self.playlist.end();
        self.out.set_playlist(self.render(), true);
    }
}

async fn run(ctx: &Arc<Context>, key: &StreamKey) {
    let mut subscriber: Subscriber = ctx.hub.subscribe(key);
    let mut live = subscriber.stream().watch_live();
    let mut packaging = Packaging::new(ctx, key);
    info!("hls packaging started");
    let reconnect_window = Duration::from_millis(ctx.config.hls.reconnect_window_ms);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            packet = subscriber.recv() => match packet {
                Ok(p) => packaging.push(ctx, &p),
                Err(SubscriberEnd::TooSlow) => {
                    warn!("hls packager fell behind; resubscribing");
                    subscriber = ctx.hub.subscribe(key);
                }
                Err(SubscriberEnd::NoPublisher) => break,
            },
            changed = live.changed() => {
                if changed.is_err() || *live.borrow_and_update() {
                    continue;
                }
                // Publisher gone: publish what we have, then wait for a reconnect.
                packaging.flush(ctx);
                let back = tokio::time::timeout(reconnect_window, live.wait_for(|l| *l)).await;
                if !matches!(back, Ok(Ok(_))) {
                    break;
                }
                debug!("publisher back; the playlist continues after a discontinuity");
            }
        }
    }
    // From here a new publisher starts a new packaging run (a new playlist).
    ctx.hls_packagers.remove(key);
    drop(subscriber);
    packaging.flush(ctx);
    packaging.end();
    info!("hls playlist ended");
    // Serve the ended playlist for a while, unless the server is shutting down.
    let dispose = Duration::from_millis(ctx.config.hls.dispose_ms);
    tokio::select! {
        _ = ctx.shutdown.cancelled() => {}
        _ = tokio::time::sleep(dispose) => {}
    }
    ctx.hls.remove(key, &packaging.out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        let name = segment_name("cam-1", "65a1f", 42);
        assert_eq!(name, "cam-1-65a1f-42.ts");
        assert_eq!(parse_segment_name(&name), Some(("cam-1", "65a1f", 42)));
        assert_eq!(parse_segment_name("cam.ts"), None);
        assert_eq!(parse_segment_name("cam-x-y.ts"), None);
    }
}
