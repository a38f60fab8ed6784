//! One try of an HLS pull: fetch the media playlist (following a master playlist to the
//! variant with the highest `BANDWIDTH`, or the highest at most the source's
//! `max_bandwidth`), download the segments it adds in order, read them with the muxer's
//! [`TsReader`] and put the packets on the path at the pace of their timestamps.
//!
//! - A segment that answers 404 or 410 (expired, or never written: a gap) is skipped; the
//!   reader is told the timeline breaks there, as at an `EXT-X-DISCONTINUITY`.
//! - Falling behind the playlist's window skips to its start the same way; a media
//!   sequence that goes back (the origin restarted) rejoins its live end.
//! - The reader keeps the timeline rising across every such break.
//! - `#EXT-X-ENDLIST`, or no new segment for `pull.read_timeout_ms`, ends the try.

pub mod fetch;

use std::time::Duration;

use estuary_muxer::ts::{TsReader, TsReaderLimits};
use m3u8_rs::{MediaPlaylist, Playlist};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::PullError;
use super::feed::Feed;
use crate::config::{PullConfig, SourceSpec};
use fetch::{Fetcher, HttpUrl};

/// Master playlists followed before a media playlist is expected.
const MAX_MASTER_HOPS: usize = 3;
/// A fresh pull starts this many segments before the live end.
const START_SEGMENTS_BACK: usize = 2;
/// Paced delivery that falls further behind than this starts over from the current packet
/// (a slow download or a gap): late media goes out at once, not in a burst to catch up.
const MAX_PACE_LAG: Duration = Duration::from_secs(3);
/// Packets due this soon are not waited for (see [`Pacer`]).
const PACE_BATCH: Duration = Duration::from_millis(50);

/// Pulls `spec.url` into `feed` until the source ends, fails, or `stop` is cancelled.
pub async fn pull(
    spec: &SourceSpec,
    limits: &PullConfig,
    feed: &mut Feed,
    stop: &CancellationToken,
) -> Result<(), PullError> {
    let mut fetcher = Fetcher::new(Duration::from_millis(limits.fetch_timeout_ms));
    // Every wait below also ends with `stop`, so shutdown never waits for a fetch deadline.
    let (url, mut playlist) = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        found = media_playlist(spec, limits, &mut fetcher) => found?,
    };
    let mut reader = TsReader::new(TsReaderLimits {
        max_pes_bytes: limits.max_segment_bytes,
    });
    let mut pacer = Pacer::default();
    let mut next: Option<u64> = None;
    let mut last_new = Instant::now();
    let silent = Duration::from_millis(limits.read_timeout_ms);
    loop {
        let first = playlist.media_sequence;
        let count = playlist.segments.len() as u64;
        let from = match next {
            None => first + count.saturating_sub(START_SEGMENTS_BACK as u64),
            Some(n) if n < first => {
                tracing::warn!(missed = first - n, "fell behind the playlist window; skipping ahead");
                reader.discontinuity();
                first
            }
            Some(n) if n > first + count => {
                // The sequence went back: the origin started over. Join its live end.
                tracing::warn!(
                    expected = n,
                    first,
                    "the playlist's media sequence went back; rejoining"
                );
                reader.discontinuity();
                first + count.saturating_sub(START_SEGMENTS_BACK as u64)
            }
            Some(n) => n,
        };
        for (seq, segment) in (first..).zip(&playlist.segments) {
            if seq < from {
                continue;
            }
            if segment.discontinuity && next.is_some() {
                reader.discontinuity();
            }
            next = Some(seq + 1);
            last_new = Instant::now();
            let segment_url = url.join(&segment.uri)?;
            let bytes = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                got = fetcher.get(&segment_url, limits.max_segment_bytes) => got,
            };
            let bytes = match bytes {
                Ok(b) => b,
                Err(e) if e.is_gone() => {
                    tracing::warn!(segment = seq, cause = %e, "segment missing; skipped");
                    reader.discontinuity();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            reader.push(&bytes);
            while let Some(packet) = reader.next_packet() {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = pacer.wait(packet.dts) => {}
                }
                feed.publish(packet).await?;
            }
        }
        if playlist.end_list {
            reader.flush();
            while let Some(packet) = reader.next_packet() {
                feed.publish(packet).await?;
            }
            return Err(PullError::Ended("the playlist ended (#EXT-X-ENDLIST)".into()));
        }
        if last_new.elapsed() >= silent {
            return Err(PullError::Silent(limits.read_timeout_ms));
        }
        // Poll at half a target duration when nothing new came (RFC 8216 §6.3.4).
        if next.is_some_and(|n| n >= first + count) {
            let wait = Duration::from_millis((playlist.target_duration.max(1) * 1000 / 2).min(5000));
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let fetched = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            fetched = fetch_playlist(&url, limits, &mut fetcher) => fetched?,
        };
        playlist = match fetched {
            Playlist::MediaPlaylist(p) => p,
            Playlist::MasterPlaylist(_) => {
                return Err(PullError::Playlist {
                    url: url.to_string(),
                    why: "the media playlist became a master playlist".into(),
                })
            }
        };
    }
}

/// The media playlist of the source, following master playlists to the chosen variant.
async fn media_playlist(
    spec: &SourceSpec,
    limits: &PullConfig,
    fetcher: &mut Fetcher,
) -> Result<(HttpUrl, MediaPlaylist), PullError> {
    let mut url = HttpUrl::parse(&spec.url)?;
    for _ in 0..=MAX_MASTER_HOPS {
        match fetch_playlist(&url, limits, fetcher).await? {
            Playlist::MediaPlaylist(media) => return Ok((url, media)),
            Playlist::MasterPlaylist(master) => {
                let variant = master
                    .variants
                    .iter()
                    .filter(|v| !v.is_i_frame)
                    .filter(|v| spec.max_bandwidth == 0 || v.bandwidth <= spec.max_bandwidth)
                    .max_by_key(|v| v.bandwidth)
                    .ok_or_else(|| PullError::Playlist {
                        url: url.to_string(),
                        why: "no variant fits max_bandwidth".into(),
                    })?;
                tracing::info!(
                    bandwidth = variant.bandwidth,
                    "following the master playlist to a variant"
                );
                url = url.join(&variant.uri)?;
            }
        }
    }
    Err(PullError::Playlist {
        url: url.to_string(),
        why: format!("more than {MAX_MASTER_HOPS} master playlists in a row"),
    })
}

async fn fetch_playlist(url: &HttpUrl, limits: &PullConfig, fetcher: &mut Fetcher) -> Result<Playlist, PullError> {
    let text = fetcher.get(url, limits.max_playlist_bytes).await?;
    m3u8_rs::parse_playlist_res(&text).map_err(|e| PullError::Playlist {
        url: url.to_string(),
        why: format!("unreadable: {}", short(&format!("{e:?}"))),
    })
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(120) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Lets packets out when the wall clock reaches their timestamps, from an anchor set by the
/// first packet (and reset when delivery falls more than [`MAX_PACE_LAG`] behind). Packets
/// due within [`PACE_BATCH`] go out at once: one timer wake-up per batch, not per frame.
#[derive(Default)]
struct Pacer {
    anchor: Option<(Instant, u64)>,
}

impl Pacer {
    async fn wait(&mut self, dts: u64) {
        let now = Instant::now();
        let (at, base) = *self.anchor.get_or_insert((now, dts));
        let due = at + Duration::from_millis(dts.saturating_sub(base));
        if due > now + PACE_BATCH {
            tokio::time::sleep_until(due).await;
        } else if now - due > MAX_PACE_LAG {
            self.anchor = Some((now, dts));
        }
    }
}
